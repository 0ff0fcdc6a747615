"""Every documented status code, reached the way a client would reach it.

Each test sends a real request to the app and asserts the whole response: HTTP status,
content type and body.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import GraphQL
from group_orders.db.tables import group_order_table
from group_orders.errors import STATUS_CODES
from group_orders.services.demo import DemoData, demo_id
from group_orders.services.routes import set_deployed
from group_orders.storage.links import LinkSigner, ResultFile

JSON = "application/json"
GRAPHQL_JSON = "application/graphql-response+json"

# The contract's tables, restated here so that the registry is checked, not echoed.
CONTRACT = {
    "action-successful": 200,
    "invalid-token": 401,
    "session-expired": 401,
    "client-required": 401,
    "missing-param": 400,
    "invalid-param": 400,
    "application-crash": 500,
    "mandrill-email-failed": 500,
    "invalid-content-type": 400,
    "route-non-existent": 500,
    "no-params-decoded": 400,
    "invalid-encoded-params": 400,
    "route-not-found": 404,
    "service-not-found": 503,
    "identify-request-error": 500,
    "link-expired": 410,
    "payload-too-large": 413,
    "rate-limited": 429,
    # Beyond the seed too: a WebSocket handshake from a page of a foreign origin.
    "origin-not-allowed": 403,
}

SESSION_QUERY = "{ session(view: minimal) { userId } }"


def error_body(code: str, message: str, param: str | None = None, **extra: object) -> dict:
    extensions: dict[str, object] = {"code": code, "status": CONTRACT[code]}
    if param is not None:
        extensions["param"] = param
    extensions.update(extra)
    return {"errors": [{"message": message, "extensions": extensions}]}


def assert_response(
    response: httpx.Response, status: int, body: dict, media_type: str = JSON
) -> None:
    assert (response.status_code, response.headers["content-type"], response.json()) == (
        status,
        media_type,
        body,
    )


def test_the_registry_holds_the_contract_table() -> None:
    # when / then
    assert {code: status.http_status for code, status in STATUS_CODES.items()} == CONTRACT


async def test_action_successful(graphql: GraphQL, demo: DemoData) -> None:
    # when
    response = await graphql.post(SESSION_QUERY, token=demo.tokens["client"])

    # then
    assert_response(
        response,
        200,
        {
            "data": {"session": {"userId": str(demo_id("alice"))}},
            "extensions": {"status": "action-successful"},
        },
    )


async def test_invalid_token(graphql: GraphQL) -> None:
    # when
    response = await graphql.post(SESSION_QUERY, token="gos_" + "x" * 43)

    # then
    assert_response(
        response,
        401,
        error_body(
            "invalid-token",
            "The token is not valid. Sign in again or use another token.",
            "token",
        ),
    )


async def test_session_expired(graphql: GraphQL, demo: DemoData) -> None:
    # when: the demo's expired session was signed in eight days ago
    response = await graphql.post(SESSION_QUERY, token=demo.tokens["expired"])

    # then
    assert_response(
        response,
        401,
        error_body("session-expired", "The session has expired. Sign in again.", "token"),
    )


async def test_client_required_still_returns_the_session(graphql: GraphQL, demo: DemoData) -> None:
    # when: Nora has no client, employee or liaison record
    response = await graphql.post(SESSION_QUERY, token=demo.tokens["no-record"])

    # then
    body = response.json()
    session = body["errors"][0]["extensions"]["session"]
    assert (response.status_code, response.headers["content-type"]) == (200, JSON)
    assert body == {
        "data": {"session": None},
        "errors": [
            {
                "message": "This user has no client, employee or liaison record. Register "
                "as a client first.",
                "locations": [{"line": 1, "column": 3}],
                "path": ["session"],
                "extensions": {
                    "code": "client-required",
                    "status": 401,
                    "session": {
                        "userId": str(demo_id("nora")),
                        "user": {
                            "id": str(demo_id("nora")),
                            "email": "nora@example.com",
                            "name": "Nora Newcomer",
                        },
                        "application": "planoauth",
                        "role": None,
                        "client": None,
                        "employee": None,
                        "liaison": None,
                        "createdAt": session["createdAt"],
                        "lastUsedAt": session["lastUsedAt"],
                        "expiresAt": session["expiresAt"],
                        "rememberMe": False,
                    },
                },
            }
        ],
    }
    # unused for 72 hours comes before 7 days old for a session this young
    last_used = datetime.fromisoformat(session["lastUsedAt"])
    assert datetime.fromisoformat(session["expiresAt"]) == last_used + timedelta(hours=72)


async def test_missing_param_token(graphql: GraphQL) -> None:
    # when
    response = await graphql.post(SESSION_QUERY)

    # then
    assert_response(
        response,
        400,
        error_body(
            "missing-param",
            "A token is required: send it as 'Authorization: Bearer <token>'.",
            "token",
        ),
    )


@pytest.mark.parametrize(
    ("accept", "status", "media_type"), [(None, 200, JSON), (GRAPHQL_JSON, 400, GRAPHQL_JSON)]
)
async def test_missing_param_argument(
    graphql: GraphQL, demo: DemoData, accept: str | None, status: int, media_type: str
) -> None:
    # when: groupOrder's id is required
    response = await graphql.post(
        "{ groupOrder { id } }", token=demo.tokens["client"], accept=accept
    )

    # then: a request error, so no data key at all
    assert_response(
        response,
        status,
        {
            "errors": [
                {
                    "message": "The argument 'id' of 'groupOrder' is required.",
                    "locations": [{"line": 1, "column": 3}],
                    "extensions": {"code": "missing-param", "status": 400, "param": "id"},
                }
            ]
        },
        media_type,
    )


async def test_missing_param_variable(graphql: GraphQL, demo: DemoData) -> None:
    # when
    response = await graphql.post(
        "query GroupOrder($id: ID!) { groupOrder(id: $id) { id } }",
        {},
        token=demo.tokens["client"],
    )

    # then
    assert_response(
        response,
        200,
        error_body("missing-param", "The variable '$id' is required.", "id"),
    )


async def test_invalid_param_unknown_id(graphql: GraphQL, demo: DemoData) -> None:
    # when
    response = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id) { id } }",
        {"id": str(uuid.uuid4())},
        token=demo.tokens["client"],
    )

    # then
    assert_response(
        response,
        200,
        {
            "data": {"groupOrder": None},
            "errors": [
                {
                    "message": "No group order has this id.",
                    "locations": [{"line": 1, "column": 19}],
                    "path": ["groupOrder"],
                    "extensions": {"code": "invalid-param", "status": 400, "param": "id"},
                }
            ],
        },
    )


async def test_invalid_param_syntax_error(graphql: GraphQL, demo: DemoData) -> None:
    # when
    response = await graphql.post(
        "{ session { userId }", token=demo.tokens["client"], accept=GRAPHQL_JSON
    )

    # then
    assert_response(
        response,
        400,
        {
            "errors": [
                {
                    "message": "Syntax Error: Expected Name, found <EOF>.",
                    "locations": [{"line": 1, "column": 21}],
                    "extensions": {"code": "invalid-param", "status": 400, "param": "query"},
                }
            ]
        },
        GRAPHQL_JSON,
    )


async def test_invalid_param_bad_enum_value_names_the_argument(
    graphql: GraphQL, demo: DemoData
) -> None:
    # when
    response = await graphql.post(
        '{ groupOrder(id: "x", view: everything) { id } }', token=demo.tokens["client"]
    )

    # then: the code and the argument come from the AST, not from the message
    error = response.json()["errors"][0]
    assert (response.status_code, "data" in response.json()) == (200, False)
    assert error["extensions"] == {"code": "invalid-param", "status": 400, "param": "view"}


async def test_application_crash_is_masked_and_logged(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a row whose status no version of the service ever wrote
    group_order_id = demo.group_orders["acme-completed"]
    async with engine.begin() as connection:
        await connection.execute(
            sa.update(group_order_table)
            .where(group_order_table.c.id == uuid.UUID(group_order_id))
            .values(status="exploded")
        )

    # when
    with caplog.at_level(logging.ERROR, logger="group_orders.graphql"):
        response = await graphql.post(
            "query($id: ID!) { groupOrder(id: $id) { id status } }",
            {"id": group_order_id},
            token=demo.tokens["client"],
        )

    # then
    body = response.json()
    error_id = body["errors"][0]["extensions"]["errorId"]
    assert (response.status_code, response.headers["content-type"]) == (200, JSON)
    assert body == {
        "data": {"groupOrder": None},
        "errors": [
            {
                "message": f"An unexpected error occurred. Quote errorId {error_id}.",
                "locations": [{"line": 1, "column": 19}],
                "path": ["groupOrder"],
                "extensions": {
                    "code": "application-crash",
                    "status": 500,
                    "errorId": error_id,
                },
            }
        ],
    }
    assert "exploded" not in response.text
    assert any(error_id in record.getMessage() for record in caplog.records)


async def test_invalid_content_type(client: httpx.AsyncClient, demo: DemoData) -> None:
    # when
    response = await client.post(
        "/graphql",
        content=SESSION_QUERY,
        headers={"Content-Type": "text/plain", "Authorization": f"Bearer {demo.tokens['client']}"},
    )

    # then
    assert_response(
        response,
        400,
        error_body(
            "invalid-content-type",
            "Send the request as 'Content-Type: application/json' (or multipart/form-data "
            "for an upload).",
            "content-type",
        ),
    )


async def test_route_non_existent(client: httpx.AsyncClient) -> None:
    # when
    response = await client.get("/api/v1/group_orders")

    # then
    assert_response(
        response,
        500,
        error_body(
            "route-non-existent",
            "GET /api/v1/group_orders is not served here. GraphQL is at /graphql.",
            "path",
        ),
    )


@pytest.mark.parametrize("body", [b"{}", b"[]", b"null", b'{"query": ""}', b'"hello"'])
async def test_no_params_decoded(client: httpx.AsyncClient, body: bytes) -> None:
    # when
    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )

    # then: an empty batch holds no query either
    assert_response(
        response,
        400,
        error_body(
            "no-params-decoded",
            'The request holds no GraphQL query: send {"query": "..."}.',
            "query",
        ),
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": ',
        b'{"query": "\xff\xfe"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"query": "{ session { userId } }", "variables": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    ],
    ids=["truncated", "not-utf8", "deep-array", "deep-variables"],
)
async def test_invalid_encoded_params(client: httpx.AsyncClient, body: bytes) -> None:
    # when
    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )

    # then
    assert_response(
        response,
        400,
        error_body(
            "invalid-encoded-params",
            "The body is not valid JSON in UTF-8 (or it is nested too deeply).",
            "body",
        ),
    )


@pytest.mark.parametrize(
    ("accept", "status", "media_type"), [(JSON, 200, JSON), (GRAPHQL_JSON, 404, GRAPHQL_JSON)]
)
async def test_route_not_found(
    graphql: GraphQL,
    demo: DemoData,
    engine: AsyncEngine,
    accept: str,
    status: int,
    media_type: str,
) -> None:
    # given
    await set_deployed(engine, "session", deployed=False)

    # when
    response = await graphql.post(SESSION_QUERY, token=demo.tokens["client"], accept=accept)

    # then
    assert_response(
        response,
        status,
        error_body("route-not-found", "The route 'session' is not deployed.", "session"),
        media_type,
    )


async def test_route_deployed_again_answers(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine
) -> None:
    # given
    await set_deployed(engine, "session", deployed=False)
    await set_deployed(engine, "session", deployed=True)

    # when
    response = await graphql.post(SESSION_QUERY, token=demo.tokens["client"])

    # then
    assert response.json()["data"] == {"session": {"userId": str(demo_id("alice"))}}


@pytest.mark.parametrize(
    ("accept", "status", "media_type"), [(JSON, 200, JSON), (GRAPHQL_JSON, 503, GRAPHQL_JSON)]
)
async def test_service_not_found(
    graphql: GraphQL,
    demo: DemoData,
    engine: AsyncEngine,
    accept: str,
    status: int,
    media_type: str,
) -> None:
    # given
    await set_deployed(engine, "group-orders", deployed=False)

    # when
    response = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id) { id } }",
        {"id": demo.group_orders["acme-pending"]},
        token=demo.tokens["client"],
        accept=accept,
    )

    # then
    assert_response(
        response,
        status,
        error_body(
            "service-not-found",
            "The API service 'group-orders' of the route 'groupOrder' is not deployed.",
            "groupOrder",
        ),
        media_type,
    )


async def test_identify_request_error(
    graphql: GraphQL, demo: DemoData, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # given: the sessions table is gone, so the token cannot be read
    async with engine.begin() as connection:
        await connection.exec_driver_sql("DROP TABLE session")

    # when
    with caplog.at_level(logging.ERROR, logger="group_orders.web"):
        response = await graphql.post(SESSION_QUERY, token=demo.tokens["client"])

    # then
    error_id = response.json()["errors"][0]["extensions"]["errorId"]
    assert_response(
        response,
        500,
        error_body(
            "identify-request-error",
            "An internal error occurred before the request was identified. Quote errorId "
            f"{error_id}.",
            errorId=error_id,
        ),
    )
    assert "no such table" not in response.text
    assert any(error_id in record.getMessage() for record in caplog.records)


async def test_link_expired(client: httpx.AsyncClient, demo: DemoData) -> None:
    # given: a link signed two hours ago that lived one hour
    signer = LinkSigner("development-only-secret-change-me", timedelta(hours=1))
    link = signer.sign(
        "http://testserver",
        uuid.UUID(demo.group_orders["acme-completed"]),
        ResultFile.normalized_csv,
        datetime.now(UTC) - timedelta(hours=2),
    )

    # when
    response = await client.get(link)

    # then
    assert_response(
        response,
        410,
        error_body(
            "link-expired",
            "This link has expired. Ask the API for the group order again to get a new one.",
            "expires",
        ),
    )


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
async def test_payload_too_large(client: httpx.AsyncClient, declared: bool) -> None:
    # given: a body over the default limit of 1,000,000 bytes
    body = b'{"query": "' + b" " * 1_100_000 + b'{ session { userId } }"}'

    async def stream():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    # when
    response = await client.post(
        "/graphql",
        content=body if declared else stream(),
        headers={"Content-Type": "application/json"},
    )

    # then
    assert_response(
        response,
        413,
        error_body(
            "payload-too-large", "The request body is over the limit of 1000000 bytes.", "body"
        ),
    )
