"""Who is asking: the token of a request turned into an identity, or a documented error.

Malformed, unknown and revoked tokens are answered alike, and cost alike: every token,
well-formed or not, is hashed and looked up by its hash with the same statement.
"""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.tokens import TokenKind, hash_token, token_kind
from group_orders.db.engine import Reader, write_transaction
from group_orders.db.tables import (
    application_table,
    application_token_table,
    as_utc,
    client_table,
    employee_table,
    liaison_table,
    session_table,
    user_table,
)
from group_orders.enums import ApplicationSlug
from group_orders.errors import ApiError

SESSION_LIFETIME = timedelta(days=7)
SESSION_IDLE_LIMIT = timedelta(hours=72)

_INVALID_TOKEN_MESSAGE = "The token is not valid. Sign in again or use another token."  # noqa: S105


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: uuid.UUID
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class ClientRecord:
    id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: uuid.UUID
    application: ApplicationSlug
    created_at: datetime
    last_used_at: datetime
    remember_me: bool

    @property
    def expires_at(self) -> datetime | None:
        if self.remember_me:
            return None
        return min(self.created_at + SESSION_LIFETIME, self.last_used_at + SESSION_IDLE_LIMIT)


@dataclass(frozen=True, slots=True)
class Identity:
    """The requester: a signed-in user (``session`` set) or an application token."""

    application: ApplicationSlug
    session: SessionRecord | None = None
    user: UserRecord | None = None
    client: ClientRecord | None = None
    employee_id: uuid.UUID | None = None
    liaison_id: uuid.UUID | None = None
    token_name: str | None = None
    token_id: uuid.UUID | None = None

    @property
    def is_application_token(self) -> bool:
        return self.session is None

    @property
    def requester_key(self) -> str:
        """Stable per requester: a user across sessions, or one application token."""
        if self.user is not None:
            return f"user:{self.user.id}"
        return f"token:{self.token_id}"


def _invalid_token() -> ApiError:
    return ApiError("invalid-token", _INVALID_TOKEN_MESSAGE, param="token")


_sessions = session_table
_users = user_table
_clients = client_table
_applications = application_table
_tokens = application_token_table

_SESSION_QUERY = (
    sa.select(
        _sessions.c.id,
        _sessions.c.token_hash,
        _sessions.c.created_at,
        _sessions.c.last_used_at,
        _sessions.c.remember_me,
        _applications.c.slug,
        _users.c.id.label("user_id"),
        _users.c.email,
        _users.c.name.label("user_name"),
        _clients.c.id.label("client_id"),
        _clients.c.name.label("client_name"),
        employee_table.c.id.label("employee_id"),
        liaison_table.c.id.label("liaison_id"),
    )
    .join(_applications, _applications.c.id == _sessions.c.application_id)
    .join(_users, _users.c.id == _sessions.c.user_id)
    .outerjoin(_clients, _clients.c.user_id == _users.c.id)
    .outerjoin(employee_table, employee_table.c.user_id == _users.c.id)
    .outerjoin(liaison_table, liaison_table.c.user_id == _users.c.id)
    .where(_sessions.c.token_hash == sa.bindparam("token_hash"))
    # Revoked rows are filtered here, not in Python, so that a revoked token costs what an
    # unknown one does: no row either way.
    .where(_sessions.c.revoked_at.is_(None))
)

_APPLICATION_TOKEN_QUERY = (
    sa.select(
        _tokens.c.id,
        _tokens.c.token_hash,
        _tokens.c.name,
        _applications.c.slug,
        _clients.c.id.label("client_id"),
        _clients.c.name.label("client_name"),
    )
    .join(_applications, _applications.c.id == _tokens.c.application_id)
    .outerjoin(_clients, _clients.c.id == _tokens.c.client_id)
    .where(_tokens.c.token_hash == sa.bindparam("token_hash"))
    .where(_tokens.c.revoked_at.is_(None))
)


def _missing_token() -> ApiError:
    return ApiError(
        "missing-param",
        "A token is required: send it as 'Authorization: Bearer <token>'.",
        param="token",
    )


