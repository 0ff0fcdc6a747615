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

from group_orders.errors import ApiError


class ResultFile(Enum):
    """The files of a group order, by the name they have in a link."""

    normalized_csv = "normalized.csv"
    accepted_orders_xlsx = "accepted.xlsx"
    rejected_orders_xlsx = "rejected.xlsx"


class LinkSigner:
    def __init__(self, secret: str, lifetime: timedelta) -> None:
        # Keyed once: each signature copies this state instead of keying HMAC again.
        self._keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self.lifetime = lifetime

    def _signature(self, group_order_id: uuid.UUID | str, file: ResultFile, expires: int) -> str:
        mac = self._keyed.copy()
        mac.update(f"{group_order_id}/{file.value}/{expires}".encode())
        return mac.hexdigest()

    def sign(
        self, base_url: str, group_order_id: uuid.UUID, file: ResultFile, now: datetime
    ) -> str:
        expires = int((now + self.lifetime).timestamp())
        text_id = str(group_order_id)
        # Digits and hex digits only: nothing in the query needs escaping.
        signature = self._signature(text_id, file, expires)
        return (
            f"{base_url.rstrip('/')}/files/{text_id}/{file.value}"
            f"?expires={expires}&signature={signature}"
        )

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
