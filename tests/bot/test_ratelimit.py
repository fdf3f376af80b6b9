"""The send limits: per bot, per chat, urgent turns first, the 429 pause, idle chats forgotten.

The limits run on the event loop's clock; these tests run on a fake one (looptime), so seconds
of sending take no wall time and the figures are exact.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.ratelimit import BOT_BURST_SECONDS, BOT_RATE_SHARE, CHAT_BURST, SWEEP_AT, SendLimiter

pytestmark = pytest.mark.looptime


def now() -> float:
    return asyncio.get_running_loop().time()


async def sends(limiter: SendLimiter, chats: list[int], *, urgent: bool = False) -> float:
    """Seconds taken to get a turn for each chat in order."""
    start = now()
    for chat in chats:
        await limiter.acquire(chat, urgent=urgent)
    return now() - start


async def test_the_bot_rate_spans_chats_after_a_short_burst() -> None:
    limiter = SendLimiter(30, 0)
    burst = 30 * BOT_BURST_SECONDS
    took = await sends(limiter, list(range(60)))
    assert took == pytest.approx((60 - burst) / (30 * BOT_RATE_SHARE), abs=0.01)


async def test_one_chat_gets_a_burst_then_one_a_second_and_others_do_not_wait() -> None:
    limiter = SendLimiter(0, 1)
    assert await sends(limiter, [7] * int(CHAT_BURST)) == 0
    assert await sends(limiter, [8, 9, 10]) == 0
    assert await sends(limiter, [7, 7]) == pytest.approx(2.0, abs=0.01)


async def test_a_rate_of_zero_is_no_limit() -> None:
    assert await sends(SendLimiter(0, 0), [1] * 500) == 0


async def test_a_pause_stops_every_chat_and_urgent_messages_too() -> None:
    limiter = SendLimiter(30, 1)
    limiter.pause(5)
    assert limiter.paused_for == pytest.approx(5)
    assert await sends(limiter, [1]) == pytest.approx(5, abs=0.01)
    limiter.pause(3)
    limiter.pause(1)  # a shorter pause never shortens one in force
    assert await sends(limiter, [2], urgent=True) == pytest.approx(3, abs=0.01)


async def test_a_pause_set_while_waiting_for_a_turn_is_waited_out() -> None:
    limiter = SendLimiter(0, 1)
    await sends(limiter, [1] * int(CHAT_BURST))
    waiting = asyncio.create_task(sends(limiter, [1]))  # its turn is due in a second
    await asyncio.sleep(0.5)
    limiter.pause(10)  # a 429 for somebody else's message
    assert await waiting == pytest.approx(10.5, abs=0.01)


async def test_an_urgent_turn_goes_ahead_of_the_waiting_ones() -> None:
    limiter = SendLimiter(30, 0)
    done: list[str] = []

    async def send(name: str, chat: int, urgent: bool) -> None:
        await limiter.acquire(chat, urgent=urgent)
        done.append(name)

    normal = [asyncio.create_task(send(f"n{i}", i, False)) for i in range(40)]
    await asyncio.sleep(0.1)  # the burst is spent; 37 or so are waiting
    requested = now()
    await send("urgent", 1000, True)
    # At most one normal turn was already in the limiter ahead of it.
    assert now() - requested <= 2 / (30 * BOT_RATE_SHARE) + 0.001
    assert done.index("urgent") <= len([d for d in done if d != "urgent"])
    assert len(done) < 15
    await asyncio.gather(*normal)
    assert len(done) == 41


async def test_idle_chats_are_forgotten_and_busy_ones_kept() -> None:
    limiter = SendLimiter(0, 1)
    for first in range(0, 10 * SWEEP_AT, 500):
        await sends(limiter, list(range(first, first + 500)))
        await asyncio.sleep(CHAT_BURST)  # long enough for their buckets to drain
    assert limiter.chats <= 2 * SWEEP_AT  # of 10,000 chats
    # Only an idle chat is forgotten: one that has used its burst keeps its rate across sweeps.
    await sends(limiter, [1] * int(CHAT_BURST))
    await sends(limiter, list(range(20_000, 20_000 + 4 * SWEEP_AT)))
    assert await sends(limiter, [1]) == pytest.approx(1.0, abs=0.01)
