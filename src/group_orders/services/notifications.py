"""Telling people a group order's outcome: the uploader's email and the client's webhook.

``record_outcome`` runs inside the transaction that completes or fails a group order and
only records what is to be sent (a row of ``notification`` per channel). The worker
sends them afterwards (``deliver_due_notifications``), so a provider that is down can
neither slow the job nor fail the group order. A failed send is kept with its attempts
and last error, and tried again after ``delay``, ``2 x delay``, ``4 x delay``, ... until
``notification_max_attempts`` are used; then it stays ``failed`` for an employee to see
and resend.

A webhook is a POST of a JSON body, signed with the client's secret::

    X-Group-Orders-Timestamp: <unix seconds>
    X-Group-Orders-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from group_orders.db.engine import write_transaction
from group_orders.db.tables import (
    as_utc,
    client_table,
    client_webhook_table,
    group_order_table,
    notification_table,
    optional_utc,
    user_table,
    utc_now,
)
from group_orders.enums import GroupOrderStatus, NotificationStatus
from group_orders.errors import ApiError
from group_orders.services.email import Email, SendFailed, send_email
from group_orders.services.group_orders import record_from_row
from group_orders.services.page_links import PageLinkSigner
from group_orders.settings import Settings
from group_orders.storage.links import LinkSigner, ResultFile

logger = logging.getLogger("group_orders.notifications")

EMAIL = "email"
WEBHOOK = "webhook"
DUE = (NotificationStatus.pending.value, NotificationStatus.retrying.value)
# How long a worker holds a notification it is sending before another may take it.
_CLAIM_MARGIN = timedelta(seconds=30)
SIGNATURE_HEADER = "X-Group-Orders-Signature"
TIMESTAMP_HEADER = "X-Group-Orders-Timestamp"
DEFAULT_LINK_BASE_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: uuid.UUID
    group_order_id: uuid.UUID
    channel: str
    event: str
    recipient: str
    status: NotificationStatus
    attempts: int
    last_error: str | None
    response: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    sent_at: datetime | None


def _record(row: RowMapping) -> NotificationRecord:
    return NotificationRecord(
        id=row["id"],
        group_order_id=row["group_order_id"],
        channel=row["channel"],
        event=row["event"],
        recipient=row["recipient"],
        status=NotificationStatus(row["status"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        response=row["response"],
        created_at=as_utc(row["created_at"]),
        last_attempt_at=optional_utc(row["last_attempt_at"]),
        next_attempt_at=optional_utc(row["next_attempt_at"]),
        sent_at=optional_utc(row["sent_at"]),
    )


# --- Recording ---------------------------------------------------------------------------


async def record_outcome(
    connection: AsyncConnection, group_order_id: uuid.UUID, event: GroupOrderStatus
) -> None:
    """Record the notifications of a group order that just reached ``event`` (completed
    or failed), in the caller's transaction: an email to its uploader (``skipped`` when
    the uploader turned them off) and a POST to its client's webhook, if it has one."""
    now = utc_now()
    query = (
        sa.select(
            group_order_table.c.client_id,
            user_table.c.email,
            user_table.c.email_notifications,
            client_webhook_table.c.url,
        )
        .select_from(group_order_table)
        .outerjoin(user_table, user_table.c.id == group_order_table.c.uploaded_by_user_id)
        .outerjoin(
            client_webhook_table,
            client_webhook_table.c.client_id == group_order_table.c.client_id,
        )
        .where(group_order_table.c.id == group_order_id)
    )
    row = (await connection.execute(query)).first()
    if row is None:
        return
    values: list[dict[str, Any]] = []
    if row.email is not None:
        wanted = bool(row.email_notifications)
        values.append(_new(group_order_id, EMAIL, event, row.email, now, skipped=not wanted))
    if row.url is not None:
        values.append(_new(group_order_id, WEBHOOK, event, row.url, now, skipped=False))
    if values:
        await connection.execute(sa.insert(notification_table), values)


def _new(
    group_order_id: uuid.UUID,
    channel: str,
    event: GroupOrderStatus,
    recipient: str,
    now: datetime,
    *,
    skipped: bool,
) -> dict[str, Any]:
    status = NotificationStatus.skipped if skipped else NotificationStatus.pending
    return {
        "id": uuid.uuid4(),
        "group_order_id": group_order_id,
        "channel": channel,
        "event": event.value,
        "recipient": recipient[:2000],
        "status": status.value,
        "attempts": 0,
        "last_error": "the uploader turned group-order emails off" if skipped else None,
        "next_attempt_at": None if skipped else now,
        "created_at": now,
        "updated_at": now,
    }


