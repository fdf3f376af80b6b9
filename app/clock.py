"""Injected clocks: every part of Rapport reads time from one of these, never from `datetime.now`.

`RAPPORT_CLOCK` picks one: unset is the system clock; `timelapse:<ISO start>x<speed>` starts at that
instant and runs `speed` times faster than wall time, so a demo or an end-to-end test lives through
weeks in a minute while the code behaves exactly as it would in real time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    @property
    def speed(self) -> float:
        """How many simulated seconds pass per wall second (1 for real time)."""
        ...


class SystemClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)


class TimelapseClock:
    """Starts at `start` and runs `speed` times faster than the monotonic wall clock."""

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("the time-lapse start needs a UTC offset")
        if speed <= 0:
            raise ValueError("the time-lapse speed must be positive")
        self._start = start.astimezone(UTC)
        self._speed = float(speed)
        self._t0 = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)


class ManualClock:
    """A clock that moves only when told to: for unit and end-to-end tests."""

    speed = 1.0

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the manual clock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant.astimezone(UTC)


def parse_clock(spec: str | None) -> Clock:
    """Build a clock from a `RAPPORT_CLOCK` value; raises ValueError with a readable reason."""
    if spec is None or spec.strip() in ("", "system"):
        return SystemClock()
    spec = spec.strip()
    if not spec.startswith("timelapse:"):
        raise ValueError("expected 'system' or 'timelapse:<ISO start>x<speed>'")
    body = spec[len("timelapse:") :]
    start_text, sep, speed_text = body.rpartition("x")
    if not sep:
        raise ValueError("expected 'timelapse:<ISO start>x<speed>'")
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError as exc:
        raise ValueError(f"bad time-lapse start {start_text!r}") from exc
    try:
        speed = float(speed_text)
    except ValueError as exc:
        raise ValueError(f"bad time-lapse speed {speed_text!r}") from exc
    return TimelapseClock(start, speed)
