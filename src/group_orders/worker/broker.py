"""The job queue on PostgreSQL: procrastinate, with its jobs in the service's own database.

A job is deferred in the same transaction that creates its group order (through
procrastinate's own SQL function, on the caller's connection), so no upload is lost and
none is queued without its group order. Any number of workers, on any machine, fetch
jobs with ``FOR UPDATE SKIP LOCKED``; a job's lock (the group order's id) keeps two runs
of one group order from overlapping. Workers send heartbeats: a job whose worker stops
sending them (killed, machine gone) is stalled, and every worker looks for stalled jobs
and gives them back to the queue. A job that keeps failing stops after
``job_max_attempts`` and its group order says ``failed`` with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import procrastinate
import sqlalchemy as sa
from procrastinate import JobContext, RetryStrategy
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.engine import libpq_url, write_transaction
from group_orders.db.tables import group_order_table, utc_now
from group_orders.enums import GroupOrderStatus
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
from group_orders.worker import jobs
from group_orders.worker.jobs import PROCESS_GROUP_ORDER, QUEUE

logger = logging.getLogger("group_orders.worker")

# Attempts procrastinate itself may make beyond ours: a run that fails while the database
# is away cannot record its failure, and the next run records it instead.
_SPARE_ATTEMPTS = 2
# How long a stopping worker waits for its running job before giving it back.
_SHUTDOWN_SECONDS = 10.0


async def _still_ours(engine: AsyncEngine, job_id: int, worker_id: int | None) -> bool:
    """False once the job was judged stalled and handed to another worker."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.text("SELECT status, worker_id FROM procrastinate_jobs WHERE id = :id"),
                {"id": job_id},
            )
        ).first()
    return row is not None and row.status == "doing" and row.worker_id == worker_id


class RunningJobs:
    """The jobs this process is running, and the procrastinate worker ids it ran them
    under: a job marked running under one of those ids that is not in ``jobs`` was lost
    here (its outcome could not be recorded, the database being away)."""

    def __init__(self) -> None:
        self.jobs: set[int] = set()
        self.workers: set[int] = set()


