"""Cadence specifications: when a client is asked to check in, as a short human-editable text.

A practice admin types these on the command line (`--cadence SPEC`), so the parser explains every
mistake in words (what was expected, at which column) and `str()` gives back the canonical spelling,
which parses to the same value. Grammar (case-insensitive, rules joined with `+` or `;`):

    off
    after-session <N>h             N hours after each session ends
    before-session <N>h            N hours before the next session starts
    every <N> days at HH:MM        every N local days (counted from the client's anchor date)
    every day at HH:MM             the same as `every 1 days at HH:MM`
    weekdays mon,thu at HH:MM      on those days of the week (full day names accepted too)
    midway [at HH:MM]              mid-way between two sessions, at HH:MM (default 18:00)

Times are the client's local wall time; `flows.timing` turns rules into instants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

__all__ = [
    "DAY_NAMES",
    "MAX_DAYS",
    "MAX_HOURS",
    "AfterSession",
    "BeforeSession",
    "Cadence",
    "EveryNDays",
    "Midway",
    "Off",
    "Rule",
    "Weekdays",
    "parse_cadence",
]

MAX_HOURS = 720
"""Longest offset from a session (30 days): anything longer is almost certainly a typo."""

MAX_DAYS = 365
"""Longest interval for `every N days`."""

DEFAULT_MIDWAY_AT = time(18, 0)

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX: dict[str, int] = {
    **{name: i for i, name in enumerate(DAY_NAMES)},
    **{name: i for i, name in enumerate(_FULL_DAY_NAMES)},
}

_NUMBER = re.compile(r"[0-9]{1,6}", re.ASCII)
_HOURS = re.compile(r"([0-9]{1,6})h", re.ASCII | re.IGNORECASE)
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})", re.ASCII)
_SEPARATORS = re.compile(r"[+;]")
_WORD = re.compile(r"\S+")


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, got {value}")


def _check_clock(at: time) -> None:
    if at.second or at.microsecond or at.tzinfo is not None:
        raise ValueError(f"a cadence time is a local wall time to the minute, got {at!r}")


def _hhmm(at: time) -> str:
    return f"{at.hour:02d}:{at.minute:02d}"


@dataclass(frozen=True)
class Off:
    """No scheduled check-ins at all (the client can still be asked by hand)."""

    def __str__(self) -> str:
        return "off"


@dataclass(frozen=True)
class AfterSession:
    """`hours` after each session ends: catches the session while it is fresh."""

    hours: int

    def __post_init__(self) -> None:
        _check_range("after-session hours", self.hours, 0, MAX_HOURS)

    def __str__(self) -> str:
        return f"after-session {self.hours}h"


@dataclass(frozen=True)
class BeforeSession:
    """`hours` before each session starts: the answer is in the digest the therapist reads."""

    hours: int

    def __post_init__(self) -> None:
        _check_range("before-session hours", self.hours, 1, MAX_HOURS)

    def __str__(self) -> str:
        return f"before-session {self.hours}h"


@dataclass(frozen=True)
class EveryNDays:
    """Every `days` local days at `at`; the phase is counted from the client's anchor date."""

    days: int
    at: time

    def __post_init__(self) -> None:
        _check_range("every-N-days interval", self.days, 1, MAX_DAYS)
        _check_clock(self.at)

    def __str__(self) -> str:
        if self.days == 1:
            return f"every day at {_hhmm(self.at)}"
        return f"every {self.days} days at {_hhmm(self.at)}"


@dataclass(frozen=True)
class Weekdays:
    """On the given days of the week (0 = Monday … 6 = Sunday, like `date.weekday()`) at `at`."""

    days: frozenset[int]
    at: time

    def __post_init__(self) -> None:
        if not self.days or any(not 0 <= d <= 6 for d in self.days):
            raise ValueError("weekdays need at least one day, each 0 (Monday) to 6 (Sunday)")
        _check_clock(self.at)

    def __str__(self) -> str:
        names = ",".join(DAY_NAMES[d] for d in sorted(self.days))
        return f"weekdays {names} at {_hhmm(self.at)}"


@dataclass(frozen=True)
class Midway:
    """Half-way between two consecutive sessions, on that local day at `at`."""

    at: time = DEFAULT_MIDWAY_AT

    def __post_init__(self) -> None:
        _check_clock(self.at)

    def __str__(self) -> str:
        return f"midway at {_hhmm(self.at)}"


Rule = Off | AfterSession | BeforeSession | EveryNDays | Weekdays | Midway


@dataclass(frozen=True)
class Cadence:
    """One or more rules; the next check-in is the earliest instant any rule gives."""

    rules: tuple[Rule, ...]

    @property
    def is_off(self) -> bool:
        return all(isinstance(rule, Off) for rule in self.rules)

    def __str__(self) -> str:
        return " + ".join(str(rule) for rule in self.rules)


@dataclass(frozen=True)
class _Word:
    text: str
    column: int  # 1-based column in the whole specification

    @property
    def lower(self) -> str:
        return self.text.lower()


