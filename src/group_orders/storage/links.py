"""Signed, expiring links to a group order's result files.

A link is ``/files/{group order id}/{file}?expires={unix time}&signature={hmac}``. The
signature covers the id, the file and the expiry: a link that was changed fails as
``invalid-token``; one whose time is up fails as ``link-expired``.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from enum import Enum
from urllib.parse import urlencode

from group_orders.errors import ApiError


class ResultFile(Enum):
    """The files of a group order, by the name they have in a link."""

    normalized_csv = "normalized.csv"
    accepted_orders_xlsx = "accepted.xlsx"
    rejected_orders_xlsx = "rejected.xlsx"


class LinkSigner:
    def __init__(self, secret: str, lifetime: timedelta) -> None:
        self._secret = secret.encode()
        self.lifetime = lifetime

    def _signature(self, group_order_id: uuid.UUID, file: ResultFile, expires: int) -> str:
        message = f"{group_order_id}/{file.value}/{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(
        self, base_url: str, group_order_id: uuid.UUID, file: ResultFile, now: datetime
    ) -> str:
        expires = int((now + self.lifetime).timestamp())
        query = urlencode(
            {"expires": expires, "signature": self._signature(group_order_id, file, expires)}
        )
        return f"{base_url.rstrip('/')}/files/{group_order_id}/{file.value}?{query}"

    def verify(
        self,
        raw_id: str,
        raw_file: str,
        raw_expires: str | None,
        signature: str | None,
        now: datetime,
    ) -> tuple[uuid.UUID, ResultFile]:
        """The group order and file of a link, or ``invalid-token``/``link-expired``."""
        tampered = ApiError(
            "invalid-token", "This link is not valid. Ask for a new one.", param="signature"
        )
        try:
            group_order_id = uuid.UUID(raw_id)
            file = ResultFile(raw_file)
            expires = int(raw_expires or "")
        except ValueError:
            raise tampered from None
        expected = self._signature(group_order_id, file, expires)
        if signature is None or not hmac.compare_digest(expected, signature):
            raise tampered
        if expires <= now.timestamp():
            raise ApiError(
                "link-expired",
                "This link has expired. Ask the API for the group order again to get a new one.",
                param="expires",
            )
        return group_order_id, file
