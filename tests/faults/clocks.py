"""A time-lapse clock shared by the sandbox and the bot processes of one test.

A bot process reads `RAPPORT_CLOCK` once at start, so each process is given the sandbox's current
instant (`spec()`); both then run at the same speed and agree. `jump` models an outage: the bot
comes back later than it went down, e.g. after the outbox lease of a killed sender has run out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.clock import TimelapseClock


class OutageClock:
    """A `TimelapseClock` that can also leap forward; satisfies `app.clock.Clock`."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        self._base = TimelapseClock(start, speed)
        self._offset = timedelta(0)

    @property
    def speed(self) -> float:
        return self._base.speed

    def now(self) -> datetime:
        return self._base.now() + self._offset

    def jump(self, delta: timedelta) -> None:
        self._offset += delta

    def spec(self) -> str:
        """`RAPPORT_CLOCK` for a process started now: the same instant, the same speed."""
        return f"timelapse:{self.now().isoformat()}x{self.speed:g}"
