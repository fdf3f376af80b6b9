"""The demo's clock: a time-lapse that stops at the moments that matter.

At tens of thousands of simulated seconds per wall second, the few milliseconds the bot needs to
answer a tap would read as half an hour, and a heartbeat tick would let a check-in due at 18:00
go out at 19:10. So the clock can be held (time stands still while a person taps through a
check-in, apart from the seconds they spend thinking), and it can be given alarms: it never runs
past the earliest one, but stops there, held, until whoever set it has done what was due. Between
those moments it runs at `speed`, which the demo may change on the way to finish on time.
Everything else reads it like any `app.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


class Alarm:
    """A moment the clock will stop at; `wait` returns once it has, `dismiss` lets time go on."""

    def __init__(self, clock: HeldTimelapse, at: datetime, order: int) -> None:
        self.clock = clock
        self.at = at
        self.order = order
        self.reached = asyncio.Event()
        self.holding = False

    def __lt__(self, other: Alarm) -> bool:
        return (self.at, self.order) < (other.at, other.order)

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait (wall time) until the clock stops here; False if `timeout` passes first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self.reached.is_set():
            self.clock.now()  # reading the clock is what stops it at an alarm
            if self.reached.is_set():
                break
            held = self.clock.is_held
            step = 0.02 if held else self.clock.wall_seconds(self.at - self.clock.now())
            if deadline is not None:
                step = min(step, deadline - loop.time())
                if step <= 0:
                    return False
            try:
                await asyncio.wait_for(self.reached.wait(), timeout=max(0.001, step))
            except TimeoutError:
                continue
        return True

    def dismiss(self) -> None:
        self.clock.dismiss(self)


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
        self._check_speed(speed)
        self._speed = float(speed)
        self._monotonic = monotonic
        self._anchor_sim = start.astimezone(UTC)
        self._anchor_wall = monotonic()
        self._holds = 1 if held else 0
        self._held_since = self._anchor_wall
        self.held_wall = 0.0  # wall seconds spent held, for pacing and the summary
        self.stops = 0  # how many times time has stood still
        self._alarms: list[Alarm] = []
        self._order = itertools.count()
        self._watchers: list[Callable[[bool], None]] = []

    @staticmethod
    def _check_speed(speed: float) -> None:
        if speed <= 0:
            raise ValueError("the time-lapse speed must be positive")

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def is_held(self) -> bool:
        return self._holds > 0

    def now(self) -> datetime:
        if self._holds:
            return self._anchor_sim
        running = self._anchor_sim + timedelta(
            seconds=(self._monotonic() - self._anchor_wall) * self._speed
        )
        if self._alarms and running >= self._alarms[0].at:
            alarm = self._alarms[0]
            self._stop_at(max(alarm.at, self._anchor_sim))
            for due in itertools.takewhile(lambda a: a.at <= alarm.at, list(self._alarms)):
                self._ring(due)
            return self._anchor_sim
        return running

    def set_speed(self, speed: float) -> None:
        """Run at `speed` from now on (simulated time carries on from where it is)."""
        self._check_speed(speed)
        if not self._holds:
            self._anchor_sim = self.now()
            self._anchor_wall = self._monotonic()
        self._speed = float(speed)

    # --- holding ------------------------------------------------------------------------------

    def watch(self, callback: Callable[[bool], None]) -> None:
        """Call `callback(held)` whenever time stops or starts again."""
        self._watchers.append(callback)

    def acquire(self) -> None:
        """Stop time (nested holds are counted)."""
        if self._holds == 0:
            self._stop_at(self.now())
            if self._holds:  # reading the clock rang an alarm, which holds it already
                self._holds += 1
                return
            self._holds = 1
            self._stopped()
        else:
            self._holds += 1

    def release(self) -> None:
        """Let time run again once the last hold is released."""
        if self._holds == 0:
            raise RuntimeError("the clock is not held")
        self._holds -= 1
        if self._holds == 0:
            self._anchor_wall = self._monotonic()
            self.held_wall += self._anchor_wall - self._held_since
            for callback in self._watchers:
                callback(False)

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
        if not self._holds:
            self._anchor_sim = self.now()
            self._anchor_wall = self._monotonic()
        self._anchor_sim += delta

    def _stop_at(self, instant: datetime) -> None:
        if not self._holds:
            self._anchor_sim = instant
            self._anchor_wall = self._monotonic()

    def _stopped(self) -> None:
        self.stops += 1
        self._held_since = self._monotonic()
        for callback in self._watchers:
            callback(True)

    # --- alarms -------------------------------------------------------------------------------

    def alarm(self, at: datetime) -> Alarm:
        """Stop the clock at `at` (at once if that has passed) until the alarm is dismissed."""
        alarm = Alarm(self, max(at.astimezone(UTC), self.now()), next(self._order))
        bisect.insort(self._alarms, alarm)
        self.now()
        return alarm

    def _ring(self, alarm: Alarm) -> None:
        if alarm.holding:
            return
        alarm.holding = True
        self._holds += 1
        if self._holds == 1:
            self._stopped()
        alarm.reached.set()

    def dismiss(self, alarm: Alarm) -> None:
        if alarm in self._alarms:
            self._alarms.remove(alarm)
        if alarm.holding:
            alarm.holding = False
            self.release()

    # --- waiting ------------------------------------------------------------------------------

    def wall_seconds(self, delta: timedelta) -> float:
        return max(0.0, delta.total_seconds() / self._speed)

    async def sleep_until(self, instant: datetime) -> None:
        """Wait until simulated time reaches `instant`, and leave the clock held there.

        The caller must `release()` once done.
        """
        alarm = self.alarm(instant)
        await alarm.wait()
        self.acquire()
        alarm.dismiss()
