"""Floods stopped at the door: one account sending hundreds of messages must not take the database
(and so every other person's replies) with it, nor make the bot answer hundreds of times.

Each sender has a bucket of `burst` updates that refills at `rate` per second. While it has room,
updates are handled as usual. Once it is empty, further updates are dropped before they touch the
database; the first dropped update of a flood gets one short notice, later ones nothing, until
`notice_every` seconds have passed. Crisis language is never dropped: it is always handled in
full. A person typing or tapping through a check-in never comes near the limit (a check-in is
about six answers), so nothing a client means to give is lost.

Like the send limits, this runs on wall time (a monotonic clock, injectable for tests), never on
the simulated clock: it models how fast messages really arrive. A bot on a simulated clock (the
demo, end-to-end tests), whose people act days apart in simulated time but milliseconds apart on
the wall, gets an open door and tells strangers every time; tests of the door inject their own.

The buckets are not aiolimiter's (the send limits' library): the door answers at once, never
waits, and must ask for crisis words only once a bucket is empty, on a clock tests can set;
aiolimiter only waits for capacity, on the event loop's clock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

BURST = 20.0
"""Updates a sender may send at once before the door closes."""
RATE = 0.5
"""Updates per second a sender's bucket refills: 30 a minute."""
NOTICE_EVERY = 60.0
"""Seconds between two notices to the same flooding sender."""
KEPT = 10_000
"""Senders remembered (the most recently active); a forgotten one starts with a full bucket."""


class Verdict(Enum):
    HANDLE = "handle"
    NOTICE = "notice"  # dropped; tell the sender once
    DROP = "drop"  # dropped silently: they were told already


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    noticed_at: float | None = None


class InboundThrottle:
    """Per-sender admission of incoming updates (see the module docstring)."""

    def __init__(
        self,
        *,
        burst: float = BURST,
        rate: float = RATE,
        notice_every: float = NOTICE_EVERY,
        kept: int = KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = rate
        self.notice_every = notice_every
        self.kept = kept
        self._clock = clock
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()
        self.dropped = 0

    @classmethod
    def open(cls) -> InboundThrottle:
        """A door that lets everything in: for simulated clocks (the demo, tests), where people
        act weeks apart in simulated time but within milliseconds of wall time."""
        return cls(burst=float("inf"))

    def admit(self, sender: int, *, urgent: bool | Callable[[], bool] = False) -> Verdict:
        """Whether to handle an update from `sender`; `urgent` (crisis language) always is. A
        callable is asked only when the bucket is empty: looking for crisis words costs a
        little, and most updates never need it."""
        now = self._clock()
        bucket = self._buckets.get(sender)
        if bucket is None:
            bucket = self._buckets[sender] = _Bucket(tokens=self.burst, stamp=now)
            if len(self._buckets) > self.kept:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(sender)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return Verdict.HANDLE
        if urgent() if callable(urgent) else urgent:
            return Verdict.HANDLE
        self.dropped += 1
        if bucket.noticed_at is None or now - bucket.noticed_at >= self.notice_every:
            bucket.noticed_at = now
            return Verdict.NOTICE
        return Verdict.DROP


STRANGER_WINDOW = 600.0
"""Seconds during which a stranger is not told again that the bot is for invited people."""


class Recently:
    """Who was told something within the last `window` seconds (bounded, wall time): a stranger
    who writes twenty times hears the polite reply once, not twenty times."""

    def __init__(
        self,
        window: float = STRANGER_WINDOW,
        *,
        kept: int = KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.kept = kept
        self._clock = clock
        self._told: OrderedDict[int, float] = OrderedDict()

    def first(self, key: int) -> bool:
        """True (and remembered) unless `key` was told within the window."""
        now = self._clock()
        told = self._told.get(key)
        if told is not None and now - told < self.window:
            return False
        self._told[key] = now
        self._told.move_to_end(key)
        if len(self._told) > self.kept:
            self._told.popitem(last=False)
        return True
