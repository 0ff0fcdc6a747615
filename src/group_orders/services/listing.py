"""Lists of group orders for reporting: filters, stable cursors, and the caller's scope.

Pages are keyset pages over (created_at, id): a cursor names the last group order of a
page, and the next page starts after it. New group orders arriving while a reporting
tool pages through the newest first land before the cursor, so no page shifts and no
group order is seen twice or missed.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.access import Access
from group_orders.db.tables import as_utc, group_order_table
from group_orders.enums import GroupOrderOutcome, GroupOrderStatus
from group_orders.errors import ApiError
from group_orders.services.group_orders import (
    GroupOrderRecord,
    check_page_size,
    record_from_row,
)


class GroupOrderOrder(Enum):
    newest_first = "newest_first"
    oldest_first = "oldest_first"


@dataclass(frozen=True, slots=True)
class GroupOrderQuery:
    """What to list. Empty tuples and None mean "any"."""

    statuses: tuple[GroupOrderStatus, ...] = ()
    outcomes: tuple[GroupOrderOutcome, ...] = ()
    client_ids: tuple[uuid.UUID, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    uploaded_by: uuid.UUID | None = None
    order: GroupOrderOrder = GroupOrderOrder.newest_first


@dataclass(frozen=True, slots=True)
class GroupOrderPage:
    records: list[GroupOrderRecord]
    cursors: list[str]
    has_next_page: bool
    total_count: int = field(default=0)


def encode_cursor(created_at: datetime, group_order_id: uuid.UUID) -> str:
    text = f"go:{as_utc(created_at).isoformat()}|{group_order_id}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        kind, _, rest = text.partition(":")
        when, _, raw_id = rest.partition("|")
        if kind != "go":
            raise ValueError(kind)
        return datetime.fromisoformat(when), uuid.UUID(raw_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ApiError(
            "invalid-param", "'after' is not a cursor this API gave out.", param="after"
        ) from None


def _outcome_condition(outcome: GroupOrderOutcome) -> sa.ColumnElement[bool]:
    table = group_order_table
    completed = table.c.status == GroupOrderStatus.completed.value
    if outcome is GroupOrderOutcome.all_accepted:
        return sa.and_(completed, table.c.rejected_orders == 0)
    if outcome is GroupOrderOutcome.all_rejected:
        return sa.and_(completed, table.c.rejected_orders > 0, table.c.successful_orders == 0)
    return sa.and_(completed, table.c.rejected_orders > 0, table.c.successful_orders > 0)


def scope_conditions(access: Access, query: GroupOrderQuery) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions of a query within the caller's scope."""
    table = group_order_table
    conditions: list[sa.ColumnElement[bool]] = []
    if access.client_ids is not None:
        conditions.append(table.c.client_id.in_(sorted(access.client_ids)))
    if query.client_ids:
        conditions.append(table.c.client_id.in_(sorted(set(query.client_ids))))
    if query.statuses:
        conditions.append(table.c.status.in_(sorted({s.value for s in query.statuses})))
    if query.outcomes:
        conditions.append(sa.or_(*(_outcome_condition(o) for o in set(query.outcomes))))
    if query.created_after is not None:
        conditions.append(table.c.created_at >= query.created_after)
    if query.created_before is not None:
        conditions.append(table.c.created_at < query.created_before)
    if query.uploaded_by is not None:
        conditions.append(table.c.uploaded_by_user_id == query.uploaded_by)
    return conditions


async def list_group_orders(
    engine: AsyncEngine,
    access: Access,
    query: GroupOrderQuery,
    *,
    first: int,
    after: str | None,
    count: bool = True,
) -> GroupOrderPage:
    """A page of the group orders ``access`` may see that match ``query``; with
    ``count``, also how many match in all."""
    check_page_size(first)
    table = group_order_table
    conditions = scope_conditions(access, query)
    newest_first = query.order is GroupOrderOrder.newest_first
    page_conditions = list(conditions)
    if after is not None:
        created_at, last_id = decode_cursor(after)
        position = sa.tuple_(table.c.created_at, table.c.id)
        page_conditions.append(
            position < (created_at, last_id) if newest_first else position > (created_at, last_id)
        )
    ordering = (
        (table.c.created_at.desc(), table.c.id.desc())
        if newest_first
        else (table.c.created_at.asc(), table.c.id.asc())
    )
    page_query = sa.select(table).where(*page_conditions).order_by(*ordering).limit(first + 1)
    count_query = sa.select(sa.func.count()).select_from(table).where(*conditions)
    async with engine.connect() as connection:
        rows = (await connection.execute(page_query)).mappings().all()
        total = (await connection.execute(count_query)).scalar_one() if count else 0
    records = [record_from_row(row) for row in rows[:first]]
    return GroupOrderPage(
        records=records,
        cursors=[encode_cursor(record.created_at, record.id) for record in records],
        has_next_page=len(rows) > first,
        total_count=total,
    )
