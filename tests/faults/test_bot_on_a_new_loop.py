"""The bot started again in the same process, on a new event loop (as tests and the demo do),
serves the same Telegram users as before: nothing it keeps between updates may belong to the
previous loop. Two copies of each update make the user's lock contended, where it would show."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from app import heartbeat
from app.clock import ManualClock
from tests.conftest import START, TEST_KEY
from tests.e2e.harness import next_with_buttons
from tests.faults.answers import Ledger, answer
from tests.faults.inprocess import settle, start_world, until_idle
from tests.faults.seed import add_clients, add_therapist
from tests.faults.traffic import GUARD


async def one_life(url: str, day: int) -> None:
    clock = ManualClock(START + timedelta(days=day))
    world, _ = await start_world(url, clock, TEST_KEY)
    try:
        now = clock.now()
        therapist = await add_therapist(world.rt.sessions, world.rt.cipher, world.sandbox, now)
        (alice,) = await add_clients(
            world.rt.sessions, world.rt.cipher, world.sandbox, therapist, 1, now, due=now
        )
        world.sandbox.faults.duplicate_updates(True)
        await heartbeat.run_pass(world.rt)
        question = await next_with_buttons(alice.user, timeout=GUARD)
        ledger = Ledger()
        question = await answer(alice.user, question, "7", ledger)
        await answer(alice.user, question, "4", ledger)
        await until_idle(world)  # the second copy of each update handled too
        await settle(world)
        await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
    finally:
        await world.stop()


def test_the_bot_on_a_new_event_loop_serves_the_same_users(
    sqlite_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for day in range(2):  # each life gets a fresh database; the sandbox reuses the user ids
        path = tmp_path / f"life{day}.db"
        shutil.copy(sqlite_template, path)
        asyncio.run(one_life(f"sqlite+aiosqlite:///{path}", day))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
