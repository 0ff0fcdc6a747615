"""The GraphQL types. A type is built from a domain record (``from_record``), never a row."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry.types import Info

from group_orders.auth.access import Access
from group_orders.auth.identity import ClientRecord, Identity
from group_orders.enums import (
    ApplicationSlug,
    GroupOrderOutcome,
    GroupOrderStatus,
    GroupOrderView,
    NotificationStatus,
    Role,
    SessionView,
)
from group_orders.errors import ApiError
from group_orders.schema.context import RequestContext
from group_orders.schema.loaders import RowsKey
from group_orders.schema.selection import (
    check_view,
    check_view_fields,
    check_view_role,
    selected_field_names,
)
from group_orders.services.files import MEDIA_TYPES, download_name
from group_orders.services.group_orders import GroupOrderRecord, RowRecord, check_page_size
from group_orders.services.ingest.model import RowStatus
from group_orders.services.listing import GroupOrderOrder
from group_orders.services.notifications import EMAIL, WEBHOOK, NotificationRecord
from group_orders.services.stats import GroupOrderStats
from group_orders.storage.links import ResultFile
from group_orders.views import GROUP_ORDER_VIEWS, SESSION_VIEWS

strawberry.enum(GroupOrderStatus, description="Where a group order stands.")
strawberry.enum(
    ApplicationSlug,
    name="Application",
    description="The application a request is made through; it decides the role used.",
)
strawberry.enum(Role, description="The role a request is answered under.")
strawberry.enum(
    GroupOrderView,
    description="A named set of group-order fields, and the roles allowed to use it.",
)
strawberry.enum(SessionView, description="A named set of session fields.")
strawberry.enum(GroupOrderOutcome, description="How a completed group order's rows came out.")
strawberry.enum(RowStatus, description="Whether a row of the file became an order.")
strawberry.enum(
    NotificationStatus,
    description="How sending a notification went: pending and retrying are still to be "
    "tried; failed used up its attempts; skipped means the uploader turned emails off.",
)


@strawberry.type(name="User")
class UserType:
    id: strawberry.ID
    email: str
    name: str


@strawberry.type(name="Client")
class ClientType:
    id: strawberry.ID
    name: str

    @classmethod
    def from_record(cls, record: ClientRecord) -> ClientType:
        return cls(id=strawberry.ID(str(record.id)), name=record.name)


@strawberry.type(name="Employee")
class EmployeeType:
    id: strawberry.ID


@strawberry.type(name="Liaison")
class LiaisonType:
    id: strawberry.ID

    @strawberry.field(description="The clients this liaison is assigned to.")
    async def clients(self, info: Info[RequestContext, None]) -> list[ClientType]:
        records = await info.context.loaders.liaison_clients.load(uuid.UUID(self.id))
        return [ClientType.from_record(record) for record in records]


@strawberry.type(name="Session", description="The requester's session. Never its token.")
class SessionType:
    user_id: strawberry.ID
    user: UserType
    application: ApplicationSlug = strawberry.field(
        description="The application the session was signed in through."
    )
    role: Role = strawberry.field(description="The role this request is answered under.")
    client: ClientType | None
    employee: EmployeeType | None
    liaison: LiaisonType | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime | None = strawberry.field(
        description="When the session ends unless used again; null with rememberMe."
    )
    remember_me: bool

    @classmethod
    def from_identity(cls, identity: Identity, role: Role) -> SessionType | None:
        session, user = identity.session, identity.user
        if session is None or user is None:
            return None
        return cls(
            user_id=strawberry.ID(str(user.id)),
            user=UserType(id=strawberry.ID(str(user.id)), email=user.email, name=user.name),
            application=session.application,
            role=role,
            client=ClientType.from_record(identity.client) if identity.client else None,
            employee=(
                EmployeeType(id=strawberry.ID(str(identity.employee_id)))
                if identity.employee_id
                else None
            ),
            liaison=(
                LiaisonType(id=strawberry.ID(str(identity.liaison_id)))
                if identity.liaison_id
                else None
            ),
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            expires_at=session.expires_at,
            remember_me=session.remember_me,
        )


def resolve_session_in_view(
    info: Info[RequestContext, None], view: SessionView, role: Role
) -> SessionType | None:
    """The requester's session, restricted to ``view``; null for application tokens."""
    return session_in_view(info.context, view, role, selected_field_names(info))


