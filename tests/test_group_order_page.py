"""``/group-orders/{id}``: a group order's page, read with a token or a signed link."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx

from group_orders.services.demo import DemoData
from group_orders.services.page_links import PageLinkSigner
from group_orders.settings import Settings
from group_orders.worker.runner import Runner
from uploading import csv_bytes, good_row, upload

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def signer(settings: Settings) -> PageLinkSigner:
    return PageLinkSigner(settings.secret_key, settings.email_link_lifetime)


def page_path(settings: Settings, group_order_id: str, now: datetime | None = None) -> str:
    link = signer(settings).sign(
        "http://testserver", uuid.UUID(group_order_id), now or datetime.now(UTC)
    )
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def test_a_token_reads_the_summary_with_counts_codes_and_file_links(
    client: httpx.AsyncClient, demo: DemoData, jobs: Runner
) -> None:
    # given: a file with two good rows and three bad ones, processed
    token = demo.tokens["client"]
    rows = [
        good_row(1),
        good_row(2),
        good_row(3, email="not-an-email"),
        good_row(4, email="also-not"),
        good_row(5, quantity="-1"),
    ]
    uploaded = await upload(client, token, csv_bytes(rows), filename="week-48.csv")
    group_order_id = uploaded.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
    await jobs.run_until_idle()

    # when
    response = await client.get(
        f"/group-orders/{group_order_id}/summary", headers={"Authorization": f"Bearer {token}"}
    )

    # then
    assert response.status_code == 200
    body = response.json()
    files = body.pop("files")
    assert {key: body[key] for key in body if key not in ("linksExpireAt", "updatedAt")} == {
        "id": group_order_id,
        "status": "completed",
        "sourceFileName": "week-48.csv",
        "totalOrders": 5,
        "successfulOrders": 2,
        "rejectedOrders": 3,
        "progress": {"processedRows": 5, "totalRows": 5},
        "failureReason": None,
        "topRejectionCodes": [
            {"code": "invalid-email", "rows": 2},
            {"code": "invalid-quantity", "rows": 1},
        ],
    }
    # the three buttons' links are the API's own signed file links, and they work
    assert sorted(files) == ["acceptedOrdersXlsx", "normalizedCsv", "rejectedOrdersXlsx"]
    for link in files.values():
        parts = urlsplit(link)
        download = await client.get(f"{parts.path}?{parts.query}")
        assert download.status_code == 200
        assert download.content


async def test_an_id_outside_the_callers_scope_is_answered_as_an_unknown_one(
    client: httpx.AsyncClient, demo: DemoData
) -> None:
    # when: the liaison (Borealis and Cedar) asks for Acme's group order, and an unknown id
    headers = {"Authorization": f"Bearer {demo.tokens['liaison']}"}
    outside = await client.get(
        f"/group-orders/{demo.group_orders['acme-completed']}/summary", headers=headers
    )
    unknown = await client.get(f"/group-orders/{UNKNOWN}/summary", headers=headers)

    # then
    assert outside.status_code == unknown.status_code == 400
    assert outside.json() == unknown.json()
    assert outside.json()["errors"][0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": "id",
    }


async def test_the_summary_keeps_the_apis_token_rules(
    client: httpx.AsyncClient, demo: DemoData
) -> None:
    # when
    path = f"/group-orders/{demo.group_orders['acme-completed']}/summary"
    missing = await client.get(path)
    bad = await client.get(path, headers={"Authorization": "Bearer gos_" + "z" * 43})
    expired = await client.get(path, headers={"Authorization": f"Bearer {demo.tokens['expired']}"})
    malformed = await client.get("/group-orders/not-an-id/summary")

    # then
    codes = [
        (response.status_code, response.json()["errors"][0]["extensions"]["code"])
        for response in (missing, bad, expired, malformed)
    ]
    assert codes == [
        (400, "missing-param"),
        (401, "invalid-token"),
        (401, "session-expired"),
        (400, "invalid-param"),
    ]


async def test_without_a_token_or_link_the_page_is_the_same_for_every_id(
    client: httpx.AsyncClient, demo: DemoData
) -> None:
    # when
    known = await client.get(f"/group-orders/{demo.group_orders['acme-completed']}")
    unknown = await client.get(f"/group-orders/{UNKNOWN}")

    # then: a page that asks for a token, revealing nothing about the group order
    assert known.status_code == unknown.status_code == 200
    assert known.headers["content-type"].startswith("text/html")
    assert known.text.replace(demo.group_orders["acme-completed"], UNKNOWN) == unknown.text
    assert 'id="token-form"' in known.text


async def test_a_signed_link_shows_the_group_order_without_a_token(
    client: httpx.AsyncClient, demo: DemoData, settings: Settings
) -> None:
    # when
    response = await client.get(page_path(settings, demo.group_orders["acme-completed"]))

    # then: the counts and the bar are in the HTML itself
    assert response.status_code == 200
    page = response.text
    assert re.search(r'id="total">12<', page)
    assert re.search(r'id="accepted">10<', page)
    assert re.search(r'id="rejected">2<', page)
    assert 'aria-label="10 accepted, 2 rejected"' in page
    assert 'id="bar-accepted" class="accepted" style="width:83.3%"' in page
    assert page.count('href="http://testserver/files/') == 3
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_a_changed_or_expired_page_link_is_refused(
    client: httpx.AsyncClient, demo: DemoData, settings: Settings
) -> None:
    # given
    group_order_id = demo.group_orders["acme-completed"]
    good = page_path(settings, group_order_id)
    other = page_path(settings, demo.group_orders["borealis-completed"])

    # when
    tampered = await client.get(good.replace("signature=", "signature=0"))
    elsewhere = await client.get(
        f"/group-orders/{demo.group_orders['borealis-completed']}?{urlsplit(good).query}"
    )
    expired = await client.get(
        page_path(settings, group_order_id, datetime.now(UTC) - timedelta(days=30))
    )
    summary = await client.get(other.replace("?", "/summary?"))

    # then
    assert tampered.status_code == 401
    assert "This link is not valid" in tampered.text
    assert elsewhere.status_code == 401
    assert expired.status_code == 410
    assert "This link has expired" in expired.text
    assert summary.status_code == 200
    assert summary.json()["id"] == demo.group_orders["borealis-completed"]
