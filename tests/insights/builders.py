"""Hand-built client histories for the insights tests: a few lines describe a whole course."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from insights.config import ALLIANCE_ITEMS
from insights.history import CheckinRecord, ClientHistory, LifeEvent, LifeEventKind

T0 = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
"""A Monday evening: the first check-in of every built history."""


def items_for(total: int) -> dict[str, int | None]:
    """Four items summing to `total` (as even as possible, higher ones first)."""
    base, extra = divmod(total, 4)
    return {item: base + (1 if i < extra else 0) for i, item in enumerate(ALLIANCE_ITEMS)}


@dataclass
class Step:
    """One check-in of a built history. `total` or `items` gives the scores; `missed` a miss."""

    total: int | None = 38
    items: dict[str, int | None] | None = None
    delay_hours: float = 1.0
    missed: bool = False
    partial: bool = False
    comment: str | None = None
    tension: bool | None = None
    talked_through: bool | None = None
    open: bool = False
    wellbeing: int = 6
    extra: dict[str, int | None] = field(default_factory=dict)


def answered(total: int = 38, **kwargs: object) -> Step:
    return Step(total=total, **kwargs)  # type: ignore[arg-type]


def missed() -> Step:
    return Step(total=None, missed=True)


def build(
    steps: Sequence[Step],
    cadence_days: float = 3.0,
    events: Sequence[tuple[LifeEventKind, float]] = (),
    sessions: Sequence[float] = (),
    start: datetime = T0,
    expiry_days: float | None = None,
) -> ClientHistory:
    """A history with one check-in every `cadence_days` from `start`.

    Events and sessions are given in days after `start`. A missed check-in expires after
    `expiry_days` (default: at the next check-in).
    """
    expiry = timedelta(days=expiry_days if expiry_days is not None else cadence_days)
    records: list[CheckinRecord] = []
    for number, step in enumerate(steps, start=1):
        sent = start + timedelta(days=cadence_days * (number - 1))
        if step.missed or step.open:
            records.append(
                CheckinRecord(
                    id=f"k{number}",
                    sent_at=sent,
                    status="open" if step.open else "missed",
                    expired_at=None if step.open else sent + expiry,
                )
            )
            continue
        scores: dict[str, int | None] = dict(
            step.items if step.items is not None else items_for(step.total or 0)
        )
        scores["wellbeing"] = step.wellbeing
        scores.update(step.extra)
        if step.partial:
            scores = {ALLIANCE_ITEMS[0]: scores[ALLIANCE_ITEMS[0]]}
        at = sent + timedelta(hours=step.delay_hours)
        records.append(
            CheckinRecord(
                id=f"k{number}",
                sent_at=sent,
                status="partial" if step.partial else "answered",
                answered_at=at,
                completed_at=None if step.partial else at,
                scores=scores,
                tension=step.tension,
                talked_through=step.talked_through,
                comment=step.comment,
                expired_at=sent + expiry if step.partial else None,
            )
        )
    return ClientHistory(
        client="c1",
        alias="A.B.",
        timezone="Europe/Berlin",
        cadence_days=cadence_days,
        checkins=tuple(records),
        events=tuple(LifeEvent(kind, start + timedelta(days=day)) for kind, day in events),
        sessions=tuple(start + timedelta(days=day) for day in sessions),
    )


def after_last(history: ClientHistory, hours: float = 1.0) -> datetime:
    """A moment just after everything in the history has happened."""
    moments = [history.checkins[-1].sent_at] if history.checkins else [T0]
    for record in history.checkins:
        moments.extend(m for m in (record.answered_at, record.expired_at) if m is not None)
    moments.extend(event.at for event in history.events)
    return max(moments) + timedelta(hours=hours)
