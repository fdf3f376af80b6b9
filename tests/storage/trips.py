"""Counting the hand-offs to aiosqlite's worker thread (`storage.aiosqlite_cursor`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from storage import aiosqlite_cursor


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
