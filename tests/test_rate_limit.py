"""Failed authentications are rate-limited per client address."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from group_orders.app import create_app
from group_orders.auth.rate_limit import FailureLimiter
from group_orders.services.demo import DemoData
from group_orders.settings import Settings

BAD = "gos_" + "x" * 43
QUERY = {"query": "{ session { userId } }"}


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.with_changes(auth_failure_limit=5, auth_failure_window_seconds=60))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_address_that_keeps_failing_is_told_when_to_retry(
    limited: httpx.AsyncClient, demo: DemoData
) -> None:
    # when: five failures, then a sixth attempt with a good token
    failures = [await limited.post("/graphql", json=QUERY, headers=bearer(BAD)) for _ in range(5)]
    blocked = await limited.post("/graphql", json=QUERY, headers=bearer(demo.tokens["client"]))

    # then
    assert [response.status_code for response in failures] == [401] * 5
    assert (blocked.status_code, blocked.headers["retry-after"]) == (429, "60")
    assert blocked.json() == {
        "errors": [
            {
                "message": "Too many failed authentications from this address. Retry after "
                "60 seconds.",
                "extensions": {
                    "code": "rate-limited",
                    "status": 429,
                    "param": "token",
                    "retryAfter": 60,
                },
            }
        ]
    }


async def test_a_batch_counts_every_operation_and_alias(
    limited: httpx.AsyncClient, demo: DemoData
) -> None:
    # given: one request of two operations, one of them with three aliased fields
    batch = [
        {"query": "{ a: session { userId } b: session { userId } c: session { userId } }"},
        QUERY,
    ]

    # when: one failed request weighs 4, a second one crosses the limit of 5
    first = await limited.post("/graphql", json=batch, headers=bearer(BAD))
    second = await limited.post("/graphql", json=QUERY, headers=bearer(BAD))
    third = await limited.post("/graphql", json=QUERY, headers=bearer(demo.tokens["client"]))

    # then
    assert (first.status_code, second.status_code, third.status_code) == (401, 401, 429)


async def test_good_tokens_are_never_counted(limited: httpx.AsyncClient, demo: DemoData) -> None:
    # when
    responses = [
        await limited.post("/graphql", json=QUERY, headers=bearer(demo.tokens["client"]))
        for _ in range(10)
    ]

    # then
    assert {response.status_code for response in responses} == {200}


def test_failures_age_out_of_the_window() -> None:
    # given
    limiter = FailureLimiter(max_failures=3, window_seconds=10)
    for moment in (0.0, 1.0, 2.0):
        limiter.record("a", moment)

    # then: blocked until the first failure is ten seconds old; other addresses unaffected
    assert limiter.retry_after("a", 2.5) == 8
    assert limiter.retry_after("b", 2.5) is None
    assert limiter.retry_after("a", 10.5) is None
