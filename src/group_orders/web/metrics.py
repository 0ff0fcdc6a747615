"""Prometheus metrics: ``/metrics``, and the middleware that counts every request.

Per process: HTTP requests by route and status, their latency, and GraphQL requests by
operation (the root fields asked for) and code, taken from the request's log record.
From the database, read at each scrape so that every process tells the same: group
orders by status, the queue's depth, rows processed, notifications by channel and
status (email failures among them). See ``docs/operating.md``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from group_orders.logs import current_request_id
from group_orders.services.operations import ServiceSnapshot, service_snapshot

access_logger = logging.getLogger("group_orders.access")

# The *_created series say when a process started counting: noise beside the counts.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Where the GraphQL endpoint leaves its request's log record for the middleware.
REQUEST_LOG_KEY = "group_orders.request_log"

# Seconds; a GraphQL read answers in milliseconds, an upload of a large file in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _DatabaseCollector(Collector):
    """The figures of the last snapshot read from the database."""

    def __init__(self) -> None:
        self.snapshot: ServiceSnapshot | None = None

    def collect(self) -> Iterable[Metric]:
        snapshot = self.snapshot
        if snapshot is None:
            return
        group_orders = GaugeMetricFamily(
            "group_orders_group_orders", "Group orders by status.", labels=["status"]
        )
        for status, count in snapshot.group_orders.items():
            group_orders.add_metric([status.value], count)
        yield group_orders
        yield GaugeMetricFamily(
            "group_orders_queue_depth",
            "Group orders waiting for a worker (status pending).",
            value=snapshot.queue_depth,
        )
        rows = CounterMetricFamily(
            "group_orders_rows_processed",
            "Rows validated, over all group orders; by outcome once completed.",
            labels=["outcome"],
        )
        rows.add_metric(["any"], snapshot.rows_processed)
        rows.add_metric(["accepted"], snapshot.rows_accepted)
        rows.add_metric(["rejected"], snapshot.rows_rejected)
        yield rows
        notifications = GaugeMetricFamily(
            "group_orders_notifications",
            "Outcome emails and webhook POSTs by channel and status.",
            labels=["channel", "status"],
        )
        for (channel, sent), count in snapshot.notifications.items():
            notifications.add_metric([channel, sent.value], count)
        yield notifications
        email_failures = CounterMetricFamily(
            "group_orders_email_failures",
            "Outcome emails that failed after all their attempts.",
        )
        email_failures.add_metric(
            [],
            sum(
                n
                for (channel, status), n in snapshot.notifications.items()
                if channel == "email" and status.value == "failed"
            ),
        )
        yield email_failures


class Metrics:
    """One process's metrics, in a registry of their own (never the global one)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "group_orders_http_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "group_orders_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.graphql_requests = Counter(
            "group_orders_graphql_requests",
            "GraphQL requests by operation (root fields) and code; a request with several "
            "codes counts once for each.",
            ["operation", "code"],
            registry=self.registry,
        )
        self.graphql_latency = Histogram(
            "group_orders_graphql_request_duration_seconds",
            "Time to answer a GraphQL request, by operation (root fields).",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._database = _DatabaseCollector()
        self.registry.register(self._database)

    def observe(self, route: str, status: int, seconds: float, log: Any) -> None:
        self.http_requests.labels(route, str(status)).inc()
        self.http_latency.labels(route).observe(seconds)
        if log is None:
            return
        operation = operation_label(log.routes)
        for code in sorted(set(log.codes)) or ["action-successful"]:
            self.graphql_requests.labels(operation, code).inc()
        self.graphql_latency.labels(operation).observe(seconds)

    async def handle(self, _request: Request) -> Response:
        self._database.snapshot = await service_snapshot(self.engine)
        return Response(
            generate_latest(self.registry),
            media_type=CONTENT_TYPE_LATEST,
            headers={"Cache-Control": "no-store"},
        )


def operation_label(routes: Iterable[str]) -> str:
    """The root fields a request asked for, sorted and joined by '+': a bounded set of
    labels (a client's operation names are not). ``none`` when it asked for none: it
    was refused before its document was read, or it was introspection only."""
    return "+".join(sorted(set(routes))) or "none"


class ObserveRequests:
    """Counts and times every HTTP request, labelled by the route's path template, and
    gives it a request id (``X-Request-Id``) that every log line of the request carries.

    The GraphQL endpoint writes its own, richer access line; every other request gets
    one here, with its route, never its path or query string (which hold signatures).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    def _route(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "other"))
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = uuid.uuid4().hex
        bound = current_request_id.set(request_id)

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers["X-Request-Id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            seconds = time.perf_counter() - started
            route = self._route(scope)
            log = scope.get(REQUEST_LOG_KEY)
            self.metrics.observe(route, status, seconds, log)
            if log is None:
                access_logger.info(
                    orjson.dumps(
                        {
                            "event": "request",
                            "requestId": request_id,
                            "method": scope["method"],
                            "route": route,
                            "httpStatus": status,
                            "durationMs": round(seconds * 1000, 2),
                        }
                    ).decode()
                )
            current_request_id.reset(bound)
