"""GraphQL over WebSocket on ``/graphql``: the graphql-transport-ws protocol.

A connection goes through these steps; each failure closes it with the protocol's code:

1. handshake: the ``Origin`` header      -> refused with HTTP 403 ``origin-not-allowed``
   the ``graphql-transport-ws`` subprotocol  -> 4406
2. ``connection_init`` within the timeout -> 4408; a second one -> 4429
   its token (``Authorization`` or ``token`` in the payload) -> 4403, the reason being
   the documented code (``missing-param``, ``invalid-token``, ``session-expired``,
   ``rate-limited``, ``identify-request-error``)
3. ``subscribe`` before ``connection_ack`` -> 4401; an id already running -> 4409;
   a message that is not the protocol's -> 4400
4. each operation: its errors before its first result come as one ``error`` message
   (codes as over HTTP), then ``next`` messages, then ``complete``.

While the connection is open its token is checked again every
``subscription_refresh_seconds``: a revoked token or an expired session closes it (4403).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from group_orders.auth.identity import Identity
from group_orders.auth.tokens import bearer_token
from group_orders.errors import ApiError
from group_orders.schema.context import RequestContext
from group_orders.schema.execution import RequestErrors
from group_orders.services.events import EventBus
from group_orders.web.graphql_endpoint import GraphQLService, _operation_request
from group_orders.web.responses import api_error_response

logger = logging.getLogger("group_orders.web")
access_logger = logging.getLogger("group_orders.access")

SUBPROTOCOL = "graphql-transport-ws"


class CloseCode(IntEnum):
    """The close codes of graphql-transport-ws that this server uses."""

    bad_request = 4400
    unauthorized = 4401
    forbidden = 4403
    subprotocol_not_acceptable = 4406
    init_timeout = 4408
    subscriber_exists = 4409
    too_many_inits = 4429
    internal_error = 4500


class _Close(Exception):
    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        # A close frame's reason holds at most 123 bytes.
        self.reason = reason.encode()[:123].decode(errors="ignore")


def _bad_request(reason: str) -> _Close:
    return _Close(CloseCode.bad_request, reason)


def _origin_of(url: str) -> str:
    return url.strip().rstrip("/").lower()


def origin_allowed(
    websocket: WebSocket, allowed: tuple[str, ...], public_base_url: str | None
) -> bool:
    """Whether a page at the request's ``Origin`` may connect: the server's own origin,
    a listed one, or any with ``*``. Without an ``Origin`` header the client is not a
    browser, and no other site can make it connect."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    origin = _origin_of(origin)
    if "*" in allowed or origin in {_origin_of(item) for item in allowed}:
        return True
    host = websocket.headers.get("host", "").lower()
    own = {f"http://{host}", f"https://{host}"} if host else set()
    if public_base_url:
        parts = urlsplit(public_base_url)
        own.add(_origin_of(f"{parts.scheme}://{parts.netloc}"))
    return origin in own


def token_from_payload(payload: dict[str, Any]) -> str | None:
    """The token of a ``connection_init`` payload: ``{"Authorization": "Bearer ..."}``
    (any letter case), or ``{"token": "..."}``."""
    for key, value in payload.items():
        if key.lower() == "authorization" and isinstance(value, str):
            return bearer_token(value)
    token = payload.get("token")
    if isinstance(token, str):
        return token.strip() or None
    return None


class SubscriptionEndpoint:
    """The WebSocket side of ``/graphql``."""

    def __init__(self, service: GraphQLService, events: EventBus) -> None:
        self.service = service
        self.events = events

    async def handle(self, websocket: WebSocket) -> None:
        settings = self.service.settings
        if not origin_allowed(
            websocket, settings.websocket_allowed_origins, settings.public_base_url
        ):
            await _refuse_origin(websocket)
            return
        if SUBPROTOCOL not in websocket.scope.get("subprotocols", []):
            await websocket.accept()
            await websocket.close(
                CloseCode.subprotocol_not_acceptable, "Subprotocol not acceptable"
            )
            return
        await websocket.accept(subprotocol=SUBPROTOCOL)
        await _Connection(self.service, self.events, websocket).run()


async def _refuse_origin(websocket: WebSocket) -> None:
    error = ApiError(
        "origin-not-allowed",
        "WebSocket connections from this origin are not allowed; an operator may add it to "
        "GROUP_ORDERS_WEBSOCKET_ORIGINS.",
        param="Origin",
    )
    logger.info("websocket refused origin=%r", websocket.headers.get("origin"))
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(api_error_response(error))
    else:
        # Closing before accepting makes the server answer the handshake with 403.
        await websocket.close(1008)


