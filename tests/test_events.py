"""Group-order events: in one process, and through the real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from group_orders.services.demo import DemoData
from group_orders.services.events import (
    EventBus,
    LocalEventBus,
    PostgresEventBus,
    RedisEventBus,
    create_event_bus,
)
from group_orders.settings import Settings
from live import SUBSCRIPTION, bearer, receive, serving, session, subscribe, until_complete
from uploading import csv_bytes, good_row, upload

REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parent.parent


def unique_prefix() -> str:
    # Channels of their own, so that runs side by side never hear each other.
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def redis_bus() -> AsyncIterator[RedisEventBus]:
    bus = RedisEventBus(REDIS_URL, unique_prefix())
    yield bus
    await bus.close()


async def run_python(code: str, env: dict[str, str]) -> str:
    """Run ``code`` in another Python process; its output, which must end well."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


PUBLISH = """
import asyncio, sys, uuid
from group_orders.services.events import RedisEventBus

async def main():
    bus = RedisEventBus(sys.argv[1], sys.argv[2])
    await bus.publish(uuid.UUID(sys.argv[3]))
    await bus.close()

asyncio.run(main())
"""


async def publish_from_another_process(prefix: str, group_order_id: uuid.UUID) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PUBLISH, REDIS_URL, prefix, str(group_order_id), cwd=ROOT
    )
    assert await process.wait() == 0


async def test_the_local_bus_tells_the_listeners_of_that_group_order_only() -> None:
    # given
    bus = LocalEventBus()
    changed, other = uuid.uuid4(), uuid.uuid4()
    async with bus.subscribe(changed) as first, bus.subscribe(changed) as second:
        async with bus.subscribe(other) as bystander:
            # when: two events before anyone looks
            await bus.publish(changed)
            await bus.publish(changed)

            # then: each listener wakes once for both, the bystander not at all
            woken = [await first.wait(0), await first.wait(0), await second.wait(0)]
            assert woken == [True, False, True]
            assert await bystander.wait(0) is False
        assert bus.listening(changed) == 2
    assert bus.listening(changed) == 0


async def test_the_redis_bus_hears_an_event_published_by_another_process(
    redis_bus: RedisEventBus,
) -> None:
    # given
    changed, other = uuid.uuid4(), uuid.uuid4()
    async with redis_bus.subscribe(changed) as listener, redis_bus.subscribe(other) as bystander:
        # when
        await publish_from_another_process(redis_bus.prefix, changed)

        # then
        assert await listener.wait(60) is True
        assert await bystander.wait(0) is False


async def test_buses_with_other_prefixes_do_not_hear_each_other(
    redis_bus: RedisEventBus,
) -> None:
    group_order_id = uuid.uuid4()
    other_deployment = RedisEventBus(REDIS_URL, unique_prefix())
    try:
        async with redis_bus.subscribe(group_order_id) as listener:
            await other_deployment.publish(group_order_id)
            # An event of its own deployment, published after, arrives after.
            await redis_bus.publish(group_order_id)
            assert await listener.wait(60) is True
            assert await listener.wait(0) is False
    finally:
        await other_deployment.close()


async def test_publishing_to_an_unreachable_redis_does_not_raise() -> None:
    bus = RedisEventBus("redis://127.0.0.1:1/0", unique_prefix())
    try:
        await bus.publish(uuid.uuid4())
    finally:
        await bus.close()


def test_the_settings_choose_the_bus() -> None:
    assert isinstance(create_event_bus(Settings()), LocalEventBus)
    redis = create_event_bus(Settings(redis_url=REDIS_URL, redis_channel_prefix="eu"))
    assert isinstance(redis, RedisEventBus)
    assert redis.channel(uuid.UUID(int=1)) == (
        "eu:group-order:00000000-0000-0000-0000-000000000001"
    )
    assert Settings.from_env(
        {
            "GROUP_ORDERS_REDIS_URL": REDIS_URL,
            "GROUP_ORDERS_REDIS_CHANNEL_PREFIX": "eu",
            "GROUP_ORDERS_WEBSOCKET_ORIGINS": "https://app.example/, https://admin.example",
            "GROUP_ORDERS_SUBSCRIPTION_REFRESH_SECONDS": "2.5",
        }
    ) == Settings(
        redis_url=REDIS_URL,
        redis_channel_prefix="eu",
        websocket_allowed_origins=("https://app.example", "https://admin.example"),
        subscription_refresh_seconds=2.5,
    )


