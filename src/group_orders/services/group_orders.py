"""Reading group orders within the caller's scope."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.access import Access
from group_orders.auth.identity import ClientRecord, UserRecord
from group_orders.db.engine import Reader, write_transaction
from group_orders.db.tables import (
    as_utc,
    client_table,
    group_order_row_table,
    group_order_table,
    optional_utc,
    user_table,
    utc_now,
)
from group_orders.enums import GroupOrderOutcome, GroupOrderStatus
from group_orders.errors import ApiError

_UNKNOWN_ID = "No group order has this id."

MAX_PAGE_SIZE = 100


def check_page_size(first: int) -> None:
    """Pages of lists (group orders, rows) hold 1 to ``MAX_PAGE_SIZE`` items."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ApiError(
            "invalid-param", f"'first' must be between 1 and {MAX_PAGE_SIZE}.", param="first"
        )


@dataclass(frozen=True, slots=True)
class GroupOrderRecord:
    id: uuid.UUID
    status: GroupOrderStatus
    total_orders: int
    successful_orders: int
    rejected_orders: int
    normalized_csv: str | None
    accepted_orders_xlsx: str | None
    rejected_orders_xlsx: str | None
    queue_job_id: str | None
    client_id: uuid.UUID
    uploaded_by_user_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    processed_rows: int = 0
    failure_reason: str | None = None
    duplicate_of: uuid.UUID | None = None
    unknown_columns: tuple[str, ...] = ()
    source_name: str | None = None
    attempts: int = 0
    worker_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def outcome(self) -> GroupOrderOutcome | None:
        """How a completed group order's rows came out; None before it completes."""
        if self.status is not GroupOrderStatus.completed:
            return None
        if self.rejected_orders == 0:
            return GroupOrderOutcome.all_accepted
        if self.successful_orders == 0:
            return GroupOrderOutcome.all_rejected
        return GroupOrderOutcome.partial


OPEN_STATUSES = (GroupOrderStatus.pending, GroupOrderStatus.processing)


def transition(group_order_id: uuid.UUID, *from_statuses: GroupOrderStatus) -> sa.Update:
    """An UPDATE of one group order that applies only while it is in one of
    ``from_statuses``, so that concurrent changes (a cancel while its job runs) can't
    overwrite each other: the loser sees a row count of 0."""
    return (
        sa.update(group_order_table)
        .where(group_order_table.c.id == group_order_id)
        .where(group_order_table.c.status.in_([status.value for status in from_statuses]))
    )


