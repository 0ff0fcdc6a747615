"""The SQLModel tables. Timestamps are stored in UTC; ``as_utc`` reads them back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; every stored one is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def optional_utc(value: datetime | None) -> datetime | None:
    """``as_utc`` of a timestamp that may be absent."""
    return as_utc(value) if value is not None else None


def _timestamp(*, nullable: bool = False, index: bool = False) -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, index=index)


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    # Whether the user is emailed when a group order they uploaded completes or fails.
    email_notifications: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})


class Client(SQLModel, table=True):
    """A client record: a company that orders. Its user is the one who signs in for it."""

    __tablename__ = "client"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", unique=True)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class Employee(SQLModel, table=True):
    __tablename__ = "employee"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", unique=True)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class Liaison(SQLModel, table=True):
    __tablename__ = "liaison"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", unique=True)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class LiaisonClient(SQLModel, table=True):
    """A liaison's assignment to a client."""

    __tablename__ = "liaison_client"

    liaison_id: uuid.UUID = Field(foreign_key="liaison.id", primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", primary_key=True)


class Application(SQLModel, table=True):
    __tablename__ = "application"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    slug: str = Field(max_length=50, unique=True)
    name: str = Field(max_length=200)


class Session(SQLModel, table=True):
    """A user signed in through an application. Only the token's hash is stored."""

    __tablename__ = "session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    application_id: uuid.UUID = Field(foreign_key="application.id")
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    last_used_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    remember_me: bool = False
    revoked_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))


class ApplicationToken(SQLModel, table=True):
    """A service's or reporting tool's token, bound to one application and maybe a client."""

    __tablename__ = "application_token"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    application_id: uuid.UUID = Field(foreign_key="application.id")
    client_id: uuid.UUID | None = Field(default=None, foreign_key="client.id")
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    revoked_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))


class GroupOrder(SQLModel, table=True):
    __tablename__ = "group_order"
    __table_args__ = (
        sa.Index("ix_group_order_client_created", "client_id", "created_at"),
        sa.Index("ix_group_order_client_source", "client_id", "source_sha256"),
        sa.UniqueConstraint("requester_key", "idempotency_key", name="uq_group_order_idempotency"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    status: str = Field(default="pending", max_length=20)
    total_orders: int = 0
    successful_orders: int = 0
    rejected_orders: int = 0
    # Storage keys of the result files; the API answers signed links to them.
    normalized_csv: str | None = Field(default=None, max_length=500)
    accepted_orders_xlsx: str | None = Field(default=None, max_length=500)
    rejected_orders_xlsx: str | None = Field(default=None, max_length=500)
    queue_job_id: str | None = Field(default=None, max_length=200)
    client_id: uuid.UUID = Field(foreign_key="client.id")
    uploaded_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp(index=True))
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    # Who asked ("user:<id>" or "token:<id>"): idempotency keys are per requester.
    requester_key: str | None = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=200)
    # The uploaded file: where it is stored, its digest, and its name (shown, never used
    # as a path).
    source_key: str | None = Field(default=None, max_length=500)
    source_sha256: str | None = Field(default=None, max_length=64)
    source_name: str | None = Field(default=None, max_length=255)
    source_bytes: int | None = None
    duplicate_of: uuid.UUID | None = Field(default=None, foreign_key="group_order.id")
    processed_rows: int = 0
    failure_reason: str | None = Field(default=None, max_length=2000)
    unknown_columns: str | None = Field(default=None, max_length=4000)
    attempts: int = 0
    worker_id: str | None = Field(default=None, max_length=200)
    started_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))


