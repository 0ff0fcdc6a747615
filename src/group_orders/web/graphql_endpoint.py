"""GraphQL over HTTP on ``/graphql``.

The order of checks decides which code a bad request gets:

1. method and content type        -> invalid-content-type (or 405 for other methods)
2. body size, read as it streams  -> payload-too-large, before the body is read in full
3. decoding                       -> invalid-encoded-params, no-params-decoded
4. token and session              -> missing-param, invalid-token, session-expired
5. parse and validate             -> invalid-param, missing-param (no ``data`` key)
6. routes and services            -> route-not-found, service-not-found (no ``data``)
7. execution                      -> field errors beside ``data``

Steps 1-4 answer with the table's HTTP status. Steps 5-6 follow the GraphQL-over-HTTP
spec: 200 for ``application/json``, the table's 4xx/5xx for
``application/graphql-response+json``.

A JSON body that is an array is a batch. Its size is checked with the decoding (step 3),
its token once for all its operations (step 4); steps 5-7 run for each operation on its
own, and each operation's body takes its slot in the answer, an array sent with 200.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Message
from strawberry.file_uploads.utils import replace_placeholders_with_files

from group_orders.auth.identity import Authenticator, Identity
from group_orders.auth.rate_limit import FailureLimiter
from group_orders.auth.tokens import bearer_token
from group_orders.db.engine import Reader, is_database_unavailable
from group_orders.errors import ApiError, database_unavailable, error_extensions
from group_orders.logs import current_request_id
from group_orders.schema.context import RequestContext
from group_orders.schema.execution import (
    MutationNotAllowed,
    OperationRequest,
    OperationRunner,
    PreparedOperation,
    RequestErrors,
)
from group_orders.schema.loaders import Loaders
from group_orders.services.events import EventBus
from group_orders.services.routes import RouteSwitches
from group_orders.settings import Settings
from group_orders.storage.base import Storage
from group_orders.storage.links import LinkSigner
from group_orders.web.graphiql import graphiql_html
from group_orders.web.metrics import REQUEST_LOG_KEY
from group_orders.web.responses import (
    GRAPHQL_RESPONSE_JSON,
    api_error_response,
    json_response,
    response_media_type,
)

logger = logging.getLogger("group_orders.web")


@dataclass(frozen=True, slots=True)
class GraphQLService:
    """What the endpoint needs, made once by the app's lifespan."""

    settings: Settings
    engine: Any
    reader: Reader
    runner: OperationRunner
    links: LinkSigner
    storage: Storage
    wake_worker: Callable[[], None]
    routes: RouteSwitches
    authenticator: Authenticator
    failures: FailureLimiter
    events: EventBus | None = None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to be over ``limit`` bytes."""
    too_large = ApiError(
        "payload-too-large",
        f"The request body is over the limit of {limit} bytes.",
        param="body",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_json(raw: bytes | str, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError):
        raise ApiError(
            "invalid-encoded-params",
            f"The {what} is not valid JSON in UTF-8 (or it is nested too deeply).",
            param=what,
        ) from None


def _no_query() -> ApiError:
    return ApiError(
        "no-params-decoded",
        'The request holds no GraphQL query: send {"query": "..."}.',
        param="query",
    )


# No argument of the schema nests anywhere near this; deeper values only cost recursion.
MAX_VARIABLES_DEPTH = 32


def _nesting(value: Any) -> int:
    """How deep a decoded JSON value nests, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_VARIABLES_DEPTH:
            return deepest
        if isinstance(current, dict):
            stack.extend((item, depth + 1) for item in current.values())
        elif isinstance(current, list):
            stack.extend((item, depth + 1) for item in current)
    return deepest


def _operation_request(payload: Any) -> OperationRequest:
    """The operation a decoded request (or one item of a batch) holds, or ``ApiError``."""
    if not isinstance(payload, dict) or payload.get("query") in (None, ""):
        raise _no_query()
    query = payload["query"]
    if not isinstance(query, str):
        raise ApiError("invalid-param", "'query' must be a string.", param="query")
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise ApiError("invalid-param", "'variables' must be a JSON object.", param="variables")
    if variables and _nesting(variables) > MAX_VARIABLES_DEPTH:
        raise ApiError(
            "invalid-encoded-params",
            f"'variables' are nested more than {MAX_VARIABLES_DEPTH} levels deep.",
            param="variables",
        )
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise ApiError("invalid-param", "'operationName' must be a string.", param="operationName")
    return OperationRequest(query, variables, operation_name or None)


def _get_payload(request: Request) -> dict[str, Any]:
    params = request.query_params
    payload: dict[str, Any] = {
        "query": params.get("query"),
        "operationName": params.get("operationName"),
    }
    if params.get("variables"):
        payload["variables"] = _decode_json(params["variables"], "variables")
    return payload


