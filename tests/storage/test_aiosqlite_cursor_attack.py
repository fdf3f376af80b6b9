"""Short transactions on the event loop (`storage.aiosqlite_cursor.short_transaction`) under
hostile or unlucky conditions: cancellation, another program's lock, a second engine in the
process, a commit or rollback that fails, a full WAL, an in-memory database, spawned tasks.

Each was a defect of the first version or a check that held; all hold now."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import aiosqlite_cursor, db
from storage.db import create_engine, session_factory, short_transaction
from tests.storage.sqlite_tools import (
    NOW,
    count_trips,
    lock_is_free,
    maybe_short,
    pooled_driver,
    pragma,
    processed,
    stored,
)


def file_size(path: str) -> int:
    return os.stat(path).st_size


# Defects.


async def test_a_commit_on_the_event_loop_leaves_the_checkpoint_to_another_thread(
    engine: AsyncEngine, other: sqlite3.Connection, sqlite_url: str
) -> None:
    path = sqlite_url.removeprefix("sqlite+aiosqlite:///")
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        await s.execute(processed(1))
    # The WAL fills up to just under SQLite's autocheckpoint (1000 pages): the bot's own
    # commits do this all day; here another program's writes do it at once.
    other.execute("PRAGMA wal_autocheckpoint=0")
    other.execute("CREATE TABLE filler (b BLOB)")
    other.execute("BEGIN IMMEDIATE")
    for _ in range(990):
        other.execute("INSERT INTO filler VALUES (randomblob(3000))")
    other.execute("COMMIT")
    size = file_size(path)
    trips = await count_trips(engine)
    with short_transaction():  # one small update
        async with sessions() as s, s.begin():
            await s.execute(processed(2))
    grown = file_size(path) - size
    assert trips() == 0, "the whole transaction ran on the event loop's thread"
    assert await stored(sessions) == [1, 2]
    # The database file only changes when the WAL is copied into it (a checkpoint): a commit
    # on the event loop would have written megabytes there and synced them.
    assert grown == 0


async def test_the_checkpoint_runs_on_the_thread_once_in_so_many_short_commits(
    engine: AsyncEngine,
    other: sqlite3.Connection,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Put off on the loop, the checkpoint is not put off for ever: the WAL would only grow."""
    monkeypatch.setattr(aiosqlite_cursor, "CHECKPOINT_EVERY", 3)
    path = sqlite_url.removeprefix("sqlite+aiosqlite:///")
    sessions = session_factory(engine)
    other.execute("PRAGMA wal_autocheckpoint=0")
    other.execute("CREATE TABLE filler (b BLOB)")
    other.execute("BEGIN IMMEDIATE")
    for _ in range(1100):  # past the 1,000 pages of SQLite's automatic checkpoint
        other.execute("INSERT INTO filler VALUES (randomblob(3000))")
    other.execute("COMMIT")
    trips = await count_trips(engine)
    grown, crossed = [], []
    for update_id in (1, 2, 3):
        size, before = file_size(path), trips()
        with short_transaction():
            async with sessions() as s, s.begin():
                await s.execute(processed(update_id))
        grown.append(file_size(path) > size)
        crossed.append(trips() - before)
    assert crossed == [0, 0, 1]  # the third commit went to the thread
    assert grown == [False, False, True]  # and the checkpoint ran there
    assert await pragma(engine, "wal_autocheckpoint") == 1000  # set aside meanwhile, back
    assert await stored(sessions) == [1, 2, 3]


