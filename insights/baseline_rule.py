"""The simple rules Rapport is measured against, each giving the moment it would first have fired.

* `baseline` (OpenFIT-like): alert when the alliance total is under the cut-off, or at least one
  point lower than at the previous answered check-in. The published comparison rule.
* `cutoff_only`: alert when the alliance total is under the cut-off.
* `two_missed`: alert when two check-ins in a row go unanswered.

They read the same observation stream as Rapport's detector, in time order, with no look-ahead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Final

from insights import config
from insights.history import ClientHistory
from insights.state import ANSWER, MISSED, Observation, Reply, observations
from insights.thresholds import Thresholds

StreamRule = Callable[[Iterable[Observation], Thresholds], float | None]


def _totals(stream: Iterable[Observation]) -> Iterable[tuple[float, int]]:
    """(time, total) of every fully answered check-in, in time order."""
    items = config.ALLIANCE_ITEMS
    for t, kind, subject in stream:
        if kind != ANSWER or not isinstance(subject, Reply) or subject.partial:
            continue
        scores = subject.scores
        total = 0
        for item in items:
            value = scores.get(item)
            if value is None:
                break
            total += value
        else:
            yield t, total


def baseline_first_alert(stream: Iterable[Observation], th: Thresholds) -> float | None:
    """First time the total was under the cut-off or at least 1 point below the previous one."""
    previous: int | None = None
    for t, total in _totals(stream):
        if total < th.cutoff or (previous is not None and total <= previous - 1):
            return t
        previous = total
    return None


def cutoff_first_alert(stream: Iterable[Observation], th: Thresholds) -> float | None:
    """First time the total was under the cut-off."""
    return next((t for t, total in _totals(stream) if total < th.cutoff), None)


def two_missed_first_alert(stream: Iterable[Observation], th: Thresholds) -> float | None:
    """First time a second check-in in a row (in order of sending) was missed."""
    resolved = [
        (subject.sent, kind, t)
        for t, kind, subject in stream
        if kind in (ANSWER, MISSED) and isinstance(subject, Reply)
    ]
    resolved.sort()
    in_row = 0
    for _, kind, t in resolved:
        if kind == ANSWER:
            in_row = 0
        else:
            in_row += 1
            if in_row >= 2:
                return t
    return None


STREAM_RULES: Final[dict[str, StreamRule]] = {
    "baseline": baseline_first_alert,
    "cutoff_only": cutoff_first_alert,
    "two_missed": two_missed_first_alert,
}
"""The comparison rules by the name they carry in the backtest summary."""


def first_alert(
    name: str, history: ClientHistory, thresholds: Thresholds | None = None
) -> datetime | None:
    """When the simple rule `name` would first have alerted on this history (None: never)."""
    t = STREAM_RULES[name](observations(history), thresholds or Thresholds())
    return datetime.fromtimestamp(t, UTC) if t is not None else None


def baseline_alert_at(
    history: ClientHistory, thresholds: Thresholds | None = None
) -> datetime | None:
    return first_alert("baseline", history, thresholds)


def cutoff_alert_at(
    history: ClientHistory, thresholds: Thresholds | None = None
) -> datetime | None:
    return first_alert("cutoff_only", history, thresholds)


def two_missed_alert_at(
    history: ClientHistory, thresholds: Thresholds | None = None
) -> datetime | None:
    return first_alert("two_missed", history, thresholds)
