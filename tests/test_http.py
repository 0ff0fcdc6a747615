"""GraphQL over HTTP: methods, media types, GraphiQL, file links."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from conftest import GraphQL
from group_orders.services.demo import DemoData, demo_id
from group_orders.settings import Settings
from group_orders.storage.links import LinkSigner, ResultFile

JSON = "application/json"
GRAPHQL_JSON = "application/graphql-response+json"
GROUP_ORDER_QUERY = "query GroupOrder($id: ID!) { groupOrder(id: $id) { id status } }"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_get_runs_a_query_with_variables(client: httpx.AsyncClient, demo: DemoData) -> None:
    # given
    group_order_id = demo.group_orders["acme-failed"]

    # when
    response = await client.get(
        "/graphql",
        params={"query": GROUP_ORDER_QUERY, "variables": json.dumps({"id": group_order_id})},
        headers=bearer(demo.tokens["client"]),
    )

    # then
    assert (response.status_code, response.headers["content-type"], response.json()) == (
        200,
        JSON,
        {
            "data": {"groupOrder": {"id": group_order_id, "status": "failed"}},
            "extensions": {"status": "action-successful"},
        },
    )


async def test_get_refuses_a_mutation_with_405(client: httpx.AsyncClient, demo: DemoData) -> None:
    # when
    response = await client.get(
        "/graphql",
        params={"query": "mutation { anything }"},
        headers=bearer(demo.tokens["client"]),
    )

    # then: the spec's 405, the contract's code
    assert (response.status_code, response.headers["allow"], response.json()) == (
        405,
        "POST",
        {
            "errors": [
                {
                    "message": "Mutations are sent with POST, never GET.",
                    "extensions": {"code": "invalid-param", "status": 400, "param": "query"},
                }
            ]
        },
    )


async def test_get_with_bad_variables_json(client: httpx.AsyncClient, demo: DemoData) -> None:
    # when
    response = await client.get(
        "/graphql",
        params={"query": GROUP_ORDER_QUERY, "variables": "{not json"},
        headers=bearer(demo.tokens["client"]),
    )

    # then
    assert (response.status_code, response.json()["errors"][0]["extensions"]) == (
        400,
        {"code": "invalid-encoded-params", "status": 400, "param": "variables"},
    )


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, JSON),
        ("*/*", JSON),
        (JSON, JSON),
        (GRAPHQL_JSON, GRAPHQL_JSON),
        (f"{GRAPHQL_JSON}, {JSON};q=0.9", GRAPHQL_JSON),
        (f"{GRAPHQL_JSON};q=0.5, {JSON}", JSON),
    ],
)
async def test_media_type_follows_accept(
    graphql: GraphQL, demo: DemoData, accept: str | None, media_type: str
) -> None:
    # when
    response = await graphql.post(
        "{ session(view: minimal) { userId } }", token=demo.tokens["client"], accept=accept
    )

    # then
    assert (response.status_code, response.headers["content-type"], response.json()) == (
        200,
        media_type,
        {
            "data": {"session": {"userId": str(demo_id("alice"))}},
            "extensions": {"status": "action-successful"},
        },
    )


@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (GRAPHQL_JSON, 400)])
async def test_validation_errors_follow_the_spec(
    graphql: GraphQL, demo: DemoData, accept: str, status: int
) -> None:
    # when
    response = await graphql.post(
        "{ session { noSuchField } }", token=demo.tokens["client"], accept=accept
    )

    # then: a request error has no data key
    body = response.json()
    assert (response.status_code, sorted(body)) == (status, ["errors"])
    assert body["errors"][0]["extensions"] == {"code": "invalid-param", "status": 400}


async def test_field_errors_are_200_with_graphql_response_json(
    graphql: GraphQL, demo: DemoData
) -> None:
    # when: the request is valid; the id is not one the client can see
    response = await graphql.post(
        '{ groupOrder(id: "' + str(uuid.uuid4()) + '") { id } }',
        token=demo.tokens["client"],
        accept=GRAPHQL_JSON,
    )

    # then
    assert (response.status_code, response.json()["data"]) == (200, {"groupOrder": None})


async def test_several_operations_need_an_operation_name(graphql: GraphQL, demo: DemoData) -> None:
    # when
    response = await graphql.post(
        "query A { session { userId } } query B { session { expiresAt } }",
        token=demo.tokens["client"],
    )

    # then
    assert response.json() == {
        "errors": [
            {
                "message": "The document holds several operations: name one in operationName.",
                "extensions": {"code": "missing-param", "status": 400, "param": "operationName"},
            }
        ]
    }


async def test_an_operation_name_picks_the_operation(
    client: httpx.AsyncClient, demo: DemoData
) -> None:
    # when
    response = await client.post(
        "/graphql",
        json={
            "query": "query A { session { userId } } query B { session(view: minimal) "
            "{ expiresAt } }",
            "operationName": "A",
        },
        headers=bearer(demo.tokens["client"]),
    )

    # then
    assert response.json()["data"] == {"session": {"userId": str(demo_id("alice"))}}


async def test_other_methods_are_refused(client: httpx.AsyncClient) -> None:
    # when
    response = await client.put("/graphql", json={"query": "{ __typename }"})

    # then
    assert (response.status_code, response.headers["allow"], response.json()) == (
        405,
        "GET, POST",
        {
            "errors": [
                {
                    "message": "/graphql answers GET and POST only.",
                    "extensions": {
                        "code": "route-non-existent",
                        "status": 500,
                        "param": "method",
                    },
                }
            ]
        },
    )


async def test_introspection_needs_no_token(graphql: GraphQL) -> None:
    # when
    response = await graphql.post("{ __schema { queryType { name } } }")

    # then
    assert response.json() == {
        "data": {"__schema": {"queryType": {"name": "Query"}}},
        "extensions": {"status": "action-successful"},
    }


async def test_a_browser_gets_graphiql_with_a_token_field(client: httpx.AsyncClient) -> None:
    # when
    response = await client.get("/graphql", headers={"Accept": "text/html,*/*;q=0.8"})

    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="token"' in response.text
    assert 'defaultHeaders["Authorization"] = "Bearer " + token' in response.text
    # the same token goes into connection_init for subscriptions
    assert "wsConnectionParams: defaultHeaders," in response.text
    # the IDE's assets come from the service itself, never from another host
    assert "/graphiql/static/graphiql.min.js" in response.text
    assert re.findall(r'(?:src|href)="([^"]+)"', response.text) == [
        "data:,",
        "/graphiql/static/graphiql.min.css",
        "/graphiql/static/plugin-explorer.css",
        "/graphiql/static/react.production.min.js",
        "/graphiql/static/react-dom.production.min.js",
        "/graphiql/static/graphiql.min.js",
        "/graphiql/static/plugin-explorer.umd.js",
    ]


async def test_graphiql_assets_are_served_with_their_licences(client: httpx.AsyncClient) -> None:
    # when
    script = await client.get("/graphiql/static/graphiql.min.js")
    licences = await client.get("/graphiql/static/LICENSES.txt")

    # then
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "GraphiQL" in script.text
    assert licences.status_code == 200
    assert "MIT License" in licences.text


async def test_graphiql_is_off_in_production(settings: Settings) -> None:
    # given
    from group_orders.app import create_app

    app = create_app(settings.with_changes(environment="production", secret_key="s" * 40))

    # when
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/graphql", headers={"Accept": "text/html"})
            asset = await client.get("/graphiql/static/graphiql.min.js")

    # then
    assert (response.status_code, response.json()["errors"][0]["extensions"]["code"]) == (
        400,
        "no-params-decoded",
    )
    assert asset.json()["errors"][0]["extensions"]["code"] == "route-non-existent"


async def test_a_signed_link_downloads_the_file(
    graphql: GraphQL, client: httpx.AsyncClient, demo: DemoData
) -> None:
    # given
    response = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id) { normalizedCsv acceptedOrdersXlsx } }",
        {"id": demo.group_orders["acme-completed"]},
        token=demo.tokens["client"],
    )
    links = response.json()["data"]["groupOrder"]

    # when
    csv = await client.get(links["normalizedCsv"])
    xlsx = await client.get(links["acceptedOrdersXlsx"])

    # then
    assert (csv.status_code, csv.headers["content-type"]) == (200, "text/csv; charset=utf-8")
    assert csv.text.splitlines()[0] == "external_order_id,recipient_name,city,country,sku,quantity"
    assert len(csv.text.splitlines()) == 13
    assert xlsx.status_code == 200
    assert xlsx.content[:2] == b"PK"


@pytest.mark.parametrize("change", ["signature", "expires", "file"])
async def test_a_tampered_link_is_an_invalid_token(
    client: httpx.AsyncClient, demo: DemoData, change: str
) -> None:
    # given
    group_order_id = uuid.UUID(demo.group_orders["acme-completed"])
    signer = LinkSigner("development-only-secret-change-me", Settings().link_lifetime)
    link = signer.sign(
        "http://testserver", group_order_id, ResultFile.normalized_csv, datetime.now(UTC)
    )
    url = httpx.URL(link)
    params = dict(url.params)
    path = url.path
    if change == "signature":
        params["signature"] = "0" * 64
    elif change == "expires":
        params["expires"] = str(int(params["expires"]) + 3600)
    else:
        path = path.replace("normalized.csv", "accepted.xlsx")

    # when
    response = await client.get(path, params=params)

    # then
    assert (response.status_code, response.json()) == (
        401,
        {
            "errors": [
                {
                    "message": "This link is not valid. Ask for a new one.",
                    "extensions": {"code": "invalid-token", "status": 401, "param": "signature"},
                }
            ]
        },
    )
