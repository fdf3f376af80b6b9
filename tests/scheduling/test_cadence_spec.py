"""Cadence specs: every form parses and prints canonically; bad specs explain themselves."""

from __future__ import annotations

from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.cadence import (
    MAX_DAYS,
    MAX_HOURS,
    AfterSession,
    BeforeSession,
    Cadence,
    EveryNDays,
    Midway,
    Off,
    Rule,
    Weekdays,
    parse_cadence,
)


@pytest.mark.parametrize(
    ("text", "rules", "canonical"),
    [
        ("off", (Off(),), "off"),
        ("after-session 24h", (AfterSession(24),), "after-session 24h"),
        ("after-session 0h", (AfterSession(0),), "after-session 0h"),
        ("before-session 3h", (BeforeSession(3),), "before-session 3h"),
        ("every 7 days at 18:00", (EveryNDays(7, time(18, 0)),), "every 7 days at 18:00"),
        ("every day at 9:05", (EveryNDays(1, time(9, 5)),), "every day at 09:05"),
        ("every 1 day at 07:30", (EveryNDays(1, time(7, 30)),), "every day at 07:30"),
        (
            "weekdays mon,thu at 18:00",
            (Weekdays(frozenset({0, 3}), time(18, 0)),),
            "weekdays mon,thu at 18:00",
        ),
        (
            "Weekdays Thursday, MONDAY,sun at 08:15",
            (Weekdays(frozenset({0, 3, 6}), time(8, 15)),),
            "weekdays mon,thu,sun at 08:15",
        ),
        ("midway", (Midway(time(18, 0)),), "midway at 18:00"),
        ("midway at 19:45", (Midway(time(19, 45)),), "midway at 19:45"),
        (
            "after-session 24h + every 7 days at 18:00",
            (AfterSession(24), EveryNDays(7, time(18, 0))),
            "after-session 24h + every 7 days at 18:00",
        ),
        (
            "AFTER-SESSION 24 h;midway at 18:00",
            (AfterSession(24), Midway(time(18, 0))),
            "after-session 24h + midway at 18:00",
        ),
        (
            "  before-session 2h ;  weekdays fri at 12:00 + after-session 1h ",
            (BeforeSession(2), Weekdays(frozenset({4}), time(12, 0)), AfterSession(1)),
            "before-session 2h + weekdays fri at 12:00 + after-session 1h",
        ),
    ],
)
def test_each_form_parses_and_prints_canonically(
    text: str, rules: tuple[Rule, ...], canonical: str
) -> None:
    cadence = parse_cadence(text)
    assert cadence == Cadence(rules)
    assert str(cadence) == canonical
    assert parse_cadence(canonical) == cadence


def test_off_is_off_and_rules_are_not() -> None:
    assert parse_cadence("off").is_off
    assert not parse_cadence("midway").is_off


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["expected a rule", "column 1"]),
        ("sometimes", ["expected a rule", "column 1", "'sometimes'"]),
        ("every 0 days at 18:00", ["number of days between 1 and 365", "column 7", "'0'"]),
        ("every 400 days at 18:00", ["between 1 and 365", "'400'"]),
        ("every x days at 18:00", ["number of days", "column 7", "'x'"]),
        ("every 3 weeks at 18:00", ["'days' or 'day'", "column 9", "'weeks'"]),
        ("every 3 days at 25:00", ["HH:MM", "column 17", "'25:00'"]),
        ("every 3 days at 18:60", ["HH:MM", "'18:60'"]),
        ("every 3 days 18:00", ["'at'", "column 14", "'18:00'"]),
        ("every 3 days at", ["HH:MM", "the rule ends", "column 16"]),
        ("after-session 24", ["number of hours like '24h'", "column 15", "'24'"]),
        ("after-session 9999h", ["0 to 720", "'9999h'"]),
        ("before-session 0h", ["1 to 720", "'0h'"]),
        ("weekdays mon,xyz at 18:00", ["day names", "column 14", "'xyz'"]),
        ("weekdays at 18:00", ["day names", "column 10", "'at'"]),
        ("weekdays mon", ["'at'", "the rule ends"]),
        ("midway at", ["HH:MM", "the rule ends"]),
        ("midway soon", ["'at'", "column 8", "'soon'"]),
        ("every day at 18:00 please", ["end of the rule", "column 20", "'please'"]),
        ("after-session 24h +", ["expected a rule", "column 20", "nothing"]),
        ("off + midway", ["'off' cannot be combined"]),
        ("midway + midway at 18:00", ["repeats an earlier one", "column 10"]),
    ],
)
def test_bad_specs_say_what_was_expected_and_where(text: str, fragments: list[str]) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cadence(text)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message


def test_unicode_digits_are_not_numbers() -> None:
    # Python's int() would read Arabic-Indic digits; a cadence accepts only ASCII ones.
    with pytest.raises(ValueError, match="number of days"):
        parse_cadence("every \u0663 days at 18:00")


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ValueError):
        EveryNDays(0, time(18, 0))
    with pytest.raises(ValueError):
        Weekdays(frozenset(), time(18, 0))
    with pytest.raises(ValueError):
        Weekdays(frozenset({7}), time(18, 0))
    with pytest.raises(ValueError):
        AfterSession(MAX_HOURS + 1)
    with pytest.raises(ValueError):
        Midway(time(18, 0, 30))


_VOCABULARY = [
    "off", "after-session", "before-session", "every", "day", "days", "weekdays", "midway",
    "at", "mon", "thu,fri", "sunday", "24h", "0h", "h", "3", "0", "18:00", "9:5", "99:99",
    "+", ";", ",", "mon,", "1000000000000000000000h", "\u0663", "İ", "",
]  # fmt: skip


@given(st.text())
def test_random_text_raises_only_value_error(text: str) -> None:
    try:
        cadence = parse_cadence(text)
    except ValueError:
        return
    assert parse_cadence(str(cadence)) == cadence


@given(st.lists(st.sampled_from(_VOCABULARY), max_size=8))
def test_random_word_salad_raises_only_value_error(words: list[str]) -> None:
    text = " ".join(words)
    try:
        cadence = parse_cadence(text)
    except ValueError:
        return
    assert parse_cadence(str(cadence)) == cadence


_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))
_rules: st.SearchStrategy[Rule] = st.one_of(
    st.builds(AfterSession, st.integers(0, MAX_HOURS)),
    st.builds(BeforeSession, st.integers(1, MAX_HOURS)),
    st.builds(EveryNDays, st.integers(1, MAX_DAYS), _times),
    st.builds(Weekdays, st.frozensets(st.integers(0, 6), min_size=1), _times),
    st.builds(Midway, _times),
)


@given(st.lists(_rules, min_size=1, max_size=4, unique=True))
def test_every_cadence_round_trips_through_its_text(rules: list[Rule]) -> None:
    cadence = Cadence(tuple(rules))
    assert parse_cadence(str(cadence)) == cadence
