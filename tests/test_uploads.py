"""Uploading a file as a group order and processing it, end to end through the API."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import sys
import uuid
import zipfile

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import GraphQL
from group_orders.db.tables import group_order_row_table, group_order_table
from group_orders.services.demo import DemoData, demo_id
from group_orders.settings import Settings
from group_orders.worker.runner import JobRunner, Runner
from uploading import CREATE, csv_bytes, good_row, queued_jobs, state, upload

ACME = str(demo_id("acme"))


async def uploaded_id(response: httpx.Response) -> str:
    body = response.json()
    assert "errors" not in body, body
    group_order_id: str = body["data"]["createGroupOrder"]["groupOrder"]["id"]
    return group_order_id


async def count_rows(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as connection:
        return (
            await connection.execute(sa.select(sa.func.count()).select_from(table))
        ).scalar_one()


async def test_a_client_uploads_and_the_job_splits_the_rows(
    client: httpx.AsyncClient, demo: DemoData, jobs: Runner
) -> None:
    # given: two good rows and one with a bad email and an unknown SKU
    content = csv_bytes([good_row(1), good_row(2), good_row(3, email="not-an-email", sku="NOPE")])

    # when
    response = await upload(client, demo.tokens["client"], content, filename="../../etc/x.csv")
    group_order_id = await uploaded_id(response)
    before = await state(client, demo.tokens["client"], group_order_id)
    await jobs.run_until_idle()
    after = await state(client, demo.tokens["client"], group_order_id)

    # then
    assert response.json()["data"]["createGroupOrder"]["groupOrder"] == {
        "id": group_order_id,
        "status": "pending",
        "duplicateOf": None,
        "unknownColumns": [],
        "sourceFileName": "../../etc/x.csv",
    }
    assert (before["status"], before["normalizedCsv"]) == ("pending", None)
    assert {key: after[key] for key in after if not key.endswith(("Csv", "Xlsx", "At"))} == {
        "id": group_order_id,
        "status": "completed",
        "totalOrders": 3,
        "successfulOrders": 2,
        "rejectedOrders": 1,
        "outcome": "partial",
        "failureReason": None,
        "progress": {"processedRows": 3, "totalRows": 3},
    }
    assert after["linksExpireAt"] is not None


async def test_result_files_download_with_the_rows_split(
    client: httpx.AsyncClient, demo: DemoData, jobs: Runner
) -> None:
    # given
    content = csv_bytes([good_row(1), good_row(2, quantity="0"), good_row(3, sku="=HYPERLINK(1)")])
    group_order_id = await uploaded_id(await upload(client, demo.tokens["client"], content))
    await jobs.run_until_idle()
    links = await state(client, demo.tokens["client"], group_order_id)

    # when
    normalized = await client.get(links["normalizedCsv"])
    accepted = await client.get(links["acceptedOrdersXlsx"])
    rejected = await client.get(links["rejectedOrdersXlsx"])

    # then
    rows = list(csv.DictReader(io.StringIO(normalized.text)))
    assert [(row["source_row"], row["row_status"]) for row in rows] == [
        ("2", "accepted"),
        ("3", "rejected"),
        ("4", "rejected"),
    ]
    accepted_sheet = openpyxl.load_workbook(io.BytesIO(accepted.content)).active
    assert accepted_sheet is not None
    accepted_values = [list(row) for row in accepted_sheet.iter_rows(values_only=True)]
    assert [row[0] for row in accepted_values] == ["external_order_id", "ORD-00001"]
    rejected_book = openpyxl.load_workbook(io.BytesIO(rejected.content))
    rejected_rows = [list(row) for row in rejected_book.active.iter_rows(values_only=True)]  # type: ignore[union-attr]
    header = rejected_rows[0]
    assert header[-4:] == ["source_row", "error_codes", "error_fields", "messages"]
    codes = [row[header.index("error_codes")] for row in rejected_rows[1:]]
    assert codes == ["invalid-quantity", "unknown-sku"]
    # a cell that looks like a formula is text, never a formula
    for sheet in rejected_book.worksheets:
        for row in sheet.iter_rows():
            assert all(cell.data_type != "f" for cell in row)


async def test_the_rejected_file_fixed_and_uploaded_again_is_accepted(
    client: httpx.AsyncClient, demo: DemoData, jobs: Runner
) -> None:
    # given: a processed upload with rejected rows
    content = csv_bytes([good_row(1), good_row(2, country="Atlantis"), good_row(3, quantity="x")])
    first = await uploaded_id(await upload(client, demo.tokens["client"], content))
    await jobs.run_until_idle()
    rejected = await client.get(
        (await state(client, demo.tokens["client"], first))["rejectedOrdersXlsx"]
    )
    sheet = openpyxl.load_workbook(io.BytesIO(rejected.content)).active
    assert sheet is not None
    table = [
        ["" if cell is None else str(cell) for cell in row]
        for row in sheet.iter_rows(values_only=True)
    ]

    # when: a person fixes the cells, saves the sheet as CSV and uploads it
    header = table[0]
    for row in table[1:]:
        row[header.index("country")] = "DE"
        row[header.index("quantity")] = "1"
    buffer = io.StringIO()
    csv.writer(buffer).writerows(table)
    second = await uploaded_id(
        await upload(client, demo.tokens["client"], buffer.getvalue().encode())
    )
    await jobs.run_until_idle()
    fixed = await state(client, demo.tokens["client"], second)

    # then: the extra columns are ignored, not reported, and both rows are accepted
    assert (fixed["status"], fixed["successfulOrders"], fixed["rejectedOrders"]) == (
        "completed",
        2,
        0,
    )
    body = await upload(client, demo.tokens["client"], buffer.getvalue().encode(), dryRun=True)
    assert body.json()["data"]["createGroupOrder"]["dryRun"]["unknownColumns"] == []


async def test_the_same_idempotency_key_answers_the_same_group_order(
    client: httpx.AsyncClient, demo: DemoData, engine: AsyncEngine
) -> None:
    # given
    content = csv_bytes([good_row(1)])

    # when
    first = await uploaded_id(
        await upload(client, demo.tokens["client"], content, idempotencyKey="batch-7")
    )
    second = await uploaded_id(
        await upload(client, demo.tokens["client"], content, idempotencyKey="batch-7")
    )

    # then: one group order, one job
    assert first == second
    assert await queued_jobs(engine, uuid.UUID(first)) == 1


async def test_the_same_file_twice_is_flagged_and_its_orders_rejected_as_duplicates(
    client: httpx.AsyncClient, demo: DemoData, jobs: Runner, graphql: GraphQL
) -> None:
    # given
    content = csv_bytes([good_row(1), good_row(2)])
    first = await uploaded_id(await upload(client, demo.tokens["client"], content))
    await jobs.run_until_idle()

    # when
    response = await upload(client, demo.tokens["client"], content)
    second = await uploaded_id(response)
    await jobs.run_until_idle()

    # then
    assert response.json()["data"]["createGroupOrder"]["groupOrder"]["duplicateOf"] == first
    rows = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id) { outcome rows { totalCount edges { node "
        "{ sourceRow status errors { code field value } } } } } }",
        {"id": second},
        token=demo.tokens["client"],
    )
    assert rows.json()["data"]["groupOrder"] == {
        "outcome": "all_rejected",
        "rows": {
            "totalCount": 2,
            "edges": [
                {
                    "node": {
                        "sourceRow": n + 1,
                        "status": "rejected",
                        "errors": [
                            {
                                "code": "duplicate-order",
                                "field": "external_order_id",
                                "value": f"ORD-{n:05d}",
                            }
                        ],
                    }
                }
                for n in (1, 2)
            ],
        },
    }


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "not a text file"),
        (b"Order ID,Name\r\nA-1,Alice\r\n", "sku"),
    ],
    ids=["empty", "binary", "missing-columns"],
)
async def test_an_unusable_file_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    demo: DemoData,
    engine: AsyncEngine,
    settings: Settings,
    content: bytes,
    fragment: str,
) -> None:
    # given
    group_orders_before = await count_rows(engine, group_order_table)

    # when
    response = await upload(client, demo.tokens["client"], content)

    # then
    body = response.json()
    assert body["data"] == {"createGroupOrder": None}
    [error] = body["errors"]
    assert error["extensions"] == {"code": "invalid-param", "status": 400, "param": "file"}
    assert fragment in error["message"].lower()
    assert await count_rows(engine, group_order_table) == group_orders_before
    uploads = settings.data_dir / "files" / "uploads"
    assert not uploads.exists() or not any(path.is_file() for path in uploads.rglob("*"))


async def test_a_dry_run_reports_and_stores_nothing(
    client: httpx.AsyncClient, demo: DemoData, engine: AsyncEngine
) -> None:
    # given
    content = csv_bytes([good_row(1), good_row(2, phone="12")], header=(*HEADER_WITH_EXTRA,))
    group_orders_before = await count_rows(engine, group_order_table)

    # when
    response = await upload(client, demo.tokens["client"], content, dryRun=True)

    # then
    assert response.json()["data"]["createGroupOrder"] == {
        "groupOrder": None,
        "dryRun": {
            "totalRows": 2,
            "acceptedRows": 1,
            "rejectedRows": 1,
            "unknownColumns": ["gift_wrap"],
            "errors": [
                {
                    "sourceRow": 3,
                    "code": "invalid-phone",
                    "field": "phone",
                    "value": "12",
                    "message": response.json()["data"]["createGroupOrder"]["dryRun"]["errors"][0][
                        "message"
                    ],
                }
            ],
        },
    }
    assert await count_rows(engine, group_order_table) == group_orders_before
    assert await count_rows(engine, group_order_row_table) == 0


HEADER_WITH_EXTRA = (
    "external_order_id",
    "recipient_name",
    "phone",
    "address_line1",
    "city",
    "postal_code",
    "country",
    "sku",
    "quantity",
    "gift_wrap",
)


async def test_a_liaison_names_a_client_in_its_scope(
    client: httpx.AsyncClient, demo: DemoData
) -> None:
    # given
    content = csv_bytes([good_row(1)])

    # when
    unnamed = await upload(client, demo.tokens["liaison"], content)
    outside = await upload(client, demo.tokens["liaison"], content, clientId=ACME)
    inside = await upload(client, demo.tokens["liaison"], content, clientId=str(demo_id("cedar")))

    # then
    assert unnamed.json()["errors"][0]["extensions"] == {
        "code": "missing-param",
        "status": 400,
        "param": "clientId",
    }
    assert outside.json()["errors"][0]["message"] == "No client has this id."
    assert outside.json()["errors"][0]["extensions"]["param"] == "clientId"
    assert inside.json()["data"]["createGroupOrder"]["groupOrder"]["status"] == "pending"


async def test_an_upload_needs_the_preflight_header(
    client: httpx.AsyncClient, demo: DemoData
) -> None:
    # when
    response = await upload(
        client, demo.tokens["client"], csv_bytes([good_row(1)]), preflight=False
    )

    # then
    assert (response.status_code, response.json()["errors"][0]["extensions"]) == (
        400,
        {"code": "missing-param", "status": 400, "param": "GraphQL-Require-Preflight"},
    )


async def test_multipart_is_for_mutations_only(client: httpx.AsyncClient, demo: DemoData) -> None:
    # when
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": "{ session { userId } }"}),
            "map": json.dumps({}),
        },
        files={"x": ("x.csv", b"a", "text/csv")},
        headers={
            "Authorization": f"Bearer {demo.tokens['client']}",
            "GraphQL-Require-Preflight": "1",
        },
    )

    # then
    assert response.json()["errors"][0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": "operations",
    }


async def test_an_upload_over_the_limit_is_refused_while_it_streams(
    settings: Settings, demo: DemoData
) -> None:
    # given: a limit of 10 kB
    from group_orders.app import create_app

    app = create_app(settings.with_changes(max_upload_bytes=10_000))
    content = csv_bytes([good_row(n) for n in range(1_000)])

    # when
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await upload(client, demo.tokens["client"], content)

    # then
    assert (response.status_code, response.json()["errors"][0]["extensions"]) == (
        413,
        {"code": "payload-too-large", "status": 413, "param": "file"},
    )


async def test_cancel_a_pending_group_order(
    client: httpx.AsyncClient, demo: DemoData, jobs: Runner, graphql: GraphQL
) -> None:
    # given
    group_order_id = await uploaded_id(
        await upload(client, demo.tokens["client"], csv_bytes([good_row(1)]))
    )

    # when
    cancelled = await graphql.post(
        "mutation($id: ID!) { cancelGroupOrder(id: $id) { status } }",
        {"id": group_order_id},
        token=demo.tokens["client"],
    )
    ran = await jobs.run_until_idle()
    again = await graphql.post(
        "mutation($id: ID!) { cancelGroupOrder(id: $id) { status } }",
        {"id": group_order_id},
        token=demo.tokens["client"],
    )

    # then: the job no longer runs; a second cancel is refused
    assert cancelled.json()["data"] == {"cancelGroupOrder": {"status": "cancelled"}}
    assert ran == 0
    assert (await state(client, demo.tokens["client"], group_order_id))["status"] == "cancelled"
    assert again.json()["errors"][0]["message"] == (
        "Only a pending or processing group order can be cancelled."
    )


async def test_a_failed_group_order_can_be_retried(settings: Settings, demo: DemoData) -> None:
    # given: a job that fails on every attempt because its stored file went missing
    from group_orders.app import create_app

    app = create_app(settings.with_changes(job_max_attempts=2, job_retry_delay_seconds=0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            token = demo.tokens["client"]
            group_order_id = await uploaded_id(
                await upload(client, token, csv_bytes([good_row(1)]))
            )
            source = settings.data_dir / "files" / "uploads" / group_order_id / "source"
            saved = source.read_bytes()
            source.unlink()
            runs = await app.state.jobs.run_until_idle()
            failed = await state(client, token, group_order_id)

            # when: the file is back and the group order is retried
            source.write_bytes(saved)
            retried = await client.post(
                "/graphql",
                json={
                    "query": "mutation($id: ID!) { retryGroupOrder(id: $id) { status } }",
                    "variables": {"id": group_order_id},
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            await app.state.jobs.run_until_idle()
            done = await state(client, token, group_order_id)

    # then
    assert runs == 2
    assert failed["status"] == "failed"
    assert "failed 2 times" in failed["failureReason"]
    assert retried.json()["data"] == {"retryGroupOrder": {"status": "pending"}}
    assert (done["status"], done["successfulOrders"], done["failureReason"]) == (
        "completed",
        1,
        None,
    )


DOOMED_WORKER = """
import asyncio, sys
from pathlib import Path
from group_orders.db.engine import create_engine
from group_orders.settings import Settings
from group_orders.storage.local import LocalStorage
from group_orders.worker.runner import JobRunner

