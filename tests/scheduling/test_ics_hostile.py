"""Calendar files nobody should send, and events that cannot be read: one clear line, never a
traceback, and nothing skipped or guessed without saying so."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.ics_import import MAX_ICS_BYTES, parse_sessions
from tests.e2e.test_cli import rapport as rapport  # the fixtures
from tests.e2e.test_cli import rapport_before_start as rapport_before_start

from .helpers import utc
from .test_ics_import import calendar

NESTED = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
    + b"BEGIN:VEVENT\r\n" * 3000
    + b"END:VEVENT\r\n" * 3000
    + b"END:VCALENDAR\r\n"
)
GOOD = """BEGIN:VEVENT
UID:good-1
DTSTART:20300107T140000Z
DTEND:20300107T145000Z
SUMMARY:Alice Smith #{code}
END:VEVENT"""
NOT_A_DATE = """BEGIN:VEVENT
UID:broken-1
DTSTART:notadate
SUMMARY:Bob Brown #{code}
END:VEVENT"""
UNKNOWN_ZONE = """BEGIN:VEVENT
UID:zone-1
DTSTART;TZID=Mars/Olympus:20300108T150000
SUMMARY:Carol White #{code}
END:VEVENT"""


def parse(ics: bytes, problems: list[str] | None = None) -> list[object]:
    return list(
        parse_sessions(
            ics, window_start=utc(2029, 1, 1), window_end=utc(2031, 1, 1), problems=problems
        )
    )


def test_thousands_of_nested_events_are_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="nested more than 8 deep"):
        parse(NESTED)


def test_an_unreadable_start_and_an_unknown_zone_are_reported_not_guessed() -> None:
    problems: list[str] = []
    ics = calendar(GOOD, NOT_A_DATE, UNKNOWN_ZONE)
    events = parse(ics, problems)
    assert [e.uid for e in events] == ["good-1"]  # type: ignore[attr-defined]
    assert problems == [
        "event 2 (UID broken-1): DTSTART is not a date-time (Wrong date format notadate); skipped",
        "event 3 (UID zone-1): unknown time zone 'Mars/Olympus' (not guessed); skipped",
    ]


ICS_LINES = st.sampled_from(
    [
        "BEGIN:VCALENDAR",
        "END:VCALENDAR",
        "BEGIN:VEVENT",
        "END:VEVENT",
        "BEGIN:VTIMEZONE",
        "END:VTIMEZONE",
        "UID:x",
        "DTSTART:20300107T140000Z",
        "DTSTART;TZID=Nowhere/City:20300107T140000",
        "DTSTART;VALUE=DATE:20300107",
        "DTSTART:notadate",
        "DTEND:20300107T130000Z",
        "DURATION:-PT5M",
        "RRULE:FREQ=SECONDLY",
        "RRULE:FREQ=WEEKLY;UNTIL=99991231T000000Z",
        "RRULE:garbage",
        "RDATE;VALUE=PERIOD:20300107T140000Z/PT1H",
        "EXDATE:20300107T140000Z",
        "RECURRENCE-ID:20300107T140000Z",
        "RECURRENCE-ID:bad",
        "SEQUENCE:x",
        "STATUS:CANCELLED",
        "SUMMARY:#RC-1",
        # what the recurrence library is handed: rules it refuses, zones, moved series
        "DTSTART:19700101T000000Z",
        "DTSTART:20300107T140000",
        "DTEND;VALUE=DATE:20300108",
        "RRULE:FREQ=DAILY;INTERVAL=0",
        "RRULE:FREQ=WEEKLY;BYSETPOS=0",
        "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
        "RRULE:FREQ=WEEKLY;UNTIL=20300301",
        "RRULE:FREQ=HOURLY;COUNT=3",
        "RDATE:20300109T140000Z",
        "EXDATE;VALUE=DATE:20300107",
        "RECURRENCE-ID;RANGE=THISANDFUTURE:20300107T140000Z",
        "RECURRENCE-ID;VALUE=DATE:20300107",
        "X-WR-TIMEZONE:Europe/Berlin",
        "X-WR-TIMEZONE:Nowhere/City",
        " folded",
        "",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=2000), st.lists(ICS_LINES, max_size=40).map("\r\n".join).map(str.encode)
    )
)
def test_any_bytes_as_a_calendar_never_crash_the_parser(ics: bytes) -> None:
    problems: list[str] = []
    try:
        parse(ics, problems)
    except ValueError as exc:
        assert "\n" not in str(exc)
    assert all("\n" not in p for p in problems)


def test_what_a_calendar_says_is_never_echoed_in_its_error() -> None:
    """A line the parser chokes on may be a client's name or a note about them."""
    secret = "Alice Smith self-harm notes"
    broken = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + secret.encode() + b"\r\nEND:VCALENDAR\r\n"
    problems: list[str] = []
    with pytest.raises(ValueError) as refused:
        parse(broken, problems)
    assert "Alice" not in str(refused.value) and "self-harm" not in str(refused.value)
    assert not any("Alice" in p for p in problems)


# --- through the CLI ------------------------------------------------------------------------


@pytest.fixture
def practice(rapport):  # type: ignore[no-untyped-def]
    rapport("therapist", "add", "--name", "Dana Lee")
    return json.loads(
        rapport("client", "add", "--therapist", "1", "--name", "Alice Smith", "--json")
    )


@pytest.mark.parametrize("kind", ["nested", "huge", "binary", "truncated", "empty"])
def test_a_pathological_file_gets_one_line_and_a_non_zero_exit(  # type: ignore[no-untyped-def]
    rapport, practice, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"{kind}.ics"
    if kind == "nested":
        path.write_bytes(NESTED)
    elif kind == "huge":
        with path.open("wb") as f:
            f.truncate(MAX_ICS_BYTES + 1)  # sparse: no 10 MiB written
    elif kind == "binary":
        path.write_bytes(os.urandom(4096))
    elif kind == "truncated":
        path.write_bytes(calendar(GOOD.format(code=practice["code"]))[:70])
    else:
        path.write_bytes(b"")
    out = rapport("session", "import", str(path), "--therapist", "1", code=1)
    assert out.count("\n") == 1 and out.startswith("rapport: "), out
    assert "Traceback" not in out


def test_the_import_names_what_it_skipped_without_client_names_in_the_log(  # type: ignore[no-untyped-def]
    rapport, practice, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code = practice["code"]
    soon = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y%m%d")
    good = GOOD.format(code=code).replace("20300107", soon)
    path = tmp_path / "dana.ics"
    path.write_bytes(calendar(good, NOT_A_DATE.format(code=code), UNKNOWN_ZONE.format(code=code)))
    with caplog.at_level(logging.DEBUG):
        out = rapport("session", "import", str(path), "--therapist", "1")
    assert "1 created" in out
    assert "event 2 (UID broken-1): DTSTART is not a date-time" in out
    assert "event 3 (UID zone-1): unknown time zone 'Mars/Olympus'" in out
    for name in ("Alice", "Bob", "Carol", "Smith", "Brown", "White"):
        assert name not in caplog.text and name not in out
