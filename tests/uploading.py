"""Making order files and uploading them the way a client does (GraphQL multipart)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.tables import job_table
from group_orders.services.ingest.model import CANONICAL_COLUMNS

HEADER = CANONICAL_COLUMNS

CREATE = """
mutation Upload($file: Upload!, $clientId: ID, $application: Application,
                $idempotencyKey: String, $dryRun: Boolean) {
  createGroupOrder(file: $file, clientId: $clientId, application: $application,
                   idempotencyKey: $idempotencyKey, dryRun: $dryRun) {
    groupOrder { id status duplicateOf unknownColumns sourceFileName }
    dryRun { totalRows acceptedRows rejectedRows unknownColumns
             errors { sourceRow code field value message } }
  }
}
"""

STATE = """
query State($id: ID!) {
  groupOrder(id: $id) {
    id status totalOrders successfulOrders rejectedOrders outcome failureReason
    progress { processedRows totalRows }
    normalizedCsv acceptedOrdersXlsx rejectedOrdersXlsx linksExpireAt
  }
}
"""


def good_row(n: int, **changes: str) -> dict[str, str]:
    row = {
        "external_order_id": f"ORD-{n:05d}",
        "order_date": "2026-11-30",
        "recipient_name": f"Recipient {n}",
        "email": f"person{n}@example.com",
        "phone": "+49 30 901820",
        "address_line1": f"Hauptstraße {n}",
        "address_line2": "",
        "city": "Berlin",
        "region": "",
        "postal_code": "10115",
        "country": "DE",
        "sku": "SKU-1",
        "quantity": "2",
        "notes": "",
    }
    row.update(changes)
    return row


def csv_bytes(
    rows: Sequence[dict[str, str]],
    header: Sequence[str] = HEADER,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return buffer.getvalue().encode(encoding)


async def upload(
    client: httpx.AsyncClient,
    token: str,
    content: bytes,
    *,
    filename: str = "orders.csv",
    preflight: bool = True,
    **variables: Any,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if preflight:
        headers["GraphQL-Require-Preflight"] = "1"
    operations = {"query": CREATE, "variables": {"file": None, **variables}}
    return await client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": (filename, content, "text/csv")},
        headers=headers,
    )


async def state(client: httpx.AsyncClient, token: str, group_order_id: str) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": STATE, "variables": {"id": group_order_id}},
        headers={"Authorization": f"Bearer {token}"},
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    group_order: dict[str, Any] = body["data"]["groupOrder"]
    return group_order


async def queued_jobs(engine: AsyncEngine, group_order_id: uuid.UUID) -> int:
    """How many jobs the queue holds for a group order, in whichever queue it uses."""
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            statement = sa.text(
                "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = :key"
            ).bindparams(key=str(group_order_id))
        else:
            statement = (
                sa.select(sa.func.count())
                .select_from(job_table)
                .where(job_table.c.group_order_id == group_order_id)
            )
        return int((await connection.execute(statement)).scalar_one())
