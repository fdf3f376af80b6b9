"""Items the heartbeat failed to handle, set aside for a while so one broken row cannot stop the
practice: a client whose stored zone or cadence no longer parses, a session whose digest cannot
be rendered. Without this, the same item would fail first in every pass, and everything behind
it (every other client's check-in, nudge or digest) would wait forever.

A failing item is retried after a minute, then after twice as long each time, up to an hour; it
is logged by kind and id with the exception's type and where it was raised, never its message
(which may quote stored data). The holds live in the process: a restart tries everything again.
A failure that concerns every item alike (the database went away, a lock timed out) is not the
item's fault: `is_transient` (`storage.db`) tells the callers to end the pass instead, as before.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from storage.db import connection_lost, is_transient

log = logging.getLogger(__name__)

__all__ = [
    "DIGEST",
    "ESCALATION",
    "EXPIRY",
    "FIRST_RETRY",
    "LONGEST_RETRY",
    "NUDGE",
    "OPENING",
    "RESUMPTION",
    "Quarantine",
    "connection_lost",
    "is_transient",
    "where",
]

# What each kind of item is, by id: a client, a check-in, a session or an alert.
OPENING, RESUMPTION = "opening", "resumption"  # client ids
NUDGE, EXPIRY = "nudge", "expiry"  # check-in ids
DIGEST = "digest"  # therapy session ids
ESCALATION = "escalation"  # alert ids

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)


def where(exc: BaseException) -> str:
    """The innermost frame of the exception, as `file.py:line in function`."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown place"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"


@dataclass
class _Hold:
    failures: int
    until: datetime


@dataclass
class Quarantine:
    first_retry: timedelta = FIRST_RETRY
    longest_retry: timedelta = LONGEST_RETRY
    _holds: dict[tuple[str, int], _Hold] = field(default_factory=dict)

    def held(self, kind: str, now: datetime) -> list[int]:
        """Ids of `kind` not to be tried at `now`. Holds that ran out long ago are forgotten: an
        item not tried again within the longest wait after its hold is no longer due (erased,
        closed, or handled by another replica)."""
        stale = now - self.longest_retry
        for key in [key for key, hold in self._holds.items() if hold.until < stale]:
            del self._holds[key]
        return [item for (k, item), hold in self._holds.items() if k == kind and hold.until > now]

    def failed(self, kind: str, item: int, now: datetime, exc: BaseException) -> None:
        previous = self._holds.get((kind, item))
        failures = 1 if previous is None else previous.failures + 1
        wait = min(self.first_retry * 2 ** (failures - 1), self.longest_retry)
        self._holds[(kind, item)] = _Hold(failures, now + wait)
        log.error(
            "heartbeat: %s %s failed (%s at %s), failure %d; set aside for %d min",
            kind,
            item,
            type(exc).__name__,
            where(exc),
            failures,
            wait.total_seconds() // 60,
        )

    def cleared(self, kind: str, items: Iterable[int]) -> None:
        """These were handled: a later failure starts from the first retry again."""
        if not self._holds:
            return
        for item in items:
            if self._holds.pop((kind, item), None) is not None:
                log.info("heartbeat: %s %s handled after earlier failures", kind, item)

    def forget(self, kind: str, items: Iterable[int]) -> None:
        """These no longer exist (the client was erased): drop their holds without a word."""
        for item in items:
            self._holds.pop((kind, item), None)

    def count(self) -> int:
        return len(self._holds)
