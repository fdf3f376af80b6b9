from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from app.clock import ManualClock
from tests.conftest import TEST_KEY
from tests.e2e.harness import World


@pytest.fixture
async def world(sqlite_url: str, clock: ManualClock) -> AsyncIterator[World]:
    async with started(sqlite_url, clock) as w:
        yield w


@pytest.fixture
async def pg_world(postgres_url: str, clock: ManualClock) -> AsyncIterator[World]:
    """The world on PostgreSQL (skipped without `RAPPORT_TEST_POSTGRES_URL`)."""
    async with started(postgres_url, clock) as w:
        yield w


@pytest.fixture
async def any_world(db_url: str, clock: ManualClock) -> AsyncIterator[World]:
    """The world on each backend in turn, as the storage suite runs."""
    async with started(db_url, clock) as w:
        yield w


@contextlib.asynccontextmanager
async def started(url: str, clock: ManualClock) -> AsyncIterator[World]:
    w = await World.start(url, clock, TEST_KEY)
    try:
        yield w
    finally:
        await w.stop()