settings = Settings(
    database_url=sys.argv[1], data_dir=Path(sys.argv[2]), job_lease_seconds=1,
    embedded_worker=False,
)
engine = create_engine(settings)
runner = JobRunner(engine, LocalStorage(settings.data_dir / "files"), settings, "doomed")
asyncio.run(runner.run_once())
"""


# The embedded queue's lease; PostgreSQL's queue has its own tests (test_scale_out.py).
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_job_whose_worker_died_mid_file_is_taken_over_without_duplicates(
    client: httpx.AsyncClient,
    demo: DemoData,
    engine: AsyncEngine,
    settings: Settings,
    app: object,
) -> None:
    # given: a file of several batches, and a worker process with a short lease
    rows = [good_row(n) for n in range(1, 3_501)]
    rows[1_200]["quantity"] = "-1"
    group_order_id = await uploaded_id(await upload(client, demo.tokens["client"], csv_bytes(rows)))
    storage = app.state.storage  # type: ignore[attr-defined]
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DOOMED_WORKER, settings.database_url, str(settings.data_dir)
    )

    # when: it is killed (SIGKILL: nothing cleans up) after its first batches
    for _ in range(2_000):
        current = await state(client, demo.tokens["client"], group_order_id)
        if current["progress"]["processedRows"] >= 1_000:
            break
        await asyncio.sleep(0.01)
    doomed.kill()
    await doomed.wait()
    await asyncio.sleep(1.1)  # the lease runs out
    rescuer = JobRunner(
        engine, storage, settings.with_changes(job_lease_seconds=1), worker_id="rescuer"
    )
    ran = await rescuer.run_until_idle()
    final = await state(client, demo.tokens["client"], group_order_id)

    # then: it really died mid-file
    assert 1_000 <= current["progress"]["processedRows"] < 3_500
    # then: every row once, counts right, files complete
    assert ran == 1
    assert (final["status"], final["totalOrders"], final["successfulOrders"]) == (
        "completed",
        3_500,
        3_499,
    )
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                sa.select(
                    sa.func.count(), sa.func.count(sa.distinct(group_order_row_table.c.source_row))
                ).where(group_order_row_table.c.group_order_id == uuid.UUID(group_order_id))
            )
        ).one()
    assert tuple(stored) == (3_500, 3_500)
    normalized = await client.get(final["normalizedCsv"])
    assert len(normalized.text.splitlines()) == 3_501


async def test_the_embedded_worker_processes_uploads_by_itself(
    settings: Settings, demo: DemoData
) -> None:
    # given
    from group_orders.app import create_app

    app = create_app(settings.with_changes(embedded_worker=True))

    # when
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            token = demo.tokens["client"]
            group_order_id = await uploaded_id(
                await upload(client, token, csv_bytes([good_row(1), good_row(2)]))
            )
            for _ in range(200):
                current = await state(client, token, group_order_id)
                if current["status"] == "completed":
                    break
                await asyncio.sleep(0.05)

    # then
    assert (current["status"], current["successfulOrders"]) == ("completed", 2)


async def test_rows_are_paged_with_cursors(
    client: httpx.AsyncClient, demo: DemoData, jobs: Runner, graphql: GraphQL
) -> None:
    # given: 25 rows, every third rejected
    rows = [good_row(n, quantity="0" if n % 3 == 0 else "1") for n in range(1, 26)]
    group_order_id = await uploaded_id(await upload(client, demo.tokens["client"], csv_bytes(rows)))
    await jobs.run_until_idle()
    query = (
        "query($id: ID!, $after: String) { groupOrder(id: $id) { rows(status: rejected, "
        "first: 5, after: $after) { totalCount pageInfo { hasNextPage endCursor } "
        "edges { node { sourceRow } } } } }"
    )

    # when
    seen: list[int] = []
    after = None
    while True:
        response = await graphql.post(
            query, {"id": group_order_id, "after": after}, token=demo.tokens["client"]
        )
        page = response.json()["data"]["groupOrder"]["rows"]
        seen += [edge["node"]["sourceRow"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    too_many = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id) { rows(first: 101) { totalCount } } }",
        {"id": group_order_id},
        token=demo.tokens["client"],
    )

    # then
    assert seen == [n + 1 for n in range(3, 26, 3)]
    assert page["totalCount"] == 8
    assert too_many.json()["errors"][0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": "first",
    }


async def test_large_files_get_their_result_files_from_a_second_process(
    settings: Settings, demo: DemoData
) -> None:
    # given: every file counts as large
    from group_orders.app import create_app

    app = create_app(settings.with_changes(result_files_process_from_rows=0))
    rows = [good_row(n, quantity="0" if n == 2 else "1") for n in range(1, 4)]

    # when
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            token = demo.tokens["client"]
            group_order_id = await uploaded_id(await upload(client, token, csv_bytes(rows)))
            await app.state.jobs.run_until_idle()
            final = await state(client, token, group_order_id)
            normalized = await client.get(final["normalizedCsv"])
            rejected = await client.get(final["rejectedOrdersXlsx"])

    # then
    assert (final["successfulOrders"], final["rejectedOrders"]) == (2, 1)
    assert [line.split(",")[-1] for line in normalized.text.splitlines()] == [
        "row_status",
        "accepted",
        "rejected",
        "accepted",
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(rejected.content)).active
    assert sheet is not None
    assert [row[0] for row in sheet.iter_rows(values_only=True)] == [
        "external_order_id",
        "ORD-00002",
    ]


async def test_a_duplicate_in_a_later_batch_names_the_first_row(
    client: httpx.AsyncClient, demo: DemoData, jobs: Runner, graphql: GraphQL
) -> None:
    # given: 2,500 rows, the last repeating the order id of the fifth (batches of 1,000)
    rows = [good_row(n) for n in range(1, 2_500)] + [good_row(5)]
    group_order_id = await uploaded_id(await upload(client, demo.tokens["client"], csv_bytes(rows)))

    # when
    await jobs.run_until_idle()
    response = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id) { rejectedOrders rows(status: rejected) "
        "{ edges { node { sourceRow errors { code message } } } } } }",
        {"id": group_order_id},
        token=demo.tokens["client"],
    )

    # then
    assert response.json()["data"]["groupOrder"] == {
        "rejectedOrders": 1,
        "rows": {
            "edges": [
                {
                    "node": {
                        "sourceRow": 2_501,
                        "errors": [
                            {
                                "code": "duplicate-in-file",
                                "message": "Order ID 'ORD-00005' is already used in row 6 of "
                                "this file; every order needs its own ID.",
                            }
                        ],
                    }
                }
            ]
        },
    }


async def test_a_file_over_the_row_limit_is_refused_at_once(
    settings: Settings, demo: DemoData
) -> None:
    # given: a limit of 3 rows
    from group_orders.app import create_app

    app = create_app(settings.with_changes(max_upload_rows=3))

    # when
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            fits = await upload(
                client, demo.tokens["client"], csv_bytes([good_row(n) for n in (1, 2, 3)])
            )
            over = await upload(
                client, demo.tokens["client"], csv_bytes([good_row(n) for n in range(1, 5)])
            )

    # then
    assert "errors" not in fits.json()
    [error] = over.json()["errors"]
    assert error["message"] == (
        "The file has more than 3 rows, the limit of one upload. Split it into several files."
    )
    assert error["extensions"] == {"code": "invalid-param", "status": 400, "param": "file"}


async def test_a_zip_bomb_is_refused_without_being_opened(
    client: httpx.AsyncClient, demo: DemoData
) -> None:
    # given: a small zip that would unpack to 100 MB of order lines
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("orders.csv", b"external_order_id,sku\n" + b"A-1,SKU-1\n" * 10_000_000)

    # when
    response = await upload(client, demo.tokens["client"], buffer.getvalue(), filename="o.zip")

    # then: it is not text, so it is not read as orders, let alone unpacked
    [error] = response.json()["errors"]
    assert error["message"] == "This is not a text file; upload a CSV file."
    assert len(buffer.getvalue()) < 1_000_000


@pytest.mark.parametrize(
    ("content_type", "body", "detail"),
    [
        ("multipart/form-data", b"--fuzz--\r\n", "Missing boundary in multipart"),
        (
            "multipart/form-data; boundary=fuzz",
            b"--fuzz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--fuzz--\r\n",
            'The Content-Disposition header field "name" must be provided',
        ),
        (
            "multipart/form-data; boundary=fuzz",
            b'--fuzz\r\nContent-Disposition: form-data; name="a"; filename="a.csv"\r\n\r\n'
            b'x\r\n--fuzz\r\nContent-Disposition: form-data; name="b"; filename="b.csv"'
            b"\r\n\r\ny\r\n--fuzz--\r\n",
            "Too many files. Maximum number of files is 1",
        ),
    ],
    ids=["no-boundary", "no-name", "two-files"],
)
async def test_a_malformed_multipart_body_is_a_documented_error(
    client: httpx.AsyncClient, demo: DemoData, content_type: str, body: bytes, detail: str
) -> None:
    # when
    response = await client.post(
        "/graphql",
        content=body,
        headers={
            "Content-Type": content_type,
            "Authorization": f"Bearer {demo.tokens['client']}",
            "GraphQL-Require-Preflight": "1",
        },
    )

    # then
    assert (response.status_code, response.headers["content-type"], response.json()) == (
        400,
        "application/json",
        {
            "errors": [
                {
                    "message": f"The multipart body could not be read: {detail}.",
                    "extensions": {
                        "code": "invalid-encoded-params",
                        "status": 400,
                        "param": "body",
                    },
                }
            ]
        },
    )


async def test_a_body_that_ends_inside_its_file_part_leaves_no_file_open(
    client: httpx.AsyncClient, demo: DemoData
) -> None:
    # given: the operation and map, then a file part that never reaches its boundary
    operations = json.dumps({"query": CREATE, "variables": {"file": None}})
    body = (
        b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        + operations.encode()
        + b'\r\n--b\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
        + b'{"0": ["variables.file"]}'
        + b'\r\n--b\r\nContent-Disposition: form-data; name="0"; filename="a.csv"\r\n\r\n'
        + b"SKU,Quantity\r\nBIKE-1,1"
    )

    # when
    response = await client.post(
        "/graphql",
        content=body,
        headers={
            "Content-Type": "multipart/form-data; boundary=b",
            "Authorization": f"Bearer {demo.tokens['client']}",
            "GraphQL-Require-Preflight": "1",
        },
    )
    # An unclosed spooled file warns when collected; warnings fail the suite.
    gc.collect()

    # then: the unfinished part is no file at all
    assert (response.status_code, response.json()["errors"][0]["extensions"]) == (
        400,
        {"code": "invalid-param", "status": 400, "param": "map"},
    )
