"""The database: migrations that match the tables, and writes that cannot deadlock."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from group_orders.db.engine import create_engine, write_transaction
from group_orders.db.migrate import current_revision, downgrade, head_revision, upgrade
from group_orders.db.tables import client_table, group_order_table, utc_now
from group_orders.settings import Settings


def fresh_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path)


def differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrations_build_exactly_the_tables(tmp_path: Path) -> None:
    # given
    engine = create_engine(fresh_settings(tmp_path))

    # when
    await upgrade(engine)
    async with engine.connect() as connection:
        diff = await connection.run_sync(differences)
    await engine.dispose()

    # then: a change to the tables without a migration shows up here
    assert diff == []


async def test_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    # given
    engine = create_engine(fresh_settings(tmp_path))
    await upgrade(engine)

    # when
    await downgrade(engine, "base")
    after_downgrade = await current_revision(engine)
    await upgrade(engine)
    after_upgrade = await current_revision(engine)
    async with engine.connect() as connection:
        slugs = (await connection.exec_driver_sql("SELECT slug FROM application")).scalars()
        applications = sorted(slugs)
    await engine.dispose()

    # then
    assert (after_downgrade, after_upgrade) == (None, head_revision())
    assert applications == ["planoauth", "planoorder", "planox2"]


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    # given
    engine = create_engine(fresh_settings(tmp_path))

    # when
    async with engine.connect() as connection:
        journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
        timeout = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        foreign_keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    await engine.dispose()

    # then
    assert (journal, timeout, foreign_keys) == ("wal", 5000, 1)


async def test_concurrent_read_then_write_transactions_all_commit(tmp_path: Path) -> None:
    # given: two engines, as two processes would have, sharing one database file
    settings = fresh_settings(tmp_path)
    first, second = create_engine(settings), create_engine(settings)
    await upgrade(first)
    client_id = uuid.uuid4()
    async with write_transaction(first) as connection:
        await connection.execute(
            sa.insert(client_table).values(id=client_id, name="Race Co", created_at=utc_now())
        )

    async def read_then_write(engine: object, n: int) -> None:
        # Each reads the current count, then writes: the pattern that deadlocks with a
        # deferred BEGIN, because both hold a read lock and wait for the other.
        async with write_transaction(engine) as connection:  # type: ignore[arg-type]
            count = (
                await connection.execute(sa.select(sa.func.count()).select_from(group_order_table))
            ).scalar_one()
            await asyncio.sleep(0)
            await connection.execute(
                sa.insert(group_order_table).values(
                    id=uuid.uuid4(),
                    status="pending",
                    total_orders=count,
                    successful_orders=0,
                    rejected_orders=0,
                    client_id=client_id,
                    created_at=utc_now(),
                    updated_at=utc_now(),
                )
            )

    # when
    await asyncio.gather(*(read_then_write(first if n % 2 else second, n) for n in range(40)))
    async with first.connect() as connection:
        totals = sorted(
            (await connection.execute(sa.select(group_order_table.c.total_orders))).scalars()
        )
    await first.dispose()
    await second.dispose()

    # then: every write committed, and each saw all the writes before it
    assert totals == list(range(40))