class FailingRollback:
    """The driver's connection, whose next ROLLBACK fails (an I/O error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.failures = 0

    def rollback(self) -> None:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        self._conn.rollback()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.mark.parametrize(
    "short",
    [
        False,
        True,
    ],
    ids=["thread", "short"],
)
async def test_a_rollback_that_failed_is_done_before_the_connection_is_reused(
    engine: AsyncEngine, other: sqlite3.Connection, short: bool
) -> None:
    sessions = session_factory(engine)
    driver = await pooled_driver(engine)
    failing = FailingRollback(driver._connection)
    driver._connection = failing
    failing.failures = 1
    with pytest.raises(DBAPIError), maybe_short(short):
        async with sessions() as s, s.begin():
            await s.execute(processed(1))
            await s.execute(processed(1))  # a conflict: the transaction is rolled back
    assert lock_is_free(other), "the connection went back to the pool holding the write lock"
    with maybe_short(short):
        async with sessions() as s, s.begin():
            await s.execute(processed(2))
    assert await stored(sessions) == [2]


async def test_on_an_in_memory_database_a_rolled_back_transaction_stays_rolled_back() -> None:
    engine = create_engine("sqlite+aiosqlite://")
    sessions = session_factory(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        written = asyncio.Event()

        async def undone() -> None:
            with short_transaction():
                async with sessions() as s, s.begin():
                    await s.execute(text("INSERT INTO t VALUES (1)"))
                    written.set()
                    await asyncio.sleep(0.01)  # an await inside the transaction
                    raise RuntimeError("rolled back")

        async def beside() -> None:
            await written.wait()
            async with sessions() as s, s.begin():
                await s.execute(text("INSERT INTO t VALUES (2)"))

        results = await asyncio.gather(undone(), beside(), return_exceptions=True)
        assert isinstance(results[0], RuntimeError)
        async with sessions() as s:
            rows = (await s.scalars(text("SELECT x FROM t"))).all()
        assert 1 not in rows, "the rolled-back insert was committed"
    finally:
        await engine.dispose()


async def test_a_task_spawned_inside_a_short_transaction_is_not_short(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    on_the_loop: list[bool] = []

    async def background() -> None:
        async with sessions() as s, s.begin():
            await s.execute(processed(9))
            raw = await (await s.connection()).get_raw_connection()
            on_the_loop.append(raw.dbapi_connection.here)

    with short_transaction():
        async with sessions() as s, s.begin():
            await s.execute(processed(1))
            spawned = asyncio.create_task(background())
    await spawned
    assert on_the_loop == [False]


@pytest.mark.parametrize(
    "short",
    [
        False,
        True,
    ],
    ids=["thread", "short"],
)
async def test_after_sqlite_rolled_back_on_its_own_no_statement_waits_on_the_loop(
    sqlite_url: str, other: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch, short: bool
) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 1)
    other.execute("CREATE TABLE big (b BLOB)")
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    loop = asyncio.get_running_loop()
    try:
        async with engine.connect() as conn:  # the disk is nearly full
            pages = await conn.scalar(text("PRAGMA page_count"))
            await conn.execute(text(f"PRAGMA max_page_count={pages + 2}"))
        with pytest.raises(DBAPIError), maybe_short(short):
            async with sessions() as s, s.begin():
                await s.execute(processed(1))
                with pytest.raises(DBAPIError, match="full"):
                    await s.execute(text("INSERT INTO big VALUES (randomblob(100000))"))
                # SQLite undid the whole transaction and let go of the lock; another program
                # takes it.
                other.execute("BEGIN IMMEDIATE")
                due = loop.time() + 0.05
                ran: list[float] = []
                loop.call_at(due, lambda: ran.append(loop.time()))
                try:
                    await s.execute(processed(2))  # waits for the lock, then "locked"
                finally:
                    other.execute("ROLLBACK")
        await asyncio.sleep(0.1)
        assert ran and ran[0] - due < 0.5, "the event loop stood still for the busy timeout"
    finally:
        await engine.dispose()


# What held up.


async def test_cancelled_while_waiting_for_another_programs_lock_the_next_one_works(
    sqlite_url: str, other: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 1)
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as s, s.begin():
            await s.execute(processed(1))
        other.execute("BEGIN IMMEDIATE")

        async def write(update_id: int) -> None:
            with short_transaction():
                async with sessions() as s, s.begin():
                    await s.execute(processed(update_id))

        task = asyncio.create_task(write(2))
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()  # a shutdown: the BEGIN waits on aiosqlite's thread
        with pytest.raises(asyncio.CancelledError):
            await task
        other.execute("COMMIT")
        await asyncio.wait_for(write(3), timeout=5)
        assert await stored(sessions) == [1, 3]
        async with engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA busy_timeout")) == 1000
    finally:
        await engine.dispose()


async def test_cancelled_inside_a_short_transaction_it_is_rolled_back_and_the_lock_freed(
    engine: AsyncEngine, other: sqlite3.Connection
) -> None:
    sessions = session_factory(engine)
    inside = asyncio.Event()

    async def update() -> None:
        with short_transaction():
            async with sessions() as s, s.begin():
                await s.execute(processed(1))
                inside.set()
                await asyncio.Event().wait()  # e.g. a chart drawn on a thread

    task = asyncio.create_task(update())
    await inside.wait()
    assert not lock_is_free(other)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lock_is_free(other)
    with short_transaction():
        async with sessions() as s, s.begin():
            await s.execute(processed(2))
    assert await stored(sessions) == [2]


async def test_a_commit_refused_by_sqlite_rolls_back_and_frees_the_lock(
    engine: AsyncEngine, other: sqlite3.Connection
) -> None:
    sessions = session_factory(engine)
    with pytest.raises(IntegrityError), short_transaction():
        async with sessions() as s, s.begin():
            await s.execute(text("PRAGMA defer_foreign_keys=ON"))  # checked at COMMIT
            await s.execute(processed(1))
            await s.execute(
                text("INSERT INTO client_event (client_id, kind, at) VALUES (424242, 'x', :at)"),
                {"at": NOW},
            )
    assert lock_is_free(other)
    with short_transaction():
        async with sessions() as s, s.begin():
            await s.execute(processed(2))
    assert await stored(sessions) == [2]


async def test_a_second_engine_in_the_process_waits_off_the_loop(
    sqlite_url: str, engine: AsyncEngine
) -> None:
    """Two replicas in one process: while one holds the lock on the loop and awaits, the
    other's short BEGIN waits on its thread, and the loop keeps turning."""
    second = create_engine(sqlite_url)
    first_sessions, second_sessions = session_factory(engine), session_factory(second)
    try:
        holding, release = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            with short_transaction():
                async with first_sessions() as s, s.begin():
                    await s.execute(processed(1))
                    holding.set()
                    await release.wait()

        async def then() -> None:
            await holding.wait()
            with short_transaction():
                async with second_sessions() as s, s.begin():
                    await s.execute(processed(2))

        tasks = [asyncio.create_task(first()), asyncio.create_task(then())]
        for _ in range(50):
            await asyncio.sleep(0)
        assert not tasks[1].done()
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
        assert await stored(first_sessions) == [1, 2]
    finally:
        await second.dispose()


