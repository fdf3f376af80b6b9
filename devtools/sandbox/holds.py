"""Held requests: Telegram has received a call whole but answers it only when the test says so.

A hold parks matching Bot API requests once their body has been read, before latency, injected
failures, flood control or the method itself, until the test releases them. A test can then act
at an exact point instead of racing a time window: kill the bot while its message is on the wire,
or read what the database holds while the next request waits.

A parked request is processed when released even if its sender has gone meanwhile (a killed
process, a client-side timeout): Telegram processes a request it received whole, and the sender
never learns the outcome. That is the at-least-once window every sender has to live with.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Hold:
    """Parks the next `times` matching requests (None: every one until `lift`)."""

    def __init__(
        self,
        method: str | None,
        chat_id: int | None,
        times: int | None,
        on_change: Callable[[], None],
    ) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        self.method = method.lower() if method else None
        self.chat_id = chat_id
        self._remaining = times
        self._on_change = on_change
        self._parked: deque[asyncio.Event] = deque()
        self.caught = 0  # requests parked by this hold so far, released or not
        self.lifted = False

    @property
    def parked(self) -> int:
        """Requests waiting now."""
        return len(self._parked)

    @property
    def released(self) -> int:
        return self.caught - self.parked

    @property
    def active(self) -> bool:
        """Still catching new requests."""
        return not self.lifted and (self._remaining is None or self._remaining > 0)

    def matches(self, method: str, chat_id: int | str | None) -> bool:
        if not self.active:
            return False
        if self.method is not None and self.method != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def catch(self) -> asyncio.Event:
        """Park one request: the server awaits the returned event before going on."""
        ticket = asyncio.Event()
        self._parked.append(ticket)
        self.caught += 1
        if self._remaining is not None:
            self._remaining -= 1
        self._on_change()
        return ticket

    def release(self, count: int | None = None) -> int:
        """Let the oldest `count` parked requests (all if None) be processed; returns how many.

        The hold keeps catching later requests until its `times` are used up or it is lifted.
        """
        freed = 0
        while self._parked and (count is None or freed < count):
            self._parked.popleft().set()
            freed += 1
        if freed:
            self._on_change()
        return freed

    def lift(self) -> None:
        """Release everything parked and catch nothing more."""
        self.lifted = True
        self.release()

    def __repr__(self) -> str:
        what = self.method or "any method"
        return f"Hold({what}, parked={self.parked}, caught={self.caught}, active={self.active})"