# --- Reading -----------------------------------------------------------------------------


async def notifications_of_many(
    engine: AsyncEngine, group_order_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[NotificationRecord]]:
    """The notifications of these group orders, oldest first, in one statement."""
    query = (
        sa.select(notification_table)
        .where(notification_table.c.group_order_id.in_(group_order_ids))
        .order_by(notification_table.c.created_at, notification_table.c.id)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    found: dict[uuid.UUID, list[NotificationRecord]] = {key: [] for key in group_order_ids}
    for row in rows:
        found[row["group_order_id"]].append(_record(row))
    return found


# --- Delivering --------------------------------------------------------------------------


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """The pause after the ``attempts``-th failed try: delay, 2 x delay, 4 x delay, ..."""
    return timedelta(seconds=settings.notification_retry_delay_seconds * 2 ** (attempts - 1))


async def deliver_due_notifications(
    engine: AsyncEngine, settings: Settings, *, now: datetime | None = None, limit: int = 20
) -> int:
    """Send the notifications that are due (pending, or retrying and past their time);
    answers how many were tried. A failure is recorded, never raised."""
    now = now or utc_now()
    table = notification_table
    query = (
        sa.select(table.c.id)
        .where(table.c.status.in_(DUE))
        .where(table.c.next_attempt_at <= now)
        .order_by(table.c.next_attempt_at)
        .limit(limit)
    )
    async with engine.connect() as connection:
        due = (await connection.execute(query)).scalars().all()
    tried = 0
    hold = timedelta(seconds=settings.send_timeout_seconds) + _CLAIM_MARGIN
    for notification_id in due:
        # Another worker may have taken it since (moving its time on): only the worker
        # whose update applies sends it.
        async with write_transaction(engine) as connection:
            claimed = await connection.execute(
                sa.update(table)
                .where(table.c.id == notification_id)
                .where(table.c.status.in_(DUE))
                .where(table.c.next_attempt_at <= now)
                .values(next_attempt_at=now + hold)
            )
        if not claimed.rowcount:
            continue
        tried += 1
        try:
            await attempt(engine, settings, notification_id)
        except SendFailed:
            pass  # recorded by attempt
        except Exception:
            logger.exception("notification delivery error id=%s", notification_id)
    return tried


async def attempt(engine: AsyncEngine, settings: Settings, notification_id: uuid.UUID) -> None:
    """Try to send one notification now and record how it went; a failure is recorded
    and then raised as ``SendFailed``."""
    async with engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    sa.select(notification_table).where(notification_table.c.id == notification_id)
                )
            )
            .mappings()
            .one()
        )
    notification = _record(row)
    response: str | None = None
    error: SendFailed | None = None
    recipient = notification.recipient
    try:
        if notification.channel == EMAIL:
            email = await outcome_email(engine, settings, notification)
            response = await send_email(settings, email)
        else:
            recipient, response = await _post_webhook(engine, settings, notification)
    except SendFailed as failure:
        error = failure
    except Exception:
        # A fault of ours, not the provider's: still a try that counts, so that it can't
        # be retried for ever.
        error_id = uuid.uuid4().hex
        logger.exception("notification error errorId=%s id=%s", error_id, notification.id)
        error = SendFailed(f"an unexpected error; the log has errorId {error_id}")
    attempts = notification.attempts + 1
    now = utc_now()
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_attempt_at": now,
        "updated_at": now,
        "recipient": recipient[:2000],
        "response": response[:200] if response else None,
    }
    if error is None:
        values |= {"status": NotificationStatus.sent.value, "sent_at": now, "next_attempt_at": None}
    elif attempts < settings.notification_max_attempts:
        values |= {
            "status": NotificationStatus.retrying.value,
            "last_error": str(error)[:2000],
            "next_attempt_at": now + retry_delay(settings, attempts),
        }
    else:
        values |= {
            "status": NotificationStatus.failed.value,
            "last_error": str(error)[:2000],
            "next_attempt_at": None,
        }
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.update(notification_table)
            .where(notification_table.c.id == notification_id)
            .values(**values)
        )
    outcome = "sent" if error is None else values["status"]
    logger.info(
        "notification %s id=%s channel=%s group_order=%s attempt=%d%s",
        outcome,
        notification.id,
        notification.channel,
        notification.group_order_id,
        attempts,
        "" if error is None else f" error={error}",
    )
    if error is not None:
        raise error


# --- The email ---------------------------------------------------------------------------

