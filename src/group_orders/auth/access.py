"""Permission checks: which role a request uses, and which group orders it may see.

The ``application`` argument names the application a request is made through; it
decides the role (see ``docs/api.md``):

* ``planoorder``: the client record, else the liaison record, else client-required.
* ``planox2``: the employee record, else invalid-param on ``application``.
* ``planoauth``: the client, liaison or employee record, in that order.
* absent: the session's or the token's own application.

A user with no record at all is client-required whatever the application.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.identity import ClientRecord, Identity
from group_orders.db.engine import Reader
from group_orders.db.tables import client_table, liaison_client_table
from group_orders.enums import ApplicationSlug, Role
from group_orders.errors import ApiError


@dataclass(frozen=True, slots=True)
class Access:
    """The role a request uses and the clients whose group orders it may see."""

    role: Role
    application: ApplicationSlug
    # None: every client's group orders (employees).
    client_ids: frozenset[uuid.UUID] | None

    def may_see(self, client_id: uuid.UUID) -> bool:
        return self.client_ids is None or client_id in self.client_ids


def client_required(message: str, session: Any) -> ApiError:
    return ApiError("client-required", message, extra={"session": session})


async def resolve_access(
    engine: AsyncEngine | Reader,
    identity: Identity,
    application: ApplicationSlug | None,
    *,
    session_object: Callable[[], Any] = lambda: None,
) -> Access:
    """The access of ``identity`` through ``application``, or the documented error.

    ``session_object()`` is what ``client-required`` carries in ``extensions.session``
    (made only when that error is raised).
    """
    if identity.is_application_token:
        return _application_token_access(identity, application)

    slug = application or identity.application
    has_any = identity.client or identity.employee_id or identity.liaison_id
    if not has_any:
        raise client_required(
            "This user has no client, employee or liaison record. Register as a client first.",
            session_object(),
        )
    if slug is ApplicationSlug.planox2:
        if identity.employee_id is None:
            raise ApiError(
                "invalid-param",
                "The application planox2 needs an employee record, which this user lacks.",
                param="application",
            )
        return Access(Role.employee, slug, None)
    if identity.client is not None:
        return Access(Role.client, slug, frozenset({identity.client.id}))
    if identity.liaison_id is not None:
        clients = await liaison_clients(engine, identity.liaison_id)
        return Access(Role.liaison, slug, frozenset(client.id for client in clients))
    if slug is ApplicationSlug.planoorder:
        raise client_required(
            "The application planoorder needs a client or liaison record, which this user lacks.",
            session_object(),
        )
    return Access(Role.employee, slug, None)


def check_token_application(identity: Identity, application: ApplicationSlug | None) -> None:
    """An application token acts for its own application only."""
    if application is not None and application is not identity.application:
        raise ApiError(
            "invalid-param",
            f"This token acts for the application {identity.application.value} only.",
            param="application",
        )


def _application_token_access(identity: Identity, application: ApplicationSlug | None) -> Access:
    check_token_application(identity, application)
    if identity.client is not None:
        return Access(Role.client, identity.application, frozenset({identity.client.id}))
    if identity.application is ApplicationSlug.planox2:
        return Access(Role.employee, identity.application, None)
    raise client_required(
        f"An application token for {identity.application.value} must be bound to a client.",
        None,
    )


_LIAISON_CLIENTS = (
    sa.select(client_table.c.id, client_table.c.name)
    .join(liaison_client_table, liaison_client_table.c.client_id == client_table.c.id)
    .where(liaison_client_table.c.liaison_id == sa.bindparam("liaison_id"))
    .order_by(client_table.c.name)
)


async def liaison_clients(
    source: AsyncEngine | Reader, liaison_id: uuid.UUID
) -> list[ClientRecord]:
    """The clients a liaison is assigned to, by name."""
    reader = source if isinstance(source, Reader) else Reader(source)
    rows = await reader.all(_LIAISON_CLIENTS, {"liaison_id": liaison_id})
    return [ClientRecord(row["id"], row["name"]) for row in rows]
