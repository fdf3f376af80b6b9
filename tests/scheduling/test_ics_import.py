"""Calendar import: expansion of series, zones, all-day and cancelled events, client codes."""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar
import pytest

from app.ics_import import (
    CalendarEvent,
    match_client,
    normalise_code,
    parse_sessions,
    plan_import,
)

from .helpers import utc


def parse_h1(
    ics: bytes, *, default_minutes: int = 50, default_tz: str = "UTC"
) -> list[CalendarEvent]:
    """Sessions in the first half of 2026."""
    return parse_sessions(
        ics,
        window_start=utc(2026, 1, 1),
        window_end=utc(2026, 7, 1),
        default_minutes=default_minutes,
        default_tz=default_tz,
    )


BERLIN_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Practice Local
BEGIN:STANDARD
DTSTART:19701025T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
END:VTIMEZONE"""


def calendar(*events: str, header: str = "") -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Rapport tests//EN"]
    if header:
        lines.extend(header.splitlines())
    for event in events:
        lines.extend(event.strip().splitlines())
    lines.append("END:VCALENDAR")
    return ("\r\n".join(line.strip() for line in lines) + "\r\n").encode()


def test_a_single_event() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:one@practice
        DTSTART:20260105T090000Z
        DTEND:20260105T095000Z
        SUMMARY:Session #RC-7F3K
        DESCRIPTION:Room 2
        END:VEVENT"""
    )
    [event] = parse_h1(ics)
    assert event == CalendarEvent(
        uid="one@practice",
        start=utc(2026, 1, 5, 9),
        end=utc(2026, 1, 5, 9, 50),
        summary="Session #RC-7F3K",
        description="Room 2",
    )
    assert event.key == "one@practice"
    assert parse_sessions(ics, window_start=utc(2026, 2, 1), window_end=utc(2026, 3, 1)) == []


def test_length_from_duration_or_the_default() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:d
        DTSTART:20260105T090000Z
        DURATION:PT1H15M
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:e
        DTSTART:20260106T090000Z
        END:VEVENT""",
    )
    first, second = parse_h1(ics, default_minutes=45)
    assert first.end - first.start == timedelta(hours=1, minutes=15)
    assert second.end - second.start == timedelta(minutes=45)


WEEKLY_SERIES = calendar(
    """BEGIN:VEVENT
    UID:series@practice
    DTSTART;TZID=Europe/Berlin:20260302T100000
    DTEND;TZID=Europe/Berlin:20260302T105000
    RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6
    EXDATE;TZID=Europe/Berlin:20260316T100000
    SUMMARY:[rc-7f3k]
    END:VEVENT""",
    """BEGIN:VEVENT
    UID:series@practice
    RECURRENCE-ID;TZID=Europe/Berlin:20260323T100000
    DTSTART;TZID=Europe/Berlin:20260324T110000
    DTEND;TZID=Europe/Berlin:20260324T115000
    SUMMARY:[rc-7f3k] moved
    END:VEVENT""",
    """BEGIN:VEVENT
    UID:series@practice
    RECURRENCE-ID;TZID=Europe/Berlin:20260406T100000
    DTSTART;TZID=Europe/Berlin:20260406T100000
    DTEND;TZID=Europe/Berlin:20260406T105000
    STATUS:CANCELLED
    SUMMARY:[rc-7f3k]
    END:VEVENT""",
)


def test_weekly_series_with_exdate_a_moved_and_a_cancelled_instance() -> None:
    events = parse_h1(WEEKLY_SERIES)
    # Mondays 10:00 Berlin: 09:00Z in winter, 08:00Z after 2026-03-29; Mar 16 excluded,
    # Mar 23 moved to Tue Mar 24 11:00 CET, Apr 6 cancelled.
    assert [(e.start, e.cancelled) for e in events] == [
        (utc(2026, 3, 2, 9), False),
        (utc(2026, 3, 9, 9), False),
        (utc(2026, 3, 24, 10), False),
        (utc(2026, 3, 30, 8), False),
        (utc(2026, 4, 6, 8), True),
    ]
    moved = events[2]
    assert moved.summary == "[rc-7f3k] moved"
    assert moved.end == utc(2026, 3, 24, 10, 50)
    assert moved.recurrence_id == utc(2026, 3, 23, 9)
    assert moved.key == "series@practice@20260323T090000Z"
    assert all(e.uid == "series@practice" for e in events)
    assert events[3].end - events[3].start == timedelta(minutes=50)


def test_the_window_cuts_a_series_and_a_moved_instance_follows_its_new_time() -> None:
    events = parse_sessions(
        WEEKLY_SERIES, window_start=utc(2026, 3, 24), window_end=utc(2026, 3, 31)
    )
    assert [e.start for e in events] == [utc(2026, 3, 24, 10), utc(2026, 3, 30, 8)]
    only_original_day = parse_sessions(
        WEEKLY_SERIES, window_start=utc(2026, 3, 23), window_end=utc(2026, 3, 24)
    )
    assert only_original_day == []


def test_an_endless_series_in_new_york_with_until_and_rdate() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:ny
        DTSTART;TZID=America/New_York:20260227T170000
        DURATION:PT50M
        RRULE:FREQ=WEEKLY;UNTIL=20260320T210000Z
        RDATE;TZID=America/New_York:20260401T090000
        END:VEVENT"""
    )
    starts = [e.start for e in parse_h1(ics)]
    # Fridays 17:00: EST (22:00Z) until 2026-03-08, then EDT (21:00Z); UNTIL is inclusive.
    assert starts == [
        utc(2026, 2, 27, 22),
        utc(2026, 3, 6, 22),
        utc(2026, 3, 13, 21),
        utc(2026, 3, 20, 21),
        utc(2026, 4, 1, 13),
    ]


