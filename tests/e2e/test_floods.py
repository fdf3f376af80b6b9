"""Floods through the real bot and the sandbox: one client sending hundreds of texts is answered
once, not hundreds of times, and never holds up anyone else; crisis words in a flood are heard;
strangers writing in a crowd are told once each, within Telegram's limits, and a crisis alert
still goes first.

The door (`bot.flood`) runs on wall time, and a test must not sleep on it: each test gives the
bot a door on a frozen clock (no refill), so its verdicts do not depend on the machine's speed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from app.clock import ManualClock
from bot.flood import InboundThrottle, Recently
from bot.ratelimit import SendLimiter
from devtools.sandbox import Sandbox
from flows.i18n import t
from storage.models import ProcessedUpdate
from tests.conftest import TEST_KEY
from tests.e2e.harness import World, alerts_as_aliases
from tests.faults.inprocess import until_idle
from tests.faults.seed import Member, add_clients, add_therapist
from tests.faults.traffic import GUARD, Traffic

BURST = 20
FLOOD = 400


class Frozen:
    def __call__(self) -> float:
        return 1000.0


@pytest.fixture
async def world(sqlite_url: str, clock: ManualClock) -> AsyncIterator[tuple[World, Traffic]]:
    sandbox = Sandbox(clock=clock)
    traffic = Traffic(sandbox)
    world = await World.start(sqlite_url, clock, TEST_KEY, sandbox=sandbox)
    try:
        yield world, traffic
    finally:
        await world.stop()


async def with_door(world: World) -> None:
    """The production door and stranger memory, on a clock that does not move."""
    await world.stop_bot()
    world.telegram.door = InboundThrottle(burst=BURST, rate=0.5, clock=Frozen())
    world.telegram.strangers_told = Recently(clock=Frozen())
    await world.start_bot()


async def practice(world: World, clients: int) -> tuple[Member, list[Member]]:
    now = world.clock.now()
    therapist = await add_therapist(world.rt.sessions, world.rt.cipher, world.sandbox, now)
    members = await add_clients(
        world.rt.sessions, world.rt.cipher, world.sandbox, therapist, clients, now
    )
    return therapist, members


async def test_a_flood_from_one_client_is_answered_once_and_holds_up_nobody(
    world: tuple[World, Traffic],
) -> None:
    bot, _ = world
    await with_door(bot)
    therapist, (flooder, other) = await practice(bot, 2)
    for n in range(FLOOD):
        await flooder.user.send(f"message {n}")
    await other.user.send("/help")
    await until_idle(bot)
    await bot.drain(timeout=GUARD)

    flood_notice = t("en", "chat.flood")
    told = [m.get("text", "") for m in flooder.user.inbox]
    assert told.count(flood_notice) == 1
    assert len(told) <= BURST + 1, f"{len(told)} replies to a flood of {FLOOD}"
    help_start = t("en", "help.client").split("{", 1)[0][:40]
    answers = [m.get("text") or "" for m in other.user.inbox]
    assert len(answers) == 1 and answers[0].startswith(help_start), answers
    async with bot.rt.sessions() as s:
        stored = await s.scalar(select(func.count()).select_from(ProcessedUpdate))
    assert stored is not None and stored <= BURST + 1  # the flood never reached the database

    # Crisis words in a flood are always heard: resources now, the therapist alerted.
    await flooder.user.send("I want to kill myself")
    await until_idle(bot)
    await bot.drain(timeout=GUARD)
    crisis = t("en", "crisis.default_resources")[:30]
    assert any(crisis in (m.get("text") or "") for m in flooder.user.inbox)
    assert flooder.alias in alerts_as_aliases(m.get("text") or "" for m in therapist.user.inbox)


async def test_strangers_in_a_crowd_are_told_once_each_within_telegrams_limits(
    world: tuple[World, Traffic],
) -> None:
    bot, traffic = world
    bot.sandbox.faults.rate_limits(per_bot=30, per_chat=1, burst=3)
    await bot.stop_bot()
    bot.telegram.limiter = SendLimiter(30, 1)
    bot.telegram.door = InboundThrottle(burst=BURST, rate=0.5, clock=Frozen())
    bot.telegram.strangers_told = Recently(clock=Frozen())
    await bot.start_bot()
    strangers = [bot.sandbox.user(f"Stranger{i}", language_code="en") for i in range(30)]
    for round_ in range(BURST):
        for stranger in strangers:
            await stranger.send(f"hello {round_}")
    await until_idle(bot)

    polite = t("en", "chat.stranger")
    for stranger in strangers:
        assert [m.get("text") for m in stranger.inbox] == [polite]
    refused = [e for e in traffic.exchanges if e.status == 429]
    assert refused == [], f"{len(refused)} sends refused by Telegram's limits"