_FILES = (
    ("Normalized CSV", ResultFile.normalized_csv, "normalized_csv"),
    ("Accepted orders (XLSX)", ResultFile.accepted_orders_xlsx, "accepted_orders_xlsx"),
    ("Rejected orders (XLSX)", ResultFile.rejected_orders_xlsx, "rejected_orders_xlsx"),
)
_OUTCOMES = {
    "all_accepted": "every order was accepted",
    "partial": "some orders were rejected",
    "all_rejected": "every order was rejected",
}


async def outcome_email(
    engine: AsyncEngine, settings: Settings, notification: NotificationRecord
) -> Email:
    """The email telling a group order's uploader how it came out, with file links that
    work for ``email_link_lifetime``."""
    query = (
        sa.select(group_order_table, client_table.c.name.label("client_name"))
        .join(client_table, client_table.c.id == group_order_table.c.client_id)
        .where(group_order_table.c.id == notification.group_order_id)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).mappings().one()
    record = record_from_row(row)
    # The file's name as uploaded, on one line: it goes into a header.
    name = " ".join((record.source_name or "upload").split())[:100] or "upload"
    now = utc_now()
    signer = LinkSigner(settings.secret_key, settings.email_link_lifetime)
    base_url = settings.public_base_url or DEFAULT_LINK_BASE_URL
    lines = [f"Your group order {name!r} for {row['client_name']} "]
    if record.status is GroupOrderStatus.completed:
        outcome = record.outcome.value if record.outcome else "completed"
        subject = (
            f"Group order {name} completed: {record.successful_orders} accepted, "
            f"{record.rejected_orders} rejected"
        )
        lines[0] += "has been processed."
        lines += [
            "",
            f"  Orders in the file: {record.total_orders}",
            f"  Accepted:           {record.successful_orders}",
            f"  Rejected:           {record.rejected_orders}",
            f"  Outcome:            {outcome} ({_OUTCOMES.get(outcome, outcome)})",
        ]
        files = [
            (label, signer.sign(base_url, record.id, file, now))
            for label, file, column in _FILES
            if getattr(record, column)
        ]
        if files:
            expires = (now + signer.lifetime).strftime("%Y-%m-%d %H:%M UTC")
            lines += ["", f"Files (the links work until {expires}):"]
            for label, link in files:
                lines += [f"  {label}:", f"    {link}"]
    else:
        subject = f"Group order {name} failed"
        lines[0] += "could not be processed; no orders were created."
        lines += [
            "",
            f"  Reason: {record.failure_reason or 'not recorded'}",
            "",
            "Fix the file and upload it again, or retry the group order.",
        ]
    page = PageLinkSigner(settings.secret_key, settings.email_link_lifetime)
    lines += [
        "",
        "See it in a browser (the link works until "
        f"{(now + page.lifetime).strftime('%Y-%m-%d %H:%M UTC')}):",
        f"  {page.sign(base_url, record.id, now)}",
        "",
        f"Group order id: {record.id}",
        "",
        "You receive this email because you uploaded this file. To stop these emails, "
        "turn them off with the setEmailNotifications mutation.",
    ]
    return Email(
        to=notification.recipient,
        subject=subject,
        text="\n".join(lines) + "\n",
        headers={"X-Group-Order-Id": str(record.id)},
    )


# --- Resending ---------------------------------------------------------------------------