def test_an_unbounded_series_is_expanded_only_inside_the_window() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:forever
        DTSTART:20200106T090000Z
        RRULE:FREQ=WEEKLY
        END:VEVENT"""
    )
    events = parse_sessions(ics, window_start=utc(2026, 1, 1), window_end=utc(2026, 1, 31))
    assert [e.start for e in events] == [utc(2026, 1, d, 9) for d in (5, 12, 19, 26)]


def test_a_custom_vtimezone_is_honoured() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:custom
        DTSTART;TZID=Practice Local:20260706T100000
        DTEND;TZID=Practice Local:20260706T105000
        END:VEVENT""",
        header=BERLIN_VTIMEZONE,
    )
    [event] = parse_sessions(ics, window_start=utc(2026, 7, 1), window_end=utc(2026, 8, 1))
    assert event.start == utc(2026, 7, 6, 8)  # 10:00 at +02:00


def test_floating_times_use_the_default_zone() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:floating
        DTSTART:20260105T100000
        END:VEVENT"""
    )
    [event] = parse_h1(ics, default_tz="Asia/Kolkata")
    assert event.start == utc(2026, 1, 5, 4, 30)


def test_all_day_events_are_not_sessions() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:holiday
        DTSTART;VALUE=DATE:20260105
        DTEND;VALUE=DATE:20260106
        SUMMARY:Practice closed #RC-7F3K
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:weekly-all-day
        DTSTART;VALUE=DATE:20260105
        RRULE:FREQ=WEEKLY
        END:VEVENT""",
    )
    assert parse_h1(ics) == []


def test_cancelled_events_are_reported_as_cancellations() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:gone
        DTSTART:20260105T090000Z
        STATUS:CANCELLED
        SUMMARY:#RC-7F3K
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:kept
        DTSTART:20260106T090000Z
        STATUS:CONFIRMED
        SUMMARY:#RC-7F3K
        END:VEVENT""",
    )
    events = parse_h1(ics)
    assert [(e.uid, e.cancelled) for e in events] == [("gone", True), ("kept", False)]
    plan = plan_import(events, {"RC-7F3K": 7})
    assert [(m.event.uid, m.client_id) for m in plan.cancellations] == [("gone", 7)]
    assert [(m.event.uid, m.client_id) for m in plan.sessions] == [("kept", 7)]
    assert plan.unmatched == ()


def test_a_cancel_message_cancels_its_events() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:via-method
        DTSTART:20260105T090000Z
        END:VEVENT""",
        header="METHOD:CANCEL",
    )
    [event] = parse_h1(ics)
    assert event.cancelled


