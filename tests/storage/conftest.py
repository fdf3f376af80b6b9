"""The storage suite's session factory: one per test, on each backend in turn (`db_url`); and for
the SQLite adapter's tests, an engine on a SQLite file with another program's connection to it."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import create_engine, session_factory


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    # One pooled connection (the default), so the trips counted are those the tests cause.
    engine = create_engine(sqlite_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def other(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    """Another program's connection to the same file, which never waits for a lock."""
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite+aiosqlite:///"), timeout=0)
    conn.isolation_level = None
    yield conn
    conn.close()
