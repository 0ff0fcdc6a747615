"""Health for load balancers and orchestrators.

``/healthz``: the process is alive and its event loop answers (no I/O). ``/readyz``: it
can serve: the database answers within its timeout, and on PostgreSQL the job queue's
tables are there; it also reports how many workers sent a heartbeat lately. A check that
fails answers 503 with the same JSON error shape as the API (``service-not-found``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from group_orders.settings import Settings

_JSON = "application/json"


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=_JSON,
        headers={"Cache-Control": "no-store"},
    )


async def healthz(_request: Request) -> Response:
    return _json({"status": "alive"})


class Readiness:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    async def _checks(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        async with self.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
            if connection.dialect.name == "postgresql":
                workers = await connection.scalar(
                    sa.text(
                        "SELECT count(*) FROM procrastinate_workers "
                        "WHERE last_heartbeat > now() - make_interval(secs => :lease)"
                    ),
                    {"lease": self.settings.job_lease_seconds},
                )
                checks["queue"] = "ok"
                checks["workers"] = int(workers or 0)
            else:
                checks["queue"] = "ok"
                checks["workers"] = "embedded" if self.settings.embedded_worker else "separate"
        return checks

    async def handle(self, _request: Request) -> Response:
        timeout = self.settings.db_pool_timeout_seconds + self.settings.db_connect_timeout_seconds
        try:
            checks = await asyncio.wait_for(self._checks(), timeout=timeout)
        except Exception as error:
            reason = type(error).__name__
            return _json(
                {
                    "status": "unavailable",
                    "errors": [
                        {
                            "message": f"The database or the job queue does not answer ({reason}).",
                            "extensions": {"code": "service-not-found", "status": 503},
                        }
                    ],
                },
                status=503,
            )
        return _json({"status": "ready", "checks": checks})
