"""The API's cost per request, against a plain Starlette baseline, in one run.

    python bench/api.py            # 3 s warm-up and 10 s per scenario
    python bench/api.py --quick    # 1 s and 4 s: done within two minutes

Builds a SQLite database with 10,000 group orders and 100 signed-in employees, then
starts the real server (uvicorn, production settings, the embedded worker off) and the
baseline (``bench/baseline_app.py``: the same lookups and JSON without GraphQL), each on
core 0, and drives them with wrk on core 1 (32 connections; a bounded Python client
where wrk is not installed). Each scenario checks one response first. Scenarios:

* groupOrder: ``groupOrder(id: $id)`` with the default view's fields and the nested
  session, sent with variables, cycling through 100 (token, id) pairs;
* groupOrder-2-fields: the same selecting ``id status``;
* page100: ``groupOrders(first: 100)`` with ten fields per group order;
* batch20: one POST of 20 groupOrder operations (figures in operations/s).

Ratios: the single-order scenarios to the baseline's lookup, page100 to the baseline's
page, batch20 to the groupOrder scenario's requests/s (operations per second gained by
batching).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FIELDS = (
    "id status totalOrders successfulOrders rejectedOrders normalizedCsv acceptedOrdersXlsx "
    "rejectedOrdersXlsx createdAt"
)
ONE = (
    "query GroupOrder($id: ID!) { groupOrder(id: $id) { "
    + FIELDS
    + " session { userId expiresAt } } }"
)
TWO = "query GroupOrder($id: ID!) { groupOrder(id: $id) { id status } }"
PAGE = "query Page { groupOrders(first: 100) { edges { node { " + FIELDS + " } } } }"
PAIRS = 100


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def seed(env: dict[str, str]) -> list[tuple[str, str]]:
    """10,000 group orders and 100 employees' sessions; answers (token, id) pairs."""
    import sqlalchemy as sa

    from group_orders.db.engine import create_engine, write_transaction
    from group_orders.db.migrate import upgrade
    from group_orders.db.tables import group_order_table
    from group_orders.enums import ApplicationSlug
    from group_orders.services.accounts import create_client, create_session, create_user
    from group_orders.settings import Settings

    settings = Settings.from_env(env)
    engine = create_engine(settings)
    await upgrade(engine)
    client_id = await create_client(engine, "Bench Co")
    tokens = []
    for n in range(PAIRS):
        user = await create_user(engine, f"e{n}@bench.example", f"Employee {n}", employee=True)
        tokens.append(await create_session(engine, user.id, ApplicationSlug.planox2))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(10_000):
        group_order_id = uuid.uuid4()
        rows.append(
            {
                "id": group_order_id,
                "status": "completed",
                "total_orders": 120,
                "successful_orders": 100,
                "rejected_orders": 20,
                "normalized_csv": f"{group_order_id}/normalized.csv",
                "accepted_orders_xlsx": f"{group_order_id}/accepted.xlsx",
                "rejected_orders_xlsx": f"{group_order_id}/rejected.xlsx",
                "client_id": client_id,
                "created_at": start + timedelta(minutes=n),
                "updated_at": start + timedelta(minutes=n),
                "processed_rows": 120,
                "attempts": 1,
            }
        )
    async with write_transaction(engine) as connection:
        await connection.execute(sa.insert(group_order_table), rows)
    await engine.dispose()
    ids = [str(row["id"]) for row in rows[:: len(rows) // PAIRS]][:PAIRS]
    return list(zip(tokens, ids, strict=True))


def lua_script(path: Path, requests: list[tuple[str, str]], url_path: str) -> None:
    """A wrk script that cycles through (token, body) requests."""

    def quote(text: str) -> str:
        return "[==[" + text + "]==]"

    lines = ["local requests = {"]
    lines += [f"  {{{quote(token)}, {quote(body)}}}," for token, body in requests]
    lines += [
        "}",
        "local i = 0",
        "request = function()",
        "  i = i % #requests + 1",
        "  local r = requests[i]",
        f'  return wrk.format("POST", "{url_path}", {{["Content-Type"] = "application/json",'
        ' ["Authorization"] = "Bearer " .. r[1]}, r[2])',
        "end",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _duration_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(url: str, script: Path, seconds: float) -> tuple[float, float, float]:
    command = ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), url]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "1", *command]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _duration_ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _duration_ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    return rate, p50, p99


