"""Which stored file a signed link points to."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.tables import group_order_table
from group_orders.storage.links import ResultFile


async def file_key(engine: AsyncEngine, group_order_id: uuid.UUID, file: ResultFile) -> str | None:
    """The storage key of one result file of a group order, or None if it has none."""
    column = group_order_table.c[file.name]
    query = sa.select(column).where(group_order_table.c.id == group_order_id)
    async with engine.connect() as connection:
        key: str | None = (await connection.execute(query)).scalar_one_or_none()
    return key


MEDIA_TYPES = {
    ResultFile.normalized_csv: "text/csv; charset=utf-8",
    ResultFile.accepted_orders_xlsx: (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
    ResultFile.rejected_orders_xlsx: (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
}


def download_name(group_order_id: uuid.UUID, file: ResultFile) -> str:
    """The file name a download is saved under."""
    return f"group-order-{group_order_id}-{file.value}"