async def test_the_engine_disposed_during_a_short_transaction(
    engine: AsyncEngine, other: sqlite3.Connection
) -> None:
    sessions = session_factory(engine)
    inside, go_on = asyncio.Event(), asyncio.Event()

    async def update() -> None:
        with short_transaction():
            async with sessions() as s, s.begin():
                await s.execute(processed(1))
                inside.set()
                await go_on.wait()
                await s.execute(processed(2))

    task = asyncio.create_task(update())
    await inside.wait()
    await engine.dispose()  # a shutdown while the update is still in its transaction
    go_on.set()
    await task
    assert lock_is_free(other)
    assert await stored(sessions) == [1, 2]


async def test_nested_scopes_and_savepoints_then_a_transaction_that_is_not_short(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    trips = await count_trips(engine)
    with short_transaction():
        with short_transaction():
            pass  # leaving an inner scope keeps the outer one
        async with sessions() as s, s.begin():
            await s.execute(processed(1))
            with pytest.raises(IntegrityError):
                async with s.begin_nested():
                    await s.execute(processed(2))
                    await s.execute(processed(1))
            async with s.begin_nested():
                await s.execute(processed(3))
    assert trips() == 0
    async with sessions() as s, s.begin():
        await s.execute(processed(4))
    assert trips() > 0
    assert await stored(sessions) == [1, 3, 4]
