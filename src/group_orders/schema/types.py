"""The GraphQL types. A type is built from a domain record (``from_record``), never a row."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.types import Info

from group_orders.auth.access import Access, liaison_clients
from group_orders.auth.identity import ClientRecord, Identity
from group_orders.enums import (
    ApplicationSlug,
    GroupOrderStatus,
    GroupOrderView,
    Role,
    SessionView,
)
from group_orders.schema.context import RequestContext
from group_orders.schema.selection import check_view
from group_orders.services.group_orders import GroupOrderRecord
from group_orders.storage.links import ResultFile
from group_orders.views import SESSION_VIEWS

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
        records = await liaison_clients(info.context.engine, uuid.UUID(self.id))
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
    check_view(info, SESSION_VIEWS[view], role)
    identity = info.context.require_identity()
    return SessionType.from_identity(identity, role)


@strawberry.type(name="GroupOrder", description="Many orders uploaded at once as one CSV file.")
class GroupOrderType:
    id: strawberry.ID
    status: GroupOrderStatus
    total_orders: int = strawberry.field(description="Count of orders in the group order.")
    successful_orders: int = strawberry.field(description="Count of accepted orders.")
    rejected_orders: int = strawberry.field(description="Count of rejected orders.")
    normalized_csv: str | None = strawberry.field(
        description="Signed link to the normalized CSV file; null until it exists."
    )
    accepted_orders_xlsx: str | None = strawberry.field(
        description="Signed link to the accepted orders' XLSX file; null until it exists."
    )
    rejected_orders_xlsx: str | None = strawberry.field(
        description="Signed link to the rejected orders' XLSX file; null until it exists."
    )
    queue_job_id: str | None = strawberry.field(
        description="ID of the job in the queue, for debugging."
    )
    created_at: datetime
    updated_at: datetime
    access: strawberry.Private[Access]

    @strawberry.field(description="The requester's session; null for application tokens.")
    def session(
        self, info: Info[RequestContext, None], view: SessionView = SessionView.default
    ) -> SessionType | None:
        return resolve_session_in_view(info, view, self.access.role)

    @classmethod
    def from_record(
        cls, record: GroupOrderRecord, access: Access, context: RequestContext
    ) -> GroupOrderType:
        def link(file: ResultFile, key: str | None) -> str | None:
            if key is None:
                return None
            return context.links.sign(context.base_url, record.id, file, context.now)

        return cls(
            id=strawberry.ID(str(record.id)),
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
