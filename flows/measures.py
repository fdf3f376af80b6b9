"""Outcome measures asked beside the alliance check, each on its own interval: the setting's one
grammar, checked before anything is stored.

    phq-9:14d            PHQ-9 every 14 days (durations as everywhere: `flows.timing`)
    phq-9:14d,gad-7:28d  several, comma-separated (the CLI takes one `--outcome` per measure)
    off                  none

A measure is a shipped instrument name or a practice's own YAML file, and must score an outcome
(`scoring.outcome`). The interval is whole days from 7 (the PHQ-9 and GAD-7 ask about the last two
weeks; weekly is the most often they are given) to 365. When one is due is `flows.moments.
measures_due`; a due measure rides on the next check-in, never a check-in of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from flows.instruments import (
    DEFAULT_INSTRUMENT,
    Instrument,
    InstrumentError,
    load_instrument,
    stored_name,
)
from flows.timing import format_duration, parse_duration

OPTION = "--outcome"
OFF = "off"
MIN_DAYS = 7
MAX_DAYS = 365
MAX_SETTING = 400
"""Characters the stored setting may take (its column's width)."""
_DAY = timedelta(days=1)
_BRIEF = load_instrument(DEFAULT_INSTRUMENT)


@dataclass(frozen=True, slots=True)
class Measure:
    """One outcome measure and how many days apart it is asked."""

    name: str
    every_days: int

    def __str__(self) -> str:
        return f"{self.name}:{format_duration(self.every_days * _DAY)}"


def _fail(message: str) -> ValueError:
    return ValueError(f"{OPTION}: {message}")


def _one(text: str) -> Measure:
    name, sep, every = text.strip().rpartition(":")
    name = name.strip()
    if "/" not in name and not name.endswith((".yaml", ".yml")):
        name = name.lower()  # shipped names: PHQ-9 as people write it is phq-9
    if not sep or not name:
        raise _fail(f"expected NAME:INTERVAL such as phq-9:14d, got {text.strip()!r}")
    try:
        interval = parse_duration(every)
    except ValueError as exc:
        raise _fail(f"{name}: {exc}") from None
    if interval % _DAY:
        raise _fail(f"{name}: {every.strip()} is not whole days (e.g. 14d)")
    days = interval // _DAY
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise _fail(f"{name}: every {days} days is outside {MIN_DAYS}d to {MAX_DAYS}d")
    try:
        instrument = load_instrument(name)
    except InstrumentError as exc:
        raise _fail(str(exc)) from None
    if instrument.scoring.outcome is None:
        raise _fail(f"{name} scores no outcome (its file has no scoring.outcome)")
    name = stored_name(name)
    taken = [item.id for item in instrument.flat_items() if _BRIEF.find(item.id) is not None]
    if taken:
        # answers are stored by item id: a shared one would mix the two questions' answers
        raise _fail(f"{name}: item id {taken[0]!r} is the alliance check's; rename it in the file")
    return Measure(name, days)


def parse_measures(specs: str | list[str] | tuple[str, ...]) -> tuple[Measure, ...]:
    """Measures from one spec ("a:14d,b:28d") or one spec per `--outcome`; `off` gives none.
    Each error is one line naming the option."""
    parts = [specs] if isinstance(specs, str) else list(specs)
    pieces = [p.strip() for part in parts for p in part.split(",")]
    pieces = [p for p in pieces if p]
    if not pieces:
        raise _fail("give NAME:INTERVAL such as phq-9:14d, or off")
    if [p.lower() for p in pieces] == [OFF]:
        return ()
    measures = tuple(_one(p) for p in pieces)
    ids = [load_instrument(m.name).id for m in measures]
    for position, found in enumerate(ids):
        if found in ids[:position]:
            raise _fail(f"{measures[position].name} is given twice")
    if len(format_measures(measures)) > MAX_SETTING:
        raise _fail(f"longer than {MAX_SETTING} characters; use shorter file paths")
    return measures


def format_measures(measures: tuple[Measure, ...]) -> str:
    """The canonical stored spelling, which `parse_measures` reads back ("off" for none)."""
    return ",".join(str(m) for m in measures) or OFF


@lru_cache(maxsize=256)
def stored_measures(text: str | None) -> tuple[Measure, ...]:
    """A stored setting read back; one that no longer loads (a file removed) asks nothing of it
    rather than stopping check-ins. Remembered: every check-in opening reads it."""
    if not text:
        return ()
    found: list[Measure] = []
    for piece in text.split(","):
        try:
            found.extend(parse_measures(piece))
        except ValueError:
            continue
    return tuple(found)


def measure_instruments(names: list[str] | tuple[str, ...]) -> tuple[Instrument, ...]:
    """The instruments of a check-in's measures, those that still load (a flow never raises)."""
    found: list[Instrument] = []
    for name in names:
        try:
            found.append(load_instrument(name))
        except InstrumentError:
            continue
    return tuple(found)
