"""The reader's shared SQLite connection reads what the engine's path reads, and sees
every commit made before a read; other databases read through the engine."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.access import _LIAISON_CLIENTS
from group_orders.auth.identity import _APPLICATION_TOKEN_QUERY, _SESSION_QUERY
from group_orders.auth.tokens import hash_token
from group_orders.db.engine import Reader, create_engine, write_transaction
from group_orders.db.tables import group_order_table, liaison_table, session_table
from group_orders.services.demo import DemoData
from group_orders.services.group_orders import group_order_rows
from group_orders.settings import Settings
from test_statement_counts import counting


@pytest.fixture
async def shared(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Reader]:
    reader = Reader.for_engine(engine, settings)
    yield reader
    await reader.close()


def plain(rows: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in rows]


async def test_group_order_rows_read_alike_on_both_paths(
    engine: AsyncEngine, shared: Reader
) -> None:
    # given: every group order of the demo, one at a time and all at once
    async with engine.connect() as connection:
        ids = list((await connection.execute(sa.select(group_order_table.c.id))).scalars())
    assert len(ids) > 5

    # when
    one_by_one = [await group_order_rows(shared, [key]) for key in ids]
    together = await group_order_rows(shared, ids)
    through_engine = await group_order_rows(engine, ids)

    # then: the same values, of the same types, as the engine's path gives
    assert {key: dict(row) for key, row in together.items()} == {
        key: dict(row) for key, row in through_engine.items()
    }
    for found in one_by_one:
        [(key, row)] = found.items()
        assert dict(row) == dict(through_engine[key])
        assert {name: type(value) for name, value in row.items()} == {
            name: type(value) for name, value in through_engine[key].items()
        }
    assert await group_order_rows(shared, [uuid.uuid4()]) == {}


async def test_identity_and_liaison_statements_read_alike(
    engine: AsyncEngine, shared: Reader, demo: DemoData
) -> None:
    # given
    through_engine = Reader(engine)
    async with engine.connect() as connection:
        liaisons = list((await connection.execute(sa.select(liaison_table.c.id))).scalars())
    assert liaisons

    # when / then
    for token in demo.tokens.values():
        for query in (_SESSION_QUERY, _APPLICATION_TOKEN_QUERY):
            parameters = {"token_hash": hash_token(token)}
            expected = plain(await through_engine.all(query, parameters))
            assert plain(await shared.all(query, parameters)) == expected
    for liaison_id in liaisons:
        parameters = {"liaison_id": liaison_id}
        expected = plain(await through_engine.all(_LIAISON_CLIENTS, parameters))
        assert expected
        assert plain(await shared.all(_LIAISON_CLIENTS, parameters)) == expected


async def test_a_read_sees_the_commit_made_before_it(engine: AsyncEngine, shared: Reader) -> None:
    # given: a first read, so that the shared connection is open
    async with engine.connect() as connection:
        group_order_id = (await connection.execute(sa.select(group_order_table.c.id))).scalar()
    assert group_order_id is not None
    await group_order_rows(shared, [group_order_id])

    # when
    async with write_transaction(engine) as connection:
        await connection.execute(
            sa.update(group_order_table)
            .where(group_order_table.c.id == group_order_id)
            .values(queue_job_id="job-changed")
        )

    # then
    found = await group_order_rows(shared, [group_order_id])
    assert found[group_order_id]["queue_job_id"] == "job-changed"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_shared_connection_only_reads(engine: AsyncEngine, shared: Reader) -> None:
    # given
    async with engine.connect() as connection:
        group_order_id = (await connection.execute(sa.select(group_order_table.c.id))).scalar()
    assert group_order_id is not None
    await group_order_rows(shared, [group_order_id])

    # when / then
    connection = await shared._shared_connection(shared._path)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="readonly"):
        await connection.execute("DELETE FROM session")
    async with engine.connect() as check:
        assert (await check.execute(sa.select(sa.func.count()).select_from(session_table))).scalar()


async def test_an_in_memory_database_reads_through_the_engine(tmp_path: Any) -> None:
    # given
    settings = Settings(database_url="sqlite+aiosqlite://", data_dir=tmp_path)
    engine = create_engine(settings)
    reader = Reader.for_engine(engine, settings)
    query = sa.select(sa.literal(1).label("one"))

    # when
    with counting(engine) as statements:
        rows = await reader.all(query)

    # then
    assert plain(rows) == [{"one": 1}]
    assert statements[-1] == "SELECT ? AS one"
    await reader.close()
    await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_sqlite_file_reads_without_the_engine(engine: AsyncEngine, shared: Reader) -> None:
    with counting(engine) as statements:
        await group_order_rows(shared, [uuid.uuid4()])
    assert statements == []
