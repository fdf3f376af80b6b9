"""The database helpers every part shares (`storage.db`): where a database is, whether it
answers, and which failures are the database's rather than the work's."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from storage.db import (
    DATABASE_ERRORS,
    POOL_SIZE,
    connection_lost,
    create_engine,
    database_name,
    database_place,
    is_transient,
    open_pool,
    ping,
)


async def test_a_reachable_database_answers_a_ping(sessions) -> None:
    async with sessions() as s:
        await ping(s)


def test_the_place_of_a_database_is_the_same_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = database_place("sqlite+aiosqlite:///./rapport.db")
    absolute = database_place(f"sqlite+aiosqlite:///{tmp_path / 'rapport.db'}")
    assert relative == absolute == f"sqlite:{tmp_path.resolve() / 'rapport.db'}"
    server = database_place("postgresql+asyncpg://rapport:s3cret@db:5432/rapport")
    assert "s3cret" not in server
    assert server == database_place("postgresql+asyncpg://rapport:other@db:5432/rapport")
    assert server != database_place("postgresql+asyncpg://rapport:s3cret@db:5432/another")
    assert database_name("sqlite+aiosqlite:///data/r.db") == "data/r.db"
    assert database_name("postgresql+asyncpg://u@h/practice") == "practice"


def test_failures_of_the_database_are_told_from_failures_of_the_work() -> None:
    down = OperationalError("SELECT 1", {}, Exception("connection refused"))
    lost = DBAPIError("SELECT 1", {}, Exception("reset"), connection_invalidated=True)
    conflict = IntegrityError("INSERT", {}, Exception("unique"))
    assert is_transient(down) and is_transient(lost) and is_transient(OSError())
    assert connection_lost(lost) and not connection_lost(down)
    assert not is_transient(conflict) and not is_transient(ValueError())


async def test_the_pool_is_opened_at_start_on_a_server_database(db_url: str) -> None:
    """`open_pool`: a server database's connections are open before the first burst (and stay
    in the pool); SQLite's one connection still opens on first use."""
    engine = create_engine(db_url)
    try:
        await open_pool(engine)
        pool: Any = engine.pool
        expected = 0 if engine.dialect.name == "sqlite" else POOL_SIZE
        assert pool.checkedin() == expected
        async with engine.connect() as conn:  # and they work
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_pool_that_cannot_open_says_why_and_keeps_nothing_open(
    postgres_url: str,
) -> None:
    missing = make_url(postgres_url).set(database="rapport_no_such_db")
    engine = create_engine(missing.render_as_string(hide_password=False))
    try:
        with pytest.raises(DATABASE_ERRORS):
            await open_pool(engine)
        pool: Any = engine.pool
        assert pool.checkedout() == 0
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_server_that_takes_fewer_connections_than_the_pool_still_starts(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A role limited to fewer connections than the pool's size (a server's limit, shared with
    other replicas): the connections it takes are opened, the shortfall is said once, and the
    start goes on; the pool works within the limit."""
    role = f"rapport_limited_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 2'))
    limited = make_url(postgres_url).set(username=role)
    engine = create_engine(limited.render_as_string(hide_password=False), pool_size=4)
    try:
        with caplog.at_level(logging.WARNING, logger="storage.db"):
            await open_pool(engine)
        pool: Any = engine.pool
        assert pool.checkedin() == 2
        assert "2 of 4 connections opened at start" in caplog.text
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await admin.dispose()
