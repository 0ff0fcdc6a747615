"""The job queue in the database: enqueue with the group order, claim with a lease.

A job is enqueued in the same transaction that creates its group order, so no upload
is lost and none is queued twice. A worker claims a job by taking its lease; while it
works it renews the lease; a worker that dies lets the lease run out, and another
worker takes the job over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from group_orders.db.engine import write_transaction
from group_orders.db.tables import job_table

PROCESS_GROUP_ORDER = "process_group_order"


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: uuid.UUID
    group_order_id: uuid.UUID
    attempts: int
    max_attempts: int


async def enqueue(
    connection: AsyncConnection,
    group_order_id: uuid.UUID,
    *,
    now: datetime,
    max_attempts: int,
) -> uuid.UUID:
    """Queue the processing of a group order, inside the caller's transaction."""
    job_id = uuid.uuid4()
    await connection.execute(
        sa.insert(job_table).values(
            id=job_id,
            kind=PROCESS_GROUP_ORDER,
            group_order_id=group_order_id,
            status="queued",
            attempts=0,
            max_attempts=max_attempts,
            run_after=now,
            created_at=now,
            updated_at=now,
        )
    )
    return job_id


async def claim(
    engine: AsyncEngine, worker_id: str, *, now: datetime, lease: timedelta
) -> ClaimedJob | None:
    """Take the oldest runnable job: a queued one, or one whose worker's lease ran out."""
    runnable = sa.or_(
        sa.and_(job_table.c.status == "queued", job_table.c.run_after <= now),
        sa.and_(job_table.c.status == "running", job_table.c.locked_until < now),
    )
    async with write_transaction(engine) as connection:
        row = (
            await connection.execute(
                sa.select(
                    job_table.c.id,
                    job_table.c.group_order_id,
                    job_table.c.attempts,
                    job_table.c.max_attempts,
                )
                .where(runnable)
                .order_by(job_table.c.run_after)
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        await connection.execute(
            sa.update(job_table)
            .where(job_table.c.id == row.id)
            .values(
                status="running",
                locked_by=worker_id,
                locked_until=now + lease,
                attempts=row.attempts + 1,
                updated_at=now,
            )
        )
    return ClaimedJob(row.id, row.group_order_id, row.attempts + 1, row.max_attempts)


async def renew(
    engine: AsyncEngine, job_id: uuid.UUID, worker_id: str, *, now: datetime, lease: timedelta
) -> bool:
    """Extend the lease; False when this worker no longer holds the job."""
    async with write_transaction(engine) as connection:
        result = await connection.execute(
            sa.update(job_table)
            .where(job_table.c.id == job_id)
            .where(job_table.c.locked_by == worker_id)
            .where(job_table.c.status == "running")
            .values(locked_until=now + lease, updated_at=now)
        )
    return bool(result.rowcount)


async def finish(
    engine: AsyncEngine, job_id: uuid.UUID, worker_id: str, *, now: datetime, status: str = "done"
) -> None:
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.update(job_table)
            .where(job_table.c.id == job_id)
            .where(job_table.c.locked_by == worker_id)
            .values(status=status, locked_until=None, updated_at=now)
        )


async def retry_later(
    engine: AsyncEngine, job: ClaimedJob, error: str, *, now: datetime, delay: timedelta
) -> None:
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.update(job_table)
            .where(job_table.c.id == job.id)
            .values(
                status="queued",
                locked_by=None,
                locked_until=None,
                run_after=now + delay,
                last_error=error[:2000],
                updated_at=now,
            )
        )


async def requeue(
    connection: AsyncConnection, group_order_id: uuid.UUID, *, now: datetime
) -> uuid.UUID | None:
    """Queue a group order's job again from scratch (retry after failure)."""
    result = await connection.execute(
        sa.update(job_table)
        .where(job_table.c.group_order_id == group_order_id)
        .values(
            status="queued",
            attempts=0,
            locked_by=None,
            locked_until=None,
            run_after=now,
            last_error=None,
            updated_at=now,
        )
        .returning(job_table.c.id)
    )
    job_id: uuid.UUID | None = result.scalar_one_or_none()
    return job_id


async def cancel(connection: AsyncConnection, group_order_id: uuid.UUID, *, now: datetime) -> None:
    await connection.execute(
        sa.update(job_table)
        .where(job_table.c.group_order_id == group_order_id)
        .where(job_table.c.status.in_(("queued", "running")))
        .values(status="cancelled", locked_until=None, updated_at=now)
    )
