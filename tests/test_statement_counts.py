"""A page of group orders with every nested field costs the same statements at any size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import GraphQL
from group_orders.services.demo import DemoData
from test_listing import insert_group_orders

PAGE = """
query($first: Int) {
  groupOrders(first: $first) {
    totalCount
    edges { node {
      id status totalOrders
      client { id name }
      uploader { id name }
      rows(first: 5) { totalCount edges { node { sourceRow errors { code } } } }
      rejected: rows(status: rejected, first: 2) { totalCount }
      session { userId role liaison { clients { name } } }
    } }
  }
}
"""


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.mark.parametrize("token", ["liaison", "employee"])
async def test_statements_stay_flat_at_1_10_and_100_items(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine, token: str
) -> None:
    # given: enough group orders for a page of 100 in every caller's scope
    for client in ("borealis", "cedar"):
        await insert_group_orders(engine, client, 60, start=datetime(2026, 1, 1, tzinfo=UTC))
    # a first request, so that the session's lastUsedAt write is not counted below
    await graphql.post("{ session { userId } }", token=demo.tokens[token])

    # when
    counts = {}
    for first in (1, 10, 100):
        with counting(engine) as statements:
            response = await graphql.post(PAGE, {"first": first}, token=demo.tokens[token])
        body = response.json()
        assert "errors" not in body, body
        assert len(body["data"]["groupOrders"]["edges"]) == first
        counts[first] = len(statements)

    # then
    assert counts[1] == counts[10] == counts[100], counts


async def test_the_total_is_counted_only_when_asked_for(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine
) -> None:
    # given
    await graphql.post("{ session { userId } }", token=demo.tokens["employee"])
    counts = {}

    # when
    for selection in ("totalCount edges { cursor }", "edges { cursor }"):
        with counting(engine) as statements:
            response = await graphql.post(
                "{ groupOrders(first: 5) { " + selection + " } }", token=demo.tokens["employee"]
            )
        assert "errors" not in response.json()
        counts[selection] = len(statements)

    # then
    assert counts["edges { cursor }"] == counts["totalCount edges { cursor }"] - 1