def session_in_view(
    context: RequestContext, view: SessionView, role: Role, selected: Iterable[str]
) -> SessionType | None:
    """``resolve_session_in_view`` for the field names ``selected`` below the field."""
    check_view_role(SESSION_VIEWS[view], role)
    check_view_fields(SESSION_VIEWS[view], selected)
    identity = context.require_identity()
    return SessionType.from_identity(identity, role)


@strawberry.type(name="Progress", description="How far processing has come.")
class ProgressType:
    processed_rows: int
    total_rows: int = strawberry.field(description="0 until the file's rows are counted.")


@strawberry.type(name="RowError", description="One thing wrong with a row.")
class RowErrorType:
    code: str = strawberry.field(description="missing-value, invalid-email, ... (see docs)")
    field: str = strawberry.field(description="The column at fault (canonical name).")
    value: str = strawberry.field(description="The value as uploaded.")
    message: str


@strawberry.type(name="NormalizedOrder", description="A row's values after normalizing.")
class NormalizedOrderType:
    external_order_id: str | None
    order_date: str | None
    recipient_name: str | None
    email: str | None
    phone: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None
    sku: str | None
    quantity: int | None
    notes: str | None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@strawberry.type(name="GroupOrderRow", description="One row of the uploaded file.")
class GroupOrderRowType:
    source_row: int = strawberry.field(description="The row's number in the file; the header is 1.")
    status: RowStatus
    external_order_id: str | None
    cells: list[str] = strawberry.field(description="The row as uploaded.")
    order: NormalizedOrderType
    errors: list[RowErrorType]

    @classmethod
    def from_record(cls, record: RowRecord) -> GroupOrderRowType:
        values = record.normalized
        quantity = values.get("quantity")
        return cls(
            source_row=record.source_row,
            status=RowStatus(record.status),
            external_order_id=record.external_order_id,
            cells=[str(cell) for cell in record.cells],
            order=NormalizedOrderType(
                external_order_id=_text(values.get("external_order_id")),
                order_date=_text(values.get("order_date")),
                recipient_name=_text(values.get("recipient_name")),
                email=_text(values.get("email")),
                phone=_text(values.get("phone")),
                address_line1=_text(values.get("address_line1")),
                address_line2=_text(values.get("address_line2")),
                city=_text(values.get("city")),
                region=_text(values.get("region")),
                postal_code=_text(values.get("postal_code")),
                country=_text(values.get("country")),
                sku=_text(values.get("sku")),
                quantity=quantity if isinstance(quantity, int) else None,
                notes=_text(values.get("notes")),
            ),
            errors=[RowErrorType(**error) for error in record.errors],
        )


@strawberry.type(name="GroupOrderRowEdge")
class GroupOrderRowEdge:
    cursor: str
    node: GroupOrderRowType


@strawberry.type(name="PageInfo")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(name="GroupOrderRowConnection")
class GroupOrderRowConnection:
    edges: list[GroupOrderRowEdge]
    page_info: PageInfo
    total_count: int


def row_cursor(source_row: int) -> str:
    return base64.urlsafe_b64encode(f"row:{source_row}".encode()).decode()


def parse_row_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind == "row" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError("invalid-param", "'after' is not a cursor this API gave out.", param="after")