class GroupOrderRow(SQLModel, table=True):
    """One row of an uploaded file and its outcome; unique per (group order, source row)."""

    __tablename__ = "group_order_row"
    __table_args__ = (
        sa.UniqueConstraint("group_order_id", "source_row", name="uq_group_order_row_source"),
        sa.Index("ix_group_order_row_client_order", "client_id", "external_order_id"),
        # Duplicates within a file are looked up among its stored rows by order id.
        sa.Index("ix_group_order_row_order", "group_order_id", "external_order_id"),
        sa.Index("ix_group_order_row_status", "group_order_id", "status", "source_row"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_order_id: uuid.UUID = Field(foreign_key="group_order.id")
    client_id: uuid.UUID = Field(foreign_key="client.id")
    source_row: int
    status: str = Field(max_length=20)
    external_order_id: str | None = Field(default=None, max_length=100)
    # JSON: the normalized values, the cells as uploaded, the errors.
    normalized: str
    cells: str
    errors: str
    error_codes: str | None = Field(default=None, max_length=500)


class Job(SQLModel, table=True):
    """A queued piece of work. A worker claims it with a lease; an expired lease lets
    another worker take it over."""

    __tablename__ = "job"
    __table_args__ = (sa.Index("ix_job_claim", "status", "run_after"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=50)
    group_order_id: uuid.UUID = Field(foreign_key="group_order.id", index=True)
    status: str = Field(default="queued", max_length=20)
    attempts: int = 0
    max_attempts: int = 3
    locked_by: str | None = Field(default=None, max_length=200)
    locked_until: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    run_after: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class CatalogItem(SQLModel, table=True):
    """A SKU a client may order."""

    __tablename__ = "catalog_item"

    client_id: uuid.UUID = Field(foreign_key="client.id", primary_key=True)
    sku: str = Field(max_length=100, primary_key=True)
    name: str = Field(default="", max_length=200)
    active: bool = True


class ApiService(SQLModel, table=True):
    """An API service: a group of routes that operators deploy and withdraw together."""

    __tablename__ = "api_service"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    deployed: bool = True
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class ApiRoute(SQLModel, table=True):
    """A route: one root field of the schema. Withdrawn, it answers route-not-found."""

    __tablename__ = "api_route"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    service_id: uuid.UUID = Field(foreign_key="api_service.id")
    deployed: bool = True
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class Notification(SQLModel, table=True):
    """An email or webhook telling of a group order's outcome, and how sending it went.

    Recorded in the transaction that completes or fails the group order; sent afterwards
    by the worker, so a failed send never touches the group order itself.
    """

    __tablename__ = "notification"
    __table_args__ = (sa.Index("ix_notification_due", "status", "next_attempt_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    group_order_id: uuid.UUID = Field(foreign_key="group_order.id", index=True)
    # "email" or "webhook"; the event is the status reached: "completed" or "failed".
    channel: str = Field(max_length=20)
    event: str = Field(max_length=20)
    # The email address, or the webhook's URL, when it was recorded.
    recipient: str = Field(max_length=2000)
    # pending, retrying, sent, failed (attempts used up) or skipped (opted out).
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    # The provider's message id, or the webhook receiver's HTTP status.
    response: str | None = Field(default=None, max_length=200)
    next_attempt_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    last_attempt_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class ClientWebhook(SQLModel, table=True):
    """A client's webhook: where group-order outcomes are POSTed, and the secret that
    signs them (kept as given: signing needs it)."""

    __tablename__ = "client_webhook"

    client_id: uuid.UUID = Field(foreign_key="client.id", primary_key=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a model, for queries that need no ORM objects."""
    table = model.__table__  # type: ignore[attr-defined]
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


user_table = table_of(User)
client_table = table_of(Client)
employee_table = table_of(Employee)
liaison_table = table_of(Liaison)
liaison_client_table = table_of(LiaisonClient)
application_table = table_of(Application)
session_table = table_of(Session)
application_token_table = table_of(ApplicationToken)
group_order_table = table_of(GroupOrder)
group_order_row_table = table_of(GroupOrderRow)
job_table = table_of(Job)
catalog_item_table = table_of(CatalogItem)
api_service_table = table_of(ApiService)
api_route_table = table_of(ApiRoute)
notification_table = table_of(Notification)
client_webhook_table = table_of(ClientWebhook)
