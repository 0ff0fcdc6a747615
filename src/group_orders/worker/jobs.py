"""Queueing a group order's processing, on whichever queue its database uses.

SQLite: the embedded queue (``worker.queue``), a table of jobs with leases, run by the
worker inside the server process. PostgreSQL: procrastinate (``worker.broker``), whose
workers run as separate processes on any machine. Either way the job is queued in the
caller's transaction, together with its group order.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from group_orders.worker import queue

QUEUE = "group_orders"
PROCESS_GROUP_ORDER = "process_group_order"


def uses_broker(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


async def enqueue(
    connection: AsyncConnection, group_order_id: uuid.UUID, *, now: datetime, max_attempts: int
) -> str:
    """Queue the processing of a group order; the queue's id for the job."""
    if uses_broker(connection):
        return await defer(connection, group_order_id)
    job_id = await queue.enqueue(connection, group_order_id, now=now, max_attempts=max_attempts)
    return str(job_id)


async def requeue(
    connection: AsyncConnection, group_order_id: uuid.UUID, *, now: datetime
) -> str | None:
    """Queue a group order again from the start (a retry after it failed)."""
    if uses_broker(connection):
        await cancel(connection, group_order_id, now=now)
        return await defer(connection, group_order_id)
    job_id = await queue.requeue(connection, group_order_id, now=now)
    return None if job_id is None else str(job_id)


async def cancel(connection: AsyncConnection, group_order_id: uuid.UUID, *, now: datetime) -> None:
    """Take a group order's waiting job out of the queue; a running one stops by itself
    at its next batch, when it sees the group order cancelled."""
    if not uses_broker(connection):
        await queue.cancel(connection, group_order_id, now=now)
        return
    await connection.execute(
        sa.text(
            "SELECT procrastinate_cancel_job_v1(id, false, false) FROM procrastinate_jobs "
            "WHERE queueing_lock = :key AND status = 'todo'"
        ),
        {"key": str(group_order_id)},
    )


async def defer(connection: AsyncConnection, group_order_id: uuid.UUID) -> str:
    """Defer a procrastinate job through procrastinate's own SQL function, on the
    caller's connection, so that it commits or rolls back with the group order."""
    key = str(group_order_id)
    result = await connection.execute(
        sa.text(
            "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW("
            "CAST(:queue AS varchar), CAST(:task AS varchar), 0, CAST(:lock AS text), "
            "CAST(:queueing_lock AS text), CAST(:args AS jsonb), NULL"
            ")::procrastinate_job_to_defer_v1]))"
        ),
        {
            "queue": QUEUE,
            "task": PROCESS_GROUP_ORDER,
            "lock": key,
            "queueing_lock": key,
            "args": orjson.dumps({"group_order_id": key}).decode(),
        },
    )
    return str(result.scalar_one())
