"""The job: from an uploaded file to stored row results and three result files.

Rows stream through in batches: read and validate in a worker thread, check the batch's
order ids against the client's earlier accepted orders, store the results, hand them to
the process that writes the files (``writer_process``), move ``processedRows`` on.
Memory stays flat in the file's size.

A job run twice (a retry, or a take-over after a worker died) gives the same result:
row results are unique per (group order, source row) and written as upserts, the files
are written from scratch to temporary names and published atomically at the end, and
the counts are computed from the stored rows.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.engine import upsert, write_transaction
from group_orders.db.tables import (
    catalog_item_table,
    group_order_row_table,
    group_order_table,
    utc_now,
)
from group_orders.enums import GroupOrderStatus
from group_orders.logs import job_step
from group_orders.services.events import EventBus
from group_orders.services.group_orders import OPEN_STATUSES, transition
from group_orders.services.ingest.model import RowResult, RowStatus, SourceRow
from group_orders.services.ingest.reader import open_source
from group_orders.services.ingest.result_files import result_keys
from group_orders.services.ingest.validate import RowValidator
from group_orders.services.ingest.writer_process import result_files
from group_orders.services.notifications import record_outcome
from group_orders.settings import Settings
from group_orders.storage.base import Storage

logger = logging.getLogger("group_orders.processing")

BATCH_ROWS = 1_000


class Stopped(Exception):
    """The group order was cancelled, or this worker lost its lease, while it ran."""


@dataclass(frozen=True, slots=True)
class GroupOrderSource:
    id: uuid.UUID
    client_id: uuid.UUID
    status: GroupOrderStatus
    source_key: str | None


async def load_catalog(engine: AsyncEngine, client_id: uuid.UUID) -> frozenset[str]:
    """The active SKUs of a client's catalog."""
    query = (
        sa.select(catalog_item_table.c.sku)
        .where(catalog_item_table.c.client_id == client_id)
        .where(catalog_item_table.c.active.is_(True))
    )
    async with engine.connect() as connection:
        return frozenset((await connection.execute(query)).scalars())


async def earlier_accepted(
    engine: AsyncEngine,
    client_id: uuid.UUID,
    group_order_id: uuid.UUID | None,
    external_order_ids: Iterable[str],
) -> frozenset[str]:
    """Which of these order ids the client already has accepted in a completed group
    order (other than ``group_order_id``, the one being processed)."""
    wanted = sorted(set(external_order_ids))
    if not wanted:
        return frozenset()
    rows = group_order_row_table
    query = (
        sa.select(rows.c.external_order_id)
        .join(group_order_table, group_order_table.c.id == rows.c.group_order_id)
        .where(rows.c.client_id == client_id)
        .where(rows.c.status == RowStatus.accepted.value)
        .where(group_order_table.c.status == GroupOrderStatus.completed.value)
        .where(rows.c.external_order_id.in_(wanted))
    )
    if group_order_id is not None:
        query = query.where(rows.c.group_order_id != group_order_id)
    async with engine.connect() as connection:
        return frozenset((await connection.execute(query)).scalars())


def _row_values(
    group_order_id: uuid.UUID, client_id: uuid.UUID, result: RowResult
) -> dict[str, Any]:
    external_order_id = result.normalized.get("external_order_id")
    return {
        "group_order_id": group_order_id,
        "client_id": client_id,
        "source_row": result.source_row,
        "status": result.status.value,
        "external_order_id": str(external_order_id)[:100] if external_order_id else None,
        "normalized": orjson.dumps(result.normalized).decode(),
        "cells": orjson.dumps(result.cells).decode(),
        "errors": orjson.dumps(
            [
                {"code": e.code.value, "field": e.field, "value": e.value, "message": e.message}
                for e in result.errors
            ]
        ).decode(),
        "error_codes": ",".join(sorted({e.code.value for e in result.errors}))[:500] or None,
    }


async def store_rows(
    engine: AsyncEngine,
    group_order_id: uuid.UUID,
    client_id: uuid.UUID,
    results: list[RowResult],
) -> None:
    """Upsert a batch of row results: a re-run replaces, never duplicates."""
    if not results:
        return
    async with write_transaction(engine) as connection:
        statement = upsert(
            connection,
            group_order_row_table,
            ["group_order_id", "source_row"],
            ["status", "external_order_id", "normalized", "cells", "errors", "error_codes"],
        )
        await connection.execute(
            statement, [_row_values(group_order_id, client_id, result) for result in results]
        )


async def _update_running(engine: AsyncEngine, group_order_id: uuid.UUID, **values: Any) -> bool:
    """Update a group order that is still processing; False once it was cancelled."""
    async with write_transaction(engine) as connection:
        result = await connection.execute(
            transition(group_order_id, GroupOrderStatus.processing).values(
                updated_at=utc_now(), **values
            )
        )
    return bool(result.rowcount)