def parse_id(value: str, *, param: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(
            "invalid-param",
            f"'{param}' must be a UUID such as '0b1e6f0e-5c3a-4c8e-9a53-2f9d1c1e7a10'.",
            param=param,
        ) from None


GroupOrderRow = Mapping[Any, Any]


@functools.lru_cache(maxsize=128)
def _group_orders_by_id(count: int) -> sa.Select[Any]:
    """The statement for ``count`` ids (``id_0``, ``id_1``, ...), made once per count."""
    column = group_order_table.c.id
    return sa.select(group_order_table).where(
        column.in_([sa.bindparam(f"id_{n}", type_=column.type) for n in range(count)])
    )


async def group_order_rows(
    source: AsyncEngine | Reader, ids: list[uuid.UUID]
) -> dict[uuid.UUID, GroupOrderRow]:
    """The ``group_order`` rows of these ids, in one statement."""
    if not ids:
        return {}
    reader = source if isinstance(source, Reader) else Reader(source)
    rows = await reader.all(
        _group_orders_by_id(len(ids)), {f"id_{n}": value for n, value in enumerate(ids)}
    )
    return {row["id"]: row for row in rows}


async def get_group_order(
    engine: AsyncEngine | Reader,
    raw_id: str,
    access: Access,
    load: Callable[[uuid.UUID], Awaitable[GroupOrderRow | None]] | None = None,
) -> GroupOrderRecord:
    """The group order ``raw_id`` if ``access`` may see it; ``load`` reads its row (a
    DataLoader batches the reads of concurrent operations into one statement).

    An id outside the caller's scope is answered exactly as an unknown id.
    """
    group_order_id = parse_id(raw_id)
    if load is not None:
        row = await load(group_order_id)
    else:
        row = (await group_order_rows(engine, [group_order_id])).get(group_order_id)
    if row is None or not access.may_see(row["client_id"]):
        raise ApiError("invalid-param", _UNKNOWN_ID, param="id")
    return record_from_row(row)


def record_from_row(row: GroupOrderRow) -> GroupOrderRecord:
    """A domain record from a ``group_order`` row."""
    return GroupOrderRecord(
        id=row["id"],
        status=GroupOrderStatus(row["status"]),
        total_orders=row["total_orders"],
        successful_orders=row["successful_orders"],
        rejected_orders=row["rejected_orders"],
        normalized_csv=row["normalized_csv"],
        accepted_orders_xlsx=row["accepted_orders_xlsx"],
        rejected_orders_xlsx=row["rejected_orders_xlsx"],
        queue_job_id=row["queue_job_id"],
        client_id=row["client_id"],
        uploaded_by_user_id=row["uploaded_by_user_id"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
        processed_rows=row["processed_rows"],
        failure_reason=row["failure_reason"],
        duplicate_of=row["duplicate_of"],
        unknown_columns=tuple(orjson.loads(row["unknown_columns"] or "[]")),
        source_name=row["source_name"],
        attempts=row["attempts"],
        worker_id=row["worker_id"],
        started_at=optional_utc(row["started_at"]),
        finished_at=optional_utc(row["finished_at"]),
    )


async def create_group_order(
    engine: AsyncEngine,
    *,
    client_id: uuid.UUID,
    uploaded_by_user_id: uuid.UUID | None,
    status: GroupOrderStatus = GroupOrderStatus.pending,
    total_orders: int = 0,
    successful_orders: int = 0,
    rejected_orders: int = 0,
    normalized_csv: str | None = None,
    accepted_orders_xlsx: str | None = None,
    rejected_orders_xlsx: str | None = None,
    queue_job_id: str | None = None,
    group_order_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Record a group order as it stands (the upload path builds on this)."""
    new_id = group_order_id or uuid.uuid4()
    now = utc_now()
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.insert(group_order_table).values(
                id=new_id,
                status=status.value,
                total_orders=total_orders,
                successful_orders=successful_orders,
                rejected_orders=rejected_orders,
                normalized_csv=normalized_csv,
                accepted_orders_xlsx=accepted_orders_xlsx,
                rejected_orders_xlsx=rejected_orders_xlsx,
                queue_job_id=queue_job_id,
                client_id=client_id,
                uploaded_by_user_id=uploaded_by_user_id,
                created_at=now,
                updated_at=now,
            )
        )
    return new_id


@dataclass(frozen=True, slots=True)
class RowRecord:
    source_row: int
    status: str
    external_order_id: str | None
    cells: list[str]
    normalized: dict[str, object]
    errors: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class RowPage:
    rows: list[RowRecord]
    has_next_page: bool
    total_count: int


async def rows_of_many(
    engine: AsyncEngine,
    group_order_ids: list[uuid.UUID],
    *,
    status: str | None,
    first: int,
    after_source_row: int,
) -> dict[uuid.UUID, RowPage]:
    """A page of rows for each of many group orders at once: two statements whatever their
    number (a page per group order by a window function, and the counts)."""
    rows = group_order_row_table
    condition = sa.and_(
        rows.c.group_order_id.in_(group_order_ids),
        rows.c.status == status if status is not None else sa.true(),
    )
    numbered = (
        sa.select(
            rows.c.group_order_id,
            rows.c.source_row,
            rows.c.status,
            rows.c.external_order_id,
            rows.c.cells,
            rows.c.normalized,
            rows.c.errors,
            sa.func.row_number()
            .over(partition_by=rows.c.group_order_id, order_by=rows.c.source_row)
            .label("position"),
        )
        .where(condition)
        .where(rows.c.source_row > after_source_row)
        .subquery()
    )
    page_query = (
        sa.select(numbered)
        .where(numbered.c.position <= first + 1)
        .order_by(numbered.c.group_order_id, numbered.c.source_row)
    )
    count_query = (
        sa.select(rows.c.group_order_id, sa.func.count())
        .where(condition)
        .group_by(rows.c.group_order_id)
    )
    async with engine.connect() as connection:
        found = (await connection.execute(page_query)).all()
        counts: dict[uuid.UUID, int] = dict((await connection.execute(count_query)).all())
    by_group: dict[uuid.UUID, list[RowRecord]] = {key: [] for key in group_order_ids}
    for row in found:
        by_group[row.group_order_id].append(
            RowRecord(
                source_row=row.source_row,
                status=row.status,
                external_order_id=row.external_order_id,
                cells=orjson.loads(row.cells),
                normalized=orjson.loads(row.normalized),
                errors=orjson.loads(row.errors),
            )
        )
    return {
        key: RowPage(
            rows=records[:first],
            has_next_page=len(records) > first,
            total_count=counts.get(key, 0),
        )
        for key, records in by_group.items()
    }


async def clients_by_id(engine: AsyncEngine, ids: list[uuid.UUID]) -> dict[uuid.UUID, ClientRecord]:
    query = sa.select(client_table.c.id, client_table.c.name).where(client_table.c.id.in_(ids))
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return {row.id: ClientRecord(row.id, row.name) for row in rows}


async def users_by_id(engine: AsyncEngine, ids: list[uuid.UUID]) -> dict[uuid.UUID, UserRecord]:
    query = sa.select(user_table.c.id, user_table.c.email, user_table.c.name).where(
        user_table.c.id.in_(ids)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return {row.id: UserRecord(row.id, row.email, row.name) for row in rows}