class _Connection:
    def __init__(self, service: GraphQLService, events: EventBus, websocket: WebSocket) -> None:
        self.service = service
        self.events = events
        self.websocket = websocket
        self.token: str | None = None
        self.identity: Identity | None = None
        self.init_received = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.helpers: list[asyncio.Task[None]] = []
        self.send_lock = asyncio.Lock()
        self.closed = False
        scheme = "https" if websocket.url.scheme == "wss" else "http"
        settings = service.settings
        self.base_url = settings.public_base_url or str(websocket.base_url.replace(scheme=scheme))
        self.address = websocket.client.host if websocket.client else "unknown"

    async def run(self) -> None:
        self._spawn(self._init_deadline())
        try:
            while not self.closed:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    raise _bad_request("Binary messages are not part of graphql-transport-ws")
                await self._on_message(text)
        except _Close as close:
            await self.close(close.code, close.reason)
        except Exception as error:
            error_id = uuid.uuid4().hex
            logger.error("websocket crash errorId=%s", error_id, exc_info=error)
            await self.close(CloseCode.internal_error, f"application-crash errorId {error_id}")
        finally:
            tasks = [*self.operations.values(), *self.helpers]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self.helpers.append(asyncio.create_task(work))

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            if self.closed or self.websocket.application_state is not WebSocketState.CONNECTED:
                return
            try:
                await self.websocket.send_text(orjson.dumps(message).decode())
            except (WebSocketDisconnect, RuntimeError, OSError):
                # The client is gone; the receive loop ends the connection.
                self.closed = True

    async def close(self, code: int, reason: str) -> None:
        async with self.send_lock:
            if self.closed:
                return
            self.closed = True
            if self.websocket.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError, OSError):
                    await self.websocket.close(code, reason)

    async def _init_deadline(self) -> None:
        await asyncio.sleep(self.service.settings.websocket_init_timeout_seconds)
        if self.identity is None and not self.closed:
            await self.close(CloseCode.init_timeout, "Connection initialisation timeout")

    async def _on_message(self, text: str) -> None:
        if len(text) > self.service.settings.max_body_bytes:
            raise _bad_request("payload-too-large")
        try:
            message = orjson.loads(text)
        except (orjson.JSONDecodeError, RecursionError):
            raise _bad_request("Invalid message received: not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise _bad_request("Invalid message received: no type")
        kind = message["type"]
        if kind == "connection_init":
            await self._connection_init(message.get("payload"))
        elif kind == "ping":
            pong: dict[str, Any] = {"type": "pong"}
            if isinstance(message.get("payload"), dict):
                pong["payload"] = message["payload"]
            await self.send(pong)
        elif kind == "pong":
            return
        elif kind == "subscribe":
            self._subscribe(message)
        elif kind == "complete":
            operation_id = message.get("id")
            if not isinstance(operation_id, str):
                raise _bad_request("Invalid message received: complete needs an id")
            task = self.operations.pop(operation_id, None)
            if task is not None:
                task.cancel()
        else:
            raise _bad_request(f"Invalid message received: unknown type {kind[:40]!r}")

    async def _connection_init(self, payload: Any) -> None:
        if self.init_received:
            raise _Close(CloseCode.too_many_inits, "Too many initialisation requests")
        self.init_received = True
        if payload is not None and not isinstance(payload, dict):
            raise _bad_request("Invalid message received: payload must be an object")
        self.token = token_from_payload(payload or {})
        try:
            self.identity = await self._authenticate()
        except ApiError as error:
            raise _Close(CloseCode.forbidden, error.code) from None
        await self.send({"type": "connection_ack"})
        self._spawn(self._watch_token())

    async def _authenticate(self) -> Identity:
        service = self.service
        clock = time.monotonic()
        if self.token is not None and service.failures.retry_after(self.address, clock):
            raise ApiError("rate-limited", "Too many failed authentications.", param="token")
        try:
            return await service.authenticator.authenticate(self.token, now=datetime.now(UTC))
        except ApiError as error:
            if error.code == "invalid-token":
                service.failures.record(self.address, clock)
            raise
        except Exception as error:
            error_id = uuid.uuid4().hex
            logger.error("identify-request-error errorId=%s", error_id, exc_info=error)
            raise ApiError("identify-request-error", "Internal error.") from error

    async def _watch_token(self) -> None:
        """Close the connection once its token no longer holds (revoked, expired)."""
        while not self.closed:
            await asyncio.sleep(self.service.settings.subscription_refresh_seconds)
            try:
                self.identity = await self.service.authenticator.authenticate(
                    self.token, now=datetime.now(UTC)
                )
            except ApiError as error:
                await self.close(CloseCode.forbidden, error.code)
            except Exception:
                # The database may be briefly away: the token is checked again next time.
                logger.exception("websocket token check failed")

    def _subscribe(self, message: dict[str, Any]) -> None:
        if self.identity is None:
            raise _Close(CloseCode.unauthorized, "Unauthorized")
        operation_id = message.get("id")
        payload = message.get("payload")
        if not isinstance(operation_id, str) or not operation_id or len(operation_id) > 200:
            raise _bad_request("Invalid message received: subscribe needs an id")
        if not isinstance(payload, dict):
            raise _bad_request("Invalid message received: subscribe needs a payload")
        if operation_id in self.operations:
            raise _Close(
                CloseCode.subscriber_exists, f"Subscriber for {operation_id} already exists"
            )
        self.operations[operation_id] = asyncio.create_task(
            self._operate(operation_id, payload, self.identity)
        )

    async def _operate(
        self, operation_id: str, payload: dict[str, Any], identity: Identity
    ) -> None:
        started = time.perf_counter()
        codes: list[str] = []
        sent = 0

        async def error(errors: list[dict[str, Any]]) -> None:
            codes.extend(item["extensions"]["code"] for item in errors)
            await self.send({"id": operation_id, "type": "error", "payload": errors})

        async def next_body(body: dict[str, Any]) -> None:
            nonlocal sent
            sent += 1
            codes.extend(item["extensions"]["code"] for item in body.get("errors", ()))
            await self.send({"id": operation_id, "type": "next", "payload": body})

        try:
            limit = self.service.settings.websocket_max_subscriptions
            if len(self.operations) > limit:
                raise ApiError(
                    "invalid-param",
                    f"A connection runs at most {limit} operations at once.",
                    param="websocket_max_subscriptions",
                )
            await self._run_operation(payload, identity, next_body)
            await self.send({"id": operation_id, "type": "complete"})
        except RequestErrors as errors:
            await error(errors.errors)
        except ApiError as failure:
            await error([{"message": failure.message, "extensions": failure.extensions()}])
        except asyncio.CancelledError:
            codes.append("cancelled")
            raise
        except Exception as failure:
            error_id = uuid.uuid4().hex
            logger.error("application-crash errorId=%s", error_id, exc_info=failure)
            crash = ApiError(
                "application-crash",
                f"An unexpected error occurred. Quote errorId {error_id}.",
                extra={"errorId": error_id},
            )
            await error([{"message": crash.message, "extensions": crash.extensions()}])
        finally:
            if self.operations.get(operation_id) is asyncio.current_task():
                del self.operations[operation_id]
            access_logger.info(
                orjson.dumps(
                    {
                        "event": "websocket-operation",
                        "operationId": operation_id[:200],
                        "requester": identity.requester_key,
                        "messages": sent,
                        "codes": sorted(set(codes)) or ["action-successful"],
                        "durationMs": round((time.perf_counter() - started) * 1000, 2),
                    }
                ).decode()
            )

    async def _run_operation(
        self,
        payload: dict[str, Any],
        identity: Identity,
        next_body: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        service = self.service
        operation = _operation_request(payload)
        prepared = service.runner.prepare(operation)
        try:
            await service.routes.check(prepared.routes)
        except ApiError as error:
            raise RequestErrors(
                [{"message": error.message, "extensions": error.extensions()}]
            ) from None
        context = RequestContext(
            settings=service.settings,
            engine=service.engine,
            identity=identity,
            now=datetime.now(UTC),
            links=service.links,
            base_url=self.base_url,
            request_id=uuid.uuid4().hex,
            storage=service.storage,
            wake_worker=service.wake_worker,
            events=self.events,
        )
        if prepared.is_subscription:
            bodies = await service.runner.subscribe(prepared, operation, context)
            try:
                async for body in bodies:
                    await next_body(body)
            finally:
                await bodies.aclose()
        else:
            await next_body(await service.runner.execute(prepared, operation, context))
