"""The one-trip aiosqlite adapter: the same results and transactions as the stock adapter, in one
hand-off to aiosqlite's thread per statement, and none for a short transaction holding the lock."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage import aiosqlite_cursor, db
from storage.db import SQLITE_QUEUE_SECONDS, create_engine, session_factory, short_transaction
from storage.models import ProcessedUpdate
from tests.storage.sqlite_tools import NOW, count_trips, maybe_short, pragma, processed


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


async def test_a_short_transaction_makes_no_trip_once_it_holds_the_lock(
    engine: AsyncEngine, other: sqlite3.Connection
) -> None:
    trips = await count_trips(engine)
    sessions = session_factory(engine)
    with short_transaction():
        async with sessions() as s, s.begin():
            await s.execute(processed(1))
            assert await s.scalar(select(ProcessedUpdate.update_id)) == 1
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # it holds the write lock all along
    assert trips() == 0
    other.execute("BEGIN IMMEDIATE")  # committed and released
    assert other.execute("SELECT update_id FROM processed_update").fetchall() == [(1,)]
    other.execute("ROLLBACK")
    # The next transaction, not short, goes through the thread as before, and the busy
    # timeout set aside for the short one's BEGIN is back.
    assert await pragma(engine, "busy_timeout") == db.SQLITE_BUSY_SECONDS * 1000
    assert trips() > 0


async def test_a_short_transaction_waits_for_another_programs_lock_off_the_event_loop(
    sqlite_url: str, other: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program (the CLI, a second bot) holds the write lock: the short transaction's
    BEGIN waits on aiosqlite's thread, while the event loop goes on, and then it proceeds."""
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 5)  # a loop blocked would fail in 5 s
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as s, s.begin():  # the connection is open before the lock
            await s.execute(processed(1))
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            with short_transaction():
                async with sessions() as s, s.begin():
                    await s.execute(processed(2))

        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(write())
        for _ in range(50):  # the loop keeps turning while the transaction waits
            await asyncio.sleep(0)
        assert not task.done()
        # A BEGIN waiting on the loop's own thread would have held it for the busy timeout.
        assert loop.time() - started < 2.5
        other.execute("COMMIT")
        await asyncio.wait_for(task, timeout=5)
        async with sessions() as s:
            stored = await s.scalars(select(ProcessedUpdate.update_id).order_by("update_id"))
            assert stored.all() == [1, 2]
        assert await pragma(engine, "busy_timeout") == 5000
    finally:
        await engine.dispose()


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


@pytest.mark.parametrize("short", [False, True], ids=["thread", "short"])
async def test_a_failed_statement_rolls_back_as_before(engine: AsyncEngine, short: bool) -> None:
    sessions = session_factory(engine)
    with pytest.raises(IntegrityError), maybe_short(short):
        async with sessions() as s, s.begin():
            await s.execute(processed(1))
            await s.execute(processed(1))
    with maybe_short(short):
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
