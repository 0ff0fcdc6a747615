"""Signed links are spelled as they always were: the HMAC-SHA256 of id, file and expiry,
in a query string as ``urlencode`` writes it; and they verify."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from group_orders.storage.links import LinkSigner, ResultFile

SECRET = "a-secret-of-the-test-" * 3


def expected_link(base_url: str, group_order_id: uuid.UUID, file: ResultFile, expires: int) -> str:
    message = f"{group_order_id}/{file.value}/{expires}".encode()
    signature = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    query = urlencode({"expires": expires, "signature": signature})
    return f"{base_url.rstrip('/')}/files/{group_order_id}/{file.value}?{query}"


@settings(max_examples=300, deadline=None)
@given(
    group_order_id=st.uuids(),
    file=st.sampled_from(ResultFile),
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    lifetime=st.integers(min_value=1, max_value=10**7),
    base_url=st.sampled_from(["http://testserver", "https://api.example.com/", "http://h:8000"]),
)
def test_a_link_reads_as_urlencode_and_hmac_spell_it(
    group_order_id: uuid.UUID,
    file: ResultFile,
    now: datetime,
    lifetime: int,
    base_url: str,
) -> None:
    # given
    signer = LinkSigner(SECRET, timedelta(seconds=lifetime))
    expires = int((now + timedelta(seconds=lifetime)).timestamp())

    # when
    link = signer.sign(base_url, group_order_id, file, now)

    # then
    assert link == expected_link(base_url, group_order_id, file, expires)
    query = dict(part.split("=") for part in link.split("?")[1].split("&"))
    assert signer.verify(
        str(group_order_id), file.value, query["expires"], query["signature"], now
    ) == (group_order_id, file)
