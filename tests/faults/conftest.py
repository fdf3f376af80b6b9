"""Fixtures for the fault suite: a stage (sandbox, database, clock) for bot processes, and the
bot in the test process with a request observer for faults that need no crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from app.clock import ManualClock
from tests.conftest import TEST_KEY
from tests.e2e.harness import World
from tests.faults.inprocess import running_world
from tests.faults.pg_cluster import Cluster
from tests.faults.stage import Stage
from tests.faults.traffic import Traffic


@asynccontextmanager
async def opened_stage(
    db_url: str, tmp_path: Path, *, webhook_parallel: bool = False
) -> AsyncIterator[Stage]:
    box = Stage(db_url, TEST_KEY, tmp_path, speed=1.0, webhook_parallel=webhook_parallel)
    await box.open()
    try:
        yield box
    finally:
        await box.close()


@pytest.fixture
async def stage(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Stage]:
    """A SQLite file, a sandbox on 127.0.0.1 and a real-time clock shared with the bot."""
    async with opened_stage(sqlite_url, tmp_path) as box:
        yield box


@pytest.fixture
async def pg_stage(postgres_url: str, tmp_path: Path) -> AsyncIterator[Stage]:
    """The same on a throw-away PostgreSQL database (skipped without one)."""
    async with opened_stage(postgres_url, tmp_path) as box:
        yield box


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_stage(request: pytest.FixtureRequest) -> Stage:
    """The stage on each backend in turn."""
    value: Stage = request.getfixturevalue("stage" if request.param == "sqlite" else "pg_stage")
    return value


@pytest.fixture
async def live(sqlite_url: str, clock: ManualClock) -> AsyncIterator[tuple[World, Traffic]]:
    """The bot in this process on SQLite, with the request observer."""
    async with running_world(sqlite_url, clock) as pair:
        yield pair


@pytest.fixture
async def live_pg(postgres_url: str, clock: ManualClock) -> AsyncIterator[tuple[World, Traffic]]:
    """The same on PostgreSQL (skipped without one)."""
    async with running_world(postgres_url, clock) as pair:
        yield pair


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live_any(request: pytest.FixtureRequest) -> tuple[World, Traffic]:
    """The in-process bot on each backend in turn."""
    fixture = "live" if request.param == "sqlite" else "live_pg"
    value: tuple[World, Traffic] = request.getfixturevalue(fixture)
    return value


@pytest.fixture
async def restartable_pg() -> AsyncIterator[Cluster]:
    """A PostgreSQL server of the test's own, to stop and start (skips without the binaries)."""
    cluster = Cluster()
    await cluster.create()
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.remove()
