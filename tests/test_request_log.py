"""One log line per request: who, what came of it, how long; never a token or a link."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import GraphQL
from group_orders.services.demo import DemoData, demo_id


async def test_a_request_logs_one_line_without_secrets(
    graphql: GraphQL, demo: DemoData, caplog: pytest.LogCaptureFixture
) -> None:
    # when: a request whose answer holds signed links, and one with a bad token
    with caplog.at_level(logging.DEBUG):
        good = await graphql.post(
            "query($id: ID!) { groupOrder(id: $id) { normalizedCsv session { userId } } }",
            {"id": demo.group_orders["acme-completed"]},
            token=demo.tokens["client"],
        )
        bad = await graphql.post("{ session { userId } }", token="gos_" + "y" * 43)

    # then
    lines = [
        json.loads(record.getMessage())
        for record in caplog.records
        if record.name == "group_orders.access"
    ]
    assert [{k: v for k, v in line.items() if k != "durationMs"} for line in lines] == [
        {
            "event": "request",
            "requestId": good.headers["x-request-id"],
            "requester": f"user:{demo_id('alice')}",
            "operations": 1,
            "operation": "groupOrder",
            "httpStatus": 200,
            "codes": ["action-successful"],
        },
        {
            "event": "request",
            "requestId": bad.headers["x-request-id"],
            "requester": None,
            "operations": 0,
            "operation": None,
            "httpStatus": 401,
            "codes": ["invalid-token"],
        },
    ]
    assert all(line["durationMs"] >= 0 for line in lines)
    everything = "\n".join(record.getMessage() for record in caplog.records)
    link = good.json()["data"]["groupOrder"]["normalizedCsv"]
    for secret in (demo.tokens["client"], "y" * 43, link, link.split("signature=")[1]):
        assert secret not in everything