async def row_counts(engine: AsyncEngine, group_order_id: uuid.UUID) -> dict[str, int]:
    query = (
        sa.select(group_order_row_table.c.status, sa.func.count())
        .where(group_order_row_table.c.group_order_id == group_order_id)
        .group_by(group_order_row_table.c.status)
    )
    async with engine.connect() as connection:
        return {status: count for status, count in (await connection.execute(query)).all()}


async def load_source(engine: AsyncEngine, group_order_id: uuid.UUID) -> GroupOrderSource | None:
    table = group_order_table
    query = sa.select(table.c.id, table.c.client_id, table.c.status, table.c.source_key).where(
        table.c.id == group_order_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).first()
    if row is None:
        return None
    return GroupOrderSource(row.id, row.client_id, GroupOrderStatus(row.status), row.source_key)


def estimate_rows(path: Path) -> int:
    """Line breaks after the header: the row count, unless fields hold line breaks.

    Counting bytes costs milliseconds where parsing twice would cost seconds; the exact
    count replaces the estimate when the job completes.
    """
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1  # the last line has no line break
    return max(lines - 1, 0)


async def earlier_in_file(
    engine: AsyncEngine,
    group_order_id: uuid.UUID,
    external_order_ids: Iterable[str],
    before_row: int,
) -> dict[str, int]:
    """Where each of these order ids first appears in the stored rows of this group
    order before ``before_row``."""
    wanted = sorted(set(external_order_ids))
    if not wanted:
        return {}
    rows = group_order_row_table
    # The row bound is applied here rather than in SQL: given a range on source_row, a
    # planner without statistics picks the (group order, source row) index and scans
    # every earlier row of the file for every batch.
    query = (
        sa.select(rows.c.external_order_id, rows.c.source_row)
        .where(rows.c.group_order_id == group_order_id)
        .where(rows.c.external_order_id.in_(wanted))
    )
    first: dict[str, int] = {}
    async with engine.connect() as connection:
        for order_id, source_row in (await connection.execute(query)).all():
            if source_row < before_row and source_row < first.get(order_id, before_row):
                first[order_id] = source_row
    return first


def _take(rows: Iterator[SourceRow], count: int) -> list[SourceRow]:
    return list(itertools.islice(rows, count))


def _order_id(row: SourceRow) -> str:
    # As the validator compares them: trimmed, in NFC.
    return unicodedata.normalize("NFC", row.values.get("external_order_id", "").strip())


def _validate(
    validator: RowValidator,
    batch: list[SourceRow],
    previously_accepted: frozenset[str],
    in_file: dict[str, int] | None,
    then: Callable[[list[RowResult]], None] | None,
) -> list[RowResult]:
    if in_file is not None:
        validator.forget_seen()
    results = [validator.validate(row, previously_accepted, in_file) for row in batch]
    if then is not None:
        then(results)
    return results


async def validated_batches(
    engine: AsyncEngine,
    client_id: uuid.UUID,
    rows: Iterator[SourceRow],
    validator: RowValidator,
    *,
    group_order_id: uuid.UUID | None = None,
    then: Callable[[list[RowResult]], None] | None = None,
) -> AsyncIterator[list[RowResult]]:
    """The file's rows, validated a batch at a time off the event loop, each batch
    checked against the client's earlier accepted orders. ``then`` runs on each batch's
    results in the same worker thread (writing them to the result files).

    With a ``group_order_id`` whose rows the caller stores batch by batch, duplicates
    within the file are found among the stored rows, so memory stays flat in the
    file's size; without one the validator remembers every order id.
    """
    while batch := await asyncio.to_thread(_take, rows, BATCH_ROWS):
        order_ids = [order_id for order_id in map(_order_id, batch) if order_id]
        previously = await earlier_accepted(engine, client_id, group_order_id, order_ids)
        in_file = None
        if group_order_id is not None:
            in_file = await earlier_in_file(engine, group_order_id, order_ids, batch[0].source_row)
        yield await asyncio.to_thread(_validate, validator, batch, previously, in_file, then)


async def process_group_order(
    engine: AsyncEngine,
    storage: Storage,
    settings: Settings,
    group_order_id: uuid.UUID,
    *,
    worker_id: str,
    attempt: int,
    keep_lease: Callable[[], Awaitable[bool]],
    events: EventBus | None = None,
) -> None:
    """Process one group order to its end. Raises ``Stopped`` when cancelled or when
    the lease is lost; any other exception is the job's failure. ``events`` hears of
    every change of its status and progress."""
    source = await load_source(engine, group_order_id)
    if source is None or source.status not in (
        GroupOrderStatus.pending,
        GroupOrderStatus.processing,
    ):
        raise Stopped
    if source.source_key is None:
        raise ValueError("the group order has no uploaded file")
    async with write_transaction(engine) as connection:
        started = await connection.execute(
            transition(group_order_id, *OPEN_STATUSES).values(
                status=GroupOrderStatus.processing.value,
                worker_id=worker_id,
                attempts=attempt,
                started_at=utc_now(),
                processed_rows=0,
                failure_reason=None,
                updated_at=utc_now(),
            )
        )
    if not started.rowcount:
        raise Stopped
    job_step("started", group_order_id, attempt=attempt, worker=worker_id)

    # On an object store the file is downloaded to a temporary file for the job's run.
    source_path = await asyncio.to_thread(storage.fetch, source.source_key)
    try:
        await _process_file(
            engine, storage, settings, source, source_path, keep_lease=keep_lease, events=events
        )
    finally:
        await asyncio.to_thread(storage.release, source_path)


