"""What a check-in opening now asks: the moment (`flows.moments`) from the client's sessions and
their last session rating, and the outcome measures due (`flows.moments.measures_due`) from when
each was last given, for one client or a batch (a few queries either way)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Protocol

from app.runtime import Session
from flows.instruments import Instrument, load_instrument
from flows.measures import Measure, stored_measures
from flows.moments import Moment, measures_due, moment_for
from storage import checkins


async def moments_of(
    s: Session, instrument: Instrument, client_ids: Collection[int], now: datetime
) -> dict[int, Moment]:
    """Each client's moment for a check-in opening at `now`."""
    facts = await checkins.asking_facts(s, client_ids, instrument.session_items, now)
    rates = bool(instrument.session_items)
    return {
        client_id: moment_for(
            f.last_session_ended, f.has_upcoming_session, f.last_rated, rates_sessions=rates
        )
        for client_id, f in facts.items()
    }


class Asked(Protocol):
    """A client as the opening knows them (an ORM row or a claimed row)."""

    @property
    def id(self) -> int: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def outcomes(self) -> str | None: ...


def schedule_of(
    client: Asked, practice_outcomes: str, instrument: Instrument
) -> tuple[Measure, ...]:
    """The client's measures (their own setting, else the practice's), less the instrument
    every check-in asks anyway."""
    setting = client.outcomes if client.outcomes is not None else practice_outcomes
    return tuple(m for m in stored_measures(setting) if load_instrument(m.name) is not instrument)


@cache
def _given_by(measure: Measure) -> tuple[str, ...]:
    """The items whose answers show the measure was given in full: every one but a follow-up,
    asked only after a yes. The safety item counts too (without item 9 the PHQ-9 has no score);
    when the practice asks it in every check-in, its answer is always recent and the measure's
    other items decide."""
    return tuple(item.id for item in load_instrument(measure.name).items)


async def measures_of(
    s: Session,
    practice_outcomes: str,
    instrument: Instrument,
    clients: Sequence[Asked],
    now: datetime,
) -> dict[int, tuple[str, ...]]:
    """The outcome measures due in each client's check-in opening at `now` (one statement)."""
    schedules = {c.id: schedule_of(c, practice_outcomes, instrument) for c in clients}
    items = {item for sched in schedules.values() for m in sched for item in _given_by(m)}
    answered = await checkins.last_answered(s, [c.id for c in clients if schedules[c.id]], items)
    due: dict[int, tuple[str, ...]] = {}
    for client in clients:
        latest = answered.get(client.id, {})
        last_given = {}
        for measure in schedules[client.id]:
            times = [latest.get(item) for item in _given_by(measure)]
            if times and all(times):
                # given when every item was last answered: a measure stopped part-way does
                # not count, so it is asked again at the next check-in rather than after
                # a whole interval with no score
                last_given[measure.name] = min(t for t in times if t is not None)
        due[client.id] = measures_due(
            schedules[client.id], last_given, now, client.timezone or "UTC"
        )
    return due
