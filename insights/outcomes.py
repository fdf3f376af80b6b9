"""Outcome measures beside the alliance: PHQ-9 and GAD-7 totals from a client's check-ins, their
published severity bands and whether the change since the first one is reliable.

A measure counts only from check-ins where every one of its items got a number: a total with an
item left out would read as less severe than it is. Scoring itself (bands, reliable change) is the
instrument's, in `flows.instruments`; this module only follows it over time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows.instruments import (
    Change,
    Instrument,
    outcome_instruments,
    reliable_change,
    score_outcome,
)
from insights.history import ClientHistory


@dataclass(frozen=True, slots=True)
class OutcomeTrend:
    """One measure for one client: the first and the latest complete answers."""

    instrument: str
    title: str
    total_max: int
    reliable_change: int
    first_at: datetime
    first_total: int
    latest_at: datetime
    latest_total: int
    band: str
    change: Change
    """'better' / 'worse' by at least the reliable change since the first, else 'same'."""
    count: int
    series: tuple[tuple[datetime, int], ...] = ()
    """(when answered, total) of every complete administration, oldest first."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "total": self.latest_total,
            "max": self.total_max,
            "band": self.band,
            "at": self.latest_at.isoformat(),
            "first_total": self.first_total,
            "first_at": self.first_at.isoformat(),
            "change": self.change,
            "reliable_change": self.reliable_change,
            "count": self.count,
            "series": [{"at": at.isoformat(), "total": total} for at, total in self.series],
        }


def outcome_trends(
    history: ClientHistory,
    now: datetime,
    lang: str = "en",
    instruments: Sequence[Instrument] | None = None,
) -> tuple[OutcomeTrend, ...]:
    """Every outcome measure the client has completed at least once by `now`."""
    trends = []
    for instrument in outcome_instruments() if instruments is None else instruments:
        outcome = instrument.scoring.outcome
        if outcome is None:
            continue
        scored = [
            (record.answered_at, result)
            for record in history.checkins
            if record.answered_at is not None
            and record.answered_at <= now
            and (result := score_outcome(instrument, record.scores)) is not None
        ]
        if not scored:
            continue
        (first_at, first), (latest_at, latest) = scored[0], scored[-1]
        trends.append(
            OutcomeTrend(
                instrument=instrument.id,
                title=instrument.title_for(lang),
                total_max=outcome.total_max,
                reliable_change=outcome.reliable_change,
                first_at=first_at,
                first_total=first.total,
                latest_at=latest_at,
                latest_total=latest.total,
                band=latest.label(outcome, lang),
                change=reliable_change(outcome, first.total, latest.total),
                count=len(scored),
                series=tuple((at, result.total) for at, result in scored),
            )
        )
    return tuple(trends)
