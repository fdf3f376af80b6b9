"""The one-trip aiosqlite adapter: the same results and transactions as the stock adapter, in one
hand-off to aiosqlite's thread per statement."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage import aiosqlite_cursor
from storage.db import SQLITE_QUEUE_SECONDS, create_engine, session_factory
from storage.models import ProcessedUpdate

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    # One pooled connection (the default), so the trips counted are those the tests cause.
    engine = create_engine(sqlite_url)
    yield engine
    await engine.dispose()


async def count_trips(engine: AsyncEngine) -> Callable[[], int]:
    """Counts the functions queued to the pooled connection's aiosqlite thread from now on."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, aiosqlite_cursor.OneTripConnection)
        driver: Any = raw.driver_connection
    trips = [0]
    queue = driver._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips[0] += 1
        return await queue(fn, *args, **kwargs)

    driver._execute = counted
    return lambda: trips[0]


def processed(update_id: int) -> Any:
    return insert(ProcessedUpdate).values(update_id=update_id, processed_at=NOW)


async def test_a_transaction_costs_one_trip_per_statement_and_one_to_commit(
    engine: AsyncEngine,
) -> None:
    trips = await count_trips(engine)
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        await s.execute(processed(1))  # the BEGIN travels with it
        assert await s.scalar(select(ProcessedUpdate.update_id)) == 1
    # BEGIN + INSERT, SELECT, COMMIT; the pool's reset of a committed connection costs nothing.
    assert trips() == 3
    async with sessions() as s, s.begin():
        pass
    assert trips() == 3, "a transaction that ran nothing costs no trip"


@pytest.fixture
def other(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    """Another program's connection to the same file, which never waits for a lock."""
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite+aiosqlite:///"), timeout=0)
    conn.isolation_level = None
    yield conn
    conn.close()


async def test_the_write_lock_is_taken_with_the_first_statement(
    engine: AsyncEngine, other: sqlite3.Connection
) -> None:
    async with session_factory(engine)() as s, s.begin():
        await s.scalar(select(ProcessedUpdate.update_id))  # a read, but IMMEDIATE
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # free again once committed
    other.execute("ROLLBACK")


async def test_row_counts_keys_and_returned_rows_are_the_drivers(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as s, s.begin():
        result = await s.execute(processed(7))
        assert result.inserted_primary_key == (7,)
        conn = await s.connection()  # Core: an executemany, as the bulk writes use
        many = await conn.execute(
            insert(ProcessedUpdate.__table__),
            [{"update_id": n, "processed_at": NOW} for n in (8, 9, 10)],
        )
        assert many.rowcount == 3
        changed = await s.execute(
            update(ProcessedUpdate).where(ProcessedUpdate.update_id >= 9).values(processed_at=NOW)
        )
        assert changed.rowcount == 2  # type: ignore[attr-defined]
        gone = await s.execute(
            delete(ProcessedUpdate)
            .where(ProcessedUpdate.update_id == 10)
            .returning(ProcessedUpdate.update_id)
        )
        assert gone.all() == [(10,)]
        rows = await s.execute(text("SELECT update_id FROM processed_update ORDER BY update_id"))
        assert rows.scalars().all() == [7, 8, 9]


async def test_a_failed_statement_rolls_back_as_before(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    with pytest.raises(IntegrityError):
        async with sessions() as s, s.begin():
            await s.execute(processed(1))
            await s.execute(processed(1))
    async with sessions() as s, s.begin():
        await s.execute(processed(2))
        with pytest.raises(IntegrityError):
            async with s.begin_nested():
                await s.execute(processed(2))  # only the savepoint is undone
        await s.execute(processed(3))
    async with sessions() as s:
        stored = await s.scalars(select(ProcessedUpdate.update_id).order_by("update_id"))
        assert stored.all() == [2, 3]


async def test_without_aiosqlites_thread_hook_the_stock_adapter_is_used(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aiosqlite_cursor, "available", lambda: False)
    engine = create_engine(sqlite_url)
    try:
        async with AsyncSession(engine) as s, s.begin():
            await s.execute(processed(5))
            raw = await (await s.connection()).get_raw_connection()
            assert not isinstance(raw.dbapi_connection, aiosqlite_cursor.OneTripConnection)
        async with AsyncSession(engine) as s:
            assert await s.scalar(select(ProcessedUpdate.update_id)) == 5
    finally:
        await engine.dispose()


def test_aiosqlite_still_has_the_thread_hook() -> None:
    """The installed aiosqlite still offers the hook: without it the bot would run, on the stock
    adapter, about a third slower per update; a new aiosqlite release is checked here first."""
    assert aiosqlite_cursor.available()


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite://"])
async def test_an_in_memory_database_keeps_its_single_static_connection(url: str) -> None:
    engine = create_engine(url)
    try:
        async with AsyncSession(engine) as s, s.begin():
            assert await s.scalar(text("SELECT 41 + 1")) == 42
    finally:
        await engine.dispose()


async def test_a_file_database_has_one_connection_per_process(engine: AsyncEngine) -> None:
    pool: Any = engine.sync_engine.pool
    assert (pool.size(), pool._max_overflow, pool.timeout()) == (1, 0, SQLITE_QUEUE_SECONDS)


async def test_a_streamed_query_first_in_its_transaction_still_takes_the_lock(
    engine: AsyncEngine, other: sqlite3.Connection
) -> None:
    async with session_factory(engine)() as s, s.begin():
        # A server-side cursor is SQLAlchemy's stock one: the deferred BEGIN goes first.
        rows = await s.stream(select(ProcessedUpdate.update_id))
        assert [row async for row in rows] == []
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
