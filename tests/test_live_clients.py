"""Clients people use, against a real server: the follow example and gql's WebSocket
transport."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from group_orders.services.demo import DemoData
from group_orders.settings import Settings
from live import SUBSCRIPTION, Server, serving
from uploading import csv_bytes, good_row, upload

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "follow_group_order.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("follow_group_order", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["follow_group_order"] = module
    spec.loader.exec_module(module)
    return module


class Output(io.StringIO):
    """What the example prints, with an event once it printed something."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with serving(settings) as running:
        yield running


async def test_the_follow_example_prints_each_state_until_done(
    server: Server, demo: DemoData
) -> None:
    # given
    token = demo.tokens["client"]
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        response = await upload(http, token, csv_bytes([good_row(1), good_row(2, sku="NOPE")]))
    group_order_id = response.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
    output = Output()
    follow = asyncio.create_task(
        load_example().follow(server.ws_url, token, group_order_id, output=output)
    )
    await output.written.wait()

    # when
    await server.app.state.jobs.run_until_idle()
    status = await follow

    # then
    lines = output.getvalue().splitlines()
    assert status == 0
    assert lines[0] == "pending    0/0 rows"
    assert lines[-1] == "completed  2/2 rows, 1 accepted, 1 rejected"


async def test_the_follow_example_reports_a_refused_token(server: Server) -> None:
    output = io.StringIO()
    status = await load_example().follow(
        server.ws_url, "gos_not-a-token", str(uuid.uuid4()), output=output
    )

    assert (status, output.getvalue()) == (2, "closed 4403: invalid-token\n")


def gql_client(server: Server, token: str) -> Client:
    transport = WebsocketsTransport(
        url=server.ws_url,
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    return Client(transport=transport)


async def test_gql_follows_a_group_order_to_its_end(server: Server, demo: DemoData) -> None:
    # when
    async with gql_client(server, demo.tokens["client"]) as session:
        results = [
            result
            async for result in session.subscribe(
                GraphQLRequest(
                    SUBSCRIPTION, variable_values={"id": demo.group_orders["acme-completed"]}
                )
            )
        ]

    # then: one state, and the stream ends by itself
    assert results == [
        {
            "groupOrderUpdated": {
                "id": demo.group_orders["acme-completed"],
                "status": "completed",
                "totalOrders": 12,
                "successfulOrders": 10,
                "rejectedOrders": 2,
                "progress": {"processedRows": 0, "totalRows": 12},
            }
        }
    ]


async def test_gql_gets_the_documented_code_of_an_error(server: Server, demo: DemoData) -> None:
    async with gql_client(server, demo.tokens["client"]) as session:
        with pytest.raises(TransportQueryError) as caught:
            async for _result in session.subscribe(
                GraphQLRequest(
                    SUBSCRIPTION, variable_values={"id": demo.group_orders["borealis-pending"]}
                )
            ):
                pass

    assert caught.value.errors is not None
    assert caught.value.errors[0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": "id",
    }
