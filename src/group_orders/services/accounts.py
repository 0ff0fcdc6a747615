"""Users, their client/employee/liaison records, sessions and application tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from group_orders.auth.tokens import TokenKind, hash_token, new_token, token_kind
from group_orders.db.engine import write_transaction
from group_orders.db.tables import (
    application_table,
    application_token_table,
    client_table,
    employee_table,
    liaison_client_table,
    liaison_table,
    session_table,
    user_table,
    utc_now,
)
from group_orders.enums import ApplicationSlug


@dataclass(frozen=True, slots=True)
class CreatedUser:
    id: uuid.UUID
    email: str
    client_id: uuid.UUID | None
    employee_id: uuid.UUID | None
    liaison_id: uuid.UUID | None


async def _application_id(connection: AsyncConnection, slug: ApplicationSlug) -> uuid.UUID:
    query = sa.select(application_table.c.id).where(application_table.c.slug == slug.value)
    application_id: uuid.UUID = (await connection.execute(query)).scalar_one()
    return application_id


async def create_client(
    engine: AsyncEngine, name: str, *, client_id: uuid.UUID | None = None
) -> uuid.UUID:
    """A client record without a user of its own (liaisons and employees act for it)."""
    client_id = client_id or uuid.uuid4()
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.insert(client_table).values(id=client_id, name=name, created_at=utc_now())
        )
    return client_id


async def create_user(
    engine: AsyncEngine,
    email: str,
    name: str,
    *,
    client_name: str | None = None,
    employee: bool = False,
    liaison_for: Iterable[uuid.UUID] | None = None,
    user_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
) -> CreatedUser:
    """A user with the records asked for: a client (by name), employee, liaison."""
    now = utc_now()
    user_id = user_id or uuid.uuid4()
    client_id = (client_id or uuid.uuid4()) if client_name else None
    employee_id = uuid.uuid4() if employee else None
    liaison_id = uuid.uuid4() if liaison_for is not None else None
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.insert(user_table).values(id=user_id, email=email, name=name, created_at=now)
        )
        if client_id is not None:
            await connection.execute(
                sa.insert(client_table).values(
                    id=client_id, name=client_name, user_id=user_id, created_at=now
                )
            )
        if employee_id is not None:
            await connection.execute(
                sa.insert(employee_table).values(id=employee_id, user_id=user_id, created_at=now)
            )
        if liaison_id is not None:
            await connection.execute(
                sa.insert(liaison_table).values(id=liaison_id, user_id=user_id, created_at=now)
            )
            for assigned in liaison_for or ():
                await connection.execute(
                    sa.insert(liaison_client_table).values(
                        liaison_id=liaison_id, client_id=assigned
                    )
                )
    return CreatedUser(user_id, email, client_id, employee_id, liaison_id)


async def find_user(engine: AsyncEngine, email: str) -> uuid.UUID | None:
    query = sa.select(user_table.c.id).where(user_table.c.email == email)
    async with engine.connect() as connection:
        user_id: uuid.UUID | None = (await connection.execute(query)).scalar_one_or_none()
    return user_id


async def create_session(
    engine: AsyncEngine,
    user_id: uuid.UUID,
    application: ApplicationSlug,
    *,
    remember_me: bool = False,
    created_at: datetime | None = None,
    last_used_at: datetime | None = None,
) -> str:
    """Sign a user in through an application; answers the new session token."""
    token = new_token(TokenKind.session)
    created = created_at or utc_now()
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.insert(session_table).values(
                id=uuid.uuid4(),
                token_hash=hash_token(token),
                user_id=user_id,
                application_id=await _application_id(connection, application),
                created_at=created,
                last_used_at=last_used_at or created,
                remember_me=remember_me,
            )
        )
    return token


async def create_application_token(
    engine: AsyncEngine,
    application: ApplicationSlug,
    name: str,
    *,
    client_id: uuid.UUID | None = None,
) -> str:
    """A token for a service or reporting tool; answers the token, shown only now."""
    token = new_token(TokenKind.application)
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.insert(application_token_table).values(
                id=uuid.uuid4(),
                token_hash=hash_token(token),
                application_id=await _application_id(connection, application),
                client_id=client_id,
                name=name,
                created_at=utc_now(),
            )
        )
    return token


async def revoke_token(engine: AsyncEngine, token: str) -> bool:
    """Revoke a session or application token; False if no live token matched."""
    kind = token_kind(token)
    if kind is None:
        return False
    table = session_table if kind is TokenKind.session else application_token_table
    async with write_transaction(engine) as connection:
        result = await connection.execute(
            sa.update(table)
            .where(table.c.token_hash == hash_token(token))
            .where(table.c.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        )
    return bool(result.rowcount)


async def set_email_notifications(engine: AsyncEngine, user_id: uuid.UUID, enabled: bool) -> None:
    """Whether the user is emailed when a group order they uploaded completes or fails."""
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.update(user_table)
            .where(user_table.c.id == user_id)
            .values(email_notifications=enabled)
        )
