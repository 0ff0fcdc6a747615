"""Running jobs: claim, process, and settle the outcome (done, retry later, or failed).

``create_runner`` picks the runner of the database's queue: ``JobRunner`` for the
embedded queue on SQLite, ``BrokerRunner`` (procrastinate) on PostgreSQL. Both answer
``run_until_idle`` (drain the queue) and ``run_forever`` (a worker's loop).
``JobRunner.run_once`` takes one job if there is one; its ``run_forever`` is the embedded
worker's loop inside the server process, woken at once when an upload is enqueued.
Each turn of a worker's loop also sends the notifications that are due
(``services/notifications``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.engine import is_sqlite
from group_orders.db.tables import utc_now
from group_orders.logs import job_step
from group_orders.services.events import EventBus, create_event_bus
from group_orders.services.ingest.model import FileError
from group_orders.services.notifications import deliver_due_notifications
from group_orders.services.processing import (
    Stopped,
    fail_group_order,
    out_of_attempts,
    process_group_order,
)
from group_orders.settings import Settings
from group_orders.storage.base import Storage
from group_orders.worker import queue
from group_orders.worker.broker import BrokerRunner

logger = logging.getLogger("group_orders.worker")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Runner(Protocol):
    events: EventBus

    def wake(self) -> None: ...

    async def run_until_idle(self) -> int: ...

    async def run_forever(self) -> None: ...


def create_runner(
    engine: AsyncEngine,
    storage: Storage,
    settings: Settings,
    worker_id: str | None = None,
    events: EventBus | None = None,
) -> Runner:
    """The runner of the queue that the database's dialect uses."""
    if is_sqlite(settings.database_url):
        return JobRunner(engine, storage, settings, worker_id, events=events)
    return BrokerRunner(engine, storage, settings, worker_id or new_worker_id(), events=events)


class JobRunner:
    def __init__(
        self,
        engine: AsyncEngine,
        storage: Storage,
        settings: Settings,
        worker_id: str | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.engine = engine
        # Hears of every change of a group order's status and progress.
        self.events = events if events is not None else create_event_bus(settings)
        self.storage = storage
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.lease = timedelta(seconds=settings.job_lease_seconds)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for work now (an upload was just enqueued)."""
        self._wake.set()

    async def run_once(self) -> bool:
        """Run one job to its end; False when there was none to run."""
        job = await queue.claim(self.engine, self.worker_id, now=utc_now(), lease=self.lease)
        if job is None:
            return False

        async def keep_lease() -> bool:
            return await queue.renew(
                self.engine, job.id, self.worker_id, now=utc_now(), lease=self.lease
            )

        try:
            await process_group_order(
                self.engine,
                self.storage,
                self.settings,
                job.group_order_id,
                worker_id=self.worker_id,
                attempt=job.attempts,
                keep_lease=keep_lease,
                events=self.events,
            )
        except Stopped:
            job_step("stopped", job.group_order_id, job=str(job.id))
            await queue.finish(self.engine, job.id, self.worker_id, now=utc_now(), status="stopped")
        except FileError as error:
            # The file itself is unusable: no retry can change that.
            await fail_group_order(self.engine, job.group_order_id, error.message, self.events)
            await queue.finish(self.engine, job.id, self.worker_id, now=utc_now(), status="failed")
        except Exception as error:
            error_id = uuid.uuid4().hex
            logger.exception(
                "job failed errorId=%s job=%s group_order=%s attempt=%d",
                error_id,
                job.id,
                job.group_order_id,
                job.attempts,
            )
            if job.attempts < job.max_attempts:
                delay = timedelta(seconds=self.settings.job_retry_delay_seconds * job.attempts)
                job_step(
                    "retry",
                    job.group_order_id,
                    level=logging.WARNING,
                    job=str(job.id),
                    attempt=job.attempts,
                    errorId=error_id,
                    retryInSeconds=delay.total_seconds(),
                )
                await queue.retry_later(
                    self.engine,
                    job,
                    f"{type(error).__name__} (errorId {error_id})",
                    now=utc_now(),
                    delay=delay,
                )
            else:
                await fail_group_order(
                    self.engine,
                    job.group_order_id,
                    out_of_attempts(job.attempts, error_id),
                    self.events,
                )
                await queue.finish(
                    self.engine, job.id, self.worker_id, now=utc_now(), status="failed"
                )
        else:
            await queue.finish(self.engine, job.id, self.worker_id, now=utc_now())
        return True

    async def deliver_notifications(self) -> int:
        """Send the notifications that are due; answers how many were tried."""
        return await deliver_due_notifications(self.engine, self.settings)

    async def run_until_idle(self) -> int:
        """Run jobs until none is left, then send the notifications that are due until
        none is; answers how many jobs ran."""
        count = 0
        while await self.run_once():
            count += 1
        while await self.deliver_notifications():
            pass
        return count

    async def run_forever(self) -> None:
        poll = self.settings.worker_poll_seconds
        while True:
            try:
                ran = await self.run_once()
                await self.deliver_notifications()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database may be briefly unreachable; try again after a pause.
                logger.exception("worker loop error")
                ran = False
            if ran:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=poll)
            except TimeoutError:
                pass
