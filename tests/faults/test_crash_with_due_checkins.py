"""SIGKILL half-way through the heartbeat pass that opens 60 due check-ins: after the restart
each client's check-in is opened once and sent once, whether it was opened before the kill or not.

Telegram answers every send with 502 until the kill, so no message can slip out in the
at-least-once window (that window is measured in `test_crash_mid_send`); what is tested here is
the heartbeat's claim on due check-ins across a crash."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Checkin, Client
from tests.e2e.harness import has_buttons
from tests.faults.seed import add_clients, add_therapist
from tests.faults.sqlite_lock import WriteLock
from tests.faults.stage import Stage

pytestmark = [
    pytest.mark.slow,
    # Quarantined in CI: the kill's moment depends on wall-clock timing and missed its window in
    # one of three clean runs on a loaded machine. It runs locally with `make test`.
    pytest.mark.skipif(os.environ.get("CI") == "true", reason="timing-sensitive; quarantined"),
]

CLIENTS = 60


async def opened_any(s: AsyncSession) -> bool:
    return bool(await s.scalar(select(func.count()).select_from(Checkin)))


async def test_due_checkins_are_sent_exactly_once_across_a_crash(stage: Stage) -> None:
    now = stage.now()
    therapist = await add_therapist(stage.sessions, stage.cipher, stage.sandbox, now)
    clients = await add_clients(
        stage.sessions, stage.cipher, stage.sandbox, therapist, CLIENTS, now, due=now
    )
    stage.sandbox.faults.fail_next("sendMessage", status=502, times=100_000)
    bot = stage.bot()
    lock = WriteLock(stage.db_url)
    try:
        await bot.start()
        await stage.until_db(opened_any, timeout=60, what="the first opened check-in")
        # Freeze the pass where it is (its next write waits for the lock), then kill it there.
        await lock.acquire()
        opened_at_kill = lock.count("checkin")
        await bot.kill()
        lock.release()
    finally:
        lock.close()
    assert 0 < opened_at_kill < CLIENTS, "the kill came half-way through the pass"

    stage.sandbox.faults.clear()
    stage.outage_past_lease()
    await bot.start()
    await stage.sandbox.wait_until(
        lambda: all(len(c.user.inbox) >= 2 for c in clients),
        timeout=60,
        what="every check-in delivered",
    )
    await stage.until_outbox_settled()

    for client in clients:
        inbox = client.user.inbox
        assert [has_buttons(m) for m in inbox] == [False, True], "intro and question, once each"
    async with stage.sessions() as s:
        per_client = (
            await s.execute(select(Checkin.client_id, func.count()).group_by(Checkin.client_id))
        ).all()
        assert sorted(per_client) == sorted((c.id, 1) for c in clients)
        assert await s.scalar(select(func.count()).where(Client.next_checkin_at <= now)) == 0
    print(f"\nopened before the kill: {opened_at_kill} of {CLIENTS}")
    assert bot.error_lines() == [], bot.log_tail()
