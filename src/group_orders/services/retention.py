"""The retention of stored files: a group order finished more than N days ago loses its
uploaded file and its result files; files whose group order no longer exists go too.

The group order itself stays, with its status, counts and rows; its file links become
null. Its keys are cleared in the database first and the files deleted after, so a file
is never referenced once it may be gone (a crash in between leaves files that nothing
references, which the next run removes as orphans). Only files older than the cutoff are
orphans: a file just published is not referenced yet for a moment.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.engine import write_transaction
from group_orders.db.tables import group_order_table, utc_now
from group_orders.enums import GroupOrderStatus
from group_orders.storage.base import Storage

FINISHED = (GroupOrderStatus.completed, GroupOrderStatus.failed, GroupOrderStatus.cancelled)
_KEY_COLUMNS = ("source_key", "normalized_csv", "accepted_orders_xlsx", "rejected_orders_xlsx")
_BATCH = 200


@dataclass
class PurgeReport:
    """What a purge removed, or (a dry run) would remove."""

    group_orders: list[uuid.UUID] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def _owner(key: str) -> uuid.UUID | None:
    """The group order a key belongs to: ``uploads/<id>/...`` or ``<id>/...``."""
    parts = PurePosixPath(key).parts
    if len(parts) < 2:
        return None
    candidate = parts[1] if parts[0] == "uploads" and len(parts) > 2 else parts[0]
    try:
        return uuid.UUID(candidate)
    except ValueError:
        return None


def _expired(cutoff: datetime) -> sa.ColumnElement[bool]:
    table = group_order_table
    return sa.and_(
        table.c.status.in_([status.value for status in FINISHED]),
        table.c.finished_at < cutoff,
        sa.or_(*(table.c[column].is_not(None) for column in _KEY_COLUMNS)),
    )


def _keys(row: sa.RowMapping) -> list[str]:
    return [row[column] for column in _KEY_COLUMNS if row[column] is not None]


async def _expired_batch(
    engine: AsyncEngine, cutoff: datetime, after: uuid.UUID | None
) -> list[sa.RowMapping]:
    table = group_order_table
    query = (
        sa.select(table.c.id, *(table.c[column] for column in _KEY_COLUMNS))
        .where(_expired(cutoff))
        .order_by(table.c.id)
        .limit(_BATCH)
    )
    if after is not None:
        query = query.where(table.c.id > after)
    async with engine.connect() as connection:
        return list((await connection.execute(query)).mappings())


async def purge_files(
    engine: AsyncEngine,
    storage: Storage,
    *,
    older_than: timedelta,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeReport:
    """Remove the files of group orders finished before ``now - older_than``, and files
    older than that which no group order references (its group order was deleted, its
    upload's transaction never committed, or a crash left a temporary file)."""
    cutoff = (now or utc_now()) - older_than
    report = PurgeReport()
    after: uuid.UUID | None = None
    while batch := await _expired_batch(engine, cutoff, after):
        after = batch[-1]["id"]
        for row in batch:
            group_order_id: uuid.UUID = row["id"]
            keys = _keys(row)
            if not dry_run:
                async with write_transaction(engine) as connection:
                    cleared = await connection.execute(
                        sa.update(group_order_table)
                        .where(group_order_table.c.id == group_order_id)
                        .where(_expired(cutoff))
                        .values({**dict.fromkeys(_KEY_COLUMNS), "updated_at": utc_now()})
                    )
                if not cleared.rowcount:
                    continue  # retried or purged meanwhile: not this run's to remove
                for key in keys:
                    await asyncio.to_thread(storage.delete, key)
            report.group_orders.append(group_order_id)
            report.files += keys
    await _purge_orphans(engine, storage, cutoff, report, dry_run=dry_run)
    return report


async def _purge_orphans(
    engine: AsyncEngine, storage: Storage, cutoff: datetime, report: PurgeReport, *, dry_run: bool
) -> None:
    stored = await asyncio.to_thread(
        lambda: [found for found in storage.list_keys() if found.modified < cutoff]
    )
    owners = sorted({owner for found in stored if (owner := _owner(found.key)) is not None})
    referenced: set[str] = set()
    for start in range(0, len(owners), _BATCH):
        query = sa.select(*(group_order_table.c[column] for column in _KEY_COLUMNS)).where(
            group_order_table.c.id.in_(owners[start : start + _BATCH])
        )
        async with engine.connect() as connection:
            for row in (await connection.execute(query)).mappings():
                referenced.update(_keys(row))
    for found in stored:
        # Keys of no group order's shape are not the service's: they are left alone.
        if _owner(found.key) is None or found.key in referenced:
            continue
        if not dry_run:
            await asyncio.to_thread(storage.delete, found.key)
        report.orphans.append(found.key)