def run_python(
    url: str, requests: list[tuple[str, str]], seconds: float
) -> tuple[float, float, float]:
    """A bounded Python client, for machines without wrk: 32 concurrent loops."""

    async def main() -> tuple[float, float, float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=32)) as client:

            async def loop(offset: int) -> None:
                n = offset
                while time.perf_counter() < deadline:
                    token, body = requests[n % len(requests)]
                    n += 1
                    started = time.perf_counter()
                    await client.post(
                        url,
                        content=body,
                        headers={
                            "Content-Type": "application/json",
                            "Authorization": f"Bearer {token}",
                        },
                    )
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(loop(offset) for offset in range(32)))
        cuts = statistics.quantiles(latencies, n=100)
        return len(latencies) / seconds, cuts[49] * 1000, cuts[98] * 1000

    return asyncio.run(main())


@contextmanager
def server(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def check(url: str, token: str, body: str) -> None:
    response = httpx.post(
        url,
        content=body,
        timeout=30,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    payload = response.json()
    results = payload if isinstance(payload, list) else [payload]
    for result in results:
        if "errors" in result or response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}: {response.text[:500]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs: within two minutes")
    args = parser.parse_args()
    warmup, seconds = (1, 4) if args.quick else (3, 10)
    use_wrk = shutil.which("wrk") is not None

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{root / 'db.sqlite'}",
            "DATABASE_PATH": str(root / "db.sqlite"),
            "GROUP_ORDERS_DATA_DIR": str(root),
            "GROUP_ORDERS_ENV": "production",
            "GROUP_ORDERS_SECRET_KEY": uuid.uuid4().hex * 2,
            "GROUP_ORDERS_EMBEDDED_WORKER": "0",
            "GROUP_ORDERS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "BASE_URL": f"http://127.0.0.1:{port}",
            "PYTHONPATH": str(ROOT),
        }
        pairs = asyncio.run(seed(env))

        def bodies(query: str) -> list[tuple[str, str]]:
            return [
                (token, json.dumps({"query": query, "variables": {"id": group_order_id}}))
                for token, group_order_id in pairs
            ]

        batch = [
            (
                token,
                json.dumps(
                    [
                        {"query": ONE, "variables": {"id": pairs[(n + k) % PAIRS][1]}}
                        for k in range(20)
                    ]
                ),
            )
            for n, (token, _id) in enumerate(pairs)
        ]
        scenarios = {
            "groupOrder": ("/graphql", bodies(ONE), 1),
            "groupOrder-2-fields": ("/graphql", bodies(TWO), 1),
            "page100": ("/graphql", [(t, json.dumps({"query": PAGE})) for t, _ in pairs], 1),
            "batch20": ("/graphql", batch, 20),
        }
        baselines = {
            "baseline": ("/group-order", bodies(ONE), 1),
            "baseline-page100": ("/page", [(t, "{}") for t, _ in pairs], 1),
        }
        uvicorn = [
            sys.executable,
            "-m",
            "uvicorn",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        if shutil.which("taskset") is None:
            print("(taskset not found: server and load share both cores)")
        print(
            f"load: {'wrk -t1 -c32' if use_wrk else 'Python client, 32 connections'}, "
            f"{seconds} s per scenario after {warmup} s warm-up\n"
        )

        figures: dict[str, tuple[float, float, float]] = {}

        def measure(base: str, group: dict[str, tuple[str, list[tuple[str, str]], int]]) -> None:
            for name, (path, requests, operations) in group.items():
                check(base + path, *requests[0])
                if use_wrk:
                    script = root / f"{name}.lua"
                    lua_script(script, requests, path)
                    run_wrk(base + path, script, warmup)
                    rate, p50, p99 = run_wrk(base + path, script, seconds)
                else:
                    run_python(base + path, requests, warmup)
                    rate, p50, p99 = run_python(base + path, requests, seconds)
                figures[name] = (rate * operations, p50, p99)
                print(
                    f"  {name:<20} {rate * operations:>10,.0f} ops/s  p50 {p50:7.2f} ms  "
                    f"p99 {p99:7.2f} ms",
                    flush=True,
                )

        with server([*uvicorn, "bench.baseline_app:app"], env, port) as base:
            measure(base, baselines)
        with server([*uvicorn, "--factory", "group_orders.asgi:app"], env, port) as base:
            measure(base, scenarios)

        reference = {
            "groupOrder": figures["baseline"][0],
            "groupOrder-2-fields": figures["baseline"][0],
            "page100": figures["baseline-page100"][0],
            "batch20": figures["groupOrder"][0],
        }
        print()
        for name in scenarios:
            rate = figures[name][0]
            print(
                f"{name}: {rate:,.0f} req/s, ratio {rate / reference[name]:.3f}"
                if name != "batch20"
                else f"{name}: {rate:,.0f} operations/s, ratio {rate / reference[name]:.3f}"
            )


if __name__ == "__main__":
    main()
