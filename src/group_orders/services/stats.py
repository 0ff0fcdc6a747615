"""Aggregates over the group orders a caller may see: for dashboards and reports."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.access import Access
from group_orders.db.tables import client_table, group_order_row_table, group_order_table
from group_orders.enums import GroupOrderOutcome, GroupOrderStatus
from group_orders.services.ingest.model import RowStatus
from group_orders.services.listing import GroupOrderQuery, scope_conditions


@dataclass(frozen=True, slots=True)
class ClientStats:
    client_id: uuid.UUID
    client_name: str
    group_orders: int
    accepted_rows: int
    rejected_rows: int


@dataclass(frozen=True, slots=True)
class GroupOrderStats:
    group_orders: int
    by_status: dict[GroupOrderStatus, int]
    by_outcome: dict[GroupOrderOutcome, int]
    accepted_rows: int
    rejected_rows: int
    rejection_codes: list[tuple[str, int]]  # most frequent first
    by_client: list[ClientStats] | None  # None when the caller sees one client only


def _outcome(status: str, accepted: int, rejected: int) -> GroupOrderOutcome | None:
    if status != GroupOrderStatus.completed.value:
        return None
    if rejected == 0:
        return GroupOrderOutcome.all_accepted
    return GroupOrderOutcome.all_rejected if accepted == 0 else GroupOrderOutcome.partial


async def group_order_stats(
    engine: AsyncEngine, access: Access, query: GroupOrderQuery, *, top_codes: int
) -> GroupOrderStats:
    """Counts by status and outcome, rows accepted and rejected, the most frequent
    rejection codes, and the same per client when the caller sees several clients."""
    table = group_order_table
    conditions = scope_conditions(access, query)
    # A literal zero, not a bound one: PostgreSQL matches a grouped expression to the
    # selected one by its text, and two bound parameters are two different texts.
    zero: sa.ColumnElement[int] = sa.literal_column("0", sa.Integer)
    none_rejected = table.c.rejected_orders == zero
    none_accepted = table.c.successful_orders == zero
    per_group = (
        sa.select(
            table.c.client_id,
            table.c.status,
            sa.func.count().label("group_orders"),
            sa.func.sum(table.c.successful_orders).label("accepted"),
            sa.func.sum(table.c.rejected_orders).label("rejected"),
            none_rejected.label("none_rejected"),
            none_accepted.label("none_accepted"),
        )
        .where(*conditions)
        .group_by(
            table.c.client_id,
            table.c.status,
            none_rejected,
            none_accepted,
        )
    )
    in_scope = sa.select(table.c.id).where(*conditions)
    codes_query = (
        sa.select(group_order_row_table.c.error_codes, sa.func.count())
        .where(group_order_row_table.c.group_order_id.in_(in_scope))
        .where(group_order_row_table.c.status == RowStatus.rejected.value)
        .group_by(group_order_row_table.c.error_codes)
    )
    async with engine.connect() as connection:
        groups = (await connection.execute(per_group)).all()
        code_sets = (await connection.execute(codes_query)).all()
        client_ids = sorted({row.client_id for row in groups})
        names = dict(
            (
                await connection.execute(
                    sa.select(client_table.c.id, client_table.c.name).where(
                        client_table.c.id.in_(client_ids)
                    )
                )
            ).all()
        )

    by_status: Counter[GroupOrderStatus] = Counter()
    by_outcome: Counter[GroupOrderOutcome] = Counter()
    clients: dict[uuid.UUID, list[int]] = {}
    for row in groups:
        accepted, rejected = int(row.accepted or 0), int(row.rejected or 0)
        by_status[GroupOrderStatus(row.status)] += row.group_orders
        outcome = _outcome(row.status, 0 if row.none_accepted else 1, 0 if row.none_rejected else 1)
        if outcome is not None:
            by_outcome[outcome] += row.group_orders
        totals = clients.setdefault(row.client_id, [0, 0, 0])
        totals[0] += row.group_orders
        totals[1] += accepted
        totals[2] += rejected

    codes: Counter[str] = Counter()
    for joined, count in code_sets:
        for code in (joined or "").split(","):
            if code:
                codes[code] += count

    sees_several = access.client_ids is None or len(access.client_ids) > 1
    return GroupOrderStats(
        group_orders=sum(by_status.values()),
        by_status={status: by_status[status] for status in GroupOrderStatus},
        by_outcome={outcome: by_outcome[outcome] for outcome in GroupOrderOutcome},
        accepted_rows=sum(totals[1] for totals in clients.values()),
        rejected_rows=sum(totals[2] for totals in clients.values()),
        rejection_codes=sorted(codes.items(), key=lambda item: (-item[1], item[0]))[:top_codes],
        by_client=(
            [
                ClientStats(client_id, names.get(client_id, ""), *totals)
                for client_id, totals in sorted(
                    clients.items(), key=lambda item: names.get(item[0], "")
                )
            ]
            if sees_several
            else None
        ),
    )
