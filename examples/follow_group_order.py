"""Follow a group order live: its state now, each change while it is processed, its end.

    pip install websockets
    python examples/follow_group_order.py --token "$CLIENT" GROUP_ORDER_ID
    python examples/follow_group_order.py --token "$CLIENT" --raw GROUP_ORDER_ID

It speaks graphql-transport-ws with the ``websockets`` library, to show how small the
protocol is; a GraphQL client with WebSocket support (gql, Apollo, urql, graphql-ws)
does the same. ``--raw`` prints every message as sent (``>``) and received (``<``).
Exit status: 0 when the group order is done, 1 for an error message, 2 when the server
closed the connection (its code and reason are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

QUERY = """subscription Follow($id: ID!) {
  groupOrderUpdated(id: $id, view: online_order_group_order_status) {
    status
    progress { processedRows totalRows }
    successfulOrders
    rejectedOrders
  }
}"""


class Session:
    def __init__(self, websocket: ClientConnection, raw: bool, output: TextIO) -> None:
        self.websocket = websocket
        self.raw = raw
        self.output = output

    async def send(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        if self.raw:
            print(f"> {text}", file=self.output)
        await self.websocket.send(text)

    async def receive(self) -> dict[str, Any]:
        text = await self.websocket.recv()
        if self.raw:
            print(f"< {text!s}", file=self.output)
        message: dict[str, Any] = json.loads(text)
        return message


def describe(group_order: dict[str, Any]) -> str:
    progress = group_order["progress"]
    line = f"{group_order['status']:<10} {progress['processedRows']}/{progress['totalRows']} rows"
    if group_order["status"] == "completed":
        line += (
            f", {group_order['successfulOrders']} accepted, "
            f"{group_order['rejectedOrders']} rejected"
        )
    return line


async def follow(
    url: str, token: str, group_order_id: str, *, raw: bool = False, output: TextIO = sys.stdout
) -> int:
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as websocket:
        session = Session(websocket, raw, output)
        try:
            await session.send(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            await session.receive()  # connection_ack
            await session.send(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": QUERY, "variables": {"id": group_order_id}},
                }
            )
            while True:
                message = await session.receive()
                if message["type"] == "next" and not raw:
                    print(describe(message["payload"]["data"]["groupOrderUpdated"]), file=output)
                elif message["type"] == "error":
                    if not raw:
                        for error in message["payload"]:
                            code = error["extensions"]["code"]
                            print(f"error {code}: {error['message']}", file=output)
                    return 1
                elif message["type"] == "complete":
                    return 0
        except ConnectionClosed as closed:
            reason = closed.rcvd.reason if closed.rcvd else ""
            code = closed.rcvd.code if closed.rcvd else 1006
            print(f"closed {code}: {reason}", file=output)
            return 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("group_order_id")
    parser.add_argument("--token", required=True)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/graphql")
    parser.add_argument("--raw", action="store_true", help="print the protocol's messages")
    args = parser.parse_args()
    return asyncio.run(follow(args.url, args.token, args.group_order_id, raw=args.raw))


if __name__ == "__main__":
    sys.exit(main())
