"""Next check-in instants for each cadence form, in several zones and across both DST changes.

Expected instants are written out by hand in UTC; the comments give the local reading.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.cadence import parse_cadence
from flows.timing import (
    QuietHours,
    SessionSlot,
    next_checkin_at,
    parse_quiet_hours,
    same_local_day,
)

from .helpers import BERLIN, KOLKATA, NEW_YORK, session, utc

NO_QUIET = QuietHours.none()
NIGHT = parse_quiet_hours("21:00-09:00")


def next_at(
    spec: str,
    after: datetime,
    tz: str = BERLIN,
    *,
    sessions: tuple[SessionSlot, ...] = (),
    anchor: datetime | None = None,
    quiet: QuietHours = NO_QUIET,
    previous: datetime | None = None,
) -> datetime | None:
    return next_checkin_at(
        parse_cadence(spec),
        after=after,
        tz=tz,
        sessions=sessions,
        anchor=anchor,
        quiet=quiet,
        previous=previous,
    )


# --- every day / every N days ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        # Berlin, spring forward on 2026-03-29: 18:00 CET is 17:00Z, 18:00 CEST is 16:00Z.
        (BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 28, 17)),
        (BERLIN, utc(2026, 3, 28, 17), utc(2026, 3, 29, 16)),
        (BERLIN, utc(2026, 3, 29, 16), utc(2026, 3, 30, 16)),
        # Berlin, fall back on 2026-10-25: back to 17:00Z.
        (BERLIN, utc(2026, 10, 24, 16), utc(2026, 10, 25, 17)),
        # New York, spring forward on 2026-03-08: 18:00 EST is 23:00Z, 18:00 EDT is 22:00Z.
        (NEW_YORK, utc(2026, 3, 7, 23), utc(2026, 3, 8, 22)),
        # New York, fall back on 2026-11-01.
        (NEW_YORK, utc(2026, 10, 31, 22), utc(2026, 11, 1, 23)),
        # Kolkata, +05:30 all year: 18:00 is 12:30Z.
        (KOLKATA, utc(2026, 3, 28, 12, 29), utc(2026, 3, 28, 12, 30)),
        (KOLKATA, utc(2026, 3, 28, 12, 30), utc(2026, 3, 29, 12, 30)),
    ],
)
def test_every_day_keeps_the_local_hour(tz: str, after: datetime, expected: datetime) -> None:
    assert next_at("every day at 18:00", after, tz) == expected


def test_the_result_is_strictly_after_after() -> None:
    exactly = utc(2026, 1, 5, 17)  # 18:00 Berlin
    assert next_at("every day at 18:00", exactly) == utc(2026, 1, 6, 17)
    assert next_at("every day at 18:00", exactly - timedelta(seconds=1)) == exactly


def test_a_wall_time_in_the_spring_gap_moves_to_the_end_of_the_gap() -> None:
    # 2026-03-29 02:30 does not exist in Berlin: the first valid instant is 03:00 CEST = 01:00Z.
    assert next_at("every day at 02:30", utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)
    assert next_at("every day at 02:30", utc(2026, 3, 29, 1)) == utc(2026, 3, 30, 0, 30)
    # New York 2026-03-08 02:30 does not exist: 03:00 EDT = 07:00Z.
    assert next_at("every day at 02:30", utc(2026, 3, 7, 12), NEW_YORK) == utc(2026, 3, 8, 7)


def test_an_ambiguous_wall_time_uses_its_first_occurrence_once() -> None:
    # 2026-10-25 02:30 happens twice in Berlin: 00:30Z (CEST) and 01:30Z (CET). Only the first.
    first = next_at("every day at 02:30", utc(2026, 10, 24, 12))
    assert first == utc(2026, 10, 25, 0, 30)
    assert next_at("every day at 02:30", first) == utc(2026, 10, 26, 1, 30)
    # New York 2026-11-01 01:30 happens at 05:30Z (EDT) and 06:30Z (EST).
    ny_first = next_at("every day at 01:30", utc(2026, 10, 31, 12), NEW_YORK)
    assert ny_first == utc(2026, 11, 1, 5, 30)
    assert next_at("every day at 01:30", ny_first, NEW_YORK) == utc(2026, 11, 2, 6, 30)


def test_every_n_days_counts_from_the_anchor_local_date() -> None:
    anchor = utc(2026, 1, 5, 9)  # Monday 10:00 Berlin: days 5, 8, 11, ... January
    spec = "every 3 days at 19:00"  # 18:00Z in winter
    assert next_at(spec, utc(2026, 1, 5, 12), anchor=anchor) == utc(2026, 1, 5, 18)
    assert next_at(spec, utc(2026, 1, 5, 18), anchor=anchor) == utc(2026, 1, 8, 18)
    assert next_at(spec, utc(2026, 1, 9), anchor=anchor) == utc(2026, 1, 11, 18)
    # Across the spring change: 2026-03-27 is day 81 (a multiple of 3), then 03-30 in CEST.
    assert next_at(spec, utc(2026, 3, 26), anchor=anchor) == utc(2026, 3, 27, 18)
    assert next_at(spec, utc(2026, 3, 27, 18), anchor=anchor) == utc(2026, 3, 30, 17)


def test_the_anchor_date_is_the_local_one() -> None:
    # 23:30Z on Jan 5 is already Jan 6 in Berlin, so the phase is Jan 6, 8, 10 ...
    anchor = utc(2026, 1, 5, 23, 30)
    assert next_at("every 2 days at 18:00", utc(2026, 1, 6), anchor=anchor) == utc(2026, 1, 6, 17)
    assert next_at("every 2 days at 18:00", utc(2026, 1, 6, 17), anchor=anchor) == utc(
        2026, 1, 8, 17
    )


def test_every_n_days_without_anchor_has_a_fixed_phase() -> None:
    # Without an anchor the phase is counted from a Monday: weekly means Mondays.
    assert next_at("every 7 days at 18:00", utc(2026, 1, 7)) == utc(2026, 1, 12, 17)
    assert next_at("every 7 days at 18:00", utc(2026, 1, 10)) == utc(2026, 1, 12, 17)


# --- weekdays -------------------------------------------------------------------------------


def test_weekdays_across_spring_forward_in_berlin() -> None:
    thursday = utc(2026, 3, 26, 17)  # Thu 18:00 CET
    monday = next_at("weekdays mon,thu at 18:00", thursday)
    assert monday == utc(2026, 3, 30, 16)  # Mon 18:00 CEST
    assert next_at("weekdays mon,thu at 18:00", monday) == utc(2026, 4, 2, 16)


def test_weekdays_across_fall_back_in_new_york() -> None:
    # Sun 2026-11-01 is the change; Sat 10-31 09:00 EDT = 13:00Z, Mon 11-02 09:00 EST = 14:00Z.
    assert next_at("weekdays sat,mon at 09:00", utc(2026, 10, 30), NEW_YORK) == utc(
        2026, 10, 31, 13
    )
    assert next_at("weekdays sat,mon at 09:00", utc(2026, 10, 31, 13), NEW_YORK) == utc(
        2026, 11, 2, 14
    )


def test_weekdays_in_kolkata() -> None:
    # Fri 2026-01-09 08:00 IST = 02:30Z.
    assert next_at("weekdays friday at 08:00", utc(2026, 1, 5), KOLKATA) == utc(2026, 1, 9, 2, 30)


# --- sessions -------------------------------------------------------------------------------

WEEKLY = (
    session(utc(2026, 1, 5, 9)),  # Mon 10:00-10:50 Berlin
    session(utc(2026, 1, 12, 9)),
    session(utc(2026, 1, 19, 9)),
)


def test_after_session_counts_hours_after_the_end() -> None:
    assert next_at("after-session 24h", utc(2026, 1, 5, 10), sessions=WEEKLY) == utc(
        2026, 1, 6, 9, 50
    )
    assert next_at("after-session 24h", utc(2026, 1, 6, 9, 50), sessions=WEEKLY) == utc(
        2026, 1, 13, 9, 50
    )


def test_after_session_without_sessions_gives_nothing() -> None:
    assert next_at("after-session 24h", utc(2026, 1, 5)) is None
    assert next_at("after-session 24h", utc(2026, 2, 1), sessions=WEEKLY) is None


def test_before_session_counts_hours_before_the_start() -> None:
    assert next_at("before-session 3h", utc(2026, 1, 5, 10), sessions=WEEKLY) == utc(2026, 1, 12, 6)


def test_after_session_across_spring_forward_is_a_true_duration() -> None:
    # Session ends Sat 2026-03-28 17:50 CET (16:50Z); 24 h later is Sun 18:50 CEST (16:50Z).
    saturday = (session(utc(2026, 3, 28, 16)),)
    assert next_at("after-session 24h", utc(2026, 3, 28), sessions=saturday) == utc(
        2026, 3, 29, 16, 50
    )


def test_midway_is_the_preferred_time_nearest_the_middle_of_the_gap() -> None:
    # Gap Mon 09:50Z .. next Mon 09:00Z; middle Thu 01-08 21:25Z; 18:00 Berlin Thu is 17:00Z.
    assert next_at("midway at 18:00", utc(2026, 1, 5, 10), sessions=WEEKLY) == utc(2026, 1, 8, 17)
    assert next_at("midway at 18:00", utc(2026, 1, 8, 17), sessions=WEEKLY) == utc(2026, 1, 15, 17)


def test_midway_needs_room_between_sessions() -> None:
    evening_then_morning = (session(utc(2026, 1, 5, 17)), session(utc(2026, 1, 6, 9)))
    assert next_at("midway at 18:00", utc(2026, 1, 5), sessions=evening_then_morning) is None
    assert next_at("midway at 18:00", utc(2026, 1, 5), sessions=WEEKLY[:1]) is None


def test_after_each_session_and_midway() -> None:
    spec = "after-session 24h + midway at 18:00"
    first = next_at(spec, utc(2026, 1, 5, 10), sessions=WEEKLY)
    assert first == utc(2026, 1, 6, 9, 50)
    second = next_at(spec, first, sessions=WEEKLY, previous=first)
    assert second == utc(2026, 1, 8, 17)
    third = next_at(spec, second, sessions=WEEKLY, previous=second)
    assert third == utc(2026, 1, 13, 9, 50)


# --- combinations ---------------------------------------------------------------------------


def test_combinations_take_the_earliest_candidate_whatever_the_order() -> None:
    after = utc(2026, 1, 5, 10)
    expected = utc(2026, 1, 5, 17)  # Mon 18:00 Berlin beats Tue 09:50Z
    assert next_at("after-session 24h + every day at 18:00", after, sessions=WEEKLY) == expected
    assert next_at("every day at 18:00 + after-session 24h", after, sessions=WEEKLY) == expected


def test_candidates_within_12_hours_of_the_previous_check_in_are_merged() -> None:
    # A session ending 15:50Z gives an after-session check-in at 15:50Z the next day; the daily
    # 18:00 Berlin (17:00Z) check-in that evening is only 70 minutes later and is dropped.
    monday = (session(utc(2026, 1, 5, 15)),)
    spec = "after-session 24h + every day at 18:00"
    first = next_at(spec, utc(2026, 1, 6, 0), sessions=monday)
    assert first == utc(2026, 1, 6, 15, 50)
    assert next_at(spec, first, sessions=monday, previous=first) == utc(2026, 1, 7, 17)


def test_exactly_12_hours_later_is_not_merged() -> None:
    previous = utc(2026, 1, 6, 5)  # 06:00 Berlin
    assert next_at("every day at 18:00", previous, previous=previous) == utc(2026, 1, 6, 17)
    just_less = previous + timedelta(minutes=1)
    assert next_at("every day at 18:00", just_less, previous=just_less) == utc(2026, 1, 7, 17)


def test_off_gives_nothing() -> None:
    assert next_at("off", utc(2026, 1, 5), sessions=WEEKLY) is None


def test_quiet_hours_move_a_night_candidate_to_the_morning() -> None:
    # Session ends 22:50 Berlin (21:50Z); after-session 0h falls in quiet hours: 09:00 = 08:00Z.
    late = (session(utc(2026, 1, 5, 21)),)
    assert next_at("after-session 0h", utc(2026, 1, 5, 12), sessions=late, quiet=NIGHT) == utc(
        2026, 1, 6, 8
    )


def test_a_night_candidate_before_after_is_still_due_in_the_morning() -> None:
    # At 23:30 the 22:30 check-in is waiting for 09:00: recomputing then must not lose it.
    assert next_at("every day at 22:30", utc(2026, 1, 5, 22, 30), quiet=NIGHT) == utc(2026, 1, 6, 8)


def test_naive_or_unknown_inputs_are_rejected_with_value_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_at("every day at 18:00", datetime(2026, 1, 5))
    for zone in ("Mars/Olympus_Mons", "", "../etc/passwd", "Europe", "x" * 300):
        with pytest.raises(ValueError, match="unknown time zone"):
            next_at("every day at 18:00", utc(2026, 1, 5), zone)


# Zones from UTC-11 to UTC+14, with and without DST; none skipped a whole day since 2000.
FAR_APART = (BERLIN, NEW_YORK, KOLKATA, "Pacific/Pago_Pago", "Pacific/Kiritimati",
             "Pacific/Auckland", "America/St_Johns", "Asia/Kathmandu", "UTC")  # fmt: skip


@given(
    st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(FAR_APART),
    st.sampled_from(FAR_APART),
)
def test_a_carried_anchor_keeps_its_local_date(instant: datetime, old: str, new: str) -> None:
    carried = same_local_day(instant, old, new)
    assert carried.astimezone(ZoneInfo(new)).date() == instant.astimezone(ZoneInfo(old)).date()
    assert carried.astimezone(ZoneInfo(new)).hour == 12
