"""A real server on a loopback port, and a graphql-transport-ws client talking to it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from group_orders.app import create_app
from group_orders.settings import Settings

SUBPROTOCOL = Subprotocol("graphql-transport-ws")
# A bound on waiting for a message, so that a broken server fails a test instead of
# hanging it; never a measure of speed.
PATIENCE_SECONDS = 60

SUBSCRIPTION = """
subscription Follow($id: ID!, $view: GroupOrderView! = default) {
  groupOrderUpdated(id: $id, view: $view) {
    id status totalOrders successfulOrders rejectedOrders
    progress { processedRows totalRows }
  }
}
"""


@dataclass(frozen=True)
class Server:
    app: Starlette
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Server]:
    """uvicorn serving the app on a free loopback port, in this event loop."""
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(app, port)
    finally:
        server.should_exit = True
        await task


async def send(websocket: ClientConnection, message: dict[str, Any]) -> None:
    await websocket.send(json.dumps(message))


async def receive(websocket: ClientConnection) -> dict[str, Any]:
    raw = await asyncio.wait_for(websocket.recv(), PATIENCE_SECONDS)
    message: dict[str, Any] = json.loads(raw)
    return message


@asynccontextmanager
async def session(
    server: Server, payload: dict[str, Any] | None, *, origin: str | None = None
) -> AsyncIterator[ClientConnection]:
    """A connection that sent ``connection_init`` with ``payload`` and got its ack."""
    async with connect(
        server.ws_url,
        subprotocols=[SUBPROTOCOL],
        origin=Origin(origin) if origin is not None else None,
    ) as websocket:
        await send(websocket, {"type": "connection_init", "payload": payload})
        assert await receive(websocket) == {"type": "connection_ack"}
        yield websocket


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def subscribe(
    websocket: ClientConnection,
    operation_id: str,
    query: str,
    variables: dict[str, Any] | None = None,
) -> None:
    await send(
        websocket,
        {
            "id": operation_id,
            "type": "subscribe",
            "payload": {"query": query, "variables": variables or {}},
        },
    )


async def until_complete(websocket: ClientConnection, operation_id: str) -> list[dict[str, Any]]:
    """The messages of one operation up to and including its ``complete`` or ``error``."""
    messages: list[dict[str, Any]] = []
    while True:
        message = await receive(websocket)
        assert message.get("id") == operation_id, message
        messages.append(message)
        if message["type"] in ("complete", "error"):
            return messages
