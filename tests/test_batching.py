"""HTTP batching: a JSON array of operations in one POST, answered by an array of results.

Each slot of the answer is the body a single request with that operation would get;
the token is read once for the whole batch, and the batch's size is checked first.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.enums import GroupOrderView
from group_orders.services.demo import DemoData, demo_id
from group_orders.services.routes import RouteSwitches, set_deployed
from group_orders.settings import Settings
from group_orders.views import GROUP_ORDER_VIEWS

JSON = "application/json"
GRAPHQL_JSON = "application/graphql-response+json"
GROUP_ORDER = "query($id: ID!) { groupOrder(id: $id) { id status } }"
UNKNOWN_ID = str(uuid.UUID(int=1))
NO_QUERY = 'The request holds no GraphQL query: send {"query": "..."}.'


def headers(token: str | None = None, accept: str | None = None) -> dict[str, str]:
    sent = {}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if accept is not None:
        sent["Accept"] = accept
    return sent


def ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "extensions": {"status": "action-successful"}}


def request_error(
    code: str, status: int, message: str, param: str | None = None, **more: Any
) -> dict[str, Any]:
    """The body of an operation that never executed: errors and no ``data``."""
    extensions: dict[str, Any] = {"code": code, "status": status}
    if param is not None:
        extensions["param"] = param
    error: dict[str, Any] = {"message": message}
    error.update(more)
    error["extensions"] = extensions
    return {"errors": [error]}


def group_order_error(message: str, column: int, **extensions: Any) -> dict[str, Any]:
    """The body of a groupOrder that executed and failed: the error beside null data."""
    return {
        "errors": [
            {
                "message": message,
                "locations": [{"line": 1, "column": column}],
                "path": ["groupOrder"],
                "extensions": {"code": "invalid-param", "status": 400, **extensions},
            }
        ],
        "data": {"groupOrder": None},
    }


def mixed_batch(demo: DemoData) -> list[tuple[Any, dict[str, Any]]]:
    """Twenty items, good and bad, each with the result its slot must hold."""
    ids = demo.group_orders
    initial_upload = GROUP_ORDER_VIEWS[GroupOrderView.inital_upload]
    return [
        (
            {"query": GROUP_ORDER, "variables": {"id": ids["acme-completed"]}},
            ok({"groupOrder": {"id": ids["acme-completed"], "status": "completed"}}),
        ),
        (
            {"query": GROUP_ORDER, "variables": {"id": UNKNOWN_ID}},
            group_order_error("No group order has this id.", 19, param="id"),
        ),
        (
            {"query": "{ session { userId }"},
            request_error(
                "invalid-param",
                400,
                "Syntax Error: Expected Name, found <EOF>.",
                "query",
                locations=[{"line": 1, "column": 21}],
            ),
        ),
        (
            {"query": GROUP_ORDER},
            request_error("missing-param", 400, "The variable '$id' is required.", "id"),
        ),
        (
            {
                "query": "query($id: ID!) { groupOrder(id: $id, view: inital_upload) "
                "{ id successfulOrders } }",
                "variables": {"id": ids["acme-completed"]},
            },
            group_order_error(
                "The view 'inital_upload' does not hold successfulOrders. Its fields are: "
                f"{', '.join(initial_upload.fields)}.",
                19,
                param="view",
                fields=["successfulOrders"],
                viewFields=list(initial_upload.fields),
            ),
        ),
        (
            {"query": "{ session(view: minimal) { userId } }"},
            request_error(
                "route-not-found", 404, "The route 'session' is not deployed.", "session"
            ),
        ),
        ("not an operation", request_error("no-params-decoded", 400, NO_QUERY, "query")),
        (
            {"variables": {"id": ids["acme-pending"]}},
            request_error("no-params-decoded", 400, NO_QUERY, "query"),
        ),
        (
            {"query": 42},
            request_error("invalid-param", 400, "'query' must be a string.", "query"),
        ),
        (
            {"query": GROUP_ORDER, "variables": {"id": ids["acme-pending"]}},
            ok({"groupOrder": {"id": ids["acme-pending"], "status": "pending"}}),
        ),
        (
            # Another client's group order is answered exactly as an unknown id.
            {"query": GROUP_ORDER, "variables": {"id": ids["borealis-completed"]}},
            group_order_error("No group order has this id.", 19, param="id"),
        ),
        (
            {"query": GROUP_ORDER, "variables": "not an object"},
            request_error("invalid-param", 400, "'variables' must be a JSON object.", "variables"),
        ),
        (
            {"query": "{ __typename }"},
            ok({"__typename": "Query"}),
        ),
        (
            {"query": GROUP_ORDER, "variables": {"id": ids["acme-failed"]}},
            ok({"groupOrder": {"id": ids["acme-failed"], "status": "failed"}}),
        ),
        (
            {
                "query": "query A { session { userId } } "
                "query B($id: ID!) { groupOrder(id: $id) { status } }",
                "variables": {"id": ids["acme-processing"]},
                "operationName": "B",
            },
            ok({"groupOrder": {"status": "processing"}}),
        ),
        (
            {"query": "{ groupOrder { id } }"},
            request_error(
                "missing-param",
                400,
                "The argument 'id' of 'groupOrder' is required.",
                "id",
                locations=[{"line": 1, "column": 3}],
            ),
        ),
        (
            {"query": '{ groupOrder(id: "x") { noSuchField } }'},
            request_error(
                "invalid-param",
                400,
                "Cannot query field 'noSuchField' on type 'GroupOrder'.",
                locations=[{"line": 1, "column": 25}],
            ),
        ),
        (
            {
                "query": "query($id: ID!) { groupOrder(id: $id) "
                "{ totalOrders successfulOrders rejectedOrders } }",
                "variables": {"id": ids["acme-processing"]},
            },
            ok({"groupOrder": {"totalOrders": 12, "successfulOrders": 5, "rejectedOrders": 1}}),
        ),
        (
            {"query": "query A { __typename } query B { __typename }"},
            request_error(
                "missing-param",
                400,
                "The document holds several operations: name one in operationName.",
                "operationName",
            ),
        ),
        (
            {"query": GROUP_ORDER, "variables": {"id": ids["acme-cancelled"]}},
            ok({"groupOrder": {"id": ids["acme-cancelled"], "status": "cancelled"}}),
        ),
    ]


@pytest.mark.parametrize(("accept", "media_type"), [(None, JSON), (GRAPHQL_JSON, GRAPHQL_JSON)])
async def test_a_batch_of_twenty_mixed_operations_answers_each_in_its_slot(
    client: httpx.AsyncClient,
    demo: DemoData,
    engine: AsyncEngine,
    accept: str | None,
    media_type: str,
) -> None:
    # given: the session route is withdrawn, and a batch at the limit of 20
    await set_deployed(engine, "session", deployed=False)
    items, expected = zip(*mixed_batch(demo), strict=True)
    sent = headers(demo.tokens["client"], accept)

    # when
    response = await client.post("/graphql", json=list(items), headers=sent)

    # then: 200 for the array in either media type; each slot holds its own result
    assert (response.status_code, response.headers["content-type"]) == (200, media_type)
    assert response.json() == list(expected)


async def test_each_slot_is_the_body_a_single_request_gets(
    client: httpx.AsyncClient, demo: DemoData, engine: AsyncEngine
) -> None:
    # given
    await set_deployed(engine, "session", deployed=False)
    items = [item for item, _result in mixed_batch(demo)]
    sent = headers(demo.tokens["client"])

    # when
    batch = await client.post("/graphql", json=items, headers=sent)
    singles = [await client.post("/graphql", json=item, headers=sent) for item in items]

    # then: neighbours change nothing, good or bad
    assert batch.json() == [single.json() for single in singles]


async def test_the_order_sent_is_the_order_answered(
    client: httpx.AsyncClient, demo: DemoData
) -> None:
    # given: every demo group order, in an order that is neither sorted nor as seeded
    ids = sorted(demo.group_orders.values(), key=lambda value: value[::-1])
    items = [{"query": GROUP_ORDER, "variables": {"id": value}} for value in ids]

    # when
    response = await client.post("/graphql", json=items, headers=headers(demo.tokens["employee"]))

    # then
    assert [result["data"]["groupOrder"]["id"] for result in response.json()] == ids


async def test_operations_run_at_the_same_time(
    client: httpx.AsyncClient, demo: DemoData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a route check that lets no operation on until three are waiting in it
    barrier = asyncio.Barrier(3)
    check = RouteSwitches.check

    async def waiting_check(switches: RouteSwitches, routes: tuple[str, ...]) -> None:
        await asyncio.wait_for(barrier.wait(), timeout=5)
        await check(switches, routes)

    monkeypatch.setattr(RouteSwitches, "check", waiting_check)
    items = [{"query": "{ session(view: minimal) { userId } }"}] * 3

    # when
    response = await client.post("/graphql", json=items, headers=headers(demo.tokens["client"]))

    # then
    assert response.json() == [ok({"session": {"userId": str(demo_id("alice"))}})] * 3


@pytest.mark.parametrize("token", ["client", "gos_" + "x" * 43], ids=["good-token", "bad-token"])
async def test_a_batch_over_the_limit_is_one_error(
    client: httpx.AsyncClient, demo: DemoData, token: str
) -> None:
    # given: one more than the default limit of 20
    items = [{"query": GROUP_ORDER, "variables": {"id": demo.group_orders["acme-pending"]}}] * 21

    # when: the size is decided before the token is read
    response = await client.post(
        "/graphql", json=items, headers=headers(demo.tokens.get(token, token))
    )

    # then
    assert (response.status_code, response.headers["content-type"], response.json()) == (
        400,
        JSON,
        request_error(
            "invalid-param",
            400,
            "The batch holds 21 operations, over the limit of 20 per request.",
            "max_batch_operations",
        ),
    )


@pytest.mark.parametrize("accept", [None, GRAPHQL_JSON])
async def test_an_empty_batch_holds_no_query(
    client: httpx.AsyncClient, demo: DemoData, accept: str | None
) -> None:
    # when
    response = await client.post(
        "/graphql", json=[], headers=headers(demo.tokens["client"], accept)
    )

    # then
    assert (response.status_code, response.json()) == (
        400,
        request_error("no-params-decoded", 400, NO_QUERY, "query"),
    )


@pytest.mark.parametrize(
    ("token", "status", "body"),
    [
        (
            "gos_" + "x" * 43,
            401,
            request_error(
                "invalid-token",
                401,
                "The token is not valid. Sign in again or use another token.",
                "token",
            ),
        ),
        (
            "expired",
            401,
            request_error(
                "session-expired", 401, "The session has expired. Sign in again.", "token"
            ),
        ),
        (
            None,
            400,
            request_error(
                "missing-param",
                400,
                "A token is required: send it as 'Authorization: Bearer <token>'.",
                "token",
            ),
        ),
    ],
    ids=["invalid-token", "session-expired", "no-token"],
)
async def test_a_token_failure_answers_once_for_the_whole_batch(
    client: httpx.AsyncClient, demo: DemoData, token: str | None, status: int, body: dict
) -> None:
    # given: good operations, one of them needing no token
    items = [
        {"query": GROUP_ORDER, "variables": {"id": demo.group_orders["acme-pending"]}},
        {"query": "{ __typename }"},
        {"query": GROUP_ORDER, "variables": {"id": demo.group_orders["acme-failed"]}},
    ]
    # A demo token by its name, or the token itself.
    sent = headers(token and demo.tokens.get(token, token), GRAPHQL_JSON)

    # when
    response = await client.post("/graphql", json=items, headers=sent)

    # then: one error, not an array, with the table's status
    assert (response.status_code, response.json()) == (status, body)


async def test_a_batch_of_introspection_needs_no_token(client: httpx.AsyncClient) -> None:
    # given: malformed items fail in their slots and do not ask for a token
    items = [
        {"query": "{ __schema { queryType { name } } }"},
        {"variables": {}},
        {"query": "{ __typename }"},
    ]

    # when
    response = await client.post("/graphql", json=items)

    # then
    assert (response.status_code, response.json()) == (
        200,
        [
            ok({"__schema": {"queryType": {"name": "Query"}}}),
            request_error("no-params-decoded", 400, NO_QUERY, "query"),
            ok({"__typename": "Query"}),
        ],
    )


async def test_an_upload_cannot_be_a_batch(client: httpx.AsyncClient, demo: DemoData) -> None:
    # given: multipart 'operations' holding an array
    operations = [
        {
            "query": "mutation($file: Upload!) { createGroupOrder(file: $file) { dryRun "
            "{ totalRows } } }",
            "variables": {"file": None},
        }
    ]

    # when
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["0.variables.file"]}),
        },
        files={"0": ("orders.csv", b"external_order_id\n", "text/csv")},
        headers={**headers(demo.tokens["client"]), "GraphQL-Require-Preflight": "1"},
    )

    # then
    assert (response.status_code, response.json()) == (
        400,
        request_error(
            "invalid-param",
            400,
            "'operations' must be one operation and 'map' must map each file field to "
            'variable paths such as ["variables.file"].',
            "map",
        ),
    )


def test_the_limit_is_a_setting() -> None:
    # when
    settings = Settings.from_env({"GROUP_ORDERS_MAX_BATCH_OPERATIONS": "5"})

    # then
    assert (settings.max_batch_operations, Settings().max_batch_operations) == (5, 20)