def test_a_file_built_with_the_icalendar_library() -> None:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Rapport tests//EN")
    cal.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", "built")
    event.add("dtstart", datetime(2026, 1, 7, 15, 0, tzinfo=utc(2026, 1, 1).tzinfo))
    event.add("dtend", datetime(2026, 1, 7, 16, 0, tzinfo=utc(2026, 1, 1).tzinfo))
    event.add("summary", "Follow-up #ab-12")
    cal.add_component(event)
    [parsed] = parse_h1(cal.to_ical())
    assert (parsed.start, parsed.end) == (utc(2026, 1, 7, 15), utc(2026, 1, 7, 16))
    assert match_client(parsed, {"AB-12": 3}) == 3


@pytest.mark.parametrize(
    "data",
    [b"", b"not a calendar", b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n"],
)
def test_unreadable_files_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="iCalendar"):
        parse_h1(data)


def test_naive_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_sessions(calendar(), window_start=datetime(2026, 1, 1), window_end=utc(2026, 2, 1))


# --- client codes ---------------------------------------------------------------------------

CODES = {"RC-7F3K": 7, "#RC-9QQQ": 9}


def event_with(summary: str, description: str = "") -> CalendarEvent:
    return CalendarEvent("u", utc(2026, 1, 5, 9), utc(2026, 1, 5, 10), summary, description)


@pytest.mark.parametrize(
    ("summary", "description", "client"),
    [
        ("Session", "", None),
        ("Session #RC-7F3K", "", 7),
        ("Session", "see [rc-7f3k] notes", 7),
        ("Session #rc-9qqq.", "", 9),
        ("#RC-7F3K and #RC-9QQQ", "", None),
        ("#RC-7F3K", "[RC-9QQQ]", None),
        ("#RC-7F3K", "#rc-7f3k again", 7),
        ("Session #3 [Zoom] #RC-UNKNOWN", "", None),
        ("Session #3 [Zoom] #RC-7F3K", "", 7),
    ],
)
def test_match_client(summary: str, description: str, client: int | None) -> None:
    assert match_client(event_with(summary, description), CODES) == client


def test_two_codes_of_the_same_client_still_match_it() -> None:
    assert match_client(event_with("#A1 #B2"), {"A1": 4, "B2": 4}) == 4


def test_unmatched_events_are_listed_not_guessed() -> None:
    events = [event_with("nothing"), event_with("#RC-7F3K #RC-9QQQ"), event_with("[RC-7F3K]")]
    plan = plan_import(events, CODES)
    assert plan.unmatched == (events[0], events[1])
    assert [m.client_id for m in plan.sessions] == [7]


def test_normalise_code() -> None:
    assert normalise_code(" #rc-7f3k ") == "RC-7F3K"
    assert normalise_code("[Rc-7F3k]") == "RC-7F3K"


def test_exdate_and_recurrence_id_written_in_utc_match_local_occurrences() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:utc-refs
        DTSTART;TZID=Europe/Berlin:20260105T100000
        DURATION:PT50M
        RRULE:FREQ=WEEKLY;COUNT=3
        EXDATE:20260112T090000Z
        STATUS:CANCELLED
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:utc-refs
        RECURRENCE-ID:20260119T090000Z
        DTSTART:20260119T140000Z
        DURATION:PT50M
        END:VEVENT""",
    )
    events = parse_h1(ics)
    # Jan 12 is excluded; Jan 19 moved to 14:00Z and, as its own instance, not cancelled;
    # the rest of the cancelled series stays cancelled.
    assert [(e.start, e.cancelled) for e in events] == [
        (utc(2026, 1, 5, 9), True),
        (utc(2026, 1, 19, 14), False),
    ]


# --- series as calendar programs write them -------------------------------------------------


def test_an_exdate_written_in_another_zone_removes_the_same_instant() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:cross-zone
        DTSTART;TZID=Europe/Berlin:20260105T160000
        DURATION:PT50M
        RRULE:FREQ=WEEKLY;COUNT=3
        EXDATE;TZID=America/New_York:20260112T100000
        END:VEVENT"""
    )
    # 16:00 Berlin is 10:00 New York in January: the second Monday is excluded.
    assert [e.start for e in parse_h1(ics)] == [utc(2026, 1, 5, 15), utc(2026, 1, 19, 15)]


