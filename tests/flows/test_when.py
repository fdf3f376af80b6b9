from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.when import parse_when

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # Wednesday, 11:00 in Berlin


@pytest.mark.parametrize(
    ("text", "expected_local"),
    [
        ("2026-03-09 15:00", "2026-03-09 15:00"),
        ("2026-03-09T15:00", "2026-03-09 15:00"),
        ("tue 15:00", "2026-03-10 15:00"),
        ("wed 12:00", "2026-03-04 12:00"),  # later today
        ("wed 10:00", "2026-03-11 10:00"),  # already past today: next week
        ("tomorrow 9:30", "2026-03-05 09:30"),
        ("Tomorrow 9", "2026-03-05 09:00"),
        ("mañana 18:00", "2026-03-05 18:00"),
        ("вт 15:00", "2026-03-10 15:00"),
        ("jueves 8.15", "2026-03-05 08:15"),
    ],
)
def test_everyday_forms_in_the_therapists_zone(text: str, expected_local: str) -> None:
    got = parse_when(text, now=NOW, tz="Europe/Berlin")
    assert got.tzinfo is not None
    from zoneinfo import ZoneInfo

    assert got.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M") == expected_local


def test_an_explicit_offset_wins() -> None:
    got = parse_when("2026-03-09T15:00:00+00:00", now=NOW, tz="Europe/Berlin")
    assert got == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "someday 15:00", "tue", "tue 25:00", "tue 15:00 extra"])
def test_bad_input_says_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_when(text, now=NOW, tz="Europe/Berlin")


@given(st.text(max_size=40))
def test_any_text_either_parses_or_raises_value_error(text: str) -> None:
    try:
        got = parse_when(text, now=NOW, tz="Europe/Berlin")
    except ValueError:
        return
    assert got.tzinfo is not None