class _RuleParser:
    """Parses the words of one rule; every error names the column in the whole specification."""

    def __init__(self, spec: str, words: list[_Word], end_column: int) -> None:
        self.spec = spec
        self.words = words
        self.pos = 0
        self.end_column = end_column

    def fail(self, expected: str, word: _Word | None = None) -> ValueError:
        if word is None:
            return ValueError(
                f"expected {expected} at column {self.end_column}, but the rule ends there "
                f"(in cadence {self.spec!r})"
            )
        return ValueError(
            f"expected {expected} at column {word.column}, got {word.text!r} "
            f"(in cadence {self.spec!r})"
        )

    def peek(self) -> _Word | None:
        return self.words[self.pos] if self.pos < len(self.words) else None

    def take(self, expected: str) -> _Word:
        word = self.peek()
        if word is None:
            raise self.fail(expected)
        self.pos += 1
        return word

    def keyword(self, *options: str) -> _Word:
        expected = " or ".join(repr(o) for o in options)
        word = self.take(expected)
        if word.lower not in options:
            raise self.fail(expected, word)
        return word

    def done(self) -> None:
        word = self.peek()
        if word is not None:
            raise self.fail("the end of the rule ('+' or ';' starts another)", word)

    def number(self, what: str, low: int, high: int) -> int:
        word = self.take(what)
        if not _NUMBER.fullmatch(word.text):
            raise self.fail(what, word)
        value = int(word.text)
        if not low <= value <= high:
            raise self.fail(f"{what} between {low} and {high}", word)
        return value

    def hours(self, low: int) -> int:
        expected = f"a number of hours like '24h' ({low} to {MAX_HOURS})"
        word = self.take(expected)
        match = _HOURS.fullmatch(word.text)
        if match is None:
            # Forgive a space before the unit: "24 h".
            unit = self.words[self.pos] if self.pos < len(self.words) else None
            if _NUMBER.fullmatch(word.text) and unit is not None and unit.lower == "h":
                self.pos += 1
                match = _HOURS.fullmatch(word.text + "h")
        if match is None:
            raise self.fail(expected, word)
        value = int(match.group(1))
        if not low <= value <= MAX_HOURS:
            raise self.fail(expected, word)
        return value

    def clock(self) -> time:
        expected = "a local time HH:MM between 00:00 and 23:59"
        word = self.take(expected)
        match = _CLOCK.fullmatch(word.text)
        if match is None:
            raise self.fail(expected, word)
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23 or minute > 59:
            raise self.fail(expected, word)
        return time(hour, minute)

    def at_clock(self) -> time:
        self.keyword("at")
        return self.clock()

    def day_list(self) -> frozenset[int]:
        expected = "day names like 'mon,thu' (mon … sun, or full names)"
        # The list may be written with spaces after the commas, so read words up to 'at'.
        parts: list[_Word] = []
        while (word := self.peek()) is not None and word.lower != "at":
            parts.append(word)
            self.pos += 1
        if not parts:
            raise self.fail(expected, self.peek())
        days: set[int] = set()
        for word in parts:
            offset = 0
            for piece in word.text.split(","):
                name = piece.strip().lower()
                if name:
                    if name not in _DAY_INDEX:
                        raise self.fail(expected, _Word(piece, word.column + offset))
                    days.add(_DAY_INDEX[name])
                offset += len(piece) + 1
        if not days:
            raise self.fail(expected, parts[0])
        return frozenset(days)

    def rule(self) -> Rule:
        head = self.take("a rule: off, after-session, before-session, every, weekdays or midway")
        kind = head.lower
        result: Rule
        if kind == "off":
            result = Off()
        elif kind == "after-session":
            result = AfterSession(self.hours(low=0))
        elif kind == "before-session":
            result = BeforeSession(self.hours(low=1))
        elif kind == "every":
            nxt = self.peek()
            if nxt is not None and nxt.lower == "day":
                self.pos += 1
                days = 1
            else:
                days = self.number("a number of days", 1, MAX_DAYS)
                self.keyword("days", "day")
            result = EveryNDays(days, self.at_clock())
        elif kind in ("weekdays", "weekday"):
            days_of_week = self.day_list()
            result = Weekdays(days_of_week, self.at_clock())
        elif kind == "midway":
            result = Midway(self.at_clock()) if self.peek() is not None else Midway()
        else:
            raise self.fail(
                "a rule: off, after-session, before-session, every, weekdays or midway", head
            )
        self.done()
        return result


def parse_cadence(text: str) -> Cadence:
    """Parse a cadence specification; raises ValueError saying what was expected and where."""
    if not isinstance(text, str):
        raise ValueError(f"expected the cadence as text, got {type(text).__name__}")
    rules: list[Rule] = []
    start = 0
    pieces: list[tuple[int, str]] = []
    for sep in _SEPARATORS.finditer(text):
        pieces.append((start, text[start : sep.start()]))
        start = sep.end()
    pieces.append((start, text[start:]))
    for offset, piece in pieces:
        words = [_Word(m.group(), offset + m.start() + 1) for m in _WORD.finditer(piece)]
        if not words:
            column = offset + 1
            raise ValueError(
                f"expected a rule at column {column}, found nothing (in cadence {text!r}); "
                "try e.g. 'after-session 24h + every 7 days at 18:00'"
            )
        parser = _RuleParser(text, words, end_column=offset + len(piece.rstrip()) + 1)
        rule = parser.rule()
        if rule in rules:
            raise ValueError(
                f"the rule {str(rule)!r} at column {words[0].column} repeats an earlier one "
                f"(in cadence {text!r})"
            )
        rules.append(rule)
    if len(rules) > 1 and any(isinstance(rule, Off) for rule in rules):
        raise ValueError(f"'off' cannot be combined with other rules (in cadence {text!r})")
    return Cadence(tuple(rules))
