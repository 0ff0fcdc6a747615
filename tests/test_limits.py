"""Hostile documents: over a limit, each answered invalid-param naming the limit;
production mode's switches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from conftest import GraphQL
from group_orders.app import create_app
from group_orders.services.demo import DemoData
from group_orders.settings import Settings


def limit_error(body: dict[str, object], param: str) -> None:
    assert "data" not in body, body
    [error] = body["errors"]  # type: ignore[misc]
    assert error["extensions"] == {"code": "invalid-param", "status": 400, "param": param}


async def test_too_many_tokens(graphql: GraphQL, demo: DemoData) -> None:
    # given: 5,001 tokens and more
    query = "{ session { " + "userId " * 5_001 + "} }"

    # when
    response = await graphql.post(query, token=demo.tokens["client"])

    # then
    limit_error(response.json(), "max_query_tokens")
    assert response.json()["errors"][0]["message"] == (
        "The document has more than 5000 tokens, the limit."
    )


async def test_too_many_aliases(graphql: GraphQL, demo: DemoData) -> None:
    # given: 31 aliases, more than the default 30
    query = "{ " + " ".join(f"a{n}: session {{ userId }}" for n in range(31)) + " }"

    # when
    response = await graphql.post(query, token=demo.tokens["client"])

    # then
    limit_error(response.json(), "max_aliases")


async def test_aliases_in_fragments_count_every_time_they_are_spread(
    graphql: GraphQL, demo: DemoData
) -> None:
    # given: fragments that spread the next one twice, 40 deep, with one alias at the
    # bottom: 2^40 aliases as executed, in a few hundred tokens
    fragments = [f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(40)]
    fragments.append("fragment F40 on Query { me: session { userId } }")
    query = "{ ...F0 } " + " ".join(fragments)

    # when
    started = time.perf_counter()
    response = await graphql.post(query, token=demo.tokens["client"])
    elapsed = time.perf_counter() - started

    # then: refused, and measured without expanding it
    limit_error(response.json(), "max_aliases")
    assert elapsed < 2


@pytest.fixture
async def shallow(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: Starlette = create_app(settings.with_changes(max_query_depth=3))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.mark.parametrize(
    ("query", "refused"),
    [
        ("{ session { liaison { id } } }", False),
        ("{ session { liaison { clients { name } } } }", True),
        ("{ session { ...L } } fragment L on Session { liaison { clients { name } } }", True),
    ],
)
async def test_depth(shallow: httpx.AsyncClient, demo: DemoData, query: str, refused: bool) -> None:
    # when
    response = await shallow.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {demo.tokens['liaison']}"},
    )

    # then
    if refused:
        limit_error(response.json(), "max_query_depth")
    else:
        assert response.json()["extensions"] == {"status": "action-successful"}


@pytest.fixture
async def production(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.with_changes(environment="production", secret_key="k" * 48))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_production_refuses_introspection(
    production: httpx.AsyncClient, demo: DemoData
) -> None:
    # when
    response = await production.post(
        "/graphql",
        json={"query": "{ __schema { types { name } } }"},
        headers={"Authorization": f"Bearer {demo.tokens['employee']}"},
    )

    # then
    errors = response.json()["errors"]
    assert {error["extensions"]["code"] for error in errors} == {"invalid-param"}
    assert "introspection" in errors[0]["message"].lower()
    assert "data" not in response.json()


async def test_production_gives_no_hints(production: httpx.AsyncClient, demo: DemoData) -> None:
    # when: a misspelt field, which development answers with "Did you mean ...?"
    response = await production.post(
        "/graphql",
        json={"query": "{ session { userid } }"},
        headers={"Authorization": f"Bearer {demo.tokens['employee']}"},
    )

    # then
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "invalid-param"
    assert "did you mean" not in error["message"].lower()


async def test_development_does_give_hints(graphql: GraphQL, demo: DemoData) -> None:
    # when
    response = await graphql.post("{ session { userid } }", token=demo.tokens["employee"])

    # then
    assert "did you mean" in response.json()["errors"][0]["message"].lower()


@pytest.mark.parametrize("secret", [None, "too-short"], ids=["default", "short"])
def test_production_refuses_to_start_without_a_real_secret(
    settings: Settings, secret: str | None
) -> None:
    # given
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "GROUP_ORDERS_DATA_DIR": str(settings.data_dir),
        "GROUP_ORDERS_ENV": "production",
    }
    env.pop("GROUP_ORDERS_SECRET_KEY", None)
    if secret is not None:
        env["GROUP_ORDERS_SECRET_KEY"] = secret

    # when
    result = subprocess.run(
        [sys.executable, "-m", "group_orders.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then
    assert result.returncode == 2
    assert result.stderr.startswith(
        "group-orders: production needs GROUP_ORDERS_SECRET_KEY: at least 32 characters"
    )
    assert "Traceback" not in result.stderr


async def test_variables_nested_deeply_are_refused_as_undecodable(
    graphql: GraphQL, demo: DemoData
) -> None:
    # given: variables nested 200 levels, which JSON decoders accept
    deep: object = "x"
    for _ in range(200):
        deep = [deep]

    # when
    response = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id) { id } }",
        {"id": deep},
        token=demo.tokens["client"],
    )

    # then
    assert (response.status_code, response.json()) == (
        400,
        {
            "errors": [
                {
                    "message": "'variables' are nested more than 32 levels deep.",
                    "extensions": {
                        "code": "invalid-encoded-params",
                        "status": 400,
                        "param": "variables",
                    },
                }
            ]
        },
    )