def test_a_recurrence_id_in_another_zone_moves_its_occurrence() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:moved-abroad
        DTSTART;TZID=Europe/Berlin:20260105T160000
        DURATION:PT50M
        RRULE:FREQ=WEEKLY;COUNT=3
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:moved-abroad
        RECURRENCE-ID;TZID=America/New_York:20260112T100000
        DTSTART;TZID=Europe/Berlin:20260113T090000
        DURATION:PT30M
        END:VEVENT""",
    )
    events = parse_h1(ics)
    assert [(e.start, e.end - e.start) for e in events] == [
        (utc(2026, 1, 5, 15), timedelta(minutes=50)),
        (utc(2026, 1, 13, 8), timedelta(minutes=30)),
        (utc(2026, 1, 19, 15), timedelta(minutes=50)),
    ]
    assert events[1].recurrence_id == utc(2026, 1, 12, 15)


def test_count_includes_excluded_instances_and_until_may_be_a_date() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:count
        DTSTART;TZID=Europe/Berlin:20260105T100000
        RRULE:FREQ=WEEKLY;COUNT=3
        EXDATE;TZID=Europe/Berlin:20260112T100000
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:until-day
        DTSTART;TZID=Europe/Berlin:20260106T100000
        RRULE:FREQ=WEEKLY;UNTIL=20260120
        END:VEVENT""",
    )
    by_uid: dict[str, list[datetime]] = {}
    for event in parse_h1(ics):
        by_uid.setdefault(event.uid, []).append(event.start)
    assert by_uid == {
        "count": [utc(2026, 1, 5, 9), utc(2026, 1, 19, 9)],
        "until-day": [utc(2026, 1, 6, 9), utc(2026, 1, 13, 9), utc(2026, 1, 20, 9)],
    }


def test_a_daily_series_keeps_its_wall_time_through_both_dst_changes() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:night
        DTSTART;TZID=Europe/Berlin:20260328T023000
        RRULE:FREQ=DAILY;COUNT=3
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:autumn
        DTSTART;TZID=Europe/Berlin:20261024T023000
        RRULE:FREQ=DAILY;COUNT=3
        END:VEVENT""",
    )
    events = parse_sessions(ics, window_start=utc(2026, 1, 1), window_end=utc(2027, 1, 1))
    assert [e.start for e in events] == [
        # 02:30 does not exist on 29 March: read with the offset before the gap (RFC 5545).
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 30, 0, 30),
        # 02:30 happens twice on 25 October: the first one.
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]


def test_a_google_export_in_utc_keeps_its_local_time_across_dst() -> None:
    """Google writes UTC times and names the calendar's zone in X-WR-TIMEZONE."""
    ics = calendar(
        """BEGIN:VEVENT
        UID:google
        DTSTART:20260323T090000Z
        DTEND:20260323T095000Z
        RRULE:FREQ=WEEKLY;COUNT=2
        END:VEVENT""",
        header="X-WR-TIMEZONE:Europe/Berlin",
    )
    # 10:00 Berlin on both Mondays: 09:00Z before 29 March, 08:00Z after.
    assert [e.start for e in parse_h1(ics)] == [utc(2026, 3, 23, 9), utc(2026, 3, 30, 8)]


