"""In a real browser: GraphiQL offline, and a group order's page.

Debian's Chromium (``apt-get install chromium``) drives a server that the test starts on
a loopback port; every request the pages make must go to that server. Set
``GROUP_ORDERS_SCREENSHOTS=1`` to write the screenshots into ``docs/``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from group_orders.db.tables import group_order_table
from group_orders.services.demo import DemoData
from group_orders.services.page_links import PageLinkSigner
from group_orders.settings import Settings
from live import Server, serving
from uploading import csv_bytes, good_row, upload

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# How long to wait for the page to show something: a bound for a broken page on a busy
# machine, never a measure of speed.
PATIENCE_MS = 60_000
DOCS = Path(__file__).resolve().parent.parent / "docs"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
    ),
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
]


def screenshot_path(tmp_path: Path, name: str) -> Path:
    if os.environ.get("GROUP_ORDERS_SCREENSHOTS") == "1":
        return DOCS / name
    return tmp_path / name


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with serving(settings) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[playwright_api.Browser]:
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


class Requests:
    """Every URL a page asked for."""

    def __init__(self, page: playwright_api.Page) -> None:
        self.urls: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))

    def elsewhere(self, server: Server) -> list[str]:
        local = (server.http_url + "/", server.ws_url.rsplit("/", 1)[0] + "/", "data:")
        return [url for url in self.urls if not url.startswith(local)]


async def test_graphiql_loads_offline_and_runs_a_saved_query_with_a_token(
    server: Server,
    browser: playwright_api.Browser,
    demo: DemoData,
    tmp_path: Path,
) -> None:
    # given
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    requests = Requests(page)
    expect = playwright_api.expect

    # when: the IDE opens, a token is set, and the first saved operation runs
    await page.goto(f"{server.http_url}/graphql")
    await expect(page.locator(".graphiql-execute-button")).to_be_visible(timeout=PATIENCE_MS)
    await page.fill("#token", demo.tokens["client"])
    await page.click("#token-bar button[type=submit]")
    await expect(page.locator("#token-state")).to_have_text("token in use")
    await page.click(".graphiql-execute-button")

    # then: the answer holds the demo group order's data
    response = page.locator(".graphiql-response")
    await expect(response).to_contain_text('"status": "completed"', timeout=PATIENCE_MS)
    await expect(response).to_contain_text(demo.group_orders["acme-completed"])
    await expect(response).to_contain_text('"totalOrders": 12')
    assert (
        await page.evaluate("localStorage.getItem('group-orders-token')") == (demo.tokens["client"])
    )
    # the saved operations are there, one tab each
    assert await page.locator(".graphiql-tab").count() == 9
    assert requests.elsewhere(server) == []
    await page.screenshot(path=screenshot_path(tmp_path, "graphiql.png"))


async def test_the_page_of_a_finished_group_order_shows_counts_codes_and_downloads(
    server: Server,
    browser: playwright_api.Browser,
    demo: DemoData,
    tmp_path: Path,
) -> None:
    # given: a file of six rows, two of them rejected, processed
    token = demo.tokens["client"]
    rows = [good_row(n) for n in range(1, 5)]
    rows += [good_row(5, email="not-an-email"), good_row(6, quantity="0", email="nope")]
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        uploaded = await upload(http, token, csv_bytes(rows), filename="week-48.csv")
    group_order_id = uploaded.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
    await server.app.state.jobs.run_until_idle()
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    requests = Requests(page)
    expect = playwright_api.expect

    # when: the page asks for a token, and is given one
    await page.goto(f"{server.http_url}/group-orders/{group_order_id}")
    await expect(page.locator("#token-form")).to_be_visible()
    await page.fill("#token", token)
    await page.click("#token-form button[type=submit]")

    # then: counts, the bar, the codes
    await expect(page.locator("#status")).to_have_text("Completed", timeout=PATIENCE_MS)
    await expect(page.locator("#total")).to_have_text("6")
    await expect(page.locator("#accepted")).to_have_text("4")
    await expect(page.locator("#rejected")).to_have_text("2")
    await expect(page.locator("#bar")).to_have_attribute("aria-label", "4 accepted, 2 rejected")
    widths = await page.evaluate(
        "[...document.querySelectorAll('#bar span')].map(span => span.style.width)"
    )
    assert widths == ["66.7%", "33.3%"]
    await expect(page.locator("#codes li")).to_have_text(
        ["invalid-email 2 rows", "invalid-quantity 1 row"]
    )
    await expect(page.locator("#file-name")).to_have_text("week-48.csv")
    await expect(page.locator("#progress-box")).to_be_hidden()
    await expect(page.locator("#token-form")).to_be_hidden()
    await page.screenshot(path=screenshot_path(tmp_path, "group-order-page.png"), full_page=True)

    # then: each download button fetches its file
    downloaded = {}
    for name in ("normalizedCsv", "acceptedOrdersXlsx", "rejectedOrdersXlsx"):
        async with page.expect_download(timeout=PATIENCE_MS) as info:
            await page.click(f"#download-{name}")
        download = await info.value
        path = tmp_path / download.suggested_filename
        await download.save_as(path)
        downloaded[download.suggested_filename] = path.read_bytes()
    assert sorted(downloaded) == [
        f"group-order-{group_order_id}-accepted.xlsx",
        f"group-order-{group_order_id}-normalized.csv",
        f"group-order-{group_order_id}-rejected.xlsx",
    ]
    assert downloaded[f"group-order-{group_order_id}-normalized.csv"].count(b"\n") == 7
    for name, content in downloaded.items():
        if name.endswith(".xlsx"):
            assert content.startswith(b"PK"), name
    assert requests.elsewhere(server) == []


async def test_the_page_follows_a_running_group_order(
    server: Server,
    browser: playwright_api.Browser,
    demo: DemoData,
    settings: Settings,
    tmp_path: Path,
) -> None:
    # given: the demo's processing group order, opened through a signed page link
    group_order_id = demo.group_orders["acme-processing"]
    engine = server.app.state.engine
    link = PageLinkSigner(settings.secret_key, settings.email_link_lifetime).sign(
        server.http_url, uuid.UUID(group_order_id), datetime.now(UTC)
    )

    async def set_progress(**values: object) -> None:
        async with engine.begin() as connection:
            await connection.execute(
                sa.update(group_order_table)
                .where(group_order_table.c.id == uuid.UUID(group_order_id))
                .values(**values)
            )

    await set_progress(processed_rows=3)
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    requests = Requests(page)
    expect = playwright_api.expect

    # when: it opens, then the worker gets further, then finishes
    await page.goto(link)
    await expect(page.locator("#status")).to_have_text("Processing")
    await expect(page.locator("#progress-text")).to_have_text("3 of 12 rows")
    await set_progress(processed_rows=9)

    # then: the page follows without a reload
    await expect(page.locator("#progress-text")).to_have_text("9 of 12 rows", timeout=PATIENCE_MS)
    assert await page.locator("#progress").get_attribute("value") == "9"
    await page.screenshot(path=screenshot_path(tmp_path, "group-order-page-running.png"))
    await set_progress(
        status="completed", processed_rows=12, successful_orders=11, rejected_orders=1
    )
    await expect(page.locator("#status")).to_have_text("Completed", timeout=PATIENCE_MS)
    await expect(page.locator("#accepted")).to_have_text("11")
    await expect(page.locator("#progress-box")).to_be_hidden()
    assert requests.elsewhere(server) == []


async def test_with_a_token_the_page_hears_of_changes_through_the_subscription(
    server: Server,
    browser: playwright_api.Browser,
    demo: DemoData,
) -> None:
    # given: the demo's processing group order, opened with a token
    group_order_id = demo.group_orders["acme-processing"]
    page = await browser.new_page()
    requests = Requests(page)
    frames: list[str] = []
    page.on(
        "websocket",
        lambda socket: socket.on("framereceived", lambda payload: frames.append(str(payload))),
    )
    expect = playwright_api.expect
    await page.goto(f"{server.http_url}/group-orders/{group_order_id}")
    await page.fill("#token", demo.tokens["client"])
    await page.click("#token-form button[type=submit]")
    await expect(page.locator("#status")).to_have_text("Processing", timeout=PATIENCE_MS)
    await expect(page.locator("#progress-text")).to_have_text("0 of 12 rows")

    # when: the worker gets further and says so on the event bus, as it does
    engine = server.app.state.engine
    async with engine.begin() as connection:
        await connection.execute(
            sa.update(group_order_table)
            .where(group_order_table.c.id == uuid.UUID(group_order_id))
            .values(processed_rows=7)
        )
    await server.app.state.events.publish(uuid.UUID(group_order_id))

    # then: the page shows it, having heard it over the WebSocket
    await expect(page.locator("#progress-text")).to_have_text("7 of 12 rows", timeout=PATIENCE_MS)
    assert any('"type":"next"' in frame.replace(" ", "") for frame in frames)
    assert requests.elsewhere(server) == []
