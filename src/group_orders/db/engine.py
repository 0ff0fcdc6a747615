"""The shared async engine, and transactions that cannot deadlock on SQLite.

SQLite's default ``BEGIN`` is deferred: two writers that both read first can each hold a
read lock and wait for the other. ``write_transaction`` takes the write lock up front
(``BEGIN IMMEDIATE``); with WAL, readers never wait for it, and the busy timeout lets a
second writer queue instead of failing.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from group_orders.settings import Settings

_IMMEDIATE = "group_orders_immediate"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def libpq_url(url: str) -> str:
    """The plain ``postgresql://`` form of a SQLAlchemy URL, for the libraries that
    connect on their own (procrastinate through psycopg, event listeners through asyncpg)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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


Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement as the driver takes it: its SQL, its parameters' names in order, and
    the columns' own conversions (the ones SQLAlchemy applies on its path)."""

    sql: str
    parameters: tuple[tuple[str, Processor], ...]
    keys: tuple[str, ...]
    results: tuple[Processor, ...]


def _result_processor(type_: sa.types.TypeEngine[Any], dialect: Dialect) -> Processor:
    process = type_.dialect_impl(dialect).result_processor(dialect, None)
    if process is not None and isinstance(type_, sa.Uuid):
        # Parsing a UUID's text costs microseconds, and the same ids come back again and
        # again (a group order's client, a hot group order): remember the last few.
        return functools.lru_cache(maxsize=4096)(process)
    return process


def _compile(statement: sa.Select[Any], dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    return _Compiled(
        sql=compiled.string,
        parameters=tuple(
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names
        ),
        keys=tuple(statement.selected_columns.keys()),
        results=tuple(
            _result_processor(column.type, dialect) for column in statement.selected_columns
        ),
    )


class Reader:
    """Read-only statements, each on the cheapest path the database allows.

    On a SQLite file, one shared driver connection in autocommit mode serves them all:
    no pool checkout, no ``BEGIN``/``ROLLBACK`` and one hop to the driver's thread per
    statement, where the engine's path takes several. Each statement is its own read
    transaction, so it sees every commit made before it started, and with WAL it never
    waits for a writer. Statements are compiled by SQLAlchemy once, and values are
    converted by the columns' own types, so rows read alike on both paths.

    Any other database (PostgreSQL, an in-memory SQLite) reads through the engine.
    Rows are mappings of the selected columns' keys to their values.
    """

    def __init__(self, engine: AsyncEngine, sqlite_file: Path | None = None) -> None:
        self.engine = engine
        self._path = sqlite_file
        self._busy_timeout_ms = 5000
        # id of a statement -> the statement (kept, so that its id stays its own) compiled
        self._compiled: dict[int, tuple[sa.Select[Any], _Compiled]] = {}
        self._connection: asyncio.Future[aiosqlite.Connection] | None = None

    @classmethod
    def for_engine(cls, engine: AsyncEngine, settings: Settings) -> Reader:
        """The reader of an app's engine: a shared connection where it is a SQLite file."""
        reader = cls(engine, sqlite_path(settings.database_url))
        reader._busy_timeout_ms = int(settings.sqlite_busy_timeout_ms)
        return reader

    async def all(
        self, statement: sa.Select[Any], parameters: Mapping[str, Any] | None = None
    ) -> list[Mapping[Any, Any]]:
        """The rows of a SELECT. Give statements made once (module constants): the
        compiled form is kept per statement object."""
        path = self._path
        if path is None:
            async with self.engine.connect() as connection:
                result = await connection.execute(statement, parameters or {})
                return list(result.mappings().all())
        entry = self._compiled.get(id(statement))
        if entry is None:
            entry = (statement, _compile(statement, self.engine.dialect))
            self._compiled[id(statement)] = entry
        compiled = entry[1]
        values = parameters or {}
        arguments = [
            process(values[name]) if process is not None else values[name]
            for name, process in compiled.parameters
        ]
        shared = await self._shared_connection(path)
        rows = await shared.execute_fetchall(compiled.sql, arguments)
        keys, results = compiled.keys, compiled.results
        return [
            dict(
                zip(
                    keys,
                    [
                        process(value) if process is not None and value is not None else value
                        for process, value in zip(results, row, strict=True)
                    ],
                    strict=True,
                )
            )
            for row in rows
        ]

    async def _shared_connection(self, path: Path) -> aiosqlite.Connection:
        if self._connection is None:
            self._connection = asyncio.get_running_loop().create_future()
            try:
                connection = await aiosqlite.connect(path, isolation_level=None)
                await connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
                # A read path: writes belong to the engine's transactions.
                await connection.execute("PRAGMA query_only=ON")
            except BaseException as error:
                self._connection.set_exception(error)
                self._connection.exception()  # retrieved: the caller raises it
                self._connection = None
                raise
            self._connection.set_result(connection)
        return await asyncio.shield(self._connection)

    async def close(self) -> None:
        """Close the shared connection (the app's lifespan does, before the engine's)."""
        pending, self._connection = self._connection, None
        if pending is None:
            return
        try:
            connection = await pending
        except Exception:  # it never opened
            return
        await connection.close()


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
