"""A reporting tool: page through every group order a token may see, write a CSV summary.

    pip install "gql[httpx]"
    python examples/reporting_summary.py --token "$REPORTING" --output summary.csv

It uses the gql client library; any GraphQL client works the same way: ask for a page
of up to 100, then for the page after its ``endCursor`` until ``hasNextPage`` is false.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from typing import Any, TextIO

from gql import Client, GraphQLRequest, gql
from gql.transport.httpx import HTTPXAsyncTransport

PAGE = gql(
    """
    query Page($after: String) {
      groupOrders(first: 100, after: $after, view: online_order_group_order_status) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { node {
          id createdAt status outcome totalOrders successfulOrders rejectedOrders
          client { name }
        } }
      }
    }
    """
)

COLUMNS = (
    "id",
    "created_at",
    "client",
    "status",
    "outcome",
    "total_orders",
    "successful_orders",
    "rejected_orders",
)


async def write_summary(transport: HTTPXAsyncTransport, output: TextIO) -> int:
    """Write one CSV line per group order; answers how many were written."""
    writer = csv.writer(output)
    writer.writerow(COLUMNS)
    written = 0
    async with Client(transport=transport) as session:
        after: str | None = None
        while True:
            request = GraphQLRequest(PAGE, variable_values={"after": after})
            result: dict[str, Any] = await session.execute(request)
            page = result["groupOrders"]
            for edge in page["edges"]:
                node = edge["node"]
                writer.writerow(
                    (
                        node["id"],
                        node["createdAt"],
                        node["client"]["name"],
                        node["status"],
                        node["outcome"] or "",
                        node["totalOrders"],
                        node["successfulOrders"],
                        node["rejectedOrders"],
                    )
                )
                written += 1
            if not page["pageInfo"]["hasNextPage"]:
                return written
            after = page["pageInfo"]["endCursor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument("--token", required=True)
    parser.add_argument("--output", default="-", help="a file, or - for standard output")
    args = parser.parse_args()
    transport = HTTPXAsyncTransport(
        url=args.url, headers={"Authorization": f"Bearer {args.token}"}, timeout=60
    )
    if args.output == "-":
        count = asyncio.run(write_summary(transport, sys.stdout))
    else:
        with open(args.output, "w", newline="", encoding="utf-8") as output:
            count = asyncio.run(write_summary(transport, output))
    print(f"{count} group orders", file=sys.stderr)


if __name__ == "__main__":
    main()
