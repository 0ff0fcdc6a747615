"""The reporting example, run against the app as a reporting tool would run it."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from group_orders.services.demo import DemoData
from test_listing import insert_group_orders

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "reporting_summary.py"


def load_example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("reporting_summary", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reporting_summary"] = module
    spec.loader.exec_module(module)
    return module


async def test_the_summary_lists_every_group_order_once(
    app: Starlette, demo: DemoData, engine: AsyncEngine
) -> None:
    # given: more group orders than fit in two pages
    created = await insert_group_orders(
        engine,
        "borealis",
        230,
        start=datetime(2026, 1, 1, tzinfo=UTC),
        status="completed",
        total_orders=3,
        successful_orders=3,
    )
    example = load_example()
    transport = example.HTTPXAsyncTransport(
        url="http://testserver/graphql",
        headers={"Authorization": f"Bearer {demo.tokens['reporting']}"},
        transport=httpx.ASGITransport(app=app),
    )

    # when
    output = io.StringIO()
    count = await example.write_summary(transport, output)

    # then
    rows = list(csv.DictReader(io.StringIO(output.getvalue())))
    assert count == len(rows) == 230 + len(demo.group_orders)
    assert {row["id"] for row in rows} == set(created) | set(demo.group_orders.values())
    borealis = [row for row in rows if row["id"] in set(created)]
    assert {(row["client"], row["outcome"], row["total_orders"]) for row in borealis} == {
        ("Borealis Foods", "all_accepted", "3")
    }