def create_queue_app(
    settings: Settings,
    engine: AsyncEngine,
    storage: Storage,
    events: EventBus,
    running: RunningJobs | None = None,
) -> procrastinate.App:
    """A procrastinate app whose one task processes a group order."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=libpq_url(settings.database_url))
    )
    retry = RetryStrategy(
        max_attempts=settings.job_max_attempts + _SPARE_ATTEMPTS,
        linear_wait=settings.job_retry_delay_seconds,
    )

    tracked = running if running is not None else RunningJobs()

    @app.task(name=PROCESS_GROUP_ORDER, queue=QUEUE, pass_context=True, retry=retry)
    async def process(context: JobContext, group_order_id: str) -> None:
        job_id = int(context.job.id or 0)
        tracked.jobs.add(job_id)
        if context.job.worker_id is not None:
            tracked.workers.add(context.job.worker_id)
        try:
            await run(context, job_id, group_order_id)
        finally:
            tracked.jobs.discard(job_id)

    async def run(context: JobContext, job_id: int, group_order_id: str) -> None:
        job = context.job
        target = uuid.UUID(group_order_id)
        attempt = job.attempts + 1
        if attempt > settings.job_max_attempts:
            await fail_group_order(
                engine,
                target,
                f"Processing was tried {settings.job_max_attempts} times without finishing. "
                "Retry the group order, or ask an operator.",
                events,
            )
            return

        async def keep_lease() -> bool:
            return await _still_ours(engine, job_id, job.worker_id)

        try:
            await process_group_order(
                engine,
                storage,
                settings,
                target,
                worker_id=f"{context.worker_name}:{job.worker_id}",
                attempt=attempt,
                keep_lease=keep_lease,
                events=events,
            )
        except Stopped:
            return
        except FileError as error:
            # The file itself is unusable: no retry can change that.
            await fail_group_order(engine, target, error.message, events)
            return
        except Exception:
            error_id = uuid.uuid4().hex
            logger.exception(
                "job failed errorId=%s job=%s group_order=%s attempt=%d",
                error_id,
                job_id,
                target,
                attempt,
            )
            if attempt >= settings.job_max_attempts:
                await fail_group_order(
                    engine,
                    target,
                    out_of_attempts(attempt, error_id),
                    events,
                )
                return
            raise

    return app


class BrokerRunner:
    """Runs procrastinate workers for this process: ``run_forever`` for a worker process
    (and the embedded worker on PostgreSQL), ``run_until_idle`` to drain the queue."""

    def __init__(
        self,
        engine: AsyncEngine,
        storage: Storage,
        settings: Settings,
        worker_id: str | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.engine = engine
        self.storage = storage
        self.settings = settings
        self.name = worker_id or "worker"
        # Hears of every change of a group order's status and progress.
        self.events = events if events is not None else create_event_bus(settings)
        self.running = RunningJobs()
        self.queue_app = create_queue_app(settings, engine, storage, self.events, self.running)

    def wake(self) -> None:
        """Workers hear of new jobs through PostgreSQL's LISTEN/NOTIFY."""

    async def run_until_idle(self) -> int:
        """Run jobs until none is waiting; answers how many runs there were."""
        async with self.queue_app.open_async():
            before = await self._runs()
            await self.queue_app.run_worker_async(
                queues=[QUEUE],
                wait=False,
                install_signal_handlers=False,
                listen_notify=False,
                name=self.name,
            )
            runs = await self._runs() - before
        while await deliver_due_notifications(self.engine, self.settings):
            pass
        return runs

    async def _runs(self) -> int:
        """Runs started so far, as procrastinate's event log counts them."""
        async with self.engine.connect() as connection:
            count = await connection.scalar(
                sa.text(
                    "SELECT count(*) FROM procrastinate_events e "
                    "JOIN procrastinate_jobs j ON j.id = e.job_id "
                    "WHERE e.type = 'started' AND j.queue_name = :queue"
                ),
                {"queue": QUEUE},
            )
        return int(count or 0)

    async def requeue_stalled(self) -> int:
        """Give the jobs of workers without a recent heartbeat back to the queue."""
        manager = self.queue_app.job_manager
        stalled = list(
            await manager.get_stalled_jobs(
                queue=QUEUE, seconds_since_heartbeat=self.settings.job_lease_seconds
            )
        )
        for job in stalled:
            logger.warning("job %s of a stalled worker goes back to the queue", job.id)
            await manager.retry_job(job, retry_at=utc_now())
        return len(stalled)

    async def requeue_lost(self) -> int:
        """Give back the jobs marked running under this process's worker that it no longer
        runs: their run ended while the database was away, so its outcome was never
        recorded, and the worker's heartbeat (which went on) keeps them from looking
        stalled. Only jobs started at least a lease ago count, so a job just fetched and
        not yet begun is left alone."""
        if not self.running.workers:
            return 0
        async with self.engine.connect() as connection:
            lost = (
                (
                    await connection.execute(
                        sa.text(
                            "SELECT j.id FROM procrastinate_jobs j "
                            "WHERE j.status = 'doing' AND j.queue_name = :queue "
                            "AND j.worker_id = ANY(CAST(:workers AS bigint[])) "
                            "AND NOT (j.id = ANY(CAST(:running AS bigint[]))) "
                            "AND (SELECT max(e.at) FROM procrastinate_events e "
                            "WHERE e.job_id = j.id AND e.type = 'started') "
                            "< now() - make_interval(secs => :lease)"
                        ),
                        {
                            "queue": QUEUE,
                            "workers": sorted(self.running.workers),
                            "running": sorted(self.running.jobs),
                            "lease": self.settings.job_lease_seconds,
                        },
                    )
                )
                .scalars()
                .all()
            )
        for job_id in lost:
            logger.warning("job %s ended here without its outcome recorded; queued again", job_id)
            await self.queue_app.job_manager.retry_job_by_id_async(job_id, retry_at=utc_now())
        return len(lost)

    async def requeue_orphans(self) -> int:
        """Queue again every open group order that has no waiting or running job: one
        whose job ended without an outcome (aborted at a shutdown, or out of attempts
        while the database was away). A group order and its job are created in one
        transaction, so an open group order without a job is always such a leftover."""
        open_statuses = (GroupOrderStatus.pending.value, GroupOrderStatus.processing.value)
        async with self.engine.connect() as connection:
            orphans = (
                (
                    await connection.execute(
                        sa.text(
                            "SELECT g.id FROM group_order g WHERE g.status IN :statuses "
                            "AND g.source_key IS NOT NULL "
                            "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j "
                            "WHERE j.queueing_lock = CAST(g.id AS text) "
                            "AND j.status IN ('todo', 'doing'))"
                        ).bindparams(sa.bindparam("statuses", open_statuses, expanding=True))
                    )
                )
                .scalars()
                .all()
            )
        queued = 0
        for group_order_id in orphans:
            try:
                async with write_transaction(self.engine) as connection:
                    job_id = await jobs.defer(connection, group_order_id)
                    await connection.execute(
                        sa.update(group_order_table)
                        .where(group_order_table.c.id == group_order_id)
                        .values(queue_job_id=job_id)
                    )
            except IntegrityError:
                continue  # another worker queued it first
            logger.warning("group order %s had no job; queued it again", group_order_id)
            queued += 1
        return queued

    async def _deliver_forever(self) -> None:
        """Send the outcome emails and webhook POSTs that are due, as they fall due."""
        while True:
            try:
                while await deliver_due_notifications(self.engine, self.settings):
                    pass
            except Exception:
                logger.exception("sending notifications failed")
            await asyncio.sleep(self.settings.worker_poll_seconds)

    async def _sweep_forever(self) -> None:
        interval = max(self.settings.job_lease_seconds / 4, 0.5)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.requeue_stalled()
                await self.requeue_lost()
                await self.requeue_orphans()
            except Exception:
                logger.exception("looking for stalled jobs failed")

    async def run_forever(self, *, install_signal_handlers: bool = False) -> None:
        """Work until cancelled (or, with signal handlers, until SIGINT/SIGTERM); when
        the database goes away, start again once it is back."""
        heartbeat = max(self.settings.job_lease_seconds / 4, 0.5)
        pause = 1.0
        while True:
            try:
                async with self.queue_app.open_async():
                    sweeper = asyncio.create_task(self._sweep_forever())
                    sender = asyncio.create_task(self._deliver_forever())
                    try:
                        await self.queue_app.run_worker_async(
                            queues=[QUEUE],
                            wait=True,
                            install_signal_handlers=install_signal_handlers,
                            name=self.name,
                            update_heartbeat_interval=heartbeat,
                            stalled_worker_timeout=self.settings.job_lease_seconds,
                            fetch_job_polling_interval=self.settings.worker_poll_seconds,
                            # A job still running then is aborted, and retried later.
                            shutdown_graceful_timeout=_SHUTDOWN_SECONDS,
                        )
                    finally:
                        sweeper.cancel()
                        sender.cancel()
                if install_signal_handlers:
                    return  # stopped by a signal
                pause = 1.0
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("worker stopped; starting again in %.0f s", pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
