"""Signed, expiring links to a group order's page, for people who have no token.

A link is ``/group-orders/{id}?expires={unix time}&signature={hmac}``: it opens that one
group order's page (status, counts, rejection codes, file downloads) and nothing else.
The signature covers the id and the expiry, under a purpose of its own, so it is never
valid as a file link nor the other way round. A changed link fails as ``invalid-token``,
one whose time is up as ``link-expired``.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

from group_orders.errors import ApiError

_PURPOSE = "group-order-page"


class PageLinkSigner:
    def __init__(self, secret: str, lifetime: timedelta) -> None:
        self._secret = secret.encode()
        self.lifetime = lifetime

    def _signature(self, group_order_id: uuid.UUID, expires: int) -> str:
        message = f"{_PURPOSE}/{group_order_id}/{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def query(self, group_order_id: uuid.UUID, now: datetime) -> str:
        """``expires=…&signature=…`` for the page of ``group_order_id``."""
        expires = int((now + self.lifetime).timestamp())
        return urlencode(
            {"expires": expires, "signature": self._signature(group_order_id, expires)}
        )

    def sign(self, base_url: str, group_order_id: uuid.UUID, now: datetime) -> str:
        query = self.query(group_order_id, now)
        return f"{base_url.rstrip('/')}/group-orders/{group_order_id}?{query}"

    def verify(
        self,
        group_order_id: uuid.UUID,
        raw_expires: str | None,
        signature: str | None,
        now: datetime,
    ) -> None:
        """Nothing if the link is good; else ``invalid-token`` or ``link-expired``."""
        tampered = ApiError(
            "invalid-token", "This link is not valid. Ask for a new one.", param="signature"
        )
        try:
            expires = int(raw_expires or "")
        except ValueError:
            raise tampered from None
        expected = self._signature(group_order_id, expires)
        if signature is None or not hmac.compare_digest(expected, signature):
            raise tampered
        if expires <= now.timestamp():
            raise ApiError(
                "link-expired",
                "This link has expired. Sign in, or ask for the group order again.",
                param="expires",
            )