MULTIPART_OVERHEAD_BYTES = 64 * 1024

PREFLIGHT_HEADERS = (
    "graphql-require-preflight",
    "apollo-require-preflight",
    "x-apollo-operation-name",
)


def _limited(request: Request, limit: int) -> Request:
    """The same request, refused with payload-too-large as soon as its body passes
    ``limit`` bytes while it streams."""
    declared = request.headers.get("content-length", "")
    too_large = ApiError(
        "payload-too-large",
        f"The upload is over the limit of {limit} bytes.",
        param="file",
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large
        return message

    return Request(request.scope, receive)


async def _multipart_payload(request: Request, limit: int) -> tuple[dict[str, Any], FormData]:
    """The operation of a GraphQL multipart request, its files put in place."""
    if not any(request.headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
        raise ApiError(
            "missing-param",
            "Uploads need a 'GraphQL-Require-Preflight: 1' header, which a browser only "
            "sends after a CORS preflight (this protects against cross-site uploads).",
            param="GraphQL-Require-Preflight",
        )
    limited = _limited(request, limit)
    parser = MultiPartParser(limited.headers, limited.stream(), max_files=1, max_fields=10)
    try:
        form = await parser.parse()
    except (MultiPartException, HTTPException) as error:
        # Starlette answers a malformed body with an HTTPException of its own.
        detail = error.detail if isinstance(error, HTTPException) else str(error)
        raise ApiError(
            "invalid-encoded-params",
            f"The multipart body could not be read: {str(detail).rstrip('.')}.",
            param="body",
        ) from None
    _close_unfinished_parts(parser, form)
    try:
        return _operation_with_files(form), form
    except BaseException:
        # Whatever is wrong with it, the request's spooled files are closed now.
        await form.close()
        raise


def _close_unfinished_parts(parser: MultiPartParser, form: FormData) -> None:
    """A body that ends inside a file part still parses, but that part's spooled file
    is in no form field: close it now rather than leave it to the garbage collector.
    (Starlette tracks every file it opens, to close them when parsing fails.)"""
    kept = {
        id(value.file) for _, value in form.multi_items() if isinstance(value, StarletteUploadFile)
    }
    for spooled in parser._files_to_close_on_error:
        if id(spooled) not in kept:
            spooled.close()


def _operation_with_files(form: FormData) -> dict[str, Any]:
    operations = form.get("operations")
    files_map = form.get("map")
    if not isinstance(operations, str) or not isinstance(files_map, str):
        raise ApiError(
            "no-params-decoded",
            "A multipart request needs the 'operations' and 'map' fields of the GraphQL "
            "multipart request spec.",
            param="operations",
        )
    payload = _decode_json(operations, "operations")
    mapping = _decode_json(files_map, "map")
    if (
        not isinstance(payload, dict)
        or not isinstance(mapping, dict)
        or not all(
            isinstance(paths, list)
            and all(isinstance(path, str) for path in paths)
            and isinstance(form.get(name), StarletteUploadFile)
            for name, paths in mapping.items()
        )
    ):
        raise ApiError(
            "invalid-param",
            "'operations' must be one operation and 'map' must map each file field to "
            'variable paths such as ["variables.file"].',
            param="map",
        )
    try:
        result: dict[str, Any] = replace_placeholders_with_files(
            payload, mapping, {name: form[name] for name in mapping}
        )
    except (KeyError, IndexError, TypeError, ValueError):
        raise ApiError(
            "invalid-param", "A path in 'map' points nowhere in 'operations'.", param="map"
        ) from None
    return result


def _error_body(error: ApiError) -> dict[str, Any]:
    return {"errors": [{"message": error.message, "extensions": error.extensions()}]}


def _crash_body(error: Exception) -> dict[str, Any]:
    if is_database_unavailable(error):
        return _error_body(database_unavailable())
    error_id = uuid.uuid4().hex
    logger.error("application-crash errorId=%s", error_id, exc_info=error)
    return _error_body(
        ApiError(
            "application-crash",
            f"An unexpected error occurred. Quote errorId {error_id}.",
            extra={"errorId": error_id},
        )
    )


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "query" not in request.query_params


@dataclass
class RequestLog:
    """What the request's log line says: who, what came of it, how long it took. Never a
    token, a link or a row's data."""

    # The middleware's id when it set one; else 128 random bits in hex, as a uuid4's hex is.
    request_id: str = field(
        default_factory=lambda: current_request_id.get() or secrets.token_hex(16)
    )
    started: float = field(default_factory=time.perf_counter)
    requester: str | None = None
    operations: int = 0
    codes: list[str] = field(default_factory=list)
    # The root fields the request's operations asked for: what metrics label it by.
    routes: set[str] = field(default_factory=set)

    def note(self, body: dict[str, Any]) -> None:
        errors = body.get("errors") or []
        self.codes += [error["extensions"]["code"] for error in errors] or ["action-successful"]

    def line(self, status: int) -> str:
        return orjson.dumps(
            {
                "event": "request",
                "requestId": self.request_id,
                "requester": self.requester,
                "operations": self.operations,
                "operation": "+".join(sorted(self.routes)) or None,
                "httpStatus": status,
                "codes": sorted(set(self.codes)),
                "durationMs": round((time.perf_counter() - self.started) * 1000, 2),
            }
        ).decode()


_request_log: ContextVar[RequestLog] = ContextVar("request_log")
access_logger = logging.getLogger("group_orders.access")


class GraphQLEndpoint:
    def __init__(self, service: GraphQLService) -> None:
        self.service = service

    async def handle(self, request: Request) -> Response:
        log = RequestLog()
        _request_log.set(log)
        request.scope[REQUEST_LOG_KEY] = log
        response = await self._answer(request)
        response.headers["X-Request-Id"] = log.request_id
        if access_logger.isEnabledFor(logging.INFO):
            access_logger.info(log.line(response.status_code))
        return response

    async def _answer(self, request: Request) -> Response:
        media_type = response_media_type(request)
        try:
            return await self._handle(request, media_type)
        except ApiError as error:
            _request_log.get().codes.append(error.code)
            headers = None
            status = None
            if error.param == "method":
                headers, status = {"Allow": "GET, POST"}, 405
            elif "retryAfter" in error.extra:
                headers = {"Retry-After": str(error.extra["retryAfter"])}
            return api_error_response(error, media_type=media_type, status=status, headers=headers)

    async def _handle(self, request: Request, media_type: str) -> Response:
        settings = self.service.settings
        form: FormData | None = None
        if request.method == "GET":
            if _wants_html(request) and not settings.production:
                return HTMLResponse(graphiql_html())
            payload = _get_payload(request)
        elif request.method == "POST":
            content_type = request.headers.get("content-type", "")
            media = content_type.split(";")[0].strip().lower()
            if media == "application/json":
                payload = _decode_json(await read_body(request, settings.max_body_bytes), "body")
            elif media == "multipart/form-data":
                # The file's limit, and room for the operation and the multipart framing.
                payload, form = await _multipart_payload(
                    request, settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
                )
            else:
                raise ApiError(
                    "invalid-content-type",
                    "Send the request as 'Content-Type: application/json' (or "
                    "multipart/form-data for an upload).",
                    param="content-type",
                )
        else:
            raise ApiError(
                "route-non-existent", "/graphql answers GET and POST only.", param="method"
            )
        try:
            return await self._run(request, media_type, payload, multipart=form is not None)
        finally:
            if form is not None:
                await form.close()

    async def _run(
        self, request: Request, media_type: str, payload: Any, *, multipart: bool
    ) -> Response:
        if isinstance(payload, list):
            # Only a JSON body decodes to an array: a query string and a multipart
            # 'operations' field hold one operation.
            return await self._run_batch(request, media_type, payload)
        operation = _operation_request(payload)
        now = datetime.now(UTC)
        identity = await self._identify(request, [operation], now)
        try:
            body, status = await self._run_operation(
                request, operation, identity, now, multipart=multipart
            )
        except MutationNotAllowed:
            return self._get_mutation(media_type)
        if media_type != GRAPHQL_RESPONSE_JSON:
            status = 200
        log = _request_log.get()
        log.operations = 1
        log.note(body)
        return json_response(body, status=status, media_type=media_type)

    async def _run_batch(self, request: Request, media_type: str, payload: list[Any]) -> Response:
        """Every operation of a batch, run at once; their bodies in the order sent."""
        limit = self.service.settings.max_batch_operations
        if len(payload) > limit:
            raise ApiError(
                "invalid-param",
                f"The batch holds {len(payload)} operations, over the limit of {limit} per "
                "request.",
                param="max_batch_operations",
            )
        if not payload:
            raise _no_query()
        items: list[OperationRequest | ApiError] = []
        for item in payload:
            try:
                items.append(_operation_request(item))
            except ApiError as error:
                items.append(error)
        now = datetime.now(UTC)
        operations = [item for item in items if isinstance(item, OperationRequest)]
        identity = await self._identify(request, operations, now)
        # One set of loaders for the whole batch: its operations' reads go together.
        loaders = Loaders(self.service.engine, self.service.reader)
        bodies = await asyncio.gather(
            *(self._batch_item(request, item, identity, now, loaders) for item in items)
        )
        # The array itself is a success whatever its items hold: each item carries its
        # own codes and statuses, which no single HTTP status could sum up.
        log = _request_log.get()
        log.operations = len(bodies)
        for body in bodies:
            log.note(body)
        return json_response(bodies, media_type=media_type)

    async def _batch_item(
        self,
        request: Request,
        item: OperationRequest | ApiError,
        identity: Identity | None,
        now: datetime,
        loaders: Loaders,
    ) -> dict[str, Any]:
        """One slot of a batch's answer: whatever goes wrong here stays in this slot."""
        if isinstance(item, ApiError):
            return _error_body(item)
        try:
            body, _status = await self._run_operation(request, item, identity, now, loaders=loaders)
        except ApiError as error:
            return _error_body(error)
        except Exception as error:
            return _crash_body(error)
        return body

    async def _run_operation(
        self,
        request: Request,
        operation: OperationRequest,
        identity: Identity | None,
        now: datetime,
        *,
        multipart: bool = False,
        loaders: Loaders | None = None,
    ) -> tuple[dict[str, Any], int]:
        """One operation's response body, and the table's HTTP status of its request
        error (200 when it executed).

        Raises ``MutationNotAllowed`` for a mutation sent with GET, and ``ApiError`` for a
        failure to read the routes.
        """
        settings = self.service.settings
        try:
            prepared = self.service.runner.prepare(
                operation, allow_mutations=request.method != "GET"
            )
            _request_log.get().routes.update(prepared.routes)
            if multipart and not prepared.is_mutation:
                raise RequestErrors(
                    [
                        {
                            "message": "multipart/form-data is for uploads (mutations) only.",
                            "extensions": error_extensions("invalid-param", param="operations"),
                        }
                    ]
                )
            await self._check_routes(prepared)
            # One context per operation: its caches must not leak into another's.
            context = RequestContext(
                settings=settings,
                engine=self.service.engine,
                reader=self.service.reader,
                identity=identity,
                now=now,
                links=self.service.links,
                base_url=settings.public_base_url or str(request.base_url),
                request_id=_request_log.get().request_id,
                storage=self.service.storage,
                wake_worker=self.service.wake_worker,
                shared_loaders=loaders,
                events=self.service.events,
            )
            return await self.service.runner.execute(prepared, operation, context), 200
        except RequestErrors as errors:
            return {"errors": errors.errors}, errors.status

    async def _identify(
        self, request: Request, operations: Sequence[OperationRequest], now: datetime
    ) -> Identity | None:
        """The identity behind the request's token, once for all its operations."""
        token = bearer_token(request.headers.get("authorization"))
        if token is None and all(self._introspection_only(op) for op in operations):
            # Tools read the schema before anyone signs in.
            return None
        address = request.client.host if request.client else "unknown"
        clock = time.monotonic()
        if token is not None:
            wait = self.service.failures.retry_after(address, clock)
            if wait is not None:
                raise ApiError(
                    "rate-limited",
                    f"Too many failed authentications from this address. Retry after "
                    f"{wait} seconds.",
                    param="token",
                    extra={"retryAfter": wait},
                )
        try:
            identity = await self.service.authenticator.authenticate(token, now=now)
            _request_log.get().requester = identity.requester_key
            return identity
        except ApiError as error:
            if error.code == "invalid-token":
                weight = sum(_attempts(operation) for operation in operations)
                self.service.failures.record(address, clock, weight)
            raise
        except Exception as error:
            raise _identify_failure(error) from error

    def _introspection_only(self, operation: OperationRequest) -> bool:
        try:
            return self.service.runner.prepare(operation).introspection_only
        except (RequestErrors, MutationNotAllowed):
            return False

    async def _check_routes(self, prepared: PreparedOperation) -> None:
        try:
            await self.service.routes.check(prepared.routes)
        except ApiError as error:
            raise RequestErrors(
                [{"message": error.message, "extensions": error.extensions()}]
            ) from None
        except Exception as error:
            raise _identify_failure(error) from error

    @staticmethod
    def _get_mutation(media_type: str) -> Response:
        error = ApiError("invalid-param", "Mutations are sent with POST, never GET.", param="query")
        return api_error_response(
            error, media_type=media_type, status=405, headers={"Allow": "POST"}
        )


def _attempts(operation: OperationRequest) -> int:
    """How many things an operation asks for at its root, aliases included: what a
    failed authentication of it weighs."""
    try:
        document = parse(operation.query, max_tokens=1_000, no_location=True)
    except GraphQLError:
        return 1
    return max(
        1,
        sum(
            len(definition.selection_set.selections)
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        ),
    )


def _identify_failure(error: Exception) -> ApiError:
    if is_database_unavailable(error):
        logger.warning("service-not-found: database unavailable (%s)", type(error).__name__)
        return database_unavailable()
    error_id = uuid.uuid4().hex
    logger.error("identify-request-error errorId=%s", error_id, exc_info=error)
    return ApiError(
        "identify-request-error",
        f"An internal error occurred before the request was identified. Quote errorId {error_id}.",
        extra={"errorId": error_id},
    )
