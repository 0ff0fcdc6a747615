"""Creating a group order from an uploaded file, cancelling it, retrying it.

An upload is copied to a temporary file a chunk at a time while its digest is computed
(memory stays flat in the file's size), its header is checked at once (a file that
can't be used is refused with what to fix, and nothing is stored), the file is
published to storage (renamed into place, or uploaded to the object store), and the
group order and its job are recorded in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.access import Access
from group_orders.db.engine import write_transaction
from group_orders.db.tables import client_table, group_order_table, utc_now
from group_orders.enums import GroupOrderStatus, Role
from group_orders.errors import ApiError
from group_orders.services.group_orders import OPEN_STATUSES, parse_id, transition
from group_orders.services.ingest.model import FileError, RowError, RowStatus, SourceFile
from group_orders.services.ingest.reader import open_source
from group_orders.services.ingest.validate import RowValidator
from group_orders.services.processing import estimate_rows, load_catalog, validated_batches
from group_orders.settings import Settings
from group_orders.storage.base import Storage
from group_orders.worker import jobs

_CHUNK = 1024 * 1024
DRY_RUN_ERRORS_SHOWN = 100


class UploadedFile(Protocol):
    filename: str | None

    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Requester:
    """Who uploads: the key idempotency is scoped to, and the user if there is one."""

    key: str
    user_id: uuid.UUID | None


@dataclass
class DryRunReport:
    total_rows: int = 0
    accepted_rows: int = 0
    rejected_rows: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    errors: list[tuple[int, RowError]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    group_order_id: uuid.UUID | None
    dry_run: DryRunReport | None = None


_UNKNOWN_CLIENT = "No client has this id."


async def resolve_client(
    engine: AsyncEngine, access: Access, raw_client_id: str | None
) -> uuid.UUID:
    """The client an upload is for: a client uploads for itself; a liaison or an
    employee names the client. A client outside the caller's scope is answered exactly
    as an unknown one."""
    if raw_client_id is None:
        if access.role is Role.client and access.client_ids:
            return next(iter(access.client_ids))
        raise ApiError(
            "missing-param",
            f"A {access.role.value} uploads for a client: name it in clientId.",
            param="clientId",
        )
    client_id = parse_id(raw_client_id, param="clientId")
    if not access.may_see(client_id):
        raise ApiError("invalid-param", _UNKNOWN_CLIENT, param="clientId")
    query = sa.select(client_table.c.id).where(client_table.c.id == client_id)
    async with engine.connect() as connection:
        if (await connection.execute(query)).first() is None:
            raise ApiError("invalid-param", _UNKNOWN_CLIENT, param="clientId")
    return client_id


async def _by_idempotency_key(
    engine: AsyncEngine, requester: Requester, idempotency_key: str
) -> uuid.UUID | None:
    query = (
        sa.select(group_order_table.c.id)
        .where(group_order_table.c.requester_key == requester.key)
        .where(group_order_table.c.idempotency_key == idempotency_key)
    )
    async with engine.connect() as connection:
        found: uuid.UUID | None = (await connection.execute(query)).scalar_one_or_none()
    return found


async def _copy_to_storage(
    upload: UploadedFile, storage: Storage, key: str, limit: int
) -> tuple[str, int, Path]:
    temporary = storage.temporary_path(key)
    digest = hashlib.sha256()
    size = 0
    try:
        with temporary.open("wb") as out:
            while chunk := await upload.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        "payload-too-large",
                        f"The file is over the upload limit of {limit} bytes.",
                        param="file",
                    )
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size, temporary


def _inspect(path: Path) -> SourceFile:
    source, rows = open_source(path)
    rows.close()
    return source


def _file_error(error: FileError) -> ApiError:
    return ApiError("invalid-param", error.message, param="file")


async def _dry_run(
    engine: AsyncEngine,
    settings: Settings,
    client_id: uuid.UUID,
    path: Path,
) -> DryRunReport:
    catalog = await load_catalog(engine, client_id)
    source, rows = await asyncio.to_thread(open_source, path)
    validator = RowValidator(catalog=catalog, date_order=settings.date_order)
    report = DryRunReport(unknown_columns=list(source.unknown_columns))
    try:
        async for results in validated_batches(engine, client_id, rows, validator):
            for result in results:
                report.total_rows += 1
                if result.status is RowStatus.accepted:
                    report.accepted_rows += 1
                    continue
                report.rejected_rows += 1
                for error in result.errors:
                    if len(report.errors) < DRY_RUN_ERRORS_SHOWN:
                        report.errors.append((result.source_row, error))
    finally:
        rows.close()
    return report


async def create_group_order_from_upload(
    engine: AsyncEngine,
    storage: Storage,
    settings: Settings,
    access: Access,
    requester: Requester,
    upload: UploadedFile,
    *,
    raw_client_id: str | None,
    idempotency_key: str | None,
    dry_run: bool,
) -> UploadOutcome:
    """Store an upload and queue its processing, or (``dry_run``) only report on it."""
    client_id = await resolve_client(engine, access, raw_client_id)
    if idempotency_key is not None:
        if not idempotency_key.strip() or len(idempotency_key) > 200:
            raise ApiError(
                "invalid-param",
                "idempotencyKey must be 1 to 200 characters.",
                param="idempotencyKey",
            )
        if not dry_run:
            existing = await _by_idempotency_key(engine, requester, idempotency_key)
            if existing is not None:
                return UploadOutcome(existing)

    group_order_id = uuid.uuid4()
    source_key = f"uploads/{group_order_id}/source"
    digest, size, temporary = await _copy_to_storage(
        upload, storage, source_key, settings.max_upload_bytes
    )
    keep = False
    try:
        source = await asyncio.to_thread(_inspect, temporary)
        # Line breaks count at least the rows; a file over the limit is refused at once.
        if await asyncio.to_thread(estimate_rows, temporary) > settings.max_upload_rows:
            raise FileError(
                f"The file has more than {settings.max_upload_rows:,} rows, the limit of one "
                "upload. Split it into several files."
            )
        if dry_run:
            return UploadOutcome(None, await _dry_run(engine, settings, client_id, temporary))
        keep = True
    except FileError as error:
        raise _file_error(error) from None
    finally:
        # Nothing of a refused file or of a dry run stays behind.
        if not keep:
            temporary.unlink(missing_ok=True)
    # On an object store this is the upload (multipart for a large file).
    await asyncio.to_thread(storage.publish, temporary, source_key)

    now = utc_now()
    try:
        async with write_transaction(engine) as connection:
            duplicate_of = (
                await connection.execute(
                    sa.select(group_order_table.c.id)
                    .where(group_order_table.c.client_id == client_id)
                    .where(group_order_table.c.source_sha256 == digest)
                    .order_by(group_order_table.c.created_at)
                    .limit(1)
                )
            ).scalar_one_or_none()
            await connection.execute(
                sa.insert(group_order_table).values(
                    id=group_order_id,
                    status=GroupOrderStatus.pending.value,
                    client_id=client_id,
                    uploaded_by_user_id=requester.user_id,
                    requester_key=requester.key,
                    idempotency_key=idempotency_key,
                    source_key=source_key,
                    source_sha256=digest,
                    source_name=(upload.filename or "upload.csv")[:255],
                    source_bytes=size,
                    duplicate_of=duplicate_of,
                    unknown_columns=orjson.dumps(list(source.unknown_columns)).decode(),
                    created_at=now,
                    updated_at=now,
                )
            )
            job_id = await jobs.enqueue(
                connection, group_order_id, now=now, max_attempts=settings.job_max_attempts
            )
            await connection.execute(
                sa.update(group_order_table)
                .where(group_order_table.c.id == group_order_id)
                .values(queue_job_id=job_id)
            )
    except IntegrityError:
        # The same idempotency key raced in from a second request: answer the first.
        await asyncio.to_thread(storage.delete, source_key)
        if idempotency_key is not None:
            existing = await _by_idempotency_key(engine, requester, idempotency_key)
            if existing is not None:
                return UploadOutcome(existing)
        raise
    return UploadOutcome(group_order_id)


async def cancel_group_order(engine: AsyncEngine, group_order_id: uuid.UUID) -> None:
    """Cancel a pending or processing group order; a running job stops at its next batch."""
    now = utc_now()
    async with write_transaction(engine) as connection:
        result = await connection.execute(
            transition(group_order_id, *OPEN_STATUSES).values(
                status=GroupOrderStatus.cancelled.value, finished_at=now, updated_at=now
            )
        )
        if not result.rowcount:
            raise ApiError(
                "invalid-param",
                "Only a pending or processing group order can be cancelled.",
                param="id",
            )
        await jobs.cancel(connection, group_order_id, now=now)


async def retry_group_order(engine: AsyncEngine, group_order_id: uuid.UUID) -> None:
    """Run a failed group order again from the start."""
    now = utc_now()
    async with write_transaction(engine) as connection:
        result = await connection.execute(
            transition(group_order_id, GroupOrderStatus.failed)
            .where(group_order_table.c.source_key.is_not(None))
            .values(
                status=GroupOrderStatus.pending.value,
                failure_reason=None,
                processed_rows=0,
                finished_at=None,
                updated_at=now,
            )
        )
        if not result.rowcount:
            purged = await connection.scalar(
                sa.select(sa.func.count())
                .select_from(group_order_table)
                .where(group_order_table.c.id == group_order_id)
                .where(group_order_table.c.status == GroupOrderStatus.failed.value)
                .where(group_order_table.c.source_key.is_(None))
            )
            if purged:
                raise ApiError(
                    "invalid-param",
                    "Its uploaded file was removed after the retention period: upload the "
                    "file again instead.",
                    param="id",
                )
            raise ApiError("invalid-param", "Only a failed group order can be retried.", param="id")
        job_id = await jobs.requeue(connection, group_order_id, now=now)
        if job_id is not None:
            await connection.execute(
                sa.update(group_order_table)
                .where(group_order_table.c.id == group_order_id)
                .values(queue_job_id=job_id)
            )
