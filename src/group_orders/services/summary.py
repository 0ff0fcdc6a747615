"""What a group order's page shows: status, progress, counts, the rejection codes that
occur most, and its result files."""

from __future__ import annotations

import uuid
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.tables import group_order_row_table
from group_orders.services.ingest.model import RowStatus


async def top_rejection_codes(
    engine: AsyncEngine, group_order_id: uuid.UUID, *, top: int
) -> list[tuple[str, int]]:
    """The row error codes of a group order's rejected rows, most frequent first; a row
    with several errors counts once for each of its codes."""
    rows = group_order_row_table
    query = (
        sa.select(rows.c.error_codes, sa.func.count())
        .where(rows.c.group_order_id == group_order_id)
        .where(rows.c.status == RowStatus.rejected.value)
        .group_by(rows.c.error_codes)
    )
    async with engine.connect() as connection:
        code_sets = (await connection.execute(query)).all()
    codes: Counter[str] = Counter()
    for joined, count in code_sets:
        for code in (joined or "").split(","):
            if code:
                codes[code] += count
    return sorted(codes.items(), key=lambda item: (-item[1], item[0]))[:top]