@strawberry.type(
    name="Notification",
    description="An email to a group order's uploader, or a POST to its client's webhook, "
    "telling how it came out.",
)
class NotificationType:
    id: strawberry.ID
    event: GroupOrderStatus = strawberry.field(description="The status it tells of.")
    recipient: str = strawberry.field(description="The email address, or the webhook's URL.")
    status: NotificationStatus
    attempts: int = strawberry.field(description="How many times sending was tried.")
    last_error: str | None = strawberry.field(
        description="Why the last failed try failed (kept when a later one succeeds), or "
        "why it was skipped."
    )
    response: str | None = strawberry.field(
        description="The provider's message id, or the webhook receiver's HTTP status."
    )
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = strawberry.field(
        description="When the next try is due, while one is."
    )
    sent_at: datetime | None

    @classmethod
    def from_record(cls, record: NotificationRecord) -> NotificationType:
        return cls(
            id=strawberry.ID(str(record.id)),
            event=GroupOrderStatus(record.event),
            recipient=record.recipient,
            status=record.status,
            attempts=record.attempts,
            last_error=record.last_error,
            response=record.response,
            created_at=record.created_at,
            last_attempt_at=record.last_attempt_at,
            next_attempt_at=record.next_attempt_at,
            sent_at=record.sent_at,
        )


