"""Tools for the SQLite adapter's tests (`storage.aiosqlite_cursor`): the hand-offs to aiosqlite's
worker thread counted, a row to write and the rows stored, a short transaction or not, whether
another program could take the write lock, a connection setting read back."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import aiosqlite_cursor
from storage.db import short_transaction
from storage.models import ProcessedUpdate

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def processed(update_id: int) -> Any:
    return insert(ProcessedUpdate).values(update_id=update_id, processed_at=NOW)


async def stored(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """The `processed` rows stored, in order."""
    async with sessions() as s:
        rows = await s.scalars(select(ProcessedUpdate.update_id).order_by("update_id"))
        return list(rows.all())


def lock_is_free(other: sqlite3.Connection) -> bool:
    """Whether another program's connection could take the write lock now (and lets it go)."""
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    other.execute("ROLLBACK")
    return True


async def pragma(engine: AsyncEngine, name: str) -> int:
    """A connection setting as the pooled connection has it (`busy_timeout`, ...)."""
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f"PRAGMA {name}")))


def maybe_short(short: bool) -> contextlib.AbstractContextManager[None]:
    return short_transaction() if short else contextlib.nullcontext()


async def pooled_driver(engine: AsyncEngine) -> Any:
    """The pooled connection's aiosqlite connection (one per process on a file)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, aiosqlite_cursor.OneTripConnection)
        return raw.driver_connection


async def count_trips(engine: AsyncEngine) -> Callable[[], int]:
    """Counts the functions queued to the pooled connection's aiosqlite thread from now on."""
    driver = await pooled_driver(engine)
    trips = [0]
    queue = driver._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips[0] += 1
        return await queue(fn, *args, **kwargs)

    driver._execute = counted
    return lambda: trips[0]