async def resend_email(engine: AsyncEngine, settings: Settings, group_order_id: uuid.UUID) -> None:
    """Send the email of a completed or failed group order again, now.

    The try is one more of the outcome's email notification (one is recorded if there
    was none), so that the worker does not send it once more as well. A provider that
    refuses or times out is recorded like any failed try, and answered
    ``mandrill-email-failed``.
    """
    async with write_transaction(engine) as connection:
        row = (
            await connection.execute(
                sa.select(
                    group_order_table.c.status,
                    user_table.c.email,
                    user_table.c.email_notifications,
                )
                .select_from(group_order_table)
                .outerjoin(user_table, user_table.c.id == group_order_table.c.uploaded_by_user_id)
                .where(group_order_table.c.id == group_order_id)
            )
        ).one()
        status = GroupOrderStatus(row.status)
        if status not in (GroupOrderStatus.completed, GroupOrderStatus.failed):
            raise ApiError(
                "invalid-param",
                f"This group order is {status.value}: there is no outcome to email yet.",
                param="id",
            )
        if row.email is None:
            raise ApiError(
                "invalid-param",
                "This group order was uploaded with an application token: it has no "
                "uploader to email.",
                param="id",
            )
        if not row.email_notifications:
            raise ApiError(
                "invalid-param",
                "The uploader turned group-order emails off.",
                param="id",
            )
        table = notification_table
        notification_id = (
            await connection.execute(
                sa.select(table.c.id)
                .where(table.c.group_order_id == group_order_id)
                .where(table.c.channel == EMAIL)
                .where(table.c.event == status.value)
                .order_by(table.c.created_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        # Not due while this request sends it: the worker leaves it alone.
        if notification_id is None:
            values = _new(group_order_id, EMAIL, status, row.email, utc_now(), skipped=False)
            values["next_attempt_at"] = None
            notification_id = values["id"]
            await connection.execute(sa.insert(table).values(**values))
        else:
            await connection.execute(
                sa.update(table)
                .where(table.c.id == notification_id)
                .values(recipient=row.email, next_attempt_at=None, updated_at=utc_now())
            )
    try:
        await attempt(engine, settings, notification_id)
    except SendFailed as error:
        raise ApiError(
            "mandrill-email-failed",
            f"The email to {row.email} could not be sent: {error}. The failure is recorded "
            "on the group order's notification.",
            param="id",
        ) from None


# --- Webhooks ----------------------------------------------------------------------------


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def check_webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the webhook URL must be http:// or https://, got {url!r}")
    return url


async def set_webhook(engine: AsyncEngine, client_id: uuid.UUID, url: str, secret: str) -> None:
    """Set (or replace) a client's webhook. Raises LookupError for an unknown client."""
    check_webhook_url(url)
    if len(secret) < 16:
        raise ValueError("the webhook secret must be at least 16 characters")
    now = utc_now()
    async with write_transaction(engine) as connection:
        exists = await connection.execute(
            sa.select(client_table.c.id).where(client_table.c.id == client_id)
        )
        if exists.first() is None:
            raise LookupError(f"no client has the id {client_id}")
        updated = await connection.execute(
            sa.update(client_webhook_table)
            .where(client_webhook_table.c.client_id == client_id)
            .values(url=url, secret=secret, updated_at=now)
        )
        if not updated.rowcount:
            await connection.execute(
                sa.insert(client_webhook_table).values(
                    client_id=client_id, url=url, secret=secret, created_at=now, updated_at=now
                )
            )


async def remove_webhook(engine: AsyncEngine, client_id: uuid.UUID) -> bool:
    async with write_transaction(engine) as connection:
        result = await connection.execute(
            sa.delete(client_webhook_table).where(client_webhook_table.c.client_id == client_id)
        )
    return bool(result.rowcount)


def webhook_body(notification: NotificationRecord, row: RowMapping) -> bytes:
    record = record_from_row(row)
    return orjson.dumps(
        {
            "id": str(notification.id),
            "event": f"group_order.{notification.event}",
            "groupOrder": {
                "id": str(record.id),
                "clientId": str(record.client_id),
                "status": record.status.value,
                "sourceFileName": record.source_name,
                "totalOrders": record.total_orders,
                "successfulOrders": record.successful_orders,
                "rejectedOrders": record.rejected_orders,
                "outcome": record.outcome.value if record.outcome else None,
                "failureReason": record.failure_reason,
                "finishedAt": record.finished_at.isoformat() if record.finished_at else None,
            },
        }
    )


async def _post_webhook(
    engine: AsyncEngine, settings: Settings, notification: NotificationRecord
) -> tuple[str, str]:
    """POST the outcome to the client's webhook as it is set now; answers the URL and
    the receiver's HTTP status."""
    query = (
        sa.select(group_order_table, client_webhook_table.c.url, client_webhook_table.c.secret)
        .outerjoin(
            client_webhook_table,
            client_webhook_table.c.client_id == group_order_table.c.client_id,
        )
        .where(group_order_table.c.id == notification.group_order_id)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).mappings().one()
    if row["url"] is None:
        raise SendFailed("the client's webhook was removed")
    body = webhook_body(notification, row)
    timestamp = int(utc_now().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "group-orders-webhook",
        "X-Group-Orders-Event": f"group_order.{notification.event}",
        "X-Group-Orders-Delivery": str(notification.id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: webhook_signature(row["secret"], timestamp, body),
    }
    url: str = row["url"]
    timeout = settings.send_timeout_seconds
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise SendFailed(f"the webhook did not answer within {timeout:g} s") from None
    except httpx.HTTPError as error:
        raise SendFailed(f"the webhook could not be reached: {type(error).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise SendFailed(f"the webhook answered HTTP {response.status_code}")
    return url, str(response.status_code)
