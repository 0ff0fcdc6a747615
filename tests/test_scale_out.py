"""Scale-out on PostgreSQL: separate worker processes, and the faults they must survive.

Every test here runs real processes (``group-orders worker``, ``group-orders serve``)
against the PostgreSQL server, kills or restarts them, and then checks the outcome the
same way: every row stored once, the counts computed from them, the three files complete,
and no job left behind.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from group_orders.app import create_app
from group_orders.db.tables import group_order_row_table, group_order_table
from group_orders.services.demo import DemoData
from group_orders.services.events import RedisEventBus
from group_orders.settings import Settings
from group_orders.worker.broker import BrokerRunner
from uploading import csv_bytes, good_row, upload

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

GROUP_ORDERS = str(Path(sys.executable).parent / "group-orders")
FINAL = ("completed", "failed", "cancelled")


def orders(first: int, count: int) -> tuple[bytes, int]:
    """A file of ``count`` orders numbered from ``first``; every 100th is rejected."""
    rows = [good_row(n) for n in range(first, first + count)]
    for index in range(0, count, 100):
        rows[index]["quantity"] = "-1"
    return csv_bytes(rows), count - len(range(0, count, 100))


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "GROUP_ORDERS_DATA_DIR": str(settings.data_dir),
        "GROUP_ORDERS_JOB_LEASE_SECONDS": "2",
        "GROUP_ORDERS_JOB_RETRY_DELAY_SECONDS": "0",
        "GROUP_ORDERS_WORKER_POLL_SECONDS": "0.2",
        "GROUP_ORDERS_EMBEDDED_WORKER": "0",
    }
    env.update(extra)
    return env


class Processes:
    """The processes a test starts; whatever is left running is stopped at its end."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, name: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [GROUP_ORDERS, *args],
            env=process_env(self.settings, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.running.append(process)
        return process

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        return self.start("worker", "--name", name, name=name)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    running = Processes(settings, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


async def progress(engine: AsyncEngine, group_order_id: uuid.UUID) -> Any:
    async with engine.connect() as connection:
        return (
            await connection.execute(
                sa.select(
                    group_order_table.c.status,
                    group_order_table.c.processed_rows,
                    group_order_table.c.total_orders,
                ).where(group_order_table.c.id == group_order_id)
            )
        ).one()


async def until_final(engine: AsyncEngine, group_order_id: uuid.UUID, limit: float = 180) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = (await progress(engine, group_order_id)).status
        if status in FINAL:
            return str(status)
        await asyncio.sleep(0.1)
    raise AssertionError(f"group order {group_order_id} did not finish within {limit} s")


async def kill_at(
    engine: AsyncEngine,
    group_order_id: uuid.UUID,
    process: subprocess.Popen[bytes],
    fraction: float,
) -> tuple[int, int]:
    """SIGKILL the worker once the stored rows reach ``fraction`` of the file."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = await progress(engine, group_order_id)
        if current.status in FINAL:
            raise AssertionError(f"finished before {fraction:.0%}: nothing was killed")
        if current.total_orders and current.processed_rows >= fraction * current.total_orders:
            process.kill()
            process.wait()
            return int(current.processed_rows), int(current.total_orders)
        await asyncio.sleep(0.005)
    raise AssertionError("the worker never got going")


async def uploaded(client: httpx.AsyncClient, token: str, content: bytes) -> uuid.UUID:
    response = await upload(client, token, content)
    body = response.json()
    assert "errors" not in body, body
    return uuid.UUID(body["data"]["createGroupOrder"]["groupOrder"]["id"])


FILES_QUERY = """query($id: ID!) { groupOrder(id: $id) {
  status totalOrders successfulOrders rejectedOrders
  normalizedCsv acceptedOrdersXlsx rejectedOrdersXlsx } }"""


def xlsx_rows(content: bytes) -> int:
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    try:
        return sum(max(sheet.max_row - 1, 0) for sheet in workbook.worksheets)
    finally:
        workbook.close()


async def assert_complete(
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    token: str,
    group_order_id: uuid.UUID,
    *,
    total: int,
    accepted: int,
) -> None:
    """Every row once, the counts right, the three files complete, no job left."""
    response = await client.post(
        "/graphql",
        json={"query": FILES_QUERY, "variables": {"id": str(group_order_id)}},
        headers={"Authorization": f"Bearer {token}"},
    )
    group_order = response.json()["data"]["groupOrder"]
    assert (
        group_order["status"],
        group_order["totalOrders"],
        group_order["successfulOrders"],
        group_order["rejectedOrders"],
    ) == ("completed", total, accepted, total - accepted)
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                sa.select(
                    sa.func.count(), sa.func.count(sa.distinct(group_order_row_table.c.source_row))
                ).where(group_order_row_table.c.group_order_id == group_order_id)
            )
        ).one()
        open_jobs = await connection.scalar(
            sa.text(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE queueing_lock = :key AND status IN ('todo', 'doing')"
            ),
            {"key": str(group_order_id)},
        )
    assert tuple(stored) == (total, total)
    assert open_jobs == 0
    normalized = await client.get(group_order["normalizedCsv"])
    assert len(normalized.text.splitlines()) == total + 1
    accepted_file = await client.get(group_order["acceptedOrdersXlsx"])
    rejected_file = await client.get(group_order["rejectedOrdersXlsx"])
    assert xlsx_rows(accepted_file.content) == accepted
    assert xlsx_rows(rejected_file.content) == total - accepted


async def job_runs(engine: AsyncEngine, group_order_id: uuid.UUID) -> int:
    async with engine.connect() as connection:
        runs = await connection.scalar(
            sa.text(
                "SELECT count(*) FROM procrastinate_events e "
                "JOIN procrastinate_jobs j ON j.id = e.job_id "
                "WHERE j.queueing_lock = :key AND e.type = 'started'"
            ),
            {"key": str(group_order_id)},
        )
    return int(runs or 0)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
async def test_a_worker_killed_mid_file_is_replaced_without_a_row_lost_or_doubled(
    fraction: float,
    processes: Processes,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    demo: DemoData,
) -> None:
    # given: a file of 12 batches, and one worker on it
    token = demo.tokens["client"]
    content, accepted = orders(1, 12_000)
    doomed = processes.worker("doomed")
    group_order_id = await uploaded(client, token, content)

    # when: it is killed (SIGKILL: nothing cleans up) at that point of the file, and
    # another worker starts
    done, total = await kill_at(engine, group_order_id, doomed, fraction)
    processes.worker("rescuer")
    status = await until_final(engine, group_order_id)

    # then: the job was taken over after its worker's heartbeat stopped, and finished
    assert done < total or fraction == 0.99
    assert status == "completed", processes.log("rescuer")
    assert await job_runs(engine, group_order_id) == 2
    await assert_complete(engine, client, token, group_order_id, total=12_000, accepted=accepted)


async def test_two_workers_racing_run_each_job_once(
    processes: Processes, client: httpx.AsyncClient, engine: AsyncEngine, demo: DemoData
) -> None:
    # given: two workers waiting
    token = demo.tokens["client"]
    processes.worker("first")
    processes.worker("second")
    await asyncio.sleep(1.0)

    # when: three uploads arrive at once
    files = [orders(1 + n * 10_000, 3_000) for n in range(3)]
    ids = await asyncio.gather(*(uploaded(client, token, content) for content, _ in files))
    statuses = [await until_final(engine, group_order_id) for group_order_id in ids]

    # then: each ran once, by one worker, and came out whole
    assert statuses == ["completed"] * 3
    for group_order_id, (_, accepted) in zip(ids, files, strict=True):
        assert await job_runs(engine, group_order_id) == 1
        await assert_complete(engine, client, token, group_order_id, total=3_000, accepted=accepted)


async def test_a_job_that_keeps_failing_stops_and_says_why(
    processes: Processes,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    demo: DemoData,
    settings: Settings,
) -> None:
    # given: an upload whose stored file disappears before any worker runs it
    token = demo.tokens["client"]
    content, _ = orders(1, 10)
    group_order_id = await uploaded(client, token, content)
    (settings.data_dir / "files" / "uploads" / str(group_order_id) / "source").unlink()

    # when
    processes.worker("only")
    status = await until_final(engine, group_order_id)

    # then: three attempts (the setting's default), then failed with the reason
    async with engine.connect() as connection:
        reason = await connection.scalar(
            sa.select(group_order_table.c.failure_reason).where(
                group_order_table.c.id == group_order_id
            )
        )
    assert status == "failed"
    assert await job_runs(engine, group_order_id) == 3
    assert reason is not None
    assert reason.startswith("Processing failed 3 times")


def pg_ctl(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=60,
    )


async def test_the_database_restarted_during_a_job_loses_nothing(
    processes: Processes,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    demo: DemoData,
) -> None:
    # given: a worker halfway through a file
    token = demo.tokens["client"]
    content, accepted = orders(1, 12_000)
    processes.worker("survivor")
    group_order_id = await uploaded(client, token, content)
    while (current := await progress(engine, group_order_id)).processed_rows < 4_000:
        assert current.status not in FINAL
        await asyncio.sleep(0.01)

    # when: the database stops, a request comes in meanwhile, and the database returns
    pg_ctl("stop")
    try:
        started = time.monotonic()
        during = await client.post(
            "/graphql",
            json={"query": FILES_QUERY, "variables": {"id": str(group_order_id)}},
            headers={"Authorization": f"Bearer {token}"},
        )
        waited = time.monotonic() - started
    finally:
        pg_ctl("start")
    await engine.dispose()  # the test's own pool holds connections of the old server
    status = await until_final(engine, group_order_id)

    # then: the request was answered at once, and the worker finished the job
    assert during.status_code == 503
    assert during.json()["errors"][0]["extensions"]["code"] == "service-not-found"
    assert during.headers["retry-after"] == "5"
    assert waited < 30
    assert status == "completed", processes.log("survivor")
    await assert_complete(engine, client, token, group_order_id, total=12_000, accepted=accepted)


@pytest.fixture
def small_pool(settings: Settings) -> Settings:
    return settings.with_changes(db_pool_size=2, db_pool_overflow=0, db_pool_timeout_seconds=0.5)


async def test_an_exhausted_pool_is_answered_at_once_with_service_not_found(
    small_pool: Settings, demo: DemoData
) -> None:
    # given: every connection of the pool held by slow work
    app: Starlette = create_app(small_pool)
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            held = [await engine.connect() for _ in range(2)]
            try:
                for connection in held:
                    await connection.execute(sa.text("SELECT 1"))

                # when
                started = time.monotonic()
                answer = await client.post(
                    "/graphql",
                    json={"query": "{ session { userId } }"},
                    headers={"Authorization": f"Bearer {demo.tokens['employee']}"},
                )
                waited = time.monotonic() - started
                ready = await client.get("/readyz")
            finally:
                for connection in held:
                    await connection.close()
            after = await client.post(
                "/graphql",
                json={"query": "{ session { userId } }"},
                headers={"Authorization": f"Bearer {demo.tokens['employee']}"},
            )

    # then: refused within the pool timeout, never hung; served again once freed
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["errors"][0]["extensions"] == {
        "code": "service-not-found",
        "status": 503,
        "retryAfter": 5,
    }
    assert waited < 5
    assert ready.status_code == 503
    assert after.status_code == 200
    assert after.json()["data"]["session"]["userId"] is not None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def until_ready(base_url: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base_url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{base_url} did not get ready within {limit} s")


async def test_two_api_processes_and_two_workers_take_twenty_uploads_at_once(
    processes: Processes, engine: AsyncEngine, demo: DemoData
) -> None:
    # given: two API processes and two workers on one database
    urls = []
    for name in ("api-1", "api-2"):
        port = free_port()
        processes.start(
            "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", name=name
        )
        urls.append(f"http://127.0.0.1:{port}")
    processes.worker("worker-1")
    processes.worker("worker-2")
    for url in urls:
        await until_ready(url)
    token = demo.tokens["client"]
    files = [orders(1 + n * 10_000, 1_500) for n in range(20)]

    # when: twenty uploads at once, half to each API process
    async def send(index: int) -> tuple[str, uuid.UUID]:
        async with httpx.AsyncClient(base_url=urls[index % 2], timeout=60) as api:
            return urls[index % 2], await uploaded(api, token, files[index][0])

    sent = await asyncio.gather(*(send(index) for index in range(20)))
    statuses = [await until_final(engine, group_order_id) for _, group_order_id in sent]

    # then: every upload completed, whole, once; both workers took part
    assert statuses == ["completed"] * 20
    for (url, group_order_id), (_, accepted) in zip(sent, files, strict=True):
        async with httpx.AsyncClient(base_url=url, timeout=60) as api:
            await assert_complete(
                engine, api, token, group_order_id, total=1_500, accepted=accepted
            )
    async with engine.connect() as connection:
        workers = await connection.scalar(
            sa.select(sa.func.count(sa.distinct(group_order_table.c.worker_id))).where(
                group_order_table.c.id.in_([group_order_id for _, group_order_id in sent])
            )
        )
    assert workers == 2


REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def restart_redis() -> None:
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], check=False)
    subprocess.run(REDIS_START, check=True, timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ping = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True, text=True, check=False
        )
        if ping.stdout.strip() == "PONG":
            return
        time.sleep(0.1)
    raise AssertionError("Redis did not come back")


async def test_redis_restarted_during_a_job_delays_events_but_loses_nothing(
    processes: Processes,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    demo: DemoData,
) -> None:
    # given: a worker publishing its progress through Redis, and a listener of it
    token = demo.tokens["client"]
    prefix = f"scale-out-{uuid.uuid4().hex[:8]}"
    content, accepted = orders(1, 12_000)
    processes.start(
        "worker",
        "--name",
        "publisher",
        name="publisher",
        GROUP_ORDERS_REDIS_URL=REDIS_URL,
        GROUP_ORDERS_REDIS_CHANNEL_PREFIX=prefix,
    )
    bus = RedisEventBus(REDIS_URL, prefix)
    group_order_id = await uploaded(client, token, content)
    try:
        async with bus.subscribe(group_order_id) as listener:
            while (await progress(engine, group_order_id)).processed_rows < 3_000:
                await listener.wait(0.05)

            # when: Redis restarts (it keeps nothing on disk) in the middle of the job
            await asyncio.to_thread(restart_redis)
            status = await until_final(engine, group_order_id)
            # then: the listener, subscribed again, hears of the group order once more
            heard = await listener.wait(15)
    finally:
        await bus.close()

    # then: the job finished whole; only events were missed, and they are hints
    assert status == "completed", processes.log("publisher")
    assert heard
    await assert_complete(engine, client, token, group_order_id, total=12_000, accepted=accepted)


async def test_a_job_whose_outcome_was_lost_here_is_queued_again(
    settings: Settings, demo: DemoData
) -> None:
    # given: a job marked running under this process's worker, but not running here, as
    # after a run whose outcome could not be recorded while the database was away
    app: Starlette = create_app(settings.with_changes(job_lease_seconds=1))
    async with app.router.lifespan_context(app):
        runner: BrokerRunner = app.state.jobs
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            token = demo.tokens["client"]
            content, accepted = orders(1, 50)
            group_order_id = await uploaded(client, token, content)
            async with runner.queue_app.open_async():
                manager = runner.queue_app.job_manager
                worker_id = await manager.register_worker()
                fetched = await manager.fetch_job(queues=["group_orders"], worker_id=worker_id)
                assert fetched is not None
                runner.running.workers.add(worker_id)
                await asyncio.sleep(1.2)  # started over a lease ago

                # when
                running_here = runner.running.jobs.copy()
                runner.running.jobs.add(int(fetched.id or 0))
                left_alone = await runner.requeue_lost()
                runner.running.jobs = running_here
                requeued = await runner.requeue_lost()
                await manager.unregister_worker(worker_id)
            await runner.run_until_idle()
            engine: AsyncEngine = app.state.engine

            # then: a job still running here is left alone; the lost one runs again
            assert (left_alone, requeued) == (0, 1)
            await assert_complete(
                engine, client, token, group_order_id, total=50, accepted=accepted
            )
