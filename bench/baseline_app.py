"""The plain baseline ``bench/api.py`` compares the service with: no GraphQL at all.

A Starlette app with one shared aiosqlite connection doing the same lookups as the
service's hot path (the session by its token's hash, then the group order by id, or a
page of 100) and answering the same JSON, signed file links included. It exists only to
be measured; nothing in the service uses it.

    DATABASE_PATH=var/group-orders.db uvicorn bench.baseline_app:app
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiosqlite
import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

SECRET = os.environ.get("GROUP_ORDERS_SECRET_KEY", "development-only-secret-change-me").encode()
BASE = os.environ.get("BASE_URL", "http://127.0.0.1:8000")
COLUMNS = (
    "id, status, total_orders, successful_orders, rejected_orders, normalized_csv, "
    "accepted_orders_xlsx, rejected_orders_xlsx, created_at"
)
FILES = (
    ("normalizedCsv", "normalized.csv", 5),
    ("acceptedOrdersXlsx", "accepted.xlsx", 6),
    ("rejectedOrdersXlsx", "rejected.xlsx", 7),
)
state: dict[str, aiosqlite.Connection] = {}


def _link(group_order_id: str, file: str) -> str:
    expires = int(time.time()) + 900
    signature = hmac.new(
        SECRET, f"{group_order_id}/{file}/{expires}".encode(), hashlib.sha256
    ).hexdigest()
    query = urlencode({"expires": expires, "signature": signature})
    return f"{BASE}/files/{group_order_id}/{file}?{query}"


def _iso(text: str) -> str:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).isoformat()


def _order(row: Any) -> dict[str, Any]:
    group_order_id = str(uuid.UUID(row[0]))
    order = {
        "id": group_order_id,
        "status": row[1],
        "totalOrders": row[2],
        "successfulOrders": row[3],
        "rejectedOrders": row[4],
    }
    for name, file, column in FILES:
        order[name] = _link(group_order_id, file) if row[column] else None
    order["createdAt"] = _iso(row[8])
    return order


async def _session(request: Request) -> Any:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    digest = hashlib.sha256(token.encode()).hexdigest()
    rows = await state["db"].execute_fetchall(
        "SELECT user_id, created_at, last_used_at FROM session WHERE token_hash = ?", (digest,)
    )
    return rows[0] if rows else None


async def group_order(request: Request) -> Response:
    session = await _session(request)
    try:
        body = orjson.loads(await request.body())
    except ClientDisconnect:  # wrk hangs up at the end of a run
        return Response(status_code=499)
    raw_id = uuid.UUID(body["variables"]["id"]).hex
    rows = await state["db"].execute_fetchall(
        f"SELECT {COLUMNS} FROM group_order WHERE id = ?",
        (raw_id,),
    )
    order = _order(rows[0])
    last_used = datetime.fromisoformat(session[2]).replace(tzinfo=UTC)
    created = datetime.fromisoformat(session[1]).replace(tzinfo=UTC)
    order["session"] = {
        "userId": str(uuid.UUID(session[0])),
        "expiresAt": min(created + timedelta(days=7), last_used + timedelta(hours=72)).isoformat(),
    }
    return Response(
        orjson.dumps(
            {"data": {"groupOrder": order}, "extensions": {"status": "action-successful"}}
        ),
        media_type="application/json",
    )


async def page(request: Request) -> Response:
    await _session(request)
    rows = await state["db"].execute_fetchall(
        f"SELECT {COLUMNS} FROM group_order ORDER BY created_at DESC, id DESC LIMIT 100"
    )
    edges = [{"node": _order(row)} for row in rows]
    return Response(
        orjson.dumps(
            {
                "data": {"groupOrders": {"edges": edges}},
                "extensions": {"status": "action-successful"},
            }
        ),
        media_type="application/json",
    )


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    state["db"] = await aiosqlite.connect(os.environ["DATABASE_PATH"])
    yield
    await state["db"].close()


app = Starlette(
    routes=[
        Route("/group-order", group_order, methods=["POST"]),
        Route("/page", page, methods=["POST"]),
    ],
    lifespan=lifespan,
)
