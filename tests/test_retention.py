"""The retention purge: group orders finished long ago lose their files (on a local
directory and on an S3-compatible server), the rest stays, and nothing referenced by a
live group order is touched."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

import s3server
from group_orders.app import create_app
from group_orders.db.engine import write_transaction
from group_orders.db.tables import group_order_table, utc_now
from group_orders.services.demo import DemoData
from group_orders.services.retention import purge_files
from group_orders.settings import Settings
from group_orders.storage.base import Storage
from group_orders.storage.local import LocalStorage
from uploading import csv_bytes, good_row, state, upload

RETRY = "mutation($id: ID!) { retryGroupOrder(id: $id) { id status } }"
ROWS = "query($id: ID!) { groupOrder(id: $id) { rows(first: 5) { totalCount } } }"


@pytest.fixture(params=["local", "s3"])
def storage_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "local":
        return settings
    s3_settings: Settings = request.getfixturevalue("s3_settings")
    return s3_settings


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def processed(app: Starlette, client: httpx.AsyncClient, token: str, n: int) -> str:
    response = await upload(client, token, csv_bytes([good_row(n), good_row(n + 1, sku="NOPE")]))
    group_order_id: str = response.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
    await app.state.jobs.run_until_idle()
    return group_order_id


async def finished_days_ago(engine: AsyncEngine, group_order_id: str, days: int) -> None:
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.update(group_order_table)
            .where(group_order_table.c.id == uuid.UUID(group_order_id))
            .values(finished_at=utc_now() - timedelta(days=days))
        )


def keys_of(storage: Storage, group_order_id: str) -> list[str]:
    return sorted(found.key for found in storage.list_keys() if group_order_id in found.key)


async def post(client: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.json()


async def test_group_orders_finished_past_the_retention_lose_their_files_and_nothing_else(
    storage_settings: Settings, demo: DemoData
) -> None:
    token = demo.tokens["client"]
    async with running(storage_settings) as (app, client):
        # given: one group order finished 40 days ago, one today
        old = await processed(app, client, token, 1)
        recent = await processed(app, client, token, 10)
        await finished_days_ago(app.state.engine, old, 40)
        storage: Storage = app.state.storage
        before = await state(client, token, old)
        old_keys = keys_of(storage, old)

        # when
        report = await purge_files(app.state.engine, storage, older_than=timedelta(days=30))

        # then: the old one's four files are gone, and its links are null
        after = await state(client, token, old)
        stale_link = await client.get(before["normalizedCsv"])
        rows = await post(client, token, ROWS, id=old)
        assert report.group_orders == [uuid.UUID(old)]
        assert sorted(report.files) == old_keys
        assert len(old_keys) == 4
        assert keys_of(storage, old) == []
        assert {key: after[key] for key in after if key.endswith(("Csv", "Xlsx", "ExpireAt"))} == {
            "normalizedCsv": None,
            "acceptedOrdersXlsx": None,
            "rejectedOrdersXlsx": None,
            "linksExpireAt": None,
        }
        # ...and everything else it said before
        unchanged = ("status", "totalOrders", "successfulOrders", "rejectedOrders", "outcome")
        assert {key: after[key] for key in unchanged} == {key: before[key] for key in unchanged}
        assert rows["data"]["groupOrder"]["rows"]["totalCount"] == 2
        assert stale_link.status_code == 400
        assert stale_link.json()["errors"][0]["extensions"]["code"] == "invalid-param"
        # the recent one keeps its files, which still download
        fresh = await state(client, token, recent)
        assert len(keys_of(storage, recent)) == 4
        assert (await client.get(fresh["acceptedOrdersXlsx"])).status_code == 200

        # and a second run finds nothing more to do
        again = await purge_files(app.state.engine, storage, older_than=timedelta(days=30))
        assert (again.group_orders, again.files, again.orphans) == ([], [], [])


async def test_a_dry_run_lists_what_would_go_and_removes_nothing(
    storage_settings: Settings, demo: DemoData
) -> None:
    token = demo.tokens["client"]
    async with running(storage_settings) as (app, client):
        old = await processed(app, client, token, 1)
        await finished_days_ago(app.state.engine, old, 40)

        report = await purge_files(
            app.state.engine, app.state.storage, older_than=timedelta(days=30), dry_run=True
        )

        after = await state(client, token, old)
        assert report.group_orders == [uuid.UUID(old)]
        assert len(report.files) == 4
        assert len(keys_of(app.state.storage, old)) == 4
        assert after["normalizedCsv"] is not None
        assert (await client.get(after["normalizedCsv"])).status_code == 200


async def test_files_no_group_order_references_go_and_referenced_ones_stay(
    storage_settings: Settings, demo: DemoData
) -> None:
    token = demo.tokens["client"]
    async with running(storage_settings) as (app, client):
        # given: a group order still waiting for its job, the files of one that no
        # longer exists, a temporary file a crash left, and a file that is not the
        # service's
        storage: Storage = app.state.storage
        response = await upload(client, token, csv_bytes([good_row(1)]))
        live = response.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
        gone = uuid.uuid4()
        storage.write_bytes(f"uploads/{gone}/source", b"x")
        storage.write_bytes(f"{gone}/normalized.csv", b"x")
        temporary = storage.temporary_path(f"{live}/accepted.xlsx")
        temporary.write_bytes(b"half")
        storage.write_bytes("notes/readme.txt", b"kept")

        # when: a purge runs long enough after all of them were written
        report = await purge_files(
            app.state.engine,
            storage,
            older_than=timedelta(days=30),
            now=utc_now() + timedelta(days=31),
        )

        # then: only the unreferenced files of the service's shape went
        left = sorted(found.key for found in storage.list_keys())
        assert keys_of(storage, live) == [f"uploads/{live}/source"]
        assert not any(str(gone) in key for key in left)
        assert "notes/readme.txt" in left
        expected = {f"uploads/{gone}/source", f"{gone}/normalized.csv"}
        if isinstance(storage, LocalStorage):
            # a local temporary file lies beside its key; an object store's lies on
            # the local disk, never in the bucket
            expected.add(temporary.relative_to(storage.root).as_posix())
            assert not temporary.exists()
        assert set(report.orphans) == expected
        assert report.group_orders == []


async def test_a_failed_group_order_whose_file_was_purged_is_not_retried(
    settings: Settings, demo: DemoData
) -> None:
    # given: a failed group order whose file went with the retention
    token = demo.tokens["employee"]
    async with running(settings) as (app, client):
        failed = await processed(app, client, demo.tokens["client"], 1)
        async with write_transaction(app.state.engine) as connection:
            await connection.execute(
                sa.update(group_order_table)
                .where(group_order_table.c.id == uuid.UUID(failed))
                .values(status="failed", finished_at=utc_now() - timedelta(days=40))
            )
        await purge_files(app.state.engine, app.state.storage, older_than=timedelta(days=30))

        # when
        answer = await post(client, token, RETRY, id=failed)

    # then
    error = answer["errors"][0]
    assert error["extensions"]["code"] == "invalid-param"
    assert "upload the file again" in error["message"]


def purge_cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "group_orders.cli", "storage", "purge", *args],
        env={
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "GROUP_ORDERS_DATA_DIR": str(settings.data_dir),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def test_the_purge_command_takes_the_retention_from_the_setting_or_days(
    storage_settings: Settings, demo: DemoData
) -> None:
    # given
    token = demo.tokens["client"]
    async with running(storage_settings) as (app, client):
        old = await processed(app, client, token, 1)
        await finished_days_ago(app.state.engine, old, 40)
    s3_env = (
        {
            "GROUP_ORDERS_STORAGE": "s3",
            "GROUP_ORDERS_S3_BUCKET": str(storage_settings.s3_bucket),
            "GROUP_ORDERS_S3_PREFIX": storage_settings.s3_prefix,
            "GROUP_ORDERS_S3_ENDPOINT_URL": str(storage_settings.s3_endpoint_url),
            "GROUP_ORDERS_S3_REGION": s3server.REGION,
        }
        if storage_settings.storage == "s3"
        else {}
    )

    # when
    unset = purge_cli(storage_settings, **s3_env)
    dry = purge_cli(storage_settings, "--dry-run", GROUP_ORDERS_FILE_RETENTION_DAYS="30", **s3_env)
    kept = purge_cli(storage_settings, "--days", "60", **s3_env)
    purged = purge_cli(storage_settings, "--days", "30", **s3_env)

    # then
    assert unset.returncode == 2
    assert "GROUP_ORDERS_FILE_RETENTION_DAYS" in unset.stderr
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == (
        f"would remove the files of group order {old}\n"
        "would remove 4 files of 1 group orders finished more than 30 days ago, and 0 files "
        "no group order references\n"
    )
    assert kept.stdout.endswith(
        "removed 0 files of 0 group orders finished more than 60 days ago, and 0 files no "
        "group order references\n"
    )
    assert purged.returncode == 0, purged.stderr
    assert f"removed the files of group order {old}\n" in purged.stdout
    async with running(storage_settings) as (app, client):
        assert keys_of(app.state.storage, old) == []
        assert (await state(client, token, old))["normalizedCsv"] is None