WORKER = """
import asyncio
from group_orders.db.engine import create_engine
from group_orders.settings import Settings
from group_orders.storage.local import LocalStorage
from group_orders.worker.runner import create_runner

async def main():
    settings = Settings.from_env()
    engine = create_engine(settings)
    runner = create_runner(engine, LocalStorage(settings.data_dir / "files"), settings)
    try:
        print(await runner.run_until_idle())
    finally:
        await runner.events.close()
        await engine.dispose()

asyncio.run(main())
"""


async def test_a_subscriber_hears_a_job_run_by_another_process_through_redis(
    settings: Settings, demo: DemoData
) -> None:
    # given: the server and a worker process share the database and a Redis prefix; the
    # server never re-reads on its timer within the test, so only Redis can tell it
    prefix = unique_prefix()
    server_settings = settings.with_changes(
        redis_url=REDIS_URL, redis_channel_prefix=prefix, subscription_refresh_seconds=3_600
    )
    token = demo.tokens["client"]
    async with serving(server_settings) as server:
        assert isinstance(server.app.state.events, EventBus)
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            response = await upload(http, token, csv_bytes([good_row(n) for n in range(1, 4)]))
        group_order_id = response.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
        async with session(server, bearer(token)) as websocket:
            await subscribe(websocket, "1", SUBSCRIPTION, {"id": group_order_id})
            first = await receive(websocket)

            # when
            ran = await run_python(
                WORKER,
                {
                    "DATABASE_URL": settings.database_url,
                    "GROUP_ORDERS_DATA_DIR": str(settings.data_dir),
                    "GROUP_ORDERS_REDIS_URL": REDIS_URL,
                    "GROUP_ORDERS_REDIS_CHANNEL_PREFIX": prefix,
                },
            )
            rest = await until_complete(websocket, "1")

    # then
    assert ran.strip() == "1"
    assert first["payload"]["data"]["groupOrderUpdated"]["status"] == "pending"
    final = rest[-2]["payload"]["data"]["groupOrderUpdated"]
    assert (final["status"], final["successfulOrders"]) == ("completed", 3)
    assert rest[-1] == {"id": "1", "type": "complete"}


PG_PUBLISH = """
import asyncio, sys, uuid
from group_orders.services.events import create_event_bus
from group_orders.settings import Settings

async def main():
    bus = create_event_bus(Settings(database_url=sys.argv[1]))
    await bus.publish(uuid.UUID(sys.argv[2]))
    await bus.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_on_postgresql_the_bus_is_listen_notify_and_crosses_processes(
    database_url: str,
) -> None:
    # given: the bus the settings choose on PostgreSQL without Redis
    bus = create_event_bus(Settings(database_url=database_url))
    assert isinstance(bus, PostgresEventBus)
    changed, other = uuid.uuid4(), uuid.uuid4()
    try:
        async with bus.subscribe(changed) as listener, bus.subscribe(other) as bystander:
            # when: another process publishes on the same database
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", PG_PUBLISH, database_url, str(changed), cwd=ROOT
            )
            assert await process.wait() == 0

            # then
            assert await listener.wait(60) is True
            assert await bystander.wait(0) is False
    finally:
        await bus.close()


async def test_publishing_to_an_unreachable_postgresql_does_not_raise() -> None:
    bus = PostgresEventBus("postgresql://postgres@127.0.0.1:1/none")
    try:
        await bus.publish(uuid.uuid4())
    finally:
        await bus.close()
