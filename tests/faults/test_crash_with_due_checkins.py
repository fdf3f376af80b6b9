"""SIGKILL while the heartbeat opens due check-ins: after the restart each client's check-in is
opened once and asked once, whether it was opened before the kill or not.

Thirty clients are due when the bot starts and the pass opens their check-ins; thirty more fall
due once that is committed. The kill is placed by a lock, not by the clock:

* PostgreSQL: another session holds `LOCK TABLE checkin IN SHARE MODE`. The next pass claims the
  first of the thirty and then waits, half-way through its transaction, to write the check-in;
  the test sees that session waiting (and already written to) and kills the bot there. The claim
  dies with the process: once the orphaned server session has ended, all thirty are still due.
* SQLite takes its one write lock at the start of every transaction, so a pass can only be stopped
  between two of them: another program holds that lock, the thirty fall due in its transaction,
  and the bot is killed while its writers queue for the lock.

Nothing is delivered while the first process lives: the sandbox holds every send. The sends it
had on the wire at the kill are then processed all the same (Telegram received them whole), and
the new process sends every message once more after the dead sender's lease: the at-least-once
window, measured and recorded as `at_least_once_duplicates` (the intros on the wire at the kill,
at most one per client opened before it). What the test proves beyond it: the new process sends
each message exactly once, and no check-in is opened twice or skipped.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import is_sqlite
from storage.models import Checkin, Client
from tests.e2e.harness import has_buttons
from tests.faults.bot_process import BotProcess
from tests.faults.pg_lock import TableLock
from tests.faults.seed import Member, add_clients, add_therapist, make_due
from tests.faults.sqlite_lock import WriteLock
from tests.faults.stage import Stage
from tests.faults.traffic import GUARD, delivered, duplicates

pytestmark = pytest.mark.slow

FIRST = 30  # due at the start, opened by the first pass
LATER = 30  # fall due while the pass is held


async def checkins(s: AsyncSession) -> int:
    return int(await s.scalar(select(func.count()).select_from(Checkin)) or 0)


async def still_due(stage: Stage, members: list[Member]) -> int:
    async with stage.sessions() as s:
        found = await s.scalar(
            select(func.count()).where(
                Client.id.in_([m.id for m in members]), Client.next_checkin_at <= stage.now()
            )
        )
    return int(found or 0)


async def kill_mid_transaction_on_postgres(
    stage: Stage, bot: BotProcess, later: list[Member]
) -> None:
    lock = TableLock(stage.db_url, "checkin")
    waiting: list[tuple[int, bool]] = []
    try:
        await lock.acquire()
        # The bot's clock trails the stage's by its start-up time: due a little in the past.
        await make_due(stage.sessions, [m.id for m in later], stage.now() - timedelta(minutes=5))

        async def pass_frozen(_s: AsyncSession) -> bool:
            waiting[:] = await lock.waiting()
            return bool(waiting)

        await stage.until_db(pass_frozen, what="the next pass waiting to write a check-in")
        assert all(wrote for _, wrote in waiting), "frozen half-way, after claiming its client"
        await bot.kill()
    finally:
        await lock.release()

    async def orphans_gone(_s: AsyncSession) -> bool:
        return not any([await lock.session_alive(pid) for pid, _ in waiting])

    try:  # the server notices the dead client and rolls its transaction back
        await stage.until_db(orphans_gone, what="the dead process's server sessions ended")
    finally:
        await lock.close()


async def kill_behind_the_lock_on_sqlite(
    stage: Stage, bot: BotProcess, later: list[Member]
) -> None:
    lock = WriteLock(stage.db_url)
    try:
        await lock.acquire()
        ids = ", ".join(str(m.id) for m in later)
        # Due since they joined; the bot's writers now wait for the lock, its readers too.
        lock.execute(f"UPDATE client SET next_checkin_at = joined_at WHERE id IN ({ids})")
        await bot.kill()
        lock.release()
    finally:
        lock.close()


async def test_due_checkins_are_opened_and_asked_once_across_a_crash(
    any_stage: Stage, record_property: Any
) -> None:
    stage = any_stage
    now = stage.now()
    therapist = await add_therapist(stage.sessions, stage.cipher, stage.sandbox, now)
    first = await add_clients(
        stage.sessions, stage.cipher, stage.sandbox, therapist, FIRST, now, due=now, prefix="F"
    )
    later = await add_clients(
        stage.sessions, stage.cipher, stage.sandbox, therapist, LATER, now, due=None, prefix="L"
    )
    everyone = first + later
    hold = stage.sandbox.faults.hold("sendMessage", times=None)
    bot = stage.bot()
    await bot.start()

    async def first_opened(s: AsyncSession) -> bool:
        return await checkins(s) == FIRST

    await stage.until_db(first_opened, what="the first pass's check-ins")
    if is_sqlite(stage.db_url):
        await kill_behind_the_lock_on_sqlite(stage, bot, later)
    else:
        await kill_mid_transaction_on_postgres(stage, bot, later)
    async with stage.sessions() as s:
        assert await checkins(s) == FIRST, "only what was committed before the kill"
    assert await still_due(stage, later) == LATER, "the claim in flight died with the process"

    hold.lift()  # what the dead sender had on the wire is processed all the same
    await stage.sandbox.wait_until(
        lambda: stage.traffic.in_flight("sendMessage") == 0,
        timeout=GUARD,
        what="the dead sender's requests answered",
    )
    before_restart = delivered(stage.sandbox)
    chats = [chat for chat, _ in before_restart]
    assert set(chats) <= {m.user.chat_id for m in first}, "sent only for check-ins opened"
    assert len(chats) == len(set(chats)), "only each chat's head, the intro, was sent"
    stage.outage_past_lease()
    await bot.start()
    await stage.sandbox.wait_until(  # a chat's question goes out only after its intro
        lambda: all(any(has_buttons(m) for m in c.user.inbox) for c in everyone),
        timeout=GUARD,
        what="every check-in asked",
    )
    await stage.until_outbox_settled()

    after_restart = delivered(stage.sandbox) - before_restart
    assert len(after_restart) == 2 * len(everyone), "an intro and a question per client"
    assert set(after_restart.values()) == {1}, "the new process sent each message once"
    for member in everyone:
        asked = [m for m in member.user.inbox if has_buttons(m)]
        assert len(asked) == 1, f"{member.alias} asked once"
    surplus = duplicates(delivered(stage.sandbox))
    assert surplus == sum(before_restart.values()), "the surplus is what the dead process sent"
    record_property("at_least_once_duplicates", surplus)
    print(f"\nat-least-once duplicates: {surplus} (sends on the wire at the kill)")

    async with stage.sessions() as s:
        per_client = Counter(dict((await s.execute(
            select(Checkin.client_id, func.count()).group_by(Checkin.client_id)
        )).tuples().all()))  # fmt: skip
    assert per_client == Counter({m.id: 1 for m in everyone}), "each check-in opened once"
    assert await still_due(stage, everyone) == 0
    assert bot.error_lines() == [], bot.log_tail()
