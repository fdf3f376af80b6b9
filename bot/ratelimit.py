"""Telegram's sending limits, enforced on our side: ≈30 messages/s per bot and ≈1/s per chat.

PTB's AIORateLimiter covers only the first, so the outbox sender uses these token buckets. They run
on wall time (the monotonic clock), never on the simulated clock: they model real throughput.

The per-bot bucket aims a little under the configured rate and saves up only a short burst:
Telegram counts messages as they arrive, and jitter on the way bunches messages that left paced
at exactly the limit, so pacing at the limit (or bursting a whole second's worth after a pause)
draws 429s, each pausing all sending for at least a second.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

BOT_RATE_SHARE = 0.98
"""The share of the configured per-bot rate actually used: room for jitter."""
BOT_BURST_SECONDS = 0.2
"""Sending saved up while idle, in seconds of the per-bot rate (at least one message)."""


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; rate 0 means unlimited."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            self._refill()
            # A loop, not one sleep: `reserve` may take tokens while this waits.
            while self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1

    def reserve(self) -> float:
        """Take a token at once, ahead of every waiter (for urgent messages); seconds to wait
        before using it. Taken in advance, it delays the waiters instead: the rate holds."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        self._tokens -= 1
        return max(0.0, -self._tokens / self.rate)


class SendLimiter:
    """The per-bot bucket, one bucket per chat (kept for recently active chats only), and a global
    pause that a 429 sets: Telegram's `retry_after` applies to the whole bot, not one chat."""

    def __init__(self, per_bot: float, per_chat: float, chat_burst: float = 3.0) -> None:
        self._bot = TokenBucket(per_bot * BOT_RATE_SHARE, burst=per_bot * BOT_BURST_SECONDS)
        self._per_chat = per_chat
        self._chat_burst = chat_burst
        self._chats: OrderedDict[int, TokenBucket] = OrderedDict()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def _chat(self, chat_id: int) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            bucket = TokenBucket(self._per_chat, burst=self._chat_burst)
            self._chats[chat_id] = bucket
            if len(self._chats) > 10_000:
                self._chats.popitem(last=False)
        else:
            self._chats.move_to_end(chat_id)
        return bucket

    async def wait_unpaused(self) -> None:
        """Until no 429 pause is in force."""
        # A pause is a deadline that a later 429 may push back, hence the re-check.
        while (wait := self.paused_for) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    async def acquire(self, chat_id: int, *, urgent: bool = False) -> None:
        """Wait for a turn to send to `chat_id`; an urgent message goes ahead of every message
        waiting for one, within the same rates."""
        await self.wait_unpaused()
        if urgent:
            await asyncio.sleep(max(self._chat(chat_id).reserve(), self._bot.reserve()))
        else:
            await self._chat(chat_id).acquire()
            await self._bot.acquire()
        await self.wait_unpaused()
