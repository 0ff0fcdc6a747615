"""Logs as JSON lines: one per request and per job step, with the request id, and no
personal data or token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import GraphQL
from group_orders.logs import JsonLinesFormatter
from group_orders.services.demo import DemoData
from group_orders.worker.runner import Runner
from uploading import csv_bytes, good_row, upload


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def captured() -> Iterator[Captured]:
    """What the service's loggers write, through the formatter the CLI installs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    service = logging.getLogger("group_orders")
    previous = service.level
    service.addHandler(handler)
    service.setLevel(logging.DEBUG)
    try:
        yield Captured(stream)
    finally:
        service.removeHandler(handler)
        service.setLevel(previous)


async def test_every_line_is_a_json_object_and_request_lines_carry_the_request_id(
    client: httpx.AsyncClient, graphql: GraphQL, demo: DemoData, captured: Captured
) -> None:
    # when: a GraphQL request, and a page request through a signed file link
    token = demo.tokens["client"]
    read = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id) { status normalizedCsv } }",
        {"id": demo.group_orders["acme-completed"]},
        token=token,
    )
    link = read.json()["data"]["groupOrder"]["normalizedCsv"]
    parts = urlsplit(link)
    download = await client.get(f"{parts.path}?{parts.query}")

    # then
    lines = captured.lines()
    requests = [line for line in lines if line.get("event") == "request"]
    assert [
        {k: v for k, v in line.items() if k not in ("time", "durationMs", "requester")}
        for line in requests
    ] == [
        {
            "level": "INFO",
            "logger": "group_orders.access",
            "requestId": read.headers["x-request-id"],
            "event": "request",
            "operations": 1,
            "operation": "groupOrder",
            "httpStatus": 200,
            "codes": ["action-successful"],
        },
        {
            "level": "INFO",
            "logger": "group_orders.access",
            "requestId": download.headers["x-request-id"],
            "event": "request",
            "method": "GET",
            "route": "/files/{group_order_id}/{file}",
            "httpStatus": 200,
        },
    ]
    assert read.headers["x-request-id"] != download.headers["x-request-id"]
    for secret in (token, link, parts.query, "alice"):
        assert secret not in captured.text()


async def test_each_job_step_logs_a_line(
    client: httpx.AsyncClient, demo: DemoData, jobs: Runner, captured: Captured
) -> None:
    # given
    rows = [good_row(1), good_row(2, email="secret-person@example.com", quantity="-5")]
    uploaded = await upload(client, demo.tokens["client"], csv_bytes(rows))
    group_order_id = uploaded.json()["data"]["createGroupOrder"]["groupOrder"]["id"]

    # when
    await jobs.run_until_idle()

    # then
    steps = [
        {k: v for k, v in line.items() if k not in ("time", "durationMs", "worker")}
        for line in captured.lines()
        if line.get("event") == "job"
    ]
    assert steps == [
        {
            "level": "INFO",
            "logger": "group_orders.jobs",
            "event": "job",
            "step": "started",
            "groupOrderId": group_order_id,
            "attempt": 1,
        },
        {
            "level": "INFO",
            "logger": "group_orders.jobs",
            "event": "job",
            "step": "counted",
            "groupOrderId": group_order_id,
            "estimatedRows": 2,
        },
        {
            "level": "DEBUG",
            "logger": "group_orders.jobs",
            "event": "job",
            "step": "batch",
            "groupOrderId": group_order_id,
            "processedRows": 2,
        },
        {
            "level": "INFO",
            "logger": "group_orders.jobs",
            "event": "job",
            "step": "completed",
            "groupOrderId": group_order_id,
            "rows": 2,
            "accepted": 1,
            "rejected": 1,
        },
    ]
    assert "secret-person" not in captured.text()
    assert demo.tokens["client"] not in captured.text()


def test_a_plain_message_and_an_exception_become_fields() -> None:
    # given
    formatter = JsonLinesFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "group_orders.worker",
            logging.ERROR,
            __file__,
            1,
            "job failed %s",
            ("x",),
            sys.exc_info(),
        )

    # when
    line = json.loads(formatter.format(record))

    # then
    assert line["message"] == "job failed x"
    assert line["level"] == "ERROR"
    assert "ValueError: boom" in line["exception"]
    assert "requestId" not in line
