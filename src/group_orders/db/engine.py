"""The shared async engine, and transactions that cannot deadlock on SQLite.

SQLite's default ``BEGIN`` is deferred: two writers that both read first can each hold a
read lock and wait for the other. ``write_transaction`` takes the write lock up front
(``BEGIN IMMEDIATE``); with WAL, readers never wait for it, and the busy timeout lets a
second writer queue instead of failing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from group_orders.settings import Settings

_IMMEDIATE = "group_orders_immediate"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_engine(settings: Settings) -> AsyncEngine:
    """The one engine of a process. SQLite gets WAL, a busy timeout and foreign keys."""
    url = settings.database_url
    if not is_sqlite(url):
        # Fail fast: a request that cannot get a connection within the pool timeout, or
        # reach the server within the connect timeout, is answered service-not-found.
        return create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            connect_args={
                "timeout": settings.db_connect_timeout_seconds,
                "command_timeout": settings.db_statement_timeout_seconds,
            },
        )

    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    busy_timeout = int(settings.sqlite_busy_timeout_ms)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# SQLSTATE classes of a server that is away or full, not of a statement that is wrong:
# connection exceptions, operator intervention (shutdown, starting up), too many clients.
_UNAVAILABLE_STATES = ("08", "57P", "53300")
# SQLite's "busy" and "locked": another writer held the lock past the busy timeout.
_SQLITE_BUSY = (5, 6)


def is_database_unavailable(error: BaseException) -> bool:
    """True for the failures of a database that is busy or away, not of a query: the
    pool exhausted, a connection refused, lost or timed out, the server shutting down or
    full, SQLite's lock held too long. A wrong statement (a missing table, say) is not."""
    if isinstance(error, sa.exc.TimeoutError | sa.exc.InterfaceError):
        return True
    if isinstance(error, sa.exc.DBAPIError):
        if error.connection_invalidated:
            return True
        original = error.orig
        state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
        if isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES):
            return True
        if getattr(original, "sqlite_errorcode", None) in _SQLITE_BUSY:
            return True
        return isinstance(original, OSError | TimeoutError)
    return isinstance(error, OSError | TimeoutError)


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that holds the write lock from its first statement."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(**{_IMMEDIATE: True})
        async with connection.begin():
            yield connection


def upsert(
    connection: AsyncConnection,
    table: sa.Table,
    index_elements: Sequence[str],
    update_columns: Sequence[str],
) -> Any:
    """An INSERT that updates ``update_columns`` of a row whose key already exists, in
    the dialect of ``connection`` (SQLite and PostgreSQL spell it alike)."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(index_elements),
        set_={column: statement.excluded[column] for column in update_columns},
    )
