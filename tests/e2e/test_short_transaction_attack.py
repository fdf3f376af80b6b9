"""Short transactions (`storage.db.short_transaction`) end to end: another program holds SQLite's
write lock while a client taps answers. The tap waits for the lock off the event loop (the bot
keeps turning), nothing is lost, nothing is stored twice, and the next tap runs on the loop."""

from __future__ import annotations

import asyncio

from tests.e2e.harness import (
    World,
    button_data,
    data_for,
    following,
    join_client,
    open_checkin_now,
    stored,
)
from tests.faults.sqlite_lock import WriteLock

HELD = 0.5
"""Seconds the other program keeps its lock while the tap waits for it."""


def a_value(question: dict[str, object]) -> str:
    return str(button_data(question)[0]).rsplit(":", 1)[-1]


async def test_a_tap_waits_for_another_programs_lock_off_the_event_loop(
    world: World, sqlite_url: str
) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    question = await open_checkin_now(world, alice)
    await world.drain()
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - last)
            last = loop.time()

    lock = WriteLock(sqlite_url)
    await lock.acquire()
    ticks = asyncio.create_task(ticker())
    try:
        first = a_value(question)
        await alice.user.tap(question, data_for(question, first))
        await asyncio.sleep(HELD)  # the tap's transaction waits for the lock meanwhile
        assert lock.count("answer") == 0, "nothing written under another program's lock"
    finally:
        lock.release()
        lock.close()
    try:
        second_question = await following(alice.user, question)
    finally:
        done.set()
        await ticks
    assert max(gaps) < HELD / 2, "the event loop stood still while the tap waited"
    second = a_value(second_question)
    await alice.user.tap(second_question, data_for(second_question, second))
    await following(alice.user, second_question)
    await world.drain()
    answers = (await stored(world, alice.id)).answers
    assert len(answers) == 2, answers  # both taps, each once
