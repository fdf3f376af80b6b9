"""Quiet hours, the one nudge, expiry, the digest's send time, and durations."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.timing import (
    QuietHours,
    checkin_deadlines,
    defer_out_of_quiet,
    digest_at,
    expires_at,
    format_duration,
    nudge_at,
    parse_duration,
    parse_quiet_hours,
)

from .helpers import BERLIN, KOLKATA, NEW_YORK, local, utc

NIGHT = parse_quiet_hours("21:00-09:00")
LUNCH = parse_quiet_hours("13:00-14:00")

# --- quiet hours ----------------------------------------------------------------------------


def test_parse_quiet_hours() -> None:
    assert QuietHours(time(21, 0), time(9, 0)) == NIGHT
    assert NIGHT.wraps and not LUNCH.wraps
    assert parse_quiet_hours(" 22:30 – 7:00 ") == QuietHours(time(22, 30), time(7, 0))
    assert parse_quiet_hours("off").is_empty
    assert str(NIGHT) == "21:00-09:00" and str(QuietHours.none()) == "off"
    assert parse_quiet_hours(str(LUNCH)) == LUNCH


@pytest.mark.parametrize("text", ["", "21:00", "21:00-25:00", "9-17", "21:00-21:00", "a-b"])
def test_bad_quiet_hours_are_explained(text: str) -> None:
    with pytest.raises(ValueError, match=r"quiet hours|HH:MM"):
        parse_quiet_hours(text)


@pytest.mark.parametrize(
    ("wall", "quiet", "inside"),
    [
        (time(22, 30), NIGHT, True),
        (time(21, 0), NIGHT, True),
        (time(3, 0), NIGHT, True),
        (time(8, 59), NIGHT, True),
        (time(9, 0), NIGHT, False),
        (time(20, 59), NIGHT, False),
        (time(13, 0), LUNCH, True),
        (time(13, 59), LUNCH, True),
        (time(14, 0), LUNCH, False),
        (time(12, 59), LUNCH, False),
        (time(3, 0), QuietHours.none(), False),
    ],
)
def test_quiet_window_membership(wall: time, quiet: QuietHours, inside: bool) -> None:
    assert quiet.contains(wall) is inside


def test_a_candidate_at_22_30_waits_for_09_00_next_morning() -> None:
    assert defer_out_of_quiet(local(BERLIN, 2026, 1, 5, 22, 30), BERLIN, NIGHT) == local(
        BERLIN, 2026, 1, 6, 9
    )


def test_an_early_morning_candidate_waits_until_09_00_the_same_day() -> None:
    assert defer_out_of_quiet(local(BERLIN, 2026, 1, 6, 5), BERLIN, NIGHT) == local(
        BERLIN, 2026, 1, 6, 9
    )


def test_outside_quiet_hours_nothing_moves() -> None:
    at_nine = local(BERLIN, 2026, 1, 6, 9)
    assert defer_out_of_quiet(at_nine, BERLIN, NIGHT) == at_nine
    assert defer_out_of_quiet(at_nine, BERLIN, None) == at_nine
    assert defer_out_of_quiet(at_nine, BERLIN, QuietHours.none()) == at_nine


def test_a_window_that_does_not_wrap() -> None:
    assert defer_out_of_quiet(local(NEW_YORK, 2026, 1, 6, 13, 30), NEW_YORK, LUNCH) == local(
        NEW_YORK, 2026, 1, 6, 14
    )
    two = local(NEW_YORK, 2026, 1, 6, 14)
    assert defer_out_of_quiet(two, NEW_YORK, LUNCH) == two


def test_quiet_hours_are_the_clients_local_time() -> None:
    # 16:00Z is 21:30 in Kolkata (quiet) but 17:00 in Berlin (not quiet).
    instant = utc(2026, 1, 6, 16)
    assert defer_out_of_quiet(instant, BERLIN, NIGHT) == instant
    assert defer_out_of_quiet(instant, KOLKATA, NIGHT) == utc(2026, 1, 7, 3, 30)


def test_the_morning_after_spring_forward_is_09_00_summer_time() -> None:
    # Sat 2026-03-28 22:00 CET; the morning is Sun 09:00 CEST = 07:00Z.
    assert defer_out_of_quiet(utc(2026, 3, 28, 21), BERLIN, NIGHT) == utc(2026, 3, 29, 7)


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)))
def test_deferral_never_lands_in_quiet_hours_and_never_goes_back(naive: datetime) -> None:
    instant = naive.replace(tzinfo=UTC)
    for tz in (BERLIN, NEW_YORK, KOLKATA):
        moved = defer_out_of_quiet(instant, tz, NIGHT)
        assert moved >= instant
        assert moved - instant <= timedelta(hours=13)
        assert not NIGHT.contains(moved.astimezone(ZoneInfo(tz)).time())


# --- nudge and expiry -----------------------------------------------------------------------


def test_nudge_two_days_later_and_expiry_four_days_later() -> None:
    opened = local(BERLIN, 2026, 1, 5, 18)
    deadlines = checkin_deadlines(opened, tz=BERLIN, quiet=NIGHT, next_session_start=None)
    assert deadlines.nudge_at == local(BERLIN, 2026, 1, 7, 18)
    assert deadlines.expires_at == local(BERLIN, 2026, 1, 9, 18)


def test_a_nudge_due_at_night_waits_for_the_morning() -> None:
    opened = local(BERLIN, 2026, 1, 5, 22, 30)
    assert nudge_at(opened, BERLIN, NIGHT) == local(BERLIN, 2026, 1, 8, 9)


def test_expiry_is_the_next_session_when_that_is_sooner() -> None:
    opened = local(BERLIN, 2026, 1, 5, 18)
    session = local(BERLIN, 2026, 1, 8, 10)
    assert expires_at(opened, session) == session
    later_session = local(BERLIN, 2026, 1, 12, 10)
    assert expires_at(opened, later_session) == local(BERLIN, 2026, 1, 9, 18)
    stale_session = local(BERLIN, 2026, 1, 5, 10)
    assert expires_at(opened, stale_session) == local(BERLIN, 2026, 1, 9, 18)


def test_no_nudge_after_expiry() -> None:
    opened = local(BERLIN, 2026, 1, 5, 18)
    session = local(BERLIN, 2026, 1, 7, 10)  # expires before the nudge would be due (Jan 7 18:00)
    deadlines = checkin_deadlines(opened, tz=BERLIN, quiet=NIGHT, next_session_start=session)
    assert deadlines.expires_at == session
    assert deadlines.nudge_at is None


def test_no_nudge_when_quiet_hours_push_it_to_the_expiry() -> None:
    opened = local(BERLIN, 2026, 1, 5, 22, 30)  # nudge waits for 09:00 on Jan 8
    assert nudge_at(opened, BERLIN, NIGHT, expires=local(BERLIN, 2026, 1, 8, 9)) is None
    assert nudge_at(opened, BERLIN, NIGHT, expires=local(BERLIN, 2026, 1, 8, 9, 30)) is None
    assert nudge_at(opened, BERLIN, NIGHT, expires=local(BERLIN, 2026, 1, 8, 10)) == local(
        BERLIN, 2026, 1, 8, 9
    )


@given(
    opened=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
    session_in=st.one_of(st.none(), st.integers(-3 * 24 * 60, 8 * 24 * 60)),
    tz=st.sampled_from([BERLIN, NEW_YORK, KOLKATA]),
)
def test_at_most_one_nudge_never_in_quiet_hours_never_after_expiry(
    opened: datetime, session_in: int | None, tz: str
) -> None:
    opened = opened.replace(tzinfo=UTC)
    session = None if session_in is None else opened + timedelta(minutes=session_in)
    deadlines = checkin_deadlines(opened, tz=tz, quiet=NIGHT, next_session_start=session)
    assert opened < deadlines.expires_at <= opened + timedelta(days=4)
    if deadlines.nudge_at is not None:
        assert opened + timedelta(days=2) <= deadlines.nudge_at
        assert deadlines.nudge_at <= deadlines.expires_at - timedelta(hours=1)
        assert not NIGHT.contains(deadlines.nudge_at.astimezone(ZoneInfo(tz)).time())


# --- digest ---------------------------------------------------------------------------------


def test_digest_goes_the_lead_time_before_the_session() -> None:
    session = local(BERLIN, 2026, 1, 8, 16)
    assert digest_at(session, therapist_tz=BERLIN, therapist_quiet=NIGHT) == local(
        BERLIN, 2026, 1, 8, 13
    )
    assert digest_at(
        session, timedelta(hours=1), therapist_tz=BERLIN, therapist_quiet=NIGHT
    ) == local(BERLIN, 2026, 1, 8, 15)


def test_digest_in_quiet_hours_moves_to_just_before_they_began() -> None:
    # A 10:00 session with a 3 h lead would be 07:00: quiet since 21:00 the evening before.
    assert digest_at(
        local(BERLIN, 2026, 1, 8, 10), therapist_tz=BERLIN, therapist_quiet=NIGHT
    ) == local(BERLIN, 2026, 1, 7, 20, 55)
    # A 23:30 session with a 1 h lead would be 22:30: quiet since 21:00 the same evening.
    assert digest_at(
        local(BERLIN, 2026, 1, 8, 23, 30),
        timedelta(hours=1),
        therapist_tz=BERLIN,
        therapist_quiet=NIGHT,
    ) == local(BERLIN, 2026, 1, 8, 20, 55)


def test_digest_moves_out_of_a_midday_window() -> None:
    assert digest_at(
        local(NEW_YORK, 2026, 1, 8, 16), therapist_tz=NEW_YORK, therapist_quiet=LUNCH
    ) == local(NEW_YORK, 2026, 1, 8, 12, 55)


def test_digest_uses_the_therapists_zone_across_spring_forward() -> None:
    # Sun 2026-03-29 09:00 CEST session; 06:00 is quiet since Sat 21:00 CET (20:00Z).
    assert digest_at(utc(2026, 3, 29, 7), therapist_tz=BERLIN, therapist_quiet=NIGHT) == utc(
        2026, 3, 28, 19, 55
    )


def test_digest_without_quiet_hours_is_just_the_lead() -> None:
    session = local(BERLIN, 2026, 1, 8, 8)
    assert digest_at(session, therapist_tz=BERLIN, therapist_quiet=None) == session - timedelta(
        hours=3
    )


@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
    lead_minutes=st.integers(0, 48 * 60),
    tz=st.sampled_from([BERLIN, NEW_YORK, KOLKATA]),
)
def test_digest_is_never_later_than_the_lead_nor_in_quiet_hours(
    start: datetime, lead_minutes: int, tz: str
) -> None:
    session = start.replace(tzinfo=UTC)
    lead = timedelta(minutes=lead_minutes)
    sent = digest_at(session, lead, therapist_tz=tz, therapist_quiet=NIGHT)
    assert sent <= session - lead
    assert session - lead - sent <= timedelta(hours=13, minutes=5)  # a 13 h fall-back night
    assert not NIGHT.contains(sent.astimezone(ZoneInfo(tz)).time())


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3h", timedelta(hours=3)),
        ("90m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 1d 2h ", timedelta(days=1, hours=2)),
        ("3H", timedelta(hours=3)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected a duration"),
        ("3", "add a unit"),
        ("h", "expected a duration"),
        ("3x", "expected a duration"),
        ("-3h", "expected a duration"),
        ("1.5h", "expected a duration"),
        ("30m1h", "expected a duration"),
        ("0h", "positive"),
        ("9999d", "too long"),
    ],
)
def test_bad_durations_are_explained(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


def test_format_duration_is_canonical() -> None:
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(days=2)) == "2d"
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=30))


@given(st.text(max_size=12))
def test_random_duration_text_raises_only_value_error(text: str) -> None:
    try:
        value = parse_duration(text)
    except ValueError:
        return
    assert value > timedelta(0)
