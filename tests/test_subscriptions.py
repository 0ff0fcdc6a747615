"""Live updates over WebSocket (graphql-transport-ws), against a real server."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from group_orders.db.engine import write_transaction
from group_orders.db.tables import group_order_table
from group_orders.services.accounts import revoke_token
from group_orders.services.demo import DemoData
from group_orders.services.processing import process_group_order
from group_orders.services.routes import set_deployed
from group_orders.settings import Settings
from live import (
    SUBPROTOCOL,
    SUBSCRIPTION,
    Server,
    bearer,
    receive,
    send,
    serving,
    session,
    subscribe,
    until_complete,
)
from uploading import csv_bytes, good_row, upload


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with serving(settings) as running:
        yield running


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        yield client


async def upload_rows(http: httpx.AsyncClient, token: str, rows: int) -> str:
    response = await upload(http, token, csv_bytes([good_row(n) for n in range(1, rows + 1)]))
    body = response.json()
    assert "errors" not in body, body
    group_order_id: str = body["data"]["createGroupOrder"]["groupOrder"]["id"]
    return group_order_id


def state_of(message: dict[str, Any]) -> tuple[str, int, int]:
    assert message["type"] == "next", message
    group_order = message["payload"]["data"]["groupOrderUpdated"]
    progress = group_order["progress"]
    return group_order["status"], progress["processedRows"], progress["totalRows"]


async def closed(websocket: ClientConnection) -> tuple[int, str]:
    """The code and reason the server closed the connection with."""
    with pytest.raises(ConnectionClosed) as caught:
        await receive(websocket)
    assert caught.value.rcvd is not None
    return caught.value.rcvd.code, caught.value.rcvd.reason


async def test_a_subscription_sees_each_batch_and_then_the_final_state(
    server: Server, http: httpx.AsyncClient, demo: DemoData
) -> None:
    # given: 2,500 rows, processed in batches of 1,000
    token = demo.tokens["client"]
    group_order_id = await upload_rows(http, token, 2_500)
    messages: list[dict[str, Any]] = []
    batches = 0

    async with session(server, bearer(token)) as websocket:
        await subscribe(websocket, "follow", SUBSCRIPTION, {"id": group_order_id})
        messages.append(await receive(websocket))

        async def after_each_batch() -> bool:
            # The worker waits here until the subscriber was told of this batch.
            nonlocal batches
            batches += 1
            expected = min(batches * 1_000, 2_500)
            while True:
                messages.append(await receive(websocket))
                if state_of(messages[-1])[1] == expected:
                    return True

        # when
        app = server.app
        await process_group_order(
            app.state.engine,
            app.state.storage,
            app.state.settings,
            uuid.UUID(group_order_id),
            worker_id="test-worker",
            attempt=1,
            keep_lease=after_each_batch,
            events=app.state.events,
        )
        messages += await until_complete(websocket, "follow")

    # then: the state at once, progress per batch, the final state, and complete
    states = [state_of(message) for message in messages[:-1]]
    assert states[0] == ("pending", 0, 0)
    assert [state for state in states if state[0] == "processing" and state[1] > 0] == [
        ("processing", 1_000, 2_500),
        ("processing", 2_000, 2_500),
        ("processing", 2_500, 2_500),
    ]
    assert states[-1] == ("completed", 2_500, 2_500)
    assert messages[-2]["payload"]["data"]["groupOrderUpdated"]["successfulOrders"] == 2_500
    assert messages[-2]["payload"]["extensions"] == {"status": "action-successful"}
    assert messages[-1] == {"id": "follow", "type": "complete"}


async def test_the_job_runner_publishes_to_a_subscriber_until_done(
    server: Server, http: httpx.AsyncClient, demo: DemoData
) -> None:
    # given
    token = demo.tokens["client"]
    group_order_id = await upload_rows(http, token, 3)

    async with session(server, {"token": token}) as websocket:
        await subscribe(websocket, "1", SUBSCRIPTION, {"id": group_order_id})
        first = await receive(websocket)

        # when
        await server.app.state.jobs.run_until_idle()
        rest = await until_complete(websocket, "1")

    # then
    assert state_of(first) == ("pending", 0, 0)
    assert state_of(rest[-2]) == ("completed", 3, 3)
    assert rest[-1] == {"id": "1", "type": "complete"}


async def test_a_cancel_reaches_the_subscriber_as_an_event(
    settings: Settings, demo: DemoData
) -> None:
    # given: no timer would re-read within the test, only an event can
    async with serving(settings.with_changes(subscription_refresh_seconds=3_600)) as server:
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            token = demo.tokens["client"]
            group_order_id = await upload_rows(http, token, 3)
            async with session(server, bearer(token)) as websocket:
                await subscribe(websocket, "1", SUBSCRIPTION, {"id": group_order_id})
                first = await receive(websocket)

                # when
                response = await http.post(
                    "/graphql",
                    json={
                        "query": "mutation($id: ID!) { cancelGroupOrder(id: $id) { status } }",
                        "variables": {"id": group_order_id},
                    },
                    headers=bearer(token),
                )
                rest = await until_complete(websocket, "1")

    # then
    assert response.json()["data"] == {"cancelGroupOrder": {"status": "cancelled"}}
    assert state_of(first)[0] == "pending"
    assert [state_of(message)[0] for message in rest[:-1]] == ["cancelled"]
    assert rest[-1] == {"id": "1", "type": "complete"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"Authorization": "Bearer gos_not-a-token"}, "invalid-token"),
        ({"token": "goa_" + "x" * 43}, "invalid-token"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "invalid-token"),
        ({}, "missing-param"),
        (None, "missing-param"),
    ],
)
async def test_a_bad_token_in_connection_init_closes_with_4403_and_its_code(
    server: Server, payload: dict[str, str] | None, reason: str
) -> None:
    async with connect(server.ws_url, subprotocols=[SUBPROTOCOL]) as websocket:
        # when
        await send(websocket, {"type": "connection_init", "payload": payload})

        # then
        assert await closed(websocket) == (4403, reason)


async def test_an_expired_session_closes_with_session_expired(
    server: Server, demo: DemoData
) -> None:
    async with connect(server.ws_url, subprotocols=[SUBPROTOCOL]) as websocket:
        await send(
            websocket, {"type": "connection_init", "payload": bearer(demo.tokens["expired"])}
        )
        assert await closed(websocket) == (4403, "session-expired")


async def test_failed_authentications_are_rate_limited_per_address(
    settings: Settings, demo: DemoData
) -> None:
    # given: two failures allowed per window
    limited = settings.with_changes(auth_failure_limit=2, auth_failure_window_seconds=3_600)
    async with serving(limited) as server:
        reasons = []
        for token in ("gos_guess-1", "gos_guess-2", demo.tokens["client"]):
            async with connect(server.ws_url, subprotocols=[SUBPROTOCOL]) as websocket:
                # when
                await send(websocket, {"type": "connection_init", "payload": bearer(token)})
                reasons.append(await closed(websocket))

    # then: even a good token waits until the window has passed
    assert reasons == [(4403, "invalid-token"), (4403, "invalid-token"), (4403, "rate-limited")]


async def test_an_id_outside_the_scope_is_answered_exactly_as_an_unknown_id(
    server: Server, demo: DemoData
) -> None:
    # given: the liaison's clients are Borealis and Cedar, not Acme
    outside = demo.group_orders["acme-pending"]
    unknown = str(uuid.uuid4())

    async with session(server, bearer(demo.tokens["liaison"])) as websocket:
        # when
        await subscribe(websocket, "outside", SUBSCRIPTION, {"id": outside})
        answer_outside = await until_complete(websocket, "outside")
        await subscribe(websocket, "unknown", SUBSCRIPTION, {"id": unknown})
        answer_unknown = await until_complete(websocket, "unknown")
        # the connection stays usable
        await send(websocket, {"type": "ping"})
        pong = await receive(websocket)

    # then
    expected = [
        {
            "message": "No group order has this id.",
            "locations": [{"line": 3, "column": 3}],
            "path": ["groupOrderUpdated"],
            "extensions": {"code": "invalid-param", "status": 400, "param": "id"},
        }
    ]
    assert answer_outside == [{"id": "outside", "type": "error", "payload": expected}]
    assert answer_unknown == [{"id": "unknown", "type": "error", "payload": expected}]
    assert pong == {"type": "pong"}


async def test_a_field_outside_the_view_is_refused(server: Server, demo: DemoData) -> None:
    query = """
    subscription($id: ID!) {
      groupOrderUpdated(id: $id, view: inital_upload) { status rejectedOrders }
    }
    """
    async with session(server, bearer(demo.tokens["client"])) as websocket:
        await subscribe(websocket, "1", query, {"id": demo.group_orders["acme-pending"]})
        answer = await until_complete(websocket, "1")

    [message] = answer
    assert message["type"] == "error"
    [error] = message["payload"]
    assert error["extensions"]["code"] == "invalid-param"
    assert error["extensions"]["param"] == "view"
    assert error["extensions"]["fields"] == ["rejectedOrders"]


async def test_a_view_the_role_may_not_use_is_refused(server: Server, demo: DemoData) -> None:
    async with session(server, bearer(demo.tokens["client"])) as websocket:
        await subscribe(
            websocket,
            "1",
            SUBSCRIPTION,
            {"id": demo.group_orders["acme-pending"], "view": "planoworker_processing_view"},
        )
        [message] = await until_complete(websocket, "1")

    assert message["payload"][0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": "view",
    }


async def test_an_employee_follows_any_group_order_in_the_worker_view(
    server: Server, demo: DemoData
) -> None:
    query = """
    subscription($id: ID!) {
      groupOrderUpdated(id: $id, view: planoworker_processing_view) { status queueJobId }
    }
    """
    async with session(server, bearer(demo.tokens["employee"])) as websocket:
        await subscribe(websocket, "1", query, {"id": demo.group_orders["borealis-completed"]})
        answer = await until_complete(websocket, "1")

    assert answer == [
        {
            "id": "1",
            "type": "next",
            "payload": {
                "data": {
                    "groupOrderUpdated": {
                        "status": "completed",
                        "queueJobId": "job-borealis-completed",
                    }
                },
                "extensions": {"status": "action-successful"},
            },
        },
        {"id": "1", "type": "complete"},
    ]


async def test_a_withdrawn_route_is_route_not_found(server: Server, demo: DemoData) -> None:
    await set_deployed(server.app.state.engine, "groupOrderUpdated", deployed=False)
    async with session(server, bearer(demo.tokens["client"])) as websocket:
        await subscribe(websocket, "1", SUBSCRIPTION, {"id": demo.group_orders["acme-pending"]})
        [message] = await until_complete(websocket, "1")

    assert message["payload"] == [
        {
            "message": "The route 'groupOrderUpdated' is not deployed.",
            "extensions": {"code": "route-not-found", "status": 404, "param": "groupOrderUpdated"},
        }
    ]


async def test_a_query_runs_once_over_the_websocket(server: Server, demo: DemoData) -> None:
    query = "query($id: ID!) { groupOrder(id: $id) { status } }"
    async with session(server, bearer(demo.tokens["client"])) as websocket:
        await subscribe(websocket, "q", query, {"id": demo.group_orders["acme-completed"]})
        answer = await until_complete(websocket, "q")

    assert answer == [
        {
            "id": "q",
            "type": "next",
            "payload": {
                "data": {"groupOrder": {"status": "completed"}},
                "extensions": {"status": "action-successful"},
            },
        },
        {"id": "q", "type": "complete"},
    ]


async def test_a_subscription_over_http_is_refused(
    server: Server, http: httpx.AsyncClient, demo: DemoData
) -> None:
    response = await http.post(
        "/graphql",
        json={"query": SUBSCRIPTION, "variables": {"id": demo.group_orders["acme-pending"]}},
        headers=bearer(demo.tokens["client"]),
    )

    assert response.json() == {
        "errors": [
            {
                "message": "Subscriptions are served over WebSocket (graphql-transport-ws) on "
                "/graphql.",
                "extensions": {"code": "invalid-param", "status": 400, "param": "query"},
            }
        ]
    }


async def test_a_page_of_another_origin_is_refused_at_the_handshake(server: Server) -> None:
    # when
    with pytest.raises(InvalidStatus) as caught:
        async with connect(
            server.ws_url, subprotocols=[SUBPROTOCOL], origin=Origin("https://evil.example")
        ):
            pass

    # then: refused before any message, with the documented code
    response = caught.value.response
    assert response.status_code == 403
    assert json.loads(response.body or b"") == {
        "errors": [
            {
                "message": "WebSocket connections from this origin are not allowed; an "
                "operator may add it to GROUP_ORDERS_WEBSOCKET_ORIGINS.",
                "extensions": {"code": "origin-not-allowed", "status": 403, "param": "Origin"},
            }
        ]
    }


async def test_the_servers_own_origin_and_listed_origins_are_allowed(
    settings: Settings, demo: DemoData
) -> None:
    listed = settings.with_changes(websocket_allowed_origins=("https://app.example",))
    async with serving(listed) as server:
        token = demo.tokens["client"]
        for origin in (f"http://127.0.0.1:{server.port}", "https://app.example"):
            async with session(server, bearer(token), origin=origin) as websocket:
                await send(websocket, {"type": "ping", "payload": {"origin": origin}})
                assert await receive(websocket) == {"type": "pong", "payload": {"origin": origin}}
        with pytest.raises(InvalidStatus):
            async with connect(
                server.ws_url, subprotocols=[SUBPROTOCOL], origin=Origin("https://other.example")
            ):
                pass


async def test_subscribe_before_connection_ack_closes_with_4401(server: Server) -> None:
    async with connect(server.ws_url, subprotocols=[SUBPROTOCOL]) as websocket:
        await subscribe(websocket, "1", SUBSCRIPTION, {"id": str(uuid.uuid4())})
        assert await closed(websocket) == (4401, "Unauthorized")


async def test_a_second_connection_init_closes_with_4429(server: Server, demo: DemoData) -> None:
    async with session(server, bearer(demo.tokens["client"])) as websocket:
        await send(websocket, {"type": "connection_init", "payload": {}})
        assert await closed(websocket) == (4429, "Too many initialisation requests")


async def test_an_id_already_running_closes_with_4409(server: Server, demo: DemoData) -> None:
    variables = {"id": demo.group_orders["acme-pending"]}
    async with session(server, bearer(demo.tokens["client"])) as websocket:
        await subscribe(websocket, "same", SUBSCRIPTION, variables)
        assert state_of(await receive(websocket))[0] == "pending"
        await subscribe(websocket, "same", SUBSCRIPTION, variables)
        assert await closed(websocket) == (4409, "Subscriber for same already exists")


async def test_complete_from_the_client_stops_the_subscription(
    server: Server, demo: DemoData
) -> None:
    group_order_id = demo.group_orders["acme-pending"]
    events = server.app.state.events
    async with session(server, bearer(demo.tokens["client"])) as websocket:
        await subscribe(websocket, "1", SUBSCRIPTION, {"id": group_order_id})
        await receive(websocket)
        listening = events.listening(uuid.UUID(group_order_id))

        # when
        await send(websocket, {"id": "1", "type": "complete"})
        await send(websocket, {"type": "ping"})
        pong = await receive(websocket)

    # then: the server stopped listening and sent nothing more for "1"
    assert (listening, pong) == (1, {"type": "pong"})
    assert events.listening(uuid.UUID(group_order_id)) == 0


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "Invalid message received: not JSON"),
        ('{"no": "type"}', "Invalid message received: no type"),
        ('{"type": "start"}', "Invalid message received: unknown type 'start'"),
        ('{"type": "subscribe", "id": "1"}', "Invalid message received: subscribe needs a payload"),
        ('{"type": "subscribe", "payload": {}}', "Invalid message received: subscribe needs an id"),
    ],
)
async def test_a_message_outside_the_protocol_closes_with_4400(
    server: Server, demo: DemoData, message: str, reason: str
) -> None:
    async with session(server, bearer(demo.tokens["client"])) as websocket:
        await websocket.send(message)
        assert await closed(websocket) == (4400, reason)


async def test_a_bad_document_is_an_error_message_with_its_code(
    server: Server, demo: DemoData
) -> None:
    async with session(server, bearer(demo.tokens["client"])) as websocket:
        await subscribe(websocket, "1", "subscription { groupOrderUpdated { id } }")
        [missing] = await until_complete(websocket, "1")
        await subscribe(websocket, "2", "subscription { nothing }")
        [unknown] = await until_complete(websocket, "2")
        await send(websocket, {"id": "3", "type": "subscribe", "payload": {}})
        [empty] = await until_complete(websocket, "3")

    assert missing["payload"][0]["extensions"] == {
        "code": "missing-param",
        "status": 400,
        "param": "id",
    }
    assert unknown["payload"][0]["extensions"]["code"] == "invalid-param"
    assert empty["payload"][0]["extensions"] == {
        "code": "no-params-decoded",
        "status": 400,
        "param": "query",
    }


async def test_without_the_subprotocol_the_connection_closes_with_4406(server: Server) -> None:
    async with connect(server.ws_url) as websocket:
        assert await closed(websocket) == (4406, "Subprotocol not acceptable")


async def test_no_connection_init_in_time_closes_with_4408(
    settings: Settings,
) -> None:
    async with (
        serving(settings.with_changes(websocket_init_timeout_seconds=0.05)) as server,
        connect(server.ws_url, subprotocols=[SUBPROTOCOL]) as websocket,
    ):
        assert await closed(websocket) == (4408, "Connection initialisation timeout")


async def test_a_revoked_token_closes_the_open_connection(
    settings: Settings, demo: DemoData
) -> None:
    # given: the token is checked again often
    async with serving(settings.with_changes(subscription_refresh_seconds=0.05)) as server:
        async with session(server, bearer(demo.tokens["client-b"])) as websocket:
            # when
            assert await revoke_token(server.app.state.engine, demo.tokens["client-b"])

            # then
            assert await closed(websocket) == (4403, "invalid-token")


async def test_a_change_without_an_event_arrives_with_the_timer(
    settings: Settings, demo: DemoData
) -> None:
    # given: a change written behind the service's back, announced to no one
    group_order_id = demo.group_orders["acme-pending"]
    async with serving(settings.with_changes(subscription_refresh_seconds=0.05)) as server:
        async with session(server, bearer(demo.tokens["client"])) as websocket:
            await subscribe(websocket, "1", SUBSCRIPTION, {"id": group_order_id})
            first = await receive(websocket)

            # when
            async with write_transaction(server.app.state.engine) as connection:
                await connection.execute(
                    sa.update(group_order_table)
                    .where(group_order_table.c.id == uuid.UUID(group_order_id))
                    .values(status="failed")
                )
            rest = await until_complete(websocket, "1")

    # then: the slow re-read found it, and the subscription ended
    assert state_of(first)[0] == "pending"
    assert [state_of(message)[0] for message in rest[:-1]] == ["failed"]
    assert rest[-1] == {"id": "1", "type": "complete"}


async def test_operations_at_once_on_one_connection_are_limited(
    settings: Settings, demo: DemoData
) -> None:
    variables = {"id": demo.group_orders["acme-pending"]}
    async with serving(settings.with_changes(websocket_max_subscriptions=1)) as server:
        async with session(server, bearer(demo.tokens["client"])) as websocket:
            await subscribe(websocket, "first", SUBSCRIPTION, variables)
            assert state_of(await receive(websocket))[0] == "pending"

            # when
            await subscribe(websocket, "second", SUBSCRIPTION, variables)
            [refused] = await until_complete(websocket, "second")

    # then
    assert refused["payload"][0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": "websocket_max_subscriptions",
    }


async def test_a_message_over_the_body_limit_closes_with_4400(
    settings: Settings, demo: DemoData
) -> None:
    async with serving(settings.with_changes(max_body_bytes=1_000)) as server:
        async with session(server, bearer(demo.tokens["client"])) as websocket:
            await subscribe(websocket, "1", "subscription { " + "x" * 1_000 + " }")
            assert await closed(websocket) == (4400, "payload-too-large")
