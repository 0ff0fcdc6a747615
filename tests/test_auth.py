"""Authentication over HTTP: token shapes and storage, the token errors, session expiry,
the throttled lastUsedAt write, revocation, and what the `session` field may reveal."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import GraphQL
from group_orders.db.tables import application_token_table, as_utc, session_table
from group_orders.enums import ApplicationSlug
from group_orders.services import accounts
from group_orders.services.demo import DemoData, demo_id

JSON = "application/json"
SUCCESS = {"status": "action-successful"}

INVALID_TOKEN = {
    "errors": [
        {
            "message": "The token is not valid. Sign in again or use another token.",
            "extensions": {"code": "invalid-token", "status": 401, "param": "token"},
        }
    ]
}
MISSING_TOKEN = {
    "errors": [
        {
            "message": "A token is required: send it as 'Authorization: Bearer <token>'.",
            "extensions": {"code": "missing-param", "status": 400, "param": "token"},
        }
    ]
}
SESSION_EXPIRED = {
    "errors": [
        {
            "message": "The session has expired. Sign in again.",
            "extensions": {"code": "session-expired", "status": 401, "param": "token"},
        }
    ]
}

USER_ID_QUERY = "{ session { userId } }"
TIMES_QUERY = "{ session { createdAt lastUsedAt expiresAt rememberMe } }"
EVERY_SESSION_FIELD = """
{
  session {
    __typename
    userId
    user { __typename id email name }
    application
    role
    client { __typename id name }
    employee { __typename id }
    liaison { __typename id clients { __typename id name } }
    createdAt
    lastUsedAt
    expiresAt
    rememberMe
  }
}
"""

LIFETIME = timedelta(days=7)
IDLE_LIMIT = timedelta(hours=72)


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def assert_response(response: httpx.Response, status: int, body: dict[str, Any]) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON
    assert response.json() == body


def session_body(session: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"session": session}, "extensions": SUCCESS}


async def session_row(engine: AsyncEngine, token: str) -> sa.Row[Any]:
    query = sa.select(session_table).where(session_table.c.token_hash == sha256(token))
    async with engine.connect() as connection:
        return (await connection.execute(query)).one()


async def alice_session(
    engine: AsyncEngine,
    *,
    created_ago: timedelta,
    used_ago: timedelta,
    remember_me: bool = False,
) -> tuple[str, datetime, datetime]:
    now = datetime.now(UTC)
    created_at = now - created_ago
    last_used_at = now - used_ago
    token = await accounts.create_session(
        engine,
        demo_id("alice"),
        ApplicationSlug.planoorder,
        remember_me=remember_me,
        created_at=created_at,
        last_used_at=last_used_at,
    )
    return token, created_at, last_used_at


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


# Tokens and their storage


async def test_tokens_carry_their_kind_and_only_their_hash_is_stored(
    engine: AsyncEngine, demo: DemoData
) -> None:
    # given: fresh tokens of both kinds, plus the demo's, all minted by the service
    user = await accounts.create_user(
        engine, "tess@example.com", "Tess Token", client_name="Tess Traders"
    )
    session_tokens = [
        await accounts.create_session(engine, user.id, ApplicationSlug.planoorder),
        await accounts.create_session(engine, user.id, ApplicationSlug.planoauth, remember_me=True),
    ]
    application_tokens = [
        await accounts.create_application_token(engine, ApplicationSlug.planox2, "reports"),
        await accounts.create_application_token(
            engine, ApplicationSlug.planoorder, "shop sync", client_id=user.client_id
        ),
    ]

    # then: the prefix tells the kinds apart, and the rest is 256 random bits
    for token in session_tokens:
        assert re.fullmatch(r"gos_[A-Za-z0-9_-]{43}", token), token
    for token in application_tokens:
        assert re.fullmatch(r"goa_[A-Za-z0-9_-]{43}", token), token

    # when: the tables are read as anyone holding a copy of the database could
    async with engine.connect() as connection:
        sessions = (await connection.execute(sa.select(session_table))).all()
        app_tokens = (await connection.execute(sa.select(application_token_table))).all()

    # then: a stolen database yields no usable token, in any column of any row
    every_token = [*session_tokens, *application_tokens, *demo.tokens.values()]
    stored_text = [str(value) for row in (*sessions, *app_tokens) for value in row]
    for token in every_token:
        assert not any(token in text for text in stored_text), token
        # the random part alone must not leak either
        assert not any(token[4:] in text for text in stored_text), token

    # then: each token is found by its sha256, in the table of its kind only
    session_hashes = {row.token_hash for row in sessions}
    app_hashes = {row.token_hash for row in app_tokens}
    for token in [*session_tokens, demo.tokens["client"], demo.tokens["employee"]]:
        assert sha256(token) in session_hashes
        assert sha256(token) not in app_hashes
    for token in [*application_tokens, demo.tokens["reporting"]]:
        assert sha256(token) in app_hashes
        assert sha256(token) not in session_hashes


# invalid-token and missing-param


async def test_malformed_unknown_and_revoked_tokens_are_answered_byte_for_byte_alike(
    client: httpx.AsyncClient, engine: AsyncEngine, demo: DemoData
) -> None:
    # given: a live token of each kind, then revoked, so a revoked one cannot be told apart
    revoked_session = await accounts.create_session(
        engine, demo_id("alice"), ApplicationSlug.planoorder
    )
    revoked_application = await accounts.create_application_token(
        engine, ApplicationSlug.planox2, "retired tool"
    )
    assert await accounts.revoke_token(engine, revoked_session)
    assert await accounts.revoke_token(engine, revoked_application)
    well_formed_tail = demo.tokens["client"][4:]
    headers = {
        "wrong prefix": f"Bearer gox_{well_formed_tail}",
        "prefix of the other case": f"Bearer GOS_{well_formed_tail}",
        "one character short": f"Bearer {demo.tokens['client'][:-1]}",
        "one character long": f"Bearer {demo.tokens['client']}A",
        "character outside the alphabet": f"Bearer gos_{well_formed_tail[:-1]}=",
        "another scheme": "Basic abc",
        "another scheme with a valid token": f"Token {demo.tokens['client']}",
        "unknown session token": f"Bearer gos_{'A' * 43}",
        "unknown application token": f"Bearer goa_{'A' * 43}",
        "session token sent as application token": f"Bearer goa_{well_formed_tail}",
        "revoked session token": f"Bearer {revoked_session}",
        "revoked application token": f"Bearer {revoked_application}",
    }

    # when
    responses = {
        case: await client.post(
            "/graphql", json={"query": USER_ID_QUERY}, headers={"Authorization": header}
        )
        for case, header in headers.items()
    }

    # then: one body, one status, whatever was wrong with the token
    assert_response(responses["revoked session token"], 401, INVALID_TOKEN)
    expected = responses["revoked session token"].content
    for case, response in responses.items():
        assert response.status_code == 401, case
        assert response.headers["content-type"] == JSON, case
        assert response.content == expected, case


@pytest.mark.parametrize("authorization", [None, "Bearer ", "Bearer    ", "bearer"])
async def test_a_request_without_a_token_is_missing_the_token_param(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    # given: no header, or a bearer header with nothing after the scheme
    headers = {} if authorization is None else {"Authorization": authorization}

    # when
    response = await client.post("/graphql", json={"query": USER_ID_QUERY}, headers=headers)

    # then: the token is absent rather than wrong, so it is named as missing
    assert_response(response, 400, MISSING_TOKEN)


async def test_introspection_alone_needs_no_token(graphql: GraphQL) -> None:
    # when: a tool reads the schema before anyone has signed in
    response = await graphql.post("{ __schema { queryType { name } } }")

    # then
    assert_response(
        response,
        200,
        {"data": {"__schema": {"queryType": {"name": "Query"}}}, "extensions": SUCCESS},
    )


async def test_introspection_beside_a_route_still_needs_a_token(graphql: GraphQL) -> None:
    # when: an introspection field must not carry a route past authentication
    response = await graphql.post("{ __schema { queryType { name } } session { userId } }")

    # then
    assert_response(response, 400, MISSING_TOKEN)


# session-expired


@pytest.mark.parametrize(
    ("created_ago", "used_ago"),
    [
        pytest.param(LIFETIME + timedelta(minutes=1), timedelta(minutes=1), id="past its lifetime"),
        pytest.param(
            timedelta(days=4), IDLE_LIMIT + timedelta(minutes=1), id="idle past the limit"
        ),
    ],
)
async def test_a_session_past_its_time_has_expired(
    graphql: GraphQL, engine: AsyncEngine, created_ago: timedelta, used_ago: timedelta
) -> None:
    # given
    token, _, last_used_at = await alice_session(engine, created_ago=created_ago, used_ago=used_ago)

    # when
    response = await graphql.post(USER_ID_QUERY, token=token)

    # then: expired, and the failed request does not revive it by touching lastUsedAt
    assert_response(response, 401, SESSION_EXPIRED)
    assert as_utc((await session_row(engine, token)).last_used_at) == last_used_at
    assert_response(await graphql.post(USER_ID_QUERY, token=token), 401, SESSION_EXPIRED)


async def test_a_session_short_of_both_limits_is_alive_and_expires_at_its_lifetime(
    graphql: GraphQL, engine: AsyncEngine
) -> None:
    # given: six days old, unused for 71 hours: one hour short of the idle limit
    token, created_at, _ = await alice_session(
        engine, created_ago=timedelta(days=6), used_ago=timedelta(hours=71)
    )

    # when
    before = datetime.now(UTC)
    response = await graphql.post(TIMES_QUERY, token=token)
    after = datetime.now(UTC)

    # then: this use resets the idle clock, so the lifetime is now the nearer limit
    last_used = parse_time(response.json()["data"]["session"]["lastUsedAt"])
    assert before <= last_used <= after
    assert created_at + LIFETIME < last_used + IDLE_LIMIT
    assert_response(
        response,
        200,
        session_body(
            {
                "createdAt": created_at.isoformat(),
                "lastUsedAt": last_used.isoformat(),
                "expiresAt": (created_at + LIFETIME).isoformat(),
                "rememberMe": False,
            }
        ),
    )


async def test_a_recently_used_session_expires_at_its_idle_limit(
    graphql: GraphQL, engine: AsyncEngine
) -> None:
    # given: used seconds ago, so this request leaves lastUsedAt as it is
    token, created_at, last_used_at = await alice_session(
        engine, created_ago=timedelta(hours=1), used_ago=timedelta(seconds=10)
    )

    # when
    response = await graphql.post(TIMES_QUERY, token=token)

    # then: an hour-old session idles out long before its seven days are up
    assert_response(
        response,
        200,
        session_body(
            {
                "createdAt": created_at.isoformat(),
                "lastUsedAt": last_used_at.isoformat(),
                "expiresAt": min(created_at + LIFETIME, last_used_at + IDLE_LIMIT).isoformat(),
                "rememberMe": False,
            }
        ),
    )
    assert last_used_at + IDLE_LIMIT < created_at + LIFETIME


async def test_a_remember_me_session_never_expires(graphql: GraphQL, engine: AsyncEngine) -> None:
    # given: far past both limits, but remember_me
    token, created_at, _ = await alice_session(
        engine, created_ago=timedelta(days=30), used_ago=timedelta(days=20), remember_me=True
    )

    # when
    before = datetime.now(UTC)
    response = await graphql.post(TIMES_QUERY, token=token)
    after = datetime.now(UTC)

    # then: no expiry to report, since it lasts until revoked
    last_used = parse_time(response.json()["data"]["session"]["lastUsedAt"])
    assert before <= last_used <= after
    assert_response(
        response,
        200,
        session_body(
            {
                "createdAt": created_at.isoformat(),
                "lastUsedAt": last_used.isoformat(),
                "expiresAt": None,
                "rememberMe": True,
            }
        ),
    )


# lastUsedAt


async def test_last_used_at_is_not_rewritten_within_a_minute(
    graphql: GraphQL, engine: AsyncEngine
) -> None:
    # given: used within the write interval
    token, _, last_used_at = await alice_session(
        engine, created_ago=timedelta(hours=1), used_ago=timedelta(seconds=30)
    )

    # when
    response = await graphql.post("{ session { lastUsedAt } }", token=token)

    # then: reads stay reads, so the row is untouched and the answer says so
    assert_response(response, 200, session_body({"lastUsedAt": last_used_at.isoformat()}))
    assert as_utc((await session_row(engine, token)).last_used_at) == last_used_at


async def test_a_stale_last_used_at_is_rewritten_to_now(
    graphql: GraphQL, engine: AsyncEngine
) -> None:
    # given: last used well past the write interval
    token, _, last_used_at = await alice_session(
        engine, created_ago=timedelta(hours=1), used_ago=timedelta(minutes=5)
    )

    # when
    before = datetime.now(UTC)
    response = await graphql.post("{ session { lastUsedAt } }", token=token)
    after = datetime.now(UTC)

    # then: the row and the answer agree on the new time
    stored = as_utc((await session_row(engine, token)).last_used_at)
    assert stored != last_used_at
    assert before <= stored <= after
    assert_response(response, 200, session_body({"lastUsedAt": stored.isoformat()}))


async def test_concurrent_requests_of_one_stale_session_all_succeed(
    graphql: GraphQL, engine: AsyncEngine
) -> None:
    # given: a stale session, so every request races to write lastUsedAt
    token, _, _ = await alice_session(
        engine, created_ago=timedelta(hours=1), used_ago=timedelta(minutes=5)
    )

    # when
    before = datetime.now(UTC)
    responses = await asyncio.gather(*(graphql.post(USER_ID_QUERY, token=token) for _ in range(10)))
    after = datetime.now(UTC)

    # then: no request loses the race with an error, and the row holds one of their times
    for response in responses:
        assert_response(response, 200, session_body({"userId": str(demo_id("alice"))}))
    stored = as_utc((await session_row(engine, token)).last_used_at)
    assert before <= stored <= after


# Revocation


@pytest.mark.parametrize("kind", ["session", "application"])
async def test_revocation_takes_effect_on_the_next_request(
    graphql: GraphQL, engine: AsyncEngine, kind: str
) -> None:
    # given: a token that works
    if kind == "session":
        token = await accounts.create_session(engine, demo_id("alice"), ApplicationSlug.planoorder)
        alive = session_body({"userId": str(demo_id("alice"))})
    else:
        token = await accounts.create_application_token(engine, ApplicationSlug.planox2, "tool")
        alive = {"data": {"session": None}, "extensions": SUCCESS}
    assert_response(await graphql.post(USER_ID_QUERY, token=token), 200, alive)

    # when
    revoked = await accounts.revoke_token(engine, token)

    # then: no cache keeps it alive, and revoking twice finds nothing left to revoke
    assert revoked
    assert_response(await graphql.post(USER_ID_QUERY, token=token), 401, INVALID_TOKEN)
    assert not await accounts.revoke_token(engine, token)


# What the session field reveals


async def test_the_session_field_never_reveals_the_token_or_its_hash(
    graphql: GraphQL, engine: AsyncEngine
) -> None:
    # given: a user with every record, so that every nested field is filled in
    user = await accounts.create_user(
        engine,
        "rhea@example.com",
        "Rhea Records",
        client_name="Rhea Retail",
        employee=True,
        liaison_for=[demo_id("cedar")],
    )
    assert user.client_id
    assert user.employee_id
    assert user.liaison_id
    token = await accounts.create_session(
        engine, user.id, ApplicationSlug.planoauth, remember_me=True
    )
    created_at = as_utc((await session_row(engine, token)).created_at)

    # when
    response = await graphql.post(EVERY_SESSION_FIELD, token=token)

    # then: every field is there, and none carries the secret in any form
    assert_response(
        response,
        200,
        {
            "data": {
                "session": {
                    "__typename": "Session",
                    "userId": str(user.id),
                    "user": {
                        "__typename": "User",
                        "id": str(user.id),
                        "email": "rhea@example.com",
                        "name": "Rhea Records",
                    },
                    "application": "planoauth",
                    "role": "client",
                    "client": {
                        "__typename": "Client",
                        "id": str(user.client_id),
                        "name": "Rhea Retail",
                    },
                    "employee": {"__typename": "Employee", "id": str(user.employee_id)},
                    "liaison": {
                        "__typename": "Liaison",
                        "id": str(user.liaison_id),
                        "clients": [
                            {
                                "__typename": "Client",
                                "id": str(demo_id("cedar")),
                                "name": "Cedar Clinics",
                            }
                        ],
                    },
                    "createdAt": created_at.isoformat(),
                    "lastUsedAt": created_at.isoformat(),
                    "expiresAt": None,
                    "rememberMe": True,
                }
            },
            "extensions": SUCCESS,
        },
    )
    text = response.text
    for secret in (token, token[4:], sha256(token), sha256(token).upper()):
        assert secret not in text


# Application tokens


@pytest.mark.parametrize(
    ("token_name", "own_application"),
    [("reporting", "planox2"), ("acme-integration", "planoorder")],
)
async def test_an_application_token_has_no_session(
    graphql: GraphQL, demo: DemoData, token_name: str, own_application: str
) -> None:
    # when: asked with and without naming the token's own application
    plain = await graphql.post(EVERY_SESSION_FIELD, token=demo.tokens[token_name])
    named = await graphql.post(
        f"{{ session(application: {own_application}) {{ userId }} }}",
        token=demo.tokens[token_name],
    )

    # then: no user signed in, so there is no session to show
    assert_response(plain, 200, {"data": {"session": None}, "extensions": SUCCESS})
    assert_response(named, 200, {"data": {"session": None}, "extensions": SUCCESS})


FOREIGN_APPLICATIONS = pytest.mark.parametrize(
    ("token_name", "own_application", "other_application"),
    [
        ("reporting", "planox2", "planoorder"),
        ("reporting", "planox2", "planoauth"),
        ("acme-integration", "planoorder", "planox2"),
        ("acme-integration", "planoorder", "planoauth"),
    ],
)


def refused(own_application: str, field: str, column: int) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": f"This token acts for the application {own_application} only.",
                "locations": [{"line": 1, "column": column}],
                "path": [field],
                "extensions": {"code": "invalid-param", "status": 400, "param": "application"},
            }
        ],
        "data": {field: None},
    }


@FOREIGN_APPLICATIONS
async def test_an_application_token_cannot_read_group_orders_through_another_application(
    graphql: GraphQL,
    demo: DemoData,
    token_name: str,
    own_application: str,
    other_application: str,
) -> None:
    # when: the group order is one the token may see through its own application
    response = await graphql.post(
        f"query($id: ID!) {{ groupOrder(id: $id, application: {other_application}) {{ id }} }}",
        {"id": demo.group_orders["acme-completed"]},
        token=demo.tokens[token_name],
    )

    # then: the token cannot borrow another application's role
    assert_response(response, 200, refused(own_application, "groupOrder", 19))


@FOREIGN_APPLICATIONS
async def test_an_application_token_cannot_ask_for_a_session_through_another_application(
    graphql: GraphQL,
    demo: DemoData,
    token_name: str,
    own_application: str,
    other_application: str,
) -> None:
    # when
    response = await graphql.post(
        f"{{ session(application: {other_application}) {{ userId }} }}",
        token=demo.tokens[token_name],
    )

    # then: the argument is checked as on groupOrder, though the answer would be null anyway
    assert_response(response, 200, refused(own_application, "session", 3))