@strawberry.type(name="GroupOrder", description="Many orders uploaded at once as one CSV file.")
class GroupOrderType:
    id: strawberry.ID
    status: GroupOrderStatus
    total_orders: int = strawberry.field(description="Count of orders in the group order.")
    successful_orders: int = strawberry.field(description="Count of accepted orders.")
    rejected_orders: int = strawberry.field(description="Count of rejected orders.")
    normalized_csv: str | None = strawberry.field(
        description=(
            "Signed link to the normalized CSV file; null until it exists, and once its "
            "files were purged."
        )
    )
    accepted_orders_xlsx: str | None = strawberry.field(
        description=(
            "Signed link to the accepted orders' XLSX file; null until it exists, and once its "
            "files were purged."
        )
    )
    rejected_orders_xlsx: str | None = strawberry.field(
        description=(
            "Signed link to the rejected orders' XLSX file; null until it exists, and once its "
            "files were purged."
        )
    )
    queue_job_id: str | None = strawberry.field(
        description="ID of the job in the queue, for debugging."
    )
    created_at: datetime
    updated_at: datetime
    progress: ProgressType
    outcome: GroupOrderOutcome | None = strawberry.field(
        description="all_accepted, partial or all_rejected once completed; null before."
    )
    failure_reason: str | None = strawberry.field(description="Why it failed, when it did.")
    duplicate_of: strawberry.ID | None = strawberry.field(
        description="An earlier group order of the same client with the same file content."
    )
    source_file_name: str | None = strawberry.field(description="The uploaded file's name.")
    unknown_columns: list[str] = strawberry.field(
        description="Header cells that matched no column and were ignored."
    )
    links_expire_at: datetime | None = strawberry.field(
        description="When the file links in this response stop working."
    )
    attempts: int = strawberry.field(description="How many times a worker has started it.")
    worker_id: str | None = strawberry.field(description="The worker that took it last.")
    started_at: datetime | None
    finished_at: datetime | None
    access: strawberry.Private[Access]
    record_id: strawberry.Private[uuid.UUID]
    client_id: strawberry.Private[uuid.UUID]
    uploader_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The client the group order is for.")
    async def client(self, info: Info[RequestContext, None]) -> ClientType | None:
        record = await info.context.loaders.clients.load(self.client_id)
        return ClientType.from_record(record) if record else None

    @strawberry.field(description="The user who uploaded it; null for application tokens.")
    async def uploader(self, info: Info[RequestContext, None]) -> UserType | None:
        if self.uploader_id is None:
            return None
        record = await info.context.loaders.users.load(self.uploader_id)
        if record is None:
            return None
        return UserType(id=strawberry.ID(str(record.id)), email=record.email, name=record.name)

    @strawberry.field(description="The rows of the file and what became of each, in file order.")
    async def rows(
        self,
        info: Info[RequestContext, None],
        status: RowStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> GroupOrderRowConnection:
        check_page_size(first)
        page = await info.context.loaders.rows.load(
            RowsKey(
                self.record_id, status.value if status else None, first, parse_row_cursor(after)
            )
        )
        edges = [
            GroupOrderRowEdge(
                cursor=row_cursor(row.source_row), node=GroupOrderRowType.from_record(row)
            )
            for row in page.rows
        ]
        return GroupOrderRowConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total_count,
        )

    @strawberry.field(description="The requester's session; null for application tokens.")
    def session(
        self, info: Info[RequestContext, None], view: SessionView = SessionView.default
    ) -> SessionType | None:
        return resolve_session_in_view(info, view, self.access.role)

    @strawberry.field(
        description="The latest email to the uploader about this group order's outcome; "
        "null when none was recorded (no outcome yet, or uploaded with an application token)."
    )
    async def notification(self, info: Info[RequestContext, None]) -> NotificationType | None:
        records = await info.context.loaders.notifications.load(self.record_id)
        emails = [record for record in records if record.channel == EMAIL]
        return NotificationType.from_record(emails[-1]) if emails else None

    @strawberry.field(description="The POSTs to the client's webhook, oldest first.")
    async def webhook_deliveries(self, info: Info[RequestContext, None]) -> list[NotificationType]:
        records = await info.context.loaders.notifications.load(self.record_id)
        return [NotificationType.from_record(r) for r in records if r.channel == WEBHOOK]

    @classmethod
    def from_record(
        cls, record: GroupOrderRecord, access: Access, context: RequestContext
    ) -> GroupOrderType:
        presigned = context.settings.download_links == "presigned"

        def link(file: ResultFile, key: str | None) -> str | None:
            if key is None:
                return None
            if presigned:
                return context.storage.presigned_url(
                    key,
                    context.links.lifetime,
                    filename=download_name(record.id, file),
                    media_type=MEDIA_TYPES[file],
                )
            return context.links.sign(context.base_url, record.id, file, context.now)

        has_links = any(
            (record.normalized_csv, record.accepted_orders_xlsx, record.rejected_orders_xlsx)
        )
        return cls(
            id=strawberry.ID(str(record.id)),
            record_id=record.id,
            client_id=record.client_id,
            uploader_id=record.uploaded_by_user_id,
            progress=ProgressType(
                processed_rows=record.processed_rows, total_rows=record.total_orders
            ),
            outcome=record.outcome,
            failure_reason=record.failure_reason,
            duplicate_of=strawberry.ID(str(record.duplicate_of)) if record.duplicate_of else None,
            source_file_name=record.source_name,
            unknown_columns=list(record.unknown_columns),
            links_expire_at=context.now + context.links.lifetime if has_links else None,
            attempts=record.attempts,
            worker_id=record.worker_id,
            started_at=record.started_at,
            finished_at=record.finished_at,
            status=record.status,
            total_orders=record.total_orders,
            successful_orders=record.successful_orders,
            rejected_orders=record.rejected_orders,
            normalized_csv=link(ResultFile.normalized_csv, record.normalized_csv),
            accepted_orders_xlsx=link(ResultFile.accepted_orders_xlsx, record.accepted_orders_xlsx),
            rejected_orders_xlsx=link(ResultFile.rejected_orders_xlsx, record.rejected_orders_xlsx),
            queue_job_id=record.queue_job_id,
            created_at=record.created_at,
            updated_at=record.updated_at,
            access=access,
        )


@strawberry.type(name="DryRunRowError", description="A row error found by a dry run.")
class DryRunRowErrorType:
    source_row: int
    code: str
    field: str
    value: str
    message: str


