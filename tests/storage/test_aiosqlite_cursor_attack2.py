"""Short transactions on the event loop (`storage.aiosqlite_cursor.short_transaction`), second
round: the settings a short transaction sets aside (busy timeout, checkpoint threshold) after a
BEGIN or a COMMIT that fails, the thread's commit in `CHECKPOINT_EVERY` refused, a session closed
from SQLAlchemy's own task, a server-side cursor under the lock, another program's lock while the
loop keeps turning."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import aiosqlite_cursor, db
from storage.db import create_engine, session_factory, short_transaction
from storage.models import ProcessedUpdate
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


async def refused_commit(sessions: async_sessionmaker[AsyncSession], update_id: int) -> None:
    """A short transaction whose COMMIT SQLite refuses (a foreign key checked at COMMIT)."""
    with pytest.raises(IntegrityError), short_transaction():
        async with sessions() as s, s.begin():
            await s.execute(text("PRAGMA defer_foreign_keys=ON"))
            await s.execute(processed(update_id))
            await s.execute(
                text("INSERT INTO client_event (client_id, kind, at) VALUES (424242, 'x', :at)"),
                {"at": NOW},
            )


async def short_write(sessions: async_sessionmaker[AsyncSession], update_id: int) -> None:
    with short_transaction():
        async with sessions() as s, s.begin():
            await s.execute(processed(update_id))


@pytest.mark.parametrize("short", [False, True], ids=["thread", "short"])
async def test_a_begin_refused_for_another_reason_than_the_lock(
    engine: AsyncEngine, other: sqlite3.Connection, short: bool
) -> None:
    """The same error as on the thread, and the busy timeout set aside for it is back."""
    sessions = session_factory(engine)
    async with engine.connect() as conn:
        await conn.execute(text("PRAGMA query_only=ON"))  # an operator's read-only switch
    with pytest.raises(OperationalError, match="readonly"), maybe_short(short):
        async with sessions() as s, s.begin():
            await s.execute(processed(1))
    assert lock_is_free(other)
    driver = await pooled_driver(engine)  # outside a transaction: every BEGIN is refused
    await driver.execute("PRAGMA query_only=OFF")
    assert await pragma(engine, "busy_timeout") == db.SQLITE_BUSY_SECONDS * 1000
    await short_write(sessions, 2)
    assert await stored(sessions) == [2]


async def test_a_commit_refused_on_the_loop_leaves_the_checkpoint_threshold(
    engine: AsyncEngine, other: sqlite3.Connection
) -> None:
    sessions = session_factory(engine)
    trips = await count_trips(engine)
    await refused_commit(sessions, 1)
    assert trips() == 0, "BEGIN, statements, refused COMMIT and ROLLBACK all on the loop"
    assert lock_is_free(other)
    assert await pragma(engine, "wal_autocheckpoint") == 1000
    assert await pragma(engine, "busy_timeout") == db.SQLITE_BUSY_SECONDS * 1000


async def test_the_commit_sent_to_the_thread_refused_then_short_ones_go_on(
    engine: AsyncEngine, other: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one commit in `CHECKPOINT_EVERY` that goes to the thread fails: the transaction is
    rolled back there, the lock is freed, and the next short transactions run on the loop."""
    monkeypatch.setattr(aiosqlite_cursor, "CHECKPOINT_EVERY", 2)
    sessions = session_factory(engine)
    await short_write(sessions, 1)
    trips = await count_trips(engine)
    await refused_commit(sessions, 2)  # the second commit: on the thread, refused
    assert trips() >= 1
    assert lock_is_free(other)
    before = trips()
    await short_write(sessions, 3)
    assert trips() == before, "back on the loop"
    assert await stored(sessions) == [1, 3]
    assert await pragma(engine, "wal_autocheckpoint") == 1000


async def test_a_session_without_begin_closed_by_its_own_task_frees_the_lock(
    engine: AsyncEngine, other: sqlite3.Connection
) -> None:
    """The sender's still-pending check: no `begin()`, so the transaction ends in the session's
    close, which SQLAlchemy runs in a task of its own (not the short transaction's owner)."""
    sessions = session_factory(engine)
    await short_write(sessions, 1)
    trips = await count_trips(engine)
    with short_transaction():
        async with sessions() as s:
            ids = (await s.scalars(select(ProcessedUpdate.update_id))).all()
            assert not lock_is_free(other), "a read takes the write lock too (IMMEDIATE)"
    assert list(ids) == [1]
    assert trips() == 0
    assert lock_is_free(other)


async def test_a_server_side_cursor_inside_a_short_transaction(
    engine: AsyncEngine, other: sqlite3.Connection
) -> None:
    sessions = session_factory(engine)
    with short_transaction():
        async with sessions() as s, s.begin():
            await s.execute(processed(1))  # the lock is taken on the loop
            await s.execute(processed(2))
            streamed = await s.stream_scalars(
                select(ProcessedUpdate.update_id).order_by(ProcessedUpdate.update_id)
            )
            assert [x async for x in streamed] == [1, 2]
            await s.execute(processed(3))
    assert lock_is_free(other)
    assert await stored(sessions) == [1, 2, 3]


async def test_the_loop_turns_while_a_short_begin_waits_for_another_programs_lock(
    sqlite_url: str, other: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 5)
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    loop = asyncio.get_running_loop()
    try:
        await short_write(sessions, 1)
        other.execute("BEGIN IMMEDIATE")
        task = asyncio.create_task(short_write(sessions, 2))
        ticks: list[float] = []
        start = loop.time()
        while loop.time() - start < 0.3:  # the other program keeps its lock this long
            await asyncio.sleep(0.01)
            ticks.append(loop.time())
        assert not task.done()
        other.execute("COMMIT")
        await asyncio.wait_for(task, timeout=5)
        gaps = [b - a for a, b in zip([start, *ticks], ticks, strict=False)]
        assert max(gaps) < 0.2, "the event loop stood still while the BEGIN waited"
        assert await stored(sessions) == [1, 2]
        assert await pragma(engine, "busy_timeout") == 5000
    finally:
        await engine.dispose()
