"""Replies that never touch the outbox (to strangers, to groups, refused invite links, the flood
notice, the failure apology) go through the same send limits as everything else, from a queue of
their own: an update is settled once committed, and waiting for a turn to send must not hold the
update's slot while other people's updates wait. Nothing here is stored, so a crash loses at most
these courtesy replies; crisis replies to strangers go to the front.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import timedelta

from telegram import Bot
from telegram.error import Forbidden, RetryAfter, TelegramError

from bot.ratelimit import SendLimiter

log = logging.getLogger(__name__)

QUEUE_LIMIT = 2_000
"""Replies waiting at most; beyond that new ones are dropped (counted, logged by number only)."""


class DirectReplies:
    def __init__(self, bot: Bot, limiter: SendLimiter) -> None:
        self.bot = bot
        self.limiter = limiter
        self._queue: deque[tuple[int, str]] = deque()
        self._urgent: deque[tuple[int, str]] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()
        self.sent = 0
        self.dropped = 0

    def put(self, chat_id: int, text: str, *, urgent: bool = False) -> None:
        if urgent:
            self._urgent.append((chat_id, text))
        elif len(self._queue) >= QUEUE_LIMIT:
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("direct replies: queue full, %d dropped so far", self.dropped)
            return
        else:
            self._queue.append((chat_id, text))
        self._drained.clear()
        self._ready.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="direct-replies")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def waiting(self) -> int:
        return len(self._queue) + len(self._urgent)

    async def idle(self) -> None:
        """Until every queued reply has been sent (tests)."""
        await self._drained.wait()

    async def _run(self) -> None:
        while True:
            if not self.waiting:
                self._drained.set()
                self._ready.clear()
                await self._ready.wait()
                continue
            urgent = bool(self._urgent)
            chat_id, text = (self._urgent if urgent else self._queue).popleft()
            await send(self.bot, self.limiter, chat_id, text, urgent=urgent)
            self.sent += 1


async def send(bot: Bot, limiter: SendLimiter, chat_id: int, text: str, *, urgent: bool) -> None:
    """One reply within the limits; a 429 pauses all sending and the reply waits it out once."""
    for _ in range(2):
        await limiter.acquire(chat_id, urgent=urgent)
        try:
            await bot.send_message(chat_id, text)
            return
        except RetryAfter as exc:
            seconds = exc.retry_after
            limiter.pause(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds)
        except Forbidden:
            return  # a stranger who blocked the bot: nothing to tell
        except TelegramError as exc:
            log.info("direct reply not delivered: %s", type(exc).__name__)
            return
