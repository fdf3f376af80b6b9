"""Telegram's sending limits, enforced on our side: ≈30 messages/s per bot and ≈1/s per chat.

PTB's AIORateLimiter covers only the first, so the outbox sender and the direct replies use these.
The buckets are aiolimiter's `AsyncLimiter`; this module is the policy around them: one limiter
for the bot, one per chat (dropped once idle), urgent messages ahead of those waiting, and the
pause a 429 sets for all sending. They run on the event loop's clock (monotonic wall time), never
on the simulated clock: they model real throughput.

The per-bot limiter aims a little under the configured rate and saves up only a short burst:
Telegram counts messages as they arrive, and jitter on the way bunches messages that left paced
at exactly the limit, so pacing at the limit (or bursting a whole second's worth after a pause)
draws 429s, each pausing all sending for at least a second.
"""

from __future__ import annotations

import asyncio

from aiolimiter import AsyncLimiter

BOT_RATE_SHARE = 0.98
"""The share of the configured per-bot rate actually used: room for jitter."""
BOT_BURST_SECONDS = 0.2
"""Sending saved up while idle, in seconds of the per-bot rate (at least one message)."""
CHAT_BURST = 3.0
"""Messages one chat may get at once before its rate applies."""
SWEEP_AT = 1_000
"""Chats whose limiters are kept before idle ones are dropped (then again at twice as many as
are left busy, so each new chat costs constant time)."""


def _now() -> float:
    return asyncio.get_running_loop().time()


class _Limit:
    """One rate (`AsyncLimiter`), where urgent turns go ahead of normal ones.

    The limiter serves its waiters in the order they came; normal turns queue here, one at a time
    in the limiter, so an urgent turn finds at most one normal turn ahead of it.
    """

    def __init__(self, rate: float, burst: float) -> None:
        burst = max(burst, 1.0)
        self._limiter = AsyncLimiter(burst, burst / rate)
        self._normal = asyncio.Lock()
        self._busy = 0

    async def acquire(self, *, urgent: bool) -> None:
        self._busy += 1
        try:
            if urgent:
                await self._limiter.acquire()
            else:
                async with self._normal:
                    await self._limiter.acquire()
        finally:
            self._busy -= 1

    @property
    def idle(self) -> bool:
        """Nobody waiting and the bucket drained: no different from a new one."""
        return self._busy == 0 and self._limiter.has_capacity(self._limiter.max_rate)


class SendLimiter:
    """The per-bot limit, one limit per chat, and a global pause that a 429 sets: Telegram's
    `retry_after` applies to the whole bot, not one chat. A rate of 0 is no limit."""

    def __init__(self, per_bot: float, per_chat: float, chat_burst: float = CHAT_BURST) -> None:
        self._bot = (
            _Limit(per_bot * BOT_RATE_SHARE, per_bot * BOT_BURST_SECONDS) if per_bot > 0 else None
        )
        self._per_chat = per_chat
        self._chat_burst = chat_burst
        self._chats: dict[int, _Limit] = {}
        self._sweep_at = SWEEP_AT
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, _now() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - _now())

    @property
    def chats(self) -> int:
        """Chats whose limiters are kept."""
        return len(self._chats)

    def _chat(self, chat_id: int) -> _Limit | None:
        if self._per_chat <= 0:
            return None
        limit = self._chats.get(chat_id)
        if limit is None:
            if len(self._chats) >= self._sweep_at:
                self._chats = {chat: kept for chat, kept in self._chats.items() if not kept.idle}
                self._sweep_at = max(SWEEP_AT, 2 * len(self._chats))
            limit = self._chats[chat_id] = _Limit(self._per_chat, self._chat_burst)
        return limit

    async def wait_unpaused(self) -> None:
        """Until no 429 pause is in force."""
        # A pause is a deadline that a later 429 may push back, hence the re-check.
        while (wait := self.paused_for) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    async def acquire(self, chat_id: int, *, urgent: bool = False) -> None:
        """Wait for a turn to send to `chat_id`; an urgent message goes ahead of the messages
        waiting for one, within the same rates."""
        await self.wait_unpaused()
        for limit in (self._chat(chat_id), self._bot):
            if limit is not None:
                await limit.acquire(urgent=urgent)
        await self.wait_unpaused()
