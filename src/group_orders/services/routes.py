"""Routes and API services: the kill switch per operation and per service.

Every root field of the schema is a route and belongs to one API service. A fresh
install deploys them all (``sync_routes`` at start); operators withdraw and deploy them
again with ``group-orders routes``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.engine import write_transaction
from group_orders.db.tables import api_route_table, api_service_table, utc_now
from group_orders.errors import ApiError

# Root field -> the API service it belongs to.
ROUTE_SERVICES: Mapping[str, str] = {
    "groupOrder": "group-orders",
    "groupOrders": "group-orders",
    "groupOrderStats": "group-orders",
    "groupOrderUpdated": "group-orders",
    "session": "sessions",
    "createGroupOrder": "group-order-uploads",
    "cancelGroupOrder": "group-order-uploads",
    "retryGroupOrder": "group-order-uploads",
    "resendGroupOrderEmail": "notifications",
    "setEmailNotifications": "notifications",
}


@dataclass(frozen=True, slots=True)
class RouteState:
    route: str
    service: str
    route_deployed: bool
    service_deployed: bool


async def sync_routes(engine: AsyncEngine, routes: Mapping[str, str] = ROUTE_SERVICES) -> None:
    """Create the records of routes and services that do not exist yet, deployed.

    Existing records keep their state: a withdrawn route stays withdrawn.
    """
    async with write_transaction(engine) as connection:
        services = {
            row.name: row.id
            for row in await connection.execute(
                sa.select(api_service_table.c.name, api_service_table.c.id)
            )
        }
        known_routes = set((await connection.execute(sa.select(api_route_table.c.name))).scalars())
        for route, service in routes.items():
            if service not in services:
                services[service] = uuid.uuid4()
                await connection.execute(
                    sa.insert(api_service_table).values(
                        id=services[service], name=service, deployed=True, updated_at=utc_now()
                    )
                )
            if route not in known_routes:
                await connection.execute(
                    sa.insert(api_route_table).values(
                        id=uuid.uuid4(),
                        name=route,
                        service_id=services[service],
                        deployed=True,
                        updated_at=utc_now(),
                    )
                )


_STATE_QUERY = (
    sa.select(
        api_route_table.c.name.label("route"),
        api_service_table.c.name.label("service"),
        api_route_table.c.deployed.label("route_deployed"),
        api_service_table.c.deployed.label("service_deployed"),
    )
    .join(api_service_table, api_service_table.c.id == api_route_table.c.service_id)
    .order_by(api_service_table.c.name, api_route_table.c.name)
)


async def list_routes(engine: AsyncEngine) -> list[RouteState]:
    async with engine.connect() as connection:
        rows = (await connection.execute(_STATE_QUERY)).all()
    return [RouteState(r.route, r.service, r.route_deployed, r.service_deployed) for r in rows]


def _raise_for_withdrawn(states: Mapping[str, RouteState], wanted: Iterable[str]) -> None:
    for route in wanted:
        state = states.get(route)
        if state is None or not state.route_deployed:
            raise ApiError("route-not-found", f"The route '{route}' is not deployed.", param=route)
        if not state.service_deployed:
            raise ApiError(
                "service-not-found",
                f"The API service '{state.service}' of the route '{route}' is not deployed.",
                param=route,
            )


async def set_deployed(engine: AsyncEngine, name: str, *, deployed: bool) -> str:
    """Deploy or withdraw the route or service ``name``; answers which one it was."""
    async with write_transaction(engine) as connection:
        for table, kind in ((api_route_table, "route"), (api_service_table, "service")):
            result = await connection.execute(
                sa.update(table)
                .where(table.c.name == name)
                .values(deployed=deployed, updated_at=utc_now())
            )
            if result.rowcount:
                return kind
    raise LookupError(f"no route or service is named {name!r}")


class RouteSwitches:
    """The switches of every route, read at most once per ``ttl_seconds`` per process.

    Every request checks its routes; reading them from the database each time would be
    one more statement per request. A withdrawal therefore reaches a running server
    within ``ttl_seconds`` (0 reads every time). When the switches are due, the checks
    made meanwhile wait for the one read under way rather than each starting its own:
    under load hundreds of them would otherwise queue for the engine's connections.
    """

    def __init__(self, engine: AsyncEngine, ttl_seconds: float) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._states: dict[str, RouteState] = {}
        self._read_at = float("-inf")
        self._reading: asyncio.Task[dict[str, RouteState]] | None = None

    async def check(self, routes: Iterable[str]) -> None:
        wanted = sorted(set(routes))
        if not wanted:
            return
        if self._ttl <= 0:
            states = await self._read(time.monotonic())
        elif time.monotonic() - self._read_at >= self._ttl:
            if self._reading is None:
                self._reading = asyncio.get_running_loop().create_task(self._read(time.monotonic()))
                self._reading.add_done_callback(self._read_done)
            states = await asyncio.shield(self._reading)
        else:
            states = self._states
        _raise_for_withdrawn(states, wanted)

    async def _read(self, started: float) -> dict[str, RouteState]:
        states = {state.route: state for state in await list_routes(self._engine)}
        self._states, self._read_at = states, started
        return states

    def _read_done(self, reading: asyncio.Task[dict[str, RouteState]]) -> None:
        self._reading = None
        if not reading.cancelled():
            reading.exception()  # every waiter raised it already
