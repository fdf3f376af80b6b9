from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.clock import ManualClock
from tests.conftest import TEST_KEY
from tests.e2e.harness import World


@pytest.fixture
async def world(sqlite_url: str, clock: ManualClock) -> AsyncIterator[World]:
    w = await World.start(sqlite_url, clock, TEST_KEY)
    try:
        yield w
    finally:
        await w.stop()
