"""Fixtures for the fuzz suite: the real bot in the test process against the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.clock import ManualClock
from tests.e2e.harness import World
from tests.faults.inprocess import running_world
from tests.faults.traffic import Traffic


@pytest.fixture
async def live(sqlite_url: str, clock: ManualClock) -> AsyncIterator[tuple[World, Traffic]]:
    async with running_world(sqlite_url, clock) as pair:
        yield pair
