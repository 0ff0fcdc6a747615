"""Do malformed, unknown and revoked tokens take the same time to refuse?

    python bench/token_timing.py [--rounds 3000]

Runs the app in-process (no network noise) on a fresh SQLite database with the demo
data, and sends the three kinds of bad token in interleaved rounds, so that any drift of
the machine touches all three alike. Prints the median and the 10th/90th percentiles of
each, in microseconds. All three answer the same body; the service hashes every token
and looks it up with the same statement, whatever its shape.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

QUERY = {"query": "{ session { userId } }"}


async def main(rounds: int) -> None:
    from group_orders.app import create_app
    from group_orders.enums import ApplicationSlug
    from group_orders.services.accounts import create_session, revoke_token
    from group_orders.services.demo import demo_id, seed_demo
    from group_orders.settings import Settings

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{root / 'db.sqlite'}",
            data_dir=root,
            embedded_worker=False,
            auth_failure_limit=0,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            engine = app.state.engine
            await seed_demo(engine, app.state.storage)
            revoked = await create_session(engine, demo_id("alice"), ApplicationSlug.planoorder)
            await revoke_token(engine, revoked)
            tokens = {
                "malformed": "not-a-token-at-all",
                "unknown": "gos_" + "u" * 43,
                "revoked": revoked,
            }
            timings: dict[str, list[float]] = {kind: [] for kind in tokens}
            bodies: dict[str, set[bytes]] = {kind: set() for kind in tokens}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for round_number in range(rounds + 100):
                    for kind, token in tokens.items():
                        started = time.perf_counter()
                        response = await client.post(
                            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
                        )
                        elapsed = time.perf_counter() - started
                        if round_number >= 100:  # the first rounds warm caches up
                            timings[kind].append(elapsed * 1e6)
                            bodies[kind].add(response.content)
    print(f"{'token':<10} {'median µs':>10} {'p10 µs':>8} {'p90 µs':>8}")
    for kind, values in timings.items():
        cuts = statistics.quantiles(values, n=10)
        print(f"{kind:<10} {statistics.median(values):>10.0f} {cuts[0]:>8.0f} {cuts[-1]:>8.0f}")
    distinct = set().union(*bodies.values())
    print(f"distinct response bodies across the three: {len(distinct)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3_000)
    asyncio.run(main(parser.parse_args().rounds))
