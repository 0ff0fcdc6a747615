"""What reporting tools get: a 100-item page and a batch of 20, against single requests.

    python bench/reporting.py            # 10 s per scenario
    python bench/reporting.py --seconds 3

Starts the real server (uvicorn, one process, production settings, its own SQLite
database with the demo data and 2,000 more group orders), then drives it from this
process over loopback with a fixed number of concurrent connections (the load shares
the machine's two cores with the server). Printed per scenario: steps/s, group orders/s,
and p50/p99 latency of a step, where a step is one request, or for the singles the
whole series of requests that fetches the same group orders:

* page100: ``groupOrders(first: 100)`` with ten fields per group order;
* singles-for-page: the same 100 group orders, fetched by 100 ``groupOrder`` requests;
* batch20: one POST holding 20 ``groupOrder`` operations;
* singles-for-batch: the same 20 operations as 20 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

FIELDS = (
    "id status totalOrders successfulOrders rejectedOrders outcome createdAt "
    "normalizedCsv acceptedOrdersXlsx rejectedOrdersXlsx"
)
PAGE = "query Page { groupOrders(first: 100) { edges { node { " + FIELDS + " } } } }"
ONE = "query One($id: ID!) { groupOrder(id: $id) { " + FIELDS + " } }"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def prepare(root: Path) -> dict[str, str]:
    """Seed the database; answers the environment of the server."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{root / 'db.sqlite'}",
        "GROUP_ORDERS_DATA_DIR": str(root),
        "GROUP_ORDERS_ENV": "production",
        "GROUP_ORDERS_SECRET_KEY": uuid.uuid4().hex * 2,
        "GROUP_ORDERS_MAX_BATCH_OPERATIONS": "20",
    }
    subprocess.run(
        [sys.executable, "-m", "group_orders.cli", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


async def seed(env: dict[str, str]) -> tuple[str, list[str]]:
    """The demo data, 2,000 more group orders; answers a token and 100 ids."""
    os.environ.update(env)
    import sqlalchemy as sa

    from group_orders.db.engine import create_engine, write_transaction
    from group_orders.db.tables import group_order_table
    from group_orders.services.demo import demo_id, seed_demo
    from group_orders.settings import Settings
    from group_orders.storage.local import LocalStorage

    settings = Settings.from_env(env)
    engine = create_engine(settings)
    demo = await seed_demo(engine, LocalStorage(settings.data_dir / "files"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "status": "completed",
            "total_orders": 10,
            "successful_orders": 9,
            "rejected_orders": 1,
            "client_id": demo_id(("acme", "borealis", "cedar")[n % 3]),
            "created_at": start + timedelta(minutes=n),
            "updated_at": start + timedelta(minutes=n),
            "processed_rows": 10,
            "attempts": 1,
        }
        for n in range(2_000)
    ]
    async with write_transaction(engine) as connection:
        await connection.execute(sa.insert(group_order_table), rows)
    await engine.dispose()
    newest = sorted(rows, key=lambda row: row["created_at"], reverse=True)[:100]
    return demo.tokens["reporting"], [str(row["id"]) for row in newest]


async def drive(
    send: Callable[[httpx.AsyncClient], Awaitable[int]], *, seconds: float, concurrency: int
) -> tuple[int, int, list[float]]:
    """Run ``send`` from ``concurrency`` loops for ``seconds``; answers requests, group
    orders and latencies."""
    latencies: list[float] = []
    items = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def loop() -> None:
            nonlocal items
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                got = await send(client)  # not `items += await ...`: it would read first
                items += got
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return len(latencies), items, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        env = prepare(Path(directory))
        token, ids = asyncio.run(seed(env))
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "group_orders.asgi:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
        )
        url = f"http://127.0.0.1:{port}/graphql"
        headers = {"Authorization": f"Bearer {token}"}
        try:
            for _ in range(300):
                try:
                    httpx.get(url, timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)

            async def page(client: httpx.AsyncClient) -> int:
                response = await client.post(url, json={"query": PAGE}, headers=headers)
                return len(response.json()["data"]["groupOrders"]["edges"])

            async def singles(client: httpx.AsyncClient, count: int) -> int:
                for group_order_id in ids[:count]:
                    response = await client.post(
                        url,
                        json={"query": ONE, "variables": {"id": group_order_id}},
                        headers=headers,
                    )
                    assert response.json()["data"]["groupOrder"]["id"] == group_order_id
                return count

            async def batch(client: httpx.AsyncClient) -> int:
                body = [{"query": ONE, "variables": {"id": i}} for i in ids[:20]]
                response = await client.post(url, json=body, headers=headers)
                return sum(1 for result in response.json() if result["data"]["groupOrder"])

            scenarios: list[tuple[str, Callable[[httpx.AsyncClient], Awaitable[int]]]] = [
                ("page100", page),
                ("singles-for-page", lambda client: singles(client, 100)),
                ("batch20", batch),
                ("singles-for-batch", lambda client: singles(client, 20)),
            ]
            print(
                f"{'scenario':<18} {'steps/s':>11} {'group orders/s':>15} "
                f"{'p50 ms':>8} {'p99 ms':>8}"
            )
            figures = {}
            for name, send in scenarios:
                asyncio.run(drive(send, seconds=1, concurrency=args.concurrency))  # warm-up
                requests, items, latencies = asyncio.run(
                    drive(send, seconds=args.seconds, concurrency=args.concurrency)
                )
                cuts = statistics.quantiles(latencies, n=100)
                figures[name] = items / args.seconds
                print(
                    f"{name:<18} {requests / args.seconds:>11,.1f} "
                    f"{items / args.seconds:>15,.0f} {cuts[49] * 1000:>8.1f} "
                    f"{cuts[98] * 1000:>8.1f}",
                    flush=True,
                )
            print(
                json.dumps(
                    {
                        "page100 / singles": round(
                            figures["page100"] / figures["singles-for-page"], 2
                        ),
                        "batch20 / singles": round(
                            figures["batch20"] / figures["singles-for-batch"], 2
                        ),
                    }
                )
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
