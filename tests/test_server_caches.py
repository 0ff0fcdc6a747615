"""What a running server remembers: route and service switches, and tokens."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.identity import Authenticator
from group_orders.enums import ApplicationSlug
from group_orders.errors import ApiError
from group_orders.services.accounts import create_session, revoke_token
from group_orders.services.demo import demo_id
from group_orders.services.routes import RouteSwitches, set_deployed
from test_statement_counts import counting


async def test_a_withdrawal_reaches_a_server_once_its_cache_runs_out(engine: AsyncEngine) -> None:
    # given: one server that trusts what it read for a minute, one that reads every time
    cached = RouteSwitches(engine, ttl_seconds=60)
    uncached = RouteSwitches(engine, ttl_seconds=0)
    await cached.check(["groupOrder"])

    # when
    await set_deployed(engine, "groupOrder", deployed=False)

    # then
    await cached.check(["groupOrder"])
    with pytest.raises(ApiError) as refused:
        await uncached.check(["groupOrder", "session"])
    assert (refused.value.code, refused.value.param) == ("route-not-found", "groupOrder")


async def test_a_withdrawn_service_refuses_its_routes(engine: AsyncEngine) -> None:
    # given
    switches = RouteSwitches(engine, ttl_seconds=0)

    # when
    await set_deployed(engine, "group-orders", deployed=False)

    # then
    await switches.check(["session"])
    with pytest.raises(ApiError) as refused:
        await switches.check(["groupOrders"])
    assert refused.value.code == "service-not-found"


async def test_a_remembered_token_is_still_checked_for_expiry(engine: AsyncEngine) -> None:
    # given: a session a minute short of seven days, remembered for an hour
    now = datetime.now(UTC)
    user_id = demo_id("alice")
    token = await create_session(
        engine,
        user_id,
        ApplicationSlug.planoorder,
        created_at=now - timedelta(days=7) + timedelta(minutes=1),
        last_used_at=now,
    )
    authenticator = Authenticator(
        engine, ttl_seconds=3_600, last_used_write_interval=timedelta(minutes=1)
    )
    first = await authenticator.authenticate(token, now=now)

    # when: it is revoked, then its time runs out
    await revoke_token(engine, token)
    remembered = await authenticator.authenticate(token, now=now + timedelta(seconds=30))
    with pytest.raises(ApiError) as expired:
        await authenticator.authenticate(token, now=now + timedelta(minutes=2))

    # then: the revocation waits for the cache; the expiry does not
    assert first.user is not None
    assert remembered.user == first.user
    assert expired.value.code == "session-expired"


async def test_without_a_cache_a_revocation_counts_at_once(engine: AsyncEngine) -> None:
    # given
    token = await create_session(engine, demo_id("alice"), ApplicationSlug.planoorder)
    authenticator = Authenticator(
        engine, ttl_seconds=0, last_used_write_interval=timedelta(minutes=1)
    )
    await authenticator.authenticate(token, now=datetime.now(UTC))

    # when
    await revoke_token(engine, token)

    # then
    with pytest.raises(ApiError) as refused:
        await authenticator.authenticate(token, now=datetime.now(UTC))
    assert refused.value.code == "invalid-token"


async def test_checks_made_while_the_switches_are_read_share_that_read(
    engine: AsyncEngine,
) -> None:
    # given: switches that are due, and a withdrawal they have not seen
    switches = RouteSwitches(engine, ttl_seconds=60)
    await set_deployed(engine, "groupOrder", deployed=False)

    # when: many requests check at once
    with counting(engine) as statements:
        outcomes = await asyncio.gather(
            *(switches.check(["groupOrder"]) for _ in range(50)), return_exceptions=True
        )

    # then: one read, and every check saw the withdrawal
    assert len([s for s in statements if "api_route" in s]) == 1
    assert all(isinstance(outcome, ApiError) for outcome in outcomes)
    assert {outcome.code for outcome in outcomes if isinstance(outcome, ApiError)} == {
        "route-not-found"
    }
