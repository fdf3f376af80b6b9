"""The demo's clock: a time-lapse that a simulated person can hold still while they tap.

At tens of thousands of simulated seconds per wall second, the few milliseconds the bot needs to
answer a tap would read as half an hour, and a check-in answered in five taps would seem to take
an afternoon. Holding the clock while a person is mid-conversation keeps those exchanges at the
seconds they take in life; between them time runs at full speed. Everything else reads it like
any `bot.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


class HeldTimelapse:
    """Starts at `start` and runs `speed` times faster than wall time, except while held."""

    def __init__(
        self,
        start: datetime,
        speed: float,
        *,
        held: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("the time-lapse start needs a UTC offset")
        if speed <= 0:
            raise ValueError("the time-lapse speed must be positive")
        self._speed = float(speed)
        self._monotonic = monotonic
        self._anchor_sim = start.astimezone(UTC)
        self._anchor_wall = monotonic()
        self._holds = 1 if held else 0
        self.held_wall = 0.0  # wall seconds spent held, for the summary
        self._held_since = self._anchor_wall if held else 0.0

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def is_held(self) -> bool:
        return self._holds > 0

    def now(self) -> datetime:
        if self._holds:
            return self._anchor_sim
        elapsed = self._monotonic() - self._anchor_wall
        return self._anchor_sim + timedelta(seconds=elapsed * self._speed)

    def acquire(self) -> None:
        """Stop time (nested holds are counted)."""
        if self._holds == 0:
            self._anchor_sim = self.now()
            self._held_since = self._monotonic()
        self._holds += 1

    def release(self) -> None:
        """Let time run again once the last hold is released."""
        if self._holds == 0:
            raise RuntimeError("the clock is not held")
        self._holds -= 1
        if self._holds == 0:
            self._anchor_wall = self._monotonic()
            self.held_wall += self._anchor_wall - self._held_since

    @contextmanager
    def hold(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def advance(self, delta: timedelta) -> None:
        """Move simulated time forward by `delta` (a person's few seconds of thought)."""
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        self._anchor_sim += delta

    def wall_seconds(self, delta: timedelta) -> float:
        return max(0.0, delta.total_seconds() / self._speed)

    async def sleep_until(self, instant: datetime, *, step: float = 0.25) -> None:
        """Wait (in wall time) until simulated time reaches `instant`, holds included."""
        while (remaining := instant - self.now()) > timedelta(0):
            await asyncio.sleep(min(step, max(0.005, self.wall_seconds(remaining))))
