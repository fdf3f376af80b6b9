"""Shared fixtures: databases (SQLite always; PostgreSQL when RAPPORT_TEST_POSTGRES_URL is set),
and the runtime that every end-to-end test builds the bot from."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.clock import ManualClock
from app.logs import QUIET_LIBRARIES, setup_logging
from storage.crypto import Cipher
from storage.db import create_engine, upgrade

POSTGRES_ENV = "RAPPORT_TEST_POSTGRES_URL"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
TEST_KEY = Cipher.generate_key()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test run; each test gets a copy (fast and isolated)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "rapport.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A throw-away database on the configured server, migrated once, dropped at the end."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
    name = f"rapport_test_{uuid.uuid4().hex[:10]}"
    admin_url = base

    async def admin(sql: str) -> None:
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


TABLES = (
    "answer, checkin, client_event, outbox, invite, therapy_session, client, therapist, "
    "practice, processed_update, audit_event, key_canary, bot_instance, supervision, "
    "console_link, console_session, alert, alert_message, client_note"
)


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    engine = create_engine(postgres_server_url)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    yield postgres_server_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Every backend: the storage suite runs once per backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(TEST_KEY)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def process_log() -> Iterator[io.StringIO]:
    """What the process's own logging set-up writes, at its most talkative level (DEBUG), for
    tests that no name, text or token reaches a log line."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (*QUIET_LIBRARIES, "sqlalchemy")}
    stream = io.StringIO()
    setup_logging("DEBUG", "plain", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, kept in levels.items():
            logging.getLogger(name).setLevel(kept)