@strawberry.type(name="DryRunReport", description="What processing would make of a file.")
class DryRunReportType:
    total_rows: int
    accepted_rows: int
    rejected_rows: int
    unknown_columns: list[str]
    errors: list[DryRunRowErrorType] = strawberry.field(
        description="The first 100 row errors, in file order."
    )


@strawberry.type(name="CreateGroupOrderPayload")
class CreateGroupOrderPayload:
    dry_run: DryRunReportType | None = strawberry.field(
        description="Set for a dry run, which stores nothing."
    )
    record: strawberry.Private[GroupOrderRecord | None]
    access: strawberry.Private[Access]

    @strawberry.field(
        description="The new (or, for a repeated idempotencyKey, the first) group order."
    )
    def group_order(
        self, info: Info[RequestContext, None], view: GroupOrderView = GroupOrderView.default
    ) -> GroupOrderType | None:
        check_view(info, GROUP_ORDER_VIEWS[view], self.access.role)
        if self.record is None:
            return None
        return GroupOrderType.from_record(self.record, self.access, info.context)


strawberry.enum(GroupOrderOrder, description="The order group orders are listed in.")


@strawberry.input(description="Which group orders to list; every field narrows the list.")
class GroupOrderFilter:
    status: list[GroupOrderStatus] | None = None
    outcome: list[GroupOrderOutcome] | None = None
    client_id: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Clients outside the caller's scope match nothing."
    )
    created_after: datetime | None = strawberry.field(
        default=None, description="Created at or after this time."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Created before this time."
    )
    uploaded_by: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the user who uploaded it."
    )


@strawberry.type(name="GroupOrderEdge")
class GroupOrderEdge:
    cursor: str
    node: GroupOrderType


@strawberry.type(name="GroupOrderConnection")
class GroupOrderConnection:
    edges: list[GroupOrderEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="How many group orders match, in all.")


@strawberry.type(name="StatusCount")
class StatusCountType:
    status: GroupOrderStatus
    count: int


@strawberry.type(name="OutcomeCount")
class OutcomeCountType:
    outcome: GroupOrderOutcome
    count: int


@strawberry.type(name="RejectionCodeCount")
class RejectionCodeCountType:
    code: str
    rows: int = strawberry.field(description="Rejected rows with this code.")


@strawberry.type(name="ClientGroupOrderStats")
class ClientStatsType:
    client: ClientType
    group_orders: int
    accepted_rows: int
    rejected_rows: int


@strawberry.type(name="GroupOrderStats", description="Aggregates over the matching group orders.")
class GroupOrderStatsType:
    group_orders: int
    by_status: list[StatusCountType]
    by_outcome: list[OutcomeCountType] = strawberry.field(
        description="Completed group orders by outcome."
    )
    accepted_rows: int
    rejected_rows: int
    top_rejection_codes: list[RejectionCodeCountType] = strawberry.field(
        description="The row error codes that occur most, most frequent first."
    )
    by_client: list[ClientStatsType] | None = strawberry.field(
        description="The same per client; null when the caller sees one client only."
    )

    @classmethod
    def from_stats(cls, stats: GroupOrderStats) -> GroupOrderStatsType:
        return cls(
            group_orders=stats.group_orders,
            by_status=[StatusCountType(status=s, count=c) for s, c in stats.by_status.items()],
            by_outcome=[OutcomeCountType(outcome=o, count=c) for o, c in stats.by_outcome.items()],
            accepted_rows=stats.accepted_rows,
            rejected_rows=stats.rejected_rows,
            top_rejection_codes=[
                RejectionCodeCountType(code=code, rows=rows) for code, rows in stats.rejection_codes
            ],
            by_client=(
                [
                    ClientStatsType(
                        client=ClientType.from_record(ClientRecord(c.client_id, c.client_name)),
                        group_orders=c.group_orders,
                        accepted_rows=c.accepted_rows,
                        rejected_rows=c.rejected_rows,
                    )
                    for c in stats.by_client
                ]
                if stats.by_client is not None
                else None
            ),
        )