def test_an_unknown_calendar_zone_is_reported_and_not_applied() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:nowhere
        DTSTART:20260105T100000
        END:VEVENT""",
        header="X-WR-TIMEZONE:Mars/Olympus",
    )
    problems: list[str] = []
    [event] = parse_sessions(
        ics, window_start=utc(2026, 1, 1), window_end=utc(2026, 2, 1), problems=problems
    )
    assert event.start == utc(2026, 1, 5, 10)
    assert problems == ["the calendar's time zone 'Mars/Olympus' is unknown (not guessed); ignored"]


def test_this_and_future_moves_the_rest_of_the_series() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:later
        DTSTART:20260105T090000Z
        DURATION:PT50M
        RRULE:FREQ=WEEKLY;COUNT=4
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:later
        RECURRENCE-ID;RANGE=THISANDFUTURE:20260119T090000Z
        DTSTART:20260119T100000Z
        DURATION:PT50M
        END:VEVENT""",
    )
    assert [e.start for e in parse_h1(ics)] == [
        utc(2026, 1, 5, 9),
        utc(2026, 1, 12, 9),
        utc(2026, 1, 19, 10),
        utc(2026, 1, 26, 10),
    ]


def test_an_rdate_period_has_its_own_length() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:period
        DTSTART:20260105T090000Z
        DURATION:PT50M
        RDATE;VALUE=PERIOD:20260107T090000Z/PT90M
        END:VEVENT"""
    )
    assert [e.end - e.start for e in parse_h1(ics)] == [
        timedelta(minutes=50),
        timedelta(minutes=90),
    ]


def test_an_end_before_the_start_keeps_the_start_and_takes_the_default_length() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:backwards
        DTSTART:20260105T090000Z
        DTEND:20260105T080000Z
        RRULE:FREQ=DAILY;COUNT=2
        END:VEVENT"""
    )
    assert [(e.start, e.end) for e in parse_h1(ics, default_minutes=45)] == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 9, 45)),
        (utc(2026, 1, 6, 9), utc(2026, 1, 6, 9, 45)),
    ]


def test_an_unreadable_rule_skips_its_series_and_says_so() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:bad-rule
        DTSTART:20260105T090000Z
        RRULE:FREQ=WEEKLY;BYSETPOS=0
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:on-the-spot
        DTSTART:20260107T090000Z
        RRULE:FREQ=WEEKLY;INTERVAL=0
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:fine
        DTSTART:20260106T090000Z
        END:VEVENT""",
    )
    problems: list[str] = []
    events = parse_sessions(
        ics, window_start=utc(2026, 1, 1), window_end=utc(2026, 2, 1), problems=problems
    )
    assert [e.uid for e in events] == ["fine"]
    assert [p.split(" (", 2)[:2] for p in problems] == [
        ["event 1", "UID bad-rule): its dates could not be read"],
        ["event 2", "UID on-the-spot): its dates could not be read"],
    ]
    assert not any("BYSETPOS" in p or "INTERVAL" in p for p in problems)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=MINUTELY",  # every minute since 2020
        "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30;COUNT=1",  # never matches: walks forever
        "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11;BYMINUTE=0,10,20,30,40,50",
    ],
)
def test_a_series_too_dense_to_expand_is_refused(rule: str) -> None:
    ics = calendar(
        f"""BEGIN:VEVENT
        UID:dense
        DTSTART:20200106T090000Z
        RRULE:{rule}
        END:VEVENT"""
    )
    with pytest.raises(ValueError, match=r"event 1 \(UID dense\): recurs too densely to expand"):
        parse_h1(ics)


def test_a_short_series_that_started_long_ago_is_expanded() -> None:
    ics = calendar(
        """BEGIN:VEVENT
        UID:old-hourly
        DTSTART:20200106T090000Z
        RRULE:FREQ=HOURLY;COUNT=3
        END:VEVENT""",
        """BEGIN:VEVENT
        UID:old-weekly
        DTSTART:19900101T090000Z
        RRULE:FREQ=WEEKLY;BYDAY=MO,TH
        END:VEVENT""",
    )
    events = parse_sessions(ics, window_start=utc(2026, 1, 1), window_end=utc(2026, 1, 8))
    assert [(e.uid, e.start) for e in events] == [
        ("old-weekly", utc(2026, 1, 1, 9)),
        ("old-weekly", utc(2026, 1, 5, 9)),
    ]
