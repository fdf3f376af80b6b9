"""Stepping the scheduler the way the heartbeat does: each check-in computed after the last.

These prove the whole-sequence guarantees: over DST weeks and zone moves no local day is skipped
or asked twice, and the local hour stays where the cadence put it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.cadence import Cadence, EveryNDays, parse_cadence
from flows.timing import QuietHours, next_checkin_at, parse_quiet_hours

from .helpers import BERLIN, KOLKATA, NEW_YORK, utc


def simulate(
    spec: str | Cadence,
    start: datetime,
    count: int,
    tz: str = BERLIN,
    quiet: QuietHours | None = None,
) -> list[datetime]:
    cadence = parse_cadence(spec) if isinstance(spec, str) else spec
    sent: list[datetime] = []
    after, previous = start, None
    for _ in range(count):
        due = next_checkin_at(
            cadence, after=after, tz=tz, sessions=(), anchor=None, quiet=quiet, previous=previous
        )
        assert due is not None
        sent.append(due)
        after = previous = due
    return sent


def local_days(instants: list[datetime], tz: str) -> list[date]:
    return [i.astimezone(ZoneInfo(tz)).date() for i in instants]


def local_clock(instants: list[datetime], tz: str) -> set[time]:
    return {i.astimezone(ZoneInfo(tz)).time() for i in instants}


def consecutive(days: list[date]) -> bool:
    return all(b - a == timedelta(days=1) for a, b in pairwise(days))


@pytest.mark.parametrize(
    ("tz", "start"),
    [
        (BERLIN, utc(2026, 3, 25)),  # spring forward 2026-03-29
        (BERLIN, utc(2026, 10, 21)),  # fall back 2026-10-25
        (NEW_YORK, utc(2026, 3, 5)),  # spring forward 2026-03-08
        (NEW_YORK, utc(2026, 10, 29)),  # fall back 2026-11-01
        (KOLKATA, utc(2026, 3, 25)),
    ],
)
def test_a_week_of_daily_check_ins_across_dst(tz: str, start: datetime) -> None:
    sent = simulate("every day at 18:00", start, 8, tz)
    days = local_days(sent, tz)
    assert consecutive(days)
    assert local_clock(sent, tz) == {time(18, 0)}
    # The UTC gap is 24 h except across the change, where it is 23 or 25 h.
    gaps = {b - a for a, b in pairwise(sent)}
    assert gaps <= {timedelta(hours=23), timedelta(hours=24), timedelta(hours=25)}


def test_a_week_at_02_30_across_berlin_spring_forward_keeps_every_day() -> None:
    sent = simulate("every day at 02:30", utc(2026, 3, 26), 7)
    assert consecutive(local_days(sent, BERLIN))
    readings = [i.astimezone(ZoneInfo(BERLIN)) for i in sent]
    gap_day = [r for r in readings if r.date() == date(2026, 3, 29)]
    assert [r.time() for r in gap_day] == [time(3, 0)]
    assert all(r.time() == time(2, 30) for r in readings if r.date() != date(2026, 3, 29))


def test_a_week_at_02_30_across_berlin_fall_back_asks_once_a_day() -> None:
    sent = simulate("every day at 02:30", utc(2026, 10, 22), 7)
    assert consecutive(local_days(sent, BERLIN))
    assert local_clock(sent, BERLIN) == {time(2, 30)}
    assert utc(2026, 10, 25, 0, 30) in sent and utc(2026, 10, 25, 1, 30) not in sent


def test_a_week_at_01_30_across_new_york_fall_back_asks_once_a_day() -> None:
    sent = simulate("every day at 01:30", utc(2026, 10, 29), 7, NEW_YORK)
    assert consecutive(local_days(sent, NEW_YORK))
    assert utc(2026, 11, 1, 5, 30) in sent and utc(2026, 11, 1, 6, 30) not in sent


def test_quiet_hours_shift_every_day_to_the_morning_without_skipping() -> None:
    night = parse_quiet_hours("21:00-09:00")
    sent = simulate("every day at 22:30", utc(2026, 3, 25, 12), 7, BERLIN, night)
    assert local_clock(sent, BERLIN) == {time(9, 0)}
    assert consecutive(local_days(sent, BERLIN))
    assert local_days(sent, BERLIN)[0] == date(2026, 3, 26)


def test_weekdays_over_two_weeks_of_new_york_spring_forward() -> None:
    sent = simulate("weekdays mon,thu at 09:00", utc(2026, 3, 1), 4, NEW_YORK)
    assert local_days(sent, NEW_YORK) == [
        date(2026, 3, 2), date(2026, 3, 5), date(2026, 3, 9), date(2026, 3, 12),
    ]  # fmt: skip
    assert local_clock(sent, NEW_YORK) == {time(9, 0)}


# --- a client who moves zone ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("old_tz", "new_tz", "last_sent", "expected"),
    [
        # Berlin 18:00 (17:00Z) then New York: 18:00 NY that day is 23:00Z, only 6 h later and
        # the same day for the client; the next is the following NY evening.
        (BERLIN, NEW_YORK, utc(2026, 1, 10, 17), utc(2026, 1, 11, 23)),
        # Kolkata 18:00 (12:30Z) then New York: 18:00 NY is 10.5 h later: dropped.
        (KOLKATA, NEW_YORK, utc(2026, 1, 10, 12, 30), utc(2026, 1, 11, 23)),
        # New York 18:00 (23:00Z, already midnight in Berlin) then Berlin: next Berlin evening.
        (NEW_YORK, BERLIN, utc(2026, 1, 10, 23), utc(2026, 1, 11, 17)),
        # Berlin then Kolkata: 18:00 IST next day is 12:30Z.
        (BERLIN, KOLKATA, utc(2026, 1, 10, 17), utc(2026, 1, 11, 12, 30)),
    ],
)
def test_a_move_recomputes_in_the_new_zone_without_a_double(
    old_tz: str, new_tz: str, last_sent: datetime, expected: datetime
) -> None:
    cadence = parse_cadence("every day at 18:00")
    assert simulate(cadence, last_sent - timedelta(hours=1), 1, old_tz) == [last_sent]
    moved = next_checkin_at(
        cadence,
        after=last_sent,
        tz=new_tz,
        sessions=(),
        anchor=None,
        quiet=None,
        previous=last_sent,
    )
    assert moved == expected
    assert moved.astimezone(ZoneInfo(new_tz)).time() == time(18, 0)
    assert moved - last_sent >= timedelta(hours=12)


_ZONES = [BERLIN, NEW_YORK, KOLKATA, "Australia/Sydney", "America/Sao_Paulo", "Pacific/Chatham"]


@settings(max_examples=60, deadline=None)
@given(
    tz=st.sampled_from(_ZONES),
    at=st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20)),
)
def test_daily_sequence_never_skips_or_doubles_a_local_day(
    tz: str, at: time, start: datetime
) -> None:
    zone = ZoneInfo(tz)
    sent = simulate(Cadence((EveryNDays(1, at),)), start.replace(tzinfo=UTC), 10, tz)
    assert consecutive(local_days(sent, tz))
    for instant in sent:
        reading = instant.astimezone(zone)
        wall = datetime.combine(reading.date(), at, tzinfo=zone)
        exists = wall.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall.replace(
            tzinfo=None
        )
        if exists:
            assert reading.time() == at
        else:  # in a spring-forward gap: exactly the instant the clocks jumped
            just_before = (instant - timedelta(seconds=1)).astimezone(zone)
            assert just_before.utcoffset() != reading.utcoffset()
            assert just_before.time() < at < reading.time()
