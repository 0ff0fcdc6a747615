"""Route and service switches, as a running server sees them."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.errors import ApiError
from group_orders.services.routes import RouteSwitches, set_deployed


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
