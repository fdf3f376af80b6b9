"""How simulated time moves in the demo: stop at each moment the bot has something due, and pace
the time-lapse so the whole run ends near its wall-time target however long the taps take.

The bot's own heartbeat keeps running; the demo also stops the clock at the next due moment (a
check-in, a reminder, an expiry, a digest) and runs a heartbeat pass right then, so what the
clients and the therapist receive carries the scheduled minute rather than the next tick of a
sped-up clock. Claims make a pass safe to run beside the bot's own, as with two replicas.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app import heartbeat
from app.runtime import Runtime
from devtools.demo.clock import HeldTimelapse
from devtools.demo.transcript import Transcript
from storage.models import Checkin, Client, TherapySession
from storage.outbox import pending_count

TICK = 0.1  # wall seconds between looks at the database and the pace
MIN_SPEED = 2_000.0
MAX_SPEED = 3_000_000.0


class Watch:
    """The demo's own read-only window on the database.

    The bot opens every SQLite transaction with BEGIN IMMEDIATE, so even its reads queue on the
    write lock; the demo's frequent looks go through a plain connection of their own instead
    (WAL readers never block writers) and so never hold the bot up.
    """

    def __init__(self, url: str) -> None:
        self.engine = create_async_engine(url, connect_args={"timeout": 30})
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def next_due(self) -> datetime | None:
        """The earliest moment at which the heartbeat will have something to do."""
        query = select(
            select(func.min(Client.next_checkin_at))
            .where(Client.status == "active")
            .scalar_subquery(),
            select(func.min(Client.paused_until))
            .where(Client.status == "paused")
            .scalar_subquery(),
            select(func.min(Checkin.nudge_at))
            .where(Checkin.status == "open", Checkin.nudged_at.is_(None))
            .scalar_subquery(),
            select(func.min(Checkin.expires_at)).where(Checkin.status == "open").scalar_subquery(),
            select(func.min(TherapySession.digest_at))
            .where(TherapySession.digest_sent_at.is_(None), TherapySession.cancelled.is_(False))
            .scalar_subquery(),
        )
        async with self.sessions() as s:
            row = (await s.execute(query)).one()
        moments = [value for value in row if isinstance(value, datetime)]
        return min(moments) if moments else None

    async def pending(self) -> int:
        async with self.sessions() as s:
            return await pending_count(s)

    async def drain(self, rt: Runtime, within: float = 10.0) -> None:
        """Wait (wall time) until the bot's outbox has nothing left to send."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline and await self.pending():
            rt.wake_sender()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)  # let the people in the sandbox read what just arrived

    async def close(self) -> None:
        await self.engine.dispose()


class Pacer:
    """Sets the time-lapse speed so the rest of the run fits the wall-time budget.

    Time spent stopped (people tapping, due moments being handled) does not move the story on, so
    the estimate of what is still to come is scaled from what it has cost so far.
    """

    def __init__(
        self,
        clock: HeldTimelapse,
        start: datetime,
        end: datetime,
        budget: float,
        expected_stopped: float,
    ) -> None:
        self.clock = clock
        self.start = start
        self.end = end
        self.budget = budget
        self.expected_stopped = expected_stopped
        self._loop = asyncio.get_running_loop()
        self._began = self._loop.time()
        self._held_before = clock.held_wall

    def update(self) -> None:
        span = (self.end - self.start).total_seconds()
        done = (self.clock.now() - self.start).total_seconds()
        left = max(0.0, span - done)
        if left <= 0:
            return
        fraction = done / span
        elapsed = self._loop.time() - self._began
        stopped = self.clock.held_wall - self._held_before
        if fraction >= 0.15:
            future_stops = stopped / fraction * (1 - fraction)
        else:
            future_stops = self.expected_stopped * (1 - fraction)
        running = self.budget - elapsed - future_stops
        running = max(running, 0.15 * self.budget * (1 - fraction))
        self.clock.set_speed(min(MAX_SPEED, max(MIN_SPEED, left / running)))


async def live(
    rt: Runtime,
    watch: Watch,
    clock: HeldTimelapse,
    transcript: Transcript,
    end: datetime,
    pacer: Pacer | None,
) -> None:
    """Let time run until `end`, stopping at each due moment to run a heartbeat pass.

    An alarm always guards the next due moment: the new one is set before the old one is
    dismissed, so time never runs unwatched while the database is being asked. The clock comes
    in held (everyone has just joined) and is left held at `end`.
    """
    due: datetime | None = None
    handled: datetime | None = None
    guard = clock.alarm(clock.now())
    seen_stops = -1
    clock.release()
    while True:
        reached = await guard.wait(timeout=TICK)
        now = clock.now()
        transcript.advance_to(now)
        if reached and now >= end:
            break
        if reached and due is not None and now >= due:
            await heartbeat.run_pass(rt)
            await watch.drain(rt)
            handled = due
        if pacer is not None:
            pacer.update()
        if not reached and clock.stops == seen_stops:
            continue  # nothing happened that could bring the next due moment forward
        seen_stops = clock.stops
        due = await watch.next_due()
        if due is not None and due <= now and due == handled:
            due = None  # a pass ran for it already; the bot has its reasons to keep it
        following = clock.alarm(end if due is None else max(now, min(due, end)))
        guard.dismiss()
        guard = following
    clock.acquire()
    guard.dismiss()
    transcript.advance_to(end)


def expected_stops(weeks: int, clients: int) -> float:
    """A first guess of the wall seconds spent stopped, before there is any measurement."""
    return weeks * clients * 2 * 0.35 + weeks * 14 * 0.05