async def _process_file(
    engine: AsyncEngine,
    storage: Storage,
    settings: Settings,
    source: GroupOrderSource,
    source_path: Path,
    *,
    keep_lease: Callable[[], Awaitable[bool]],
    events: EventBus | None,
) -> None:
    group_order_id = source.id
    began = time.perf_counter()
    catalog = await load_catalog(engine, source.client_id)
    total = await asyncio.to_thread(estimate_rows, source_path)
    job_step("counted", group_order_id, estimatedRows=total)
    if not await _update_running(engine, group_order_id, total_orders=total):
        raise Stopped
    await _announce(events, group_order_id)

    source_file, rows = await asyncio.to_thread(open_source, source_path)
    validator = RowValidator(catalog=catalog, date_order=settings.date_order)
    keys = result_keys(group_order_id)
    writer = await asyncio.to_thread(
        result_files,
        storage,
        keys,
        source_file.header,
        max_sheet_rows=settings.max_sheet_rows,
        expected_rows=total,
        process_from_rows=settings.result_files_process_from_rows,
    )
    processed = 0
    try:
        batches = validated_batches(
            engine,
            source.client_id,
            rows,
            validator,
            group_order_id=group_order_id,
            then=writer.write_batch,
        )
        async for results in batches:
            await store_rows(engine, group_order_id, source.client_id, results)
            processed += len(results)
            if not await _update_running(engine, group_order_id, processed_rows=processed):
                raise Stopped
            job_step("batch", group_order_id, level=logging.DEBUG, processedRows=processed)
            await _announce(events, group_order_id)
            if not await keep_lease():
                raise Stopped
        await asyncio.to_thread(writer.publish)
    except BaseException:
        await asyncio.to_thread(writer.abort)
        raise
    finally:
        rows.close()

    counts = await row_counts(engine, group_order_id)
    accepted = counts.get(RowStatus.accepted.value, 0)
    rejected = counts.get(RowStatus.rejected.value, 0)
    async with write_transaction(engine) as connection:
        completed = await connection.execute(
            transition(group_order_id, GroupOrderStatus.processing).values(
                status=GroupOrderStatus.completed.value,
                total_orders=accepted + rejected,
                successful_orders=accepted,
                rejected_orders=rejected,
                processed_rows=accepted + rejected,
                normalized_csv=keys.normalized_csv,
                accepted_orders_xlsx=keys.accepted_xlsx,
                rejected_orders_xlsx=keys.rejected_xlsx,
                finished_at=utc_now(),
                updated_at=utc_now(),
            )
        )
        if completed.rowcount:
            await record_outcome(connection, group_order_id, GroupOrderStatus.completed)
    await _announce(events, group_order_id)
    job_step(
        "completed",
        group_order_id,
        rows=accepted + rejected,
        accepted=accepted,
        rejected=rejected,
        durationMs=round((time.perf_counter() - began) * 1000, 2),
    )


def out_of_attempts(attempts: int, error_id: str) -> str:
    """The failure reason of a group order whose job failed on every attempt; the log
    line of its last error carries the same errorId."""
    return (
        f"Processing failed {attempts} times; the last error has errorId {error_id}. "
        "Retry the group order, or ask an operator with that id."
    )


async def fail_group_order(
    engine: AsyncEngine, group_order_id: uuid.UUID, reason: str, events: EventBus | None = None
) -> None:
    async with write_transaction(engine) as connection:
        failed = await connection.execute(
            transition(group_order_id, *OPEN_STATUSES).values(
                status=GroupOrderStatus.failed.value,
                failure_reason=reason[:2000],
                finished_at=utc_now(),
                updated_at=utc_now(),
            )
        )
        if failed.rowcount:
            await record_outcome(connection, group_order_id, GroupOrderStatus.failed)
    # The reason stays out of the log: it may quote the uploaded file.
    job_step("failed", group_order_id, level=logging.WARNING)
    await _announce(events, group_order_id)


async def _announce(events: EventBus | None, group_order_id: uuid.UUID) -> None:
    if events is not None:
        await events.publish(group_order_id)
