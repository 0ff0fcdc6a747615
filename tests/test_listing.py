"""groupOrders: complete, stable pages, filters, scope and views."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import GraphQL
from group_orders.db.engine import write_transaction
from group_orders.db.tables import group_order_table
from group_orders.services.demo import DemoData, demo_id
from group_orders.worker.runner import Runner
from uploading import csv_bytes, good_row, upload

PAGE = """
query($first: Int, $after: String, $filter: GroupOrderFilter, $orderBy: GroupOrderOrder) {
  groupOrders(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status } }
  }
}
"""


async def insert_group_orders(
    engine: AsyncEngine, client: str, count: int, *, start: datetime, **values: Any
) -> list[str]:
    """Group orders one second apart, written directly: many, quickly."""
    rows = [
        {
            "id": uuid.uuid4(),
            "status": values.get("status", "pending"),
            "total_orders": values.get("total_orders", 0),
            "successful_orders": values.get("successful_orders", 0),
            "rejected_orders": values.get("rejected_orders", 0),
            "client_id": demo_id(client),
            "uploaded_by_user_id": values.get("uploaded_by"),
            "created_at": start + timedelta(seconds=n),
            "updated_at": start + timedelta(seconds=n),
            "processed_rows": 0,
            "attempts": 0,
        }
        for n in range(count)
    ]
    async with write_transaction(engine) as connection:
        await connection.execute(sa.insert(group_order_table), rows)
    return [str(row["id"]) for row in rows]


async def page_through(
    graphql: GraphQL, token: str, *, first: int = 100, **variables: Any
) -> tuple[list[str], list[int]]:
    seen: list[str] = []
    totals: list[int] = []
    after = None
    while True:
        response = await graphql.post(
            PAGE, {"first": first, "after": after, **variables}, token=token
        )
        body = response.json()
        assert "errors" not in body, body
        connection = body["data"]["groupOrders"]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        totals.append(connection["totalCount"])
        if not connection["pageInfo"]["hasNextPage"]:
            return seen, totals
        after = connection["pageInfo"]["endCursor"]


async def test_paging_is_complete_and_stable_while_new_ones_arrive(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine
) -> None:
    # given: 2,500 group orders besides the demo's 15
    start = datetime(2026, 1, 1, tzinfo=UTC)
    created = await insert_group_orders(engine, "acme", 2_500, start=start)
    before = set(created) | set(demo.group_orders.values())

    # when: new group orders arrive after every page is read
    seen: list[str] = []
    after = None
    arrived = 0
    while True:
        response = await graphql.post(
            PAGE, {"first": 100, "after": after}, token=demo.tokens["employee"]
        )
        connection = response.json()["data"]["groupOrders"]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        await insert_group_orders(
            engine, "borealis", 3, start=datetime.now(UTC) + timedelta(days=arrived)
        )
        arrived += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    # then: every group order that existed when paging began, once; none of the new ones
    assert len(seen) == len(set(seen)) == len(before)
    assert set(seen) == before


async def test_oldest_first_pages_in_the_other_direction(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine
) -> None:
    # given
    created = await insert_group_orders(
        engine, "cedar", 250, start=datetime(2020, 1, 1, tzinfo=UTC)
    )

    # when
    seen, _ = await page_through(graphql, demo.tokens["employee"], first=60, orderBy="oldest_first")

    # then: the oldest come first, in the order they were created
    assert seen[:250] == created


async def test_a_liaison_lists_only_its_clients(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine
) -> None:
    # given
    await insert_group_orders(engine, "acme", 30, start=datetime(2026, 2, 1, tzinfo=UTC))
    borealis = await insert_group_orders(
        engine, "borealis", 30, start=datetime(2026, 2, 1, tzinfo=UTC)
    )

    # when
    seen, totals = await page_through(graphql, demo.tokens["liaison"], first=7)
    outside, _ = await page_through(
        graphql, demo.tokens["liaison"], filter={"clientId": [str(demo_id("acme"))]}
    )

    # then
    expected = set(borealis) | {
        group_order_id
        for label, group_order_id in demo.group_orders.items()
        if label.startswith(("borealis", "cedar"))
    }
    assert set(seen) == expected
    assert set(totals) == {len(expected)}
    assert outside == []


@pytest.mark.parametrize(
    ("filter", "labels"),
    [
        ({"status": ["failed", "cancelled"]}, {"failed", "cancelled"}),
        ({"outcome": ["partial"]}, {"completed"}),
        ({"outcome": ["all_accepted", "all_rejected"]}, set()),
        ({"status": ["pending"], "outcome": ["partial"]}, set()),
    ],
)
async def test_filters_by_status_and_outcome(
    graphql: GraphQL, demo: DemoData, filter: dict[str, Any], labels: set[str]
) -> None:
    # when
    seen, _ = await page_through(
        graphql,
        demo.tokens["employee"],
        filter={**filter, "clientId": [str(demo_id("acme"))]},
    )

    # then
    assert set(seen) == {demo.group_orders[f"acme-{label}"] for label in labels}


async def test_filters_by_creation_time_and_uploader(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine
) -> None:
    # given
    january = await insert_group_orders(
        engine, "acme", 10, start=datetime(2026, 1, 10, tzinfo=UTC), uploaded_by=demo_id("alice")
    )
    await insert_group_orders(engine, "acme", 10, start=datetime(2026, 2, 10, tzinfo=UTC))

    # when
    in_january, _ = await page_through(
        graphql,
        demo.tokens["client"],
        filter={"createdAfter": "2026-01-01T00:00:00Z", "createdBefore": "2026-02-01T00:00:00Z"},
    )
    by_alice, _ = await page_through(
        graphql, demo.tokens["client"], filter={"uploadedBy": str(demo_id("alice"))}
    )

    # then
    assert set(in_january) == set(january)
    assert set(january) <= set(by_alice)
    assert {demo.group_orders[f"acme-{s}"] for s in ("pending", "completed")} <= set(by_alice)


@pytest.mark.parametrize(
    ("variables", "param"),
    [
        ({"first": 101}, "first"),
        ({"first": 0}, "first"),
        ({"after": "not-a-cursor"}, "after"),
        ({"filter": {"clientId": ["nope"]}}, "filter.clientId"),
        ({"filter": {"createdAfter": "2026-01-01T00:00:00"}}, "filter.createdAfter"),
    ],
)
async def test_bad_arguments_name_the_parameter(
    graphql: GraphQL, demo: DemoData, variables: dict[str, Any], param: str
) -> None:
    # when
    response = await graphql.post(PAGE, variables, token=demo.tokens["employee"])

    # then
    body = response.json()
    assert body["data"] == {"groupOrders": None}
    assert body["errors"][0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": param,
    }


async def test_nodes_follow_the_view(graphql: GraphQL, demo: DemoData) -> None:
    # when
    refused = await graphql.post(
        "{ groupOrders(view: inital_upload) { edges { node { id rejectedOrders } } } }",
        token=demo.tokens["client"],
    )
    worker = await graphql.post(
        "{ groupOrders(view: planoworker_processing_view, first: 1) { edges { node "
        "{ queueJobId } } } }",
        token=demo.tokens["employee"],
    )

    # then
    assert refused.json()["errors"][0]["extensions"]["fields"] == ["rejectedOrders"]
    assert "queueJobId" in worker.json()["data"]["groupOrders"]["edges"][0]["node"]


STATS = """
query($filter: GroupOrderFilter) {
  groupOrderStats(filter: $filter, topRejectionCodes: 3) {
    groupOrders byStatus { status count } byOutcome { outcome count }
    acceptedRows rejectedRows topRejectionCodes { code rows }
    byClient { client { name } groupOrders acceptedRows rejectedRows }
  }
}
"""


async def test_stats_count_what_the_caller_may_see(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine
) -> None:
    # given: two all-rejected group orders of Borealis beside the demo's
    await insert_group_orders(
        engine,
        "borealis",
        2,
        start=datetime(2026, 3, 1, tzinfo=UTC),
        status="completed",
        total_orders=4,
        rejected_orders=4,
    )

    # when
    liaison = await graphql.post(STATS, token=demo.tokens["liaison"])
    client = await graphql.post(STATS, token=demo.tokens["client"])

    # then: the demo gives each client one group order per status, a completed one with
    # 10 accepted and 2 rejected rows, and a processing one with 5 and 1
    assert liaison.json()["data"]["groupOrderStats"] == {
        "groupOrders": 12,
        "byStatus": [
            {"status": "pending", "count": 2},
            {"status": "processing", "count": 2},
            {"status": "completed", "count": 4},
            {"status": "failed", "count": 2},
            {"status": "cancelled", "count": 2},
        ],
        "byOutcome": [
            {"outcome": "all_accepted", "count": 0},
            {"outcome": "partial", "count": 2},
            {"outcome": "all_rejected", "count": 2},
        ],
        "acceptedRows": 30,
        "rejectedRows": 14,
        "topRejectionCodes": [],
        "byClient": [
            {
                "client": {"name": "Borealis Foods"},
                "groupOrders": 7,
                "acceptedRows": 15,
                "rejectedRows": 11,
            },
            {
                "client": {"name": "Cedar Clinics"},
                "groupOrders": 5,
                "acceptedRows": 15,
                "rejectedRows": 3,
            },
        ],
    }
    assert client.json()["data"]["groupOrderStats"]["byClient"] is None
    assert client.json()["data"]["groupOrderStats"]["groupOrders"] == 5


async def test_stats_list_the_rejection_codes_that_occur_most(
    client: httpx.AsyncClient, graphql: GraphQL, demo: DemoData, jobs: Runner
) -> None:
    # given: one upload whose rows fail in known ways
    rows = [
        good_row(1, quantity="0"),
        good_row(2, quantity="x", email="@"),
        good_row(3, quantity="-2"),
        good_row(4, email="no"),
        good_row(5, country="Atlantis"),
        good_row(6),
    ]
    response = await upload(client, demo.tokens["client"], csv_bytes(rows))
    group_order_id = response.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
    await jobs.run_until_idle()

    # when
    stats = await graphql.post(STATS, token=demo.tokens["client"])

    # then
    assert stats.json()["data"]["groupOrderStats"]["topRejectionCodes"] == [
        {"code": "invalid-quantity", "rows": 3},
        {"code": "invalid-email", "rows": 2},
        {"code": "invalid-country", "rows": 1},
    ]
    assert group_order_id
