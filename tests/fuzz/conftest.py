"""Fixtures for the fuzz suite: the real bot in the test process against the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.clock import ManualClock
from tests.conftest import TEST_KEY
from tests.e2e.harness import World
from tests.faults.inprocess import start_world
from tests.faults.traffic import Traffic


@pytest.fixture
async def live(sqlite_url: str, clock: ManualClock) -> AsyncIterator[tuple[World, Traffic]]:
    world, traffic = await start_world(sqlite_url, clock, TEST_KEY)
    try:
        yield world, traffic
    finally:
        await world.stop()
