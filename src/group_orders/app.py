"""The application, assembled from parts: ``create_app(settings)``.

The lifespan owns the engine: it migrates the database, records the routes of a fresh
install, and disposes of the engine at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from group_orders.auth.identity import Authenticator
from group_orders.auth.rate_limit import FailureLimiter
from group_orders.db.engine import Reader, create_engine, is_database_unavailable
from group_orders.db.migrate import upgrade
from group_orders.errors import UNAVAILABLE_RETRY_AFTER, ApiError, database_unavailable
from group_orders.schema.execution import OperationRunner
from group_orders.schema.limits import QueryLimits
from group_orders.schema.query import build_schema
from group_orders.services.events import create_event_bus
from group_orders.services.page_links import PageLinkSigner
from group_orders.services.routes import RouteSwitches, sync_routes
from group_orders.settings import Settings
from group_orders.storage import create_storage
from group_orders.storage.links import LinkSigner
from group_orders.web import graphiql
from group_orders.web.files import FilesEndpoint
from group_orders.web.graphql_endpoint import GraphQLEndpoint, GraphQLService
from group_orders.web.group_order_page import GroupOrderPage
from group_orders.web.health import Readiness, healthz
from group_orders.web.metrics import Metrics, ObserveRequests
from group_orders.web.responses import api_error_response, response_media_type
from group_orders.web.subscriptions import SubscriptionEndpoint
from group_orders.worker.runner import create_runner

logger = logging.getLogger("group_orders.app")


async def _not_served(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    error = ApiError(
        "route-non-existent",
        f"{request.method} {request.url.path} is not served here. GraphQL is at /graphql.",
        param="path",
    )
    headers = {"Allow": "GET, POST"} if status == 405 else None
    return api_error_response(
        error,
        media_type=response_media_type(request),
        status=405 if status == 405 else None,
        headers=headers,
    )


async def _crash(request: Request, exc: Exception) -> Response:
    if is_database_unavailable(exc):
        return api_error_response(
            database_unavailable(),
            media_type=response_media_type(request),
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        )
    error_id = uuid.uuid4().hex
    logger.error("application-crash errorId=%s", error_id, exc_info=exc)
    error = ApiError(
        "application-crash",
        f"An unexpected error occurred. Quote errorId {error_id}.",
        extra={"errorId": error_id},
    )
    return api_error_response(error, media_type=response_media_type(request))


def freeze_startup_objects() -> None:
    """Keep the objects a served process made at start out of the cyclic collector's way.

    The schema, the types, the SQL statements and the imported modules live as long as
    the process, yet each full collection walked them all again: about 0.2 s each, several
    times a minute under load, every request waiting meanwhile. Frozen, they are never
    walked; what requests make is collected as before. For the processes that serve (not
    for tests, which make one app after another).
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings) -> Starlette:
    settings.check()
    engine = create_engine(settings)
    reader = Reader.for_engine(engine, settings)
    links = LinkSigner(settings.secret_key, settings.link_lifetime)
    schema = build_schema()
    storage = create_storage(settings)
    # Group-order events: the worker publishes, subscriptions listen.
    events = create_event_bus(settings)
    jobs = create_runner(engine, storage, settings, events=events)
    service = GraphQLService(
        settings=settings,
        engine=engine,
        reader=reader,
        runner=OperationRunner(
            schema,
            limits=QueryLimits(
                max_tokens=settings.max_query_tokens,
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
            ),
            production=settings.production,
        ),
        links=links,
        storage=storage,
        wake_worker=jobs.wake,
        routes=RouteSwitches(engine, settings.route_cache_seconds),
        failures=FailureLimiter(
            max_failures=settings.auth_failure_limit,
            window_seconds=settings.auth_failure_window_seconds,
        ),
        authenticator=Authenticator(
            engine,
            ttl_seconds=settings.token_cache_seconds,
            last_used_write_interval=timedelta(seconds=settings.last_used_write_interval_seconds),
            reader=reader,
        ),
        events=events,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await upgrade(engine)
        await sync_routes(engine)
        worker = asyncio.create_task(jobs.run_forever()) if settings.embedded_worker else None
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await events.close()
            await reader.close()
            await engine.dispose()

    graphql = GraphQLEndpoint(service)
    metrics = Metrics(engine)
    group_order_page = GroupOrderPage(
        service, PageLinkSigner(settings.secret_key, settings.email_link_lifetime)
    )
    routes: list[BaseRoute] = [
        Route(
            "/graphql",
            graphql.handle,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        ),
        WebSocketRoute("/graphql", SubscriptionEndpoint(service, events).handle),
        Route("/files/{group_order_id}/{file}", FilesEndpoint(engine, links, storage).handle),
        Route("/healthz", healthz),
        Route("/readyz", Readiness(engine, settings).handle),
        Route("/metrics", metrics.handle),
        Route("/group-orders/{group_order_id}", group_order_page.page),
        Route("/group-orders/{group_order_id}/summary", group_order_page.summary),
    ]
    if not settings.production:
        routes.append(Mount(graphiql.STATIC_PATH, graphiql.static_files()))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(ObserveRequests, metrics=metrics, routes=routes)],
        exception_handlers={404: _not_served, 405: _not_served, Exception: _crash},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.schema = schema
    app.state.runner = service.runner
    app.state.storage = storage
    app.state.jobs = jobs
    app.state.events = events
    app.state.metrics = metrics
    return app
