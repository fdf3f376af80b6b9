"""Which moment a check-in opens in, so that it asks what fits (the one place this rule lives).

A check-in asks about "your last session" only when there has been a session since the client last
rated one; otherwise it asks about the time since (between sessions), or, before any session has
taken place, about what the client expects and wants from the work (first). "Before any session"
is as far as Rapport knows: a client who joins mid-therapy with only future sessions on record is
asked this too, so its wording never claims a first session.

    moment_for(last_session_ended, has_upcoming_session, last_rated)

`last_rated` is when the check-in in which the client last rated a session opened (any answer to
one of the instrument's session-only items counts, "prefer not to answer" too: they were asked).
A practice that records no sessions at all gives Rapport nothing to go by, and an instrument
without session-only items has nothing to leave out: both ask every item every time, as a
check-in always did.

Outcome measures (PHQ-9, GAD-7; `flows.measures`) ride on the check-in they are due in, after the
alliance and wellbeing items, at any moment:

    measures_due(schedule, last_given, now, zone)

A measure is due when it was never given, or when at least its interval of the client's local
days has passed since the check-in that last gave it (any answer to one of its items counts). Local
days, not hours: a check-in that opens a few minutes earlier than the one two weeks ago is still
two weeks on, and one moved to the morning by quiet hours is not pushed a whole cadence later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from flows.measures import Measure

Moment = Literal["session", "between", "first"]
SESSION: Final = "session"
BETWEEN: Final = "between"
FIRST: Final = "first"
MOMENTS: Final[tuple[Moment, ...]] = (SESSION, BETWEEN, FIRST)


def moment_for(
    last_session_ended: datetime | None,
    has_upcoming_session: bool,
    last_rated: datetime | None,
    *,
    rates_sessions: bool = True,
) -> Moment:
    """The moment of a check-in opening now (all instants aware UTC); `rates_sessions` False
    for an instrument whose items are all asked every time."""
    if not rates_sessions:
        return SESSION
    if last_session_ended is None:
        return FIRST if has_upcoming_session else SESSION
    if last_rated is None or last_session_ended > last_rated:
        return SESSION
    return BETWEEN


def as_moment(value: object) -> Moment:
    """A stored moment, or "session" for anything else (states stored before moments)."""
    if value == BETWEEN:
        return BETWEEN
    if value == FIRST:
        return FIRST
    return SESSION


def measures_due(
    schedule: Sequence[Measure],
    last_given: Mapping[str, datetime],
    now: datetime,
    zone: str,
) -> tuple[str, ...]:
    """Names of the measures a check-in opening `now` (aware) asks, in the schedule's order;
    `last_given` maps a measure's name to when the check-in that last gave it opened."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    due = []
    for measure in schedule:
        last = last_given.get(measure.name)
        if last is None or (today - last.astimezone(tz).date()).days >= measure.every_days:
            due.append(measure.name)
    return tuple(due)
