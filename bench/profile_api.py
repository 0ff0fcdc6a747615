"""What one request costs inside the process, and where the time goes.

    python bench/profile_api.py                 # µs per request, per scenario
    python bench/profile_api.py --profile       # and a pyinstrument profile of groupOrder

Builds the same database as ``bench/api.py`` (10,000 group orders, 100 signed-in
employees), creates the app with production settings and calls it as an ASGI app,
one request after another on uvloop: no socket, no HTTP parsing, no concurrency. The
figures are wall time and CPU time (of all the process's threads) per request, each the
best of five rounds; on a busy machine the CPU time is the steadier one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import ONE, PAGE, TWO, seed  # noqa: E402


async def call(app: Any, token: str, body: bytes) -> tuple[int, bytes]:
    """One POST /graphql through the ASGI interface; answers the status and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{root / 'db.sqlite'}",
            "GROUP_ORDERS_DATA_DIR": str(root),
            "GROUP_ORDERS_ENV": "production",
            "GROUP_ORDERS_SECRET_KEY": uuid.uuid4().hex * 2,
            "GROUP_ORDERS_EMBEDDED_WORKER": "0",
            "GROUP_ORDERS_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        }
        pairs = await seed(env)

        from group_orders.app import create_app
        from group_orders.settings import Settings

        app = create_app(Settings.from_env(env))
        app.state.runner.use_plans = not args.no_plans

        def bodies(query: str) -> list[tuple[str, bytes]]:
            return [
                (token, json.dumps({"query": query, "variables": {"id": id_}}).encode())
                for token, id_ in pairs
            ]

        scenarios = {
            "groupOrder": bodies(ONE),
            "groupOrder-2-fields": bodies(TWO),
            "page100": [(token, json.dumps({"query": PAGE}).encode()) for token, _ in pairs],
            "batch20": [
                (
                    token,
                    json.dumps(
                        [
                            {"query": ONE, "variables": {"id": pairs[(n + k) % len(pairs)][1]}}
                            for k in range(20)
                        ]
                    ).encode(),
                )
                for n, (token, _id) in enumerate(pairs)
            ],
        }
        async with app.router.lifespan_context(app):
            for name, requests in scenarios.items():
                count = args.requests if name.startswith("groupOrder") else args.requests // 20
                for token, body in requests[:10]:  # warm the caches
                    status, answer = await call(app, token, body)
                    assert status == 200, answer[:300]
                    assert b'"errors"' not in answer, answer[:300]
                # The best of five rounds: other work on the machine only ever adds time.
                walls, cpus = [], []
                for _round in range(5):
                    started, cpu = time.perf_counter(), time.process_time()
                    for n in range(count // 5):
                        await call(app, *requests[n % len(requests)])
                    walls.append((time.perf_counter() - started) / (count // 5))
                    cpus.append((time.process_time() - cpu) / (count // 5))
                print(
                    f"  {name:<20} {min(walls) * 1e6:>9,.0f} µs/request wall "
                    f"{min(cpus) * 1e6:>9,.0f} µs CPU (best of 5 rounds)",
                    flush=True,
                )
            if args.profile:
                from pyinstrument import Profiler

                requests = scenarios[args.profile]
                profiler = Profiler(interval=0.0005, async_mode="disabled")
                profiler.start()
                for n in range(args.requests):
                    await call(app, *requests[n % len(requests)])
                profiler.stop()
                print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument(
        "--profile",
        nargs="?",
        const="groupOrder",
        metavar="SCENARIO",
        help="print a pyinstrument profile of a scenario (groupOrder unless named)",
    )
    parser.add_argument(
        "--no-plans", action="store_true", help="run every operation through graphql-core"
    )
    import uvloop

    uvloop.run(main(parser.parse_args()))