async def _look_up(reader: Reader, token: str, token_hash: str) -> Identity:
    """The identity stored for a token, not yet checked for expiry."""
    kind = token_kind(token)
    query = _APPLICATION_TOKEN_QUERY if kind is TokenKind.application else _SESSION_QUERY
    rows = await reader.all(query, {"token_hash": token_hash})
    row = rows[0] if rows else None
    if kind is None or row is None:
        raise _invalid_token()
    if not hmac.compare_digest(row["token_hash"], token_hash):
        raise _invalid_token()

    client = ClientRecord(row["client_id"], row["client_name"]) if row["client_id"] else None
    application = ApplicationSlug(row["slug"])
    if kind is TokenKind.application:
        return Identity(
            application=application, client=client, token_name=row["name"], token_id=row["id"]
        )
    return Identity(
        application=application,
        session=SessionRecord(
            id=row["id"],
            application=application,
            created_at=as_utc(row["created_at"]),
            last_used_at=as_utc(row["last_used_at"]),
            remember_me=row["remember_me"],
        ),
        user=UserRecord(row["user_id"], row["email"], row["user_name"]),
        client=client,
        employee_id=row["employee_id"],
        liaison_id=row["liaison_id"],
    )


class Authenticator:
    """Turns bearer tokens into identities, remembering good ones for ``ttl_seconds``.

    Every request needs its identity; reading it from the database each time is one more
    statement per request. So a revocation, or a new record of the user, reaches a
    running server within ``ttl_seconds`` (0 reads every time). Expiry is checked on
    every request all the same, and ``lastUsedAt`` is written back at most once per
    ``last_used_write_interval``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl_seconds: float,
        last_used_write_interval: timedelta,
        max_entries: int = 10_000,
        reader: Reader | None = None,
    ) -> None:
        self._engine = engine
        self._reader = reader or Reader(engine)
        self._ttl = ttl_seconds
        self._interval = last_used_write_interval
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, Identity]] = {}

    async def authenticate(self, token: str | None, *, now: datetime) -> Identity:
        """The identity behind a bearer token.

        Raises ``missing-param`` without a token, ``invalid-token`` for a malformed,
        unknown or revoked one, and ``session-expired`` for a session past its time.
        """
        if token is None:
            raise _missing_token()
        token_hash = hash_token(token)
        cached = self._cached(token_hash)
        identity = cached or await _look_up(self._reader, token, token_hash)
        session = identity.session
        if session is not None:
            expires_at = session.expires_at
            if expires_at is not None and expires_at <= now:
                self._cache.pop(token_hash, None)
                raise ApiError(
                    "session-expired", "The session has expired. Sign in again.", param="token"
                )
            if now - session.last_used_at >= self._interval:
                await _touch_session(self._engine, session.id, now, now - self._interval)
                identity = replace(identity, session=replace(session, last_used_at=now))
        self._remember(token_hash, identity, fresh=cached is None)
        return identity

    def _cached(self, token_hash: str) -> Identity | None:
        if self._ttl <= 0:
            return None
        entry = self._cache.get(token_hash)
        if entry is None or time.monotonic() - entry[0] >= self._ttl:
            return None
        return entry[1]

    def _remember(self, token_hash: str, identity: Identity, *, fresh: bool) -> None:
        if self._ttl <= 0:
            return
        entry = self._cache.get(token_hash)
        if entry is None and len(self._cache) >= self._max_entries:
            # Forget the oldest remembered token; a busy server keeps the active ones.
            self._cache.pop(next(iter(self._cache)))
        # A cached identity keeps the time it was read, so it is read again on time.
        fetched_at = time.monotonic() if fresh or entry is None else entry[0]
        self._cache[token_hash] = (fetched_at, identity)


async def _touch_session(
    engine: AsyncEngine, session_id: uuid.UUID, now: datetime, stale_before: datetime
) -> None:
    # The condition makes concurrent requests of one session write once, not once each.
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.update(_sessions)
            .where(_sessions.c.id == session_id)
            .where(_sessions.c.last_used_at < stale_before)
            .values(last_used_at=now)
        )
