"""The service on an S3-compatible object store (moto's server on loopback): uploads,
jobs and downloads go through the bucket, and nothing stays on the local disk."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import openpyxl
import pytest
from starlette.applications import Starlette

import s3server
from group_orders.app import create_app
from group_orders.services.demo import DemoData
from group_orders.settings import Settings
from test_scale_out import Processes, assert_complete, orders, until_final, uploaded
from uploading import csv_bytes, good_row, state, upload


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def local_files(settings: Settings) -> list[Path]:
    """Every file the service left in its data directory (the database file aside)."""
    return sorted(
        path
        for path in settings.data_dir.rglob("*")
        if path.is_file() and path.parent != settings.data_dir
    )


def sheet_column(content: bytes) -> list[object]:
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    try:
        return [
            row[0] for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)
        ]
    finally:
        workbook.close()


THREE_ROWS = csv_bytes([good_row(1), good_row(2, quantity="0"), good_row(3)])


@pytest.mark.parametrize("writer", ["in-process", "second-process"])
async def test_an_upload_is_stored_processed_and_served_from_the_bucket(
    s3_settings: Settings, s3_server: str, s3_bucket: str, demo: DemoData, writer: str
) -> None:
    # given: the service on the bucket, its local files left over from the template
    # moved out of the way
    settings = s3_settings.with_changes(
        data_dir=s3_settings.data_dir / "node",
        result_files_process_from_rows=0 if writer == "second-process" else 1_000_000,
    )
    token = demo.tokens["client"]

    # when: a file is uploaded, processed and its files downloaded by their links
    async with running(settings) as (app, client):
        group_order_id = await uploaded(client, token, THREE_ROWS)
        await app.state.jobs.run_until_idle()
        final = await state(client, token, str(group_order_id))
        normalized = await client.get(final["normalizedCsv"])
        accepted = await client.get(final["acceptedOrdersXlsx"])
        rejected = await client.get(final["rejectedOrdersXlsx"])
        head = await client.head(final["normalizedCsv"])

    # then: the files came from the bucket, whole, through the service's own route
    assert (final["status"], final["successfulOrders"], final["rejectedOrders"]) == (
        "completed",
        2,
        1,
    )
    assert final["normalizedCsv"].startswith(f"http://testserver/files/{group_order_id}/")
    rows = list(csv.DictReader(io.StringIO(normalized.text)))
    assert [row["row_status"] for row in rows] == ["accepted", "rejected", "accepted"]
    assert normalized.headers["content-length"] == str(len(normalized.content))
    assert normalized.headers["content-disposition"] == (
        f'attachment; filename="group-order-{group_order_id}-normalized.csv"'
    )
    assert accepted.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(normalized.content))
    assert sheet_column(accepted.content) == ["external_order_id", "ORD-00001", "ORD-00003"]
    assert sheet_column(rejected.content) == ["external_order_id", "ORD-00002"]
    # the bucket holds the upload and the three files under the prefix, and the disk
    # keeps nothing: temporary files and downloaded copies are gone
    assert sorted(s3server.object_keys(s3_server, s3_bucket)) == [
        f"group-orders/{group_order_id}/accepted.xlsx",
        f"group-orders/{group_order_id}/normalized.csv",
        f"group-orders/{group_order_id}/rejected.xlsx",
        f"group-orders/uploads/{group_order_id}/source",
    ]
    assert local_files(settings) == []


async def test_presigned_links_come_from_the_store_and_live_the_link_lifetime(
    s3_settings: Settings, s3_server: str, demo: DemoData
) -> None:
    # given
    settings = s3_settings.with_changes(download_links="presigned", link_lifetime_seconds=600)
    token = demo.tokens["client"]

    # when
    async with running(settings) as (app, client):
        group_order_id = await uploaded(client, token, THREE_ROWS)
        await app.state.jobs.run_until_idle()
        final = await state(client, token, str(group_order_id))

    # then: the links are the store's, signed for the lifetime, and work over HTTP with
    # the service stopped
    links = [final["normalizedCsv"], final["acceptedOrdersXlsx"], final["rejectedOrdersXlsx"]]
    for link in links:
        assert link.startswith(f"{s3_server}/{settings.s3_bucket}/group-orders/")
        assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == ["600"]
    assert final["linksExpireAt"] is not None
    async with httpx.AsyncClient() as store:
        normalized = await store.get(links[0])
        accepted = await store.get(links[1])
    assert normalized.status_code == 200
    assert len(normalized.text.splitlines()) == 4
    assert normalized.headers["content-disposition"] == (
        f'attachment; filename="group-order-{group_order_id}-normalized.csv"'
    )
    assert sheet_column(accepted.content) == ["external_order_id", "ORD-00001", "ORD-00003"]


async def test_a_file_gone_from_the_bucket_is_answered_as_no_such_file(
    s3_settings: Settings, demo: DemoData
) -> None:
    # given: a completed group order whose accepted file was removed from the bucket
    token = demo.tokens["client"]
    async with running(s3_settings) as (app, client):
        group_order_id = await uploaded(client, token, THREE_ROWS)
        await app.state.jobs.run_until_idle()
        final = await state(client, token, str(group_order_id))
        app.state.storage.delete(f"{group_order_id}/accepted.xlsx")

        # when
        response = await client.get(final["acceptedOrdersXlsx"])
        tampered = await client.get(final["rejectedOrdersXlsx"] + "0")

    # then: a documented error, no 500
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "invalid-param"
    assert tampered.status_code == 401
    assert tampered.json()["errors"][0]["extensions"]["code"] == "invalid-token"


async def test_a_dry_run_and_a_refused_file_leave_nothing_in_the_bucket(
    s3_settings: Settings, s3_server: str, s3_bucket: str, demo: DemoData
) -> None:
    settings = s3_settings.with_changes(data_dir=s3_settings.data_dir / "node")
    async with running(settings) as (_app, client):
        dry = await upload(client, demo.tokens["client"], THREE_ROWS, dryRun=True)
        refused = await upload(client, demo.tokens["client"], b"\x00\x01 not a csv")

    assert dry.json()["data"]["createGroupOrder"]["dryRun"]["totalRows"] == 3
    assert refused.json()["errors"][0]["extensions"]["code"] == "invalid-param"
    assert s3server.object_keys(s3_server, s3_bucket) == {}
    assert local_files(settings) == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_worker_on_another_machine_shares_nothing_but_the_database_and_the_bucket(
    s3_settings: Settings, s3_server: str, tmp_path: Path, demo: DemoData
) -> None:
    # given: an API process and a worker process with data directories of their own
    api_settings = s3_settings.with_changes(data_dir=tmp_path / "api")
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    processes = Processes(api_settings, tmp_path)
    token = demo.tokens["client"]
    content, accepted = orders(1, 2_500)
    try:
        processes.start(
            "worker",
            "--name",
            "elsewhere",
            name="elsewhere",
            GROUP_ORDERS_DATA_DIR=str(worker_dir),
            GROUP_ORDERS_STORAGE="s3",
            GROUP_ORDERS_S3_BUCKET=str(s3_settings.s3_bucket),
            GROUP_ORDERS_S3_PREFIX=s3_settings.s3_prefix,
            GROUP_ORDERS_S3_ENDPOINT_URL=s3_server,
            GROUP_ORDERS_S3_REGION=s3server.REGION,
            # Every file counts as large: the result files come from its writer process.
            GROUP_ORDERS_RESULT_FILES_PROCESS_FROM_ROWS="0",
        )

        # when: a file is uploaded through the API and the worker processes it
        async with running(api_settings) as (app, client):
            group_order_id = await uploaded(client, token, content)
            status = await until_final(app.state.engine, group_order_id)

            # then: the API serves the worker's files from the bucket, complete
            assert status == "completed", processes.log("elsewhere")
            await assert_complete(
                app.state.engine, client, token, group_order_id, total=2_500, accepted=accepted
            )
    finally:
        processes.stop_all()
    # and neither machine kept a file of the group order on its disk
    assert local_files(api_settings) == []
    assert [path for path in worker_dir.rglob("*") if path.is_file()] == []


async def test_an_upload_gone_from_the_bucket_fails_its_job_and_leaves_nothing_behind(
    s3_settings: Settings, demo: DemoData
) -> None:
    # given: an upload whose stored file disappears before its job runs
    settings = s3_settings.with_changes(
        data_dir=s3_settings.data_dir / "node", job_max_attempts=2, job_retry_delay_seconds=0
    )
    token = demo.tokens["client"]
    async with running(settings) as (app, client):
        group_order_id = await uploaded(client, token, THREE_ROWS)
        app.state.storage.delete(f"uploads/{group_order_id}/source")

        # when
        runs = await app.state.jobs.run_until_idle()
        failed = await state(client, token, str(group_order_id))

    # then: each attempt failed, the group order says so, and no file was published
    assert runs == 2
    assert failed["status"] == "failed"
    assert "failed 2 times" in failed["failureReason"]
    assert (failed["normalizedCsv"], failed["acceptedOrdersXlsx"]) == (None, None)
    assert local_files(settings) == []
