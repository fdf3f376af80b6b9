"""Reading a practice's session calendar (an ICS export) into session occurrences.

Pure parsing: bytes in, events out; the CLI and the repositories decide what to store. Recurring
series are expanded inside a window (RRULE, RDATE, EXDATE, and single instances moved or cancelled
through RECURRENCE-ID). Recurrence is computed in the event's own local wall time, as iCalendar
prescribes, so a weekly 10:00 session stays at 10:00 across DST. All-day events are not sessions
and are skipped. Events are tied to clients only through an explicit code in the text (`#RC-7F3K`
or `[RC-7F3K]`); an event with no known code or with codes of several clients is left unmatched,
never guessed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import icalendar
from dateutil.rrule import rruleset, rrulestr
from icalendar.prop import vRecur

from flows.timing import get_zone

__all__ = [
    "CalendarEvent",
    "ImportPlan",
    "MatchedEvent",
    "match_client",
    "normalise_code",
    "parse_sessions",
    "plan_import",
]

_MAX_OCCURRENCES = 50_000
"""Occurrences walked per series before giving up: guards against minutely rules from 1970."""
MAX_ICS_BYTES = 10 * 1024 * 1024
"""The largest file read: years of a busy practice's calendar fit in a few megabytes."""
MAX_NESTING = 8
"""Components inside components (VCALENDAR > VEVENT > VALARM is 3): deeper is not an export,
and the parser would recurse once per level."""

_CODE_TOKEN = re.compile(r"#([A-Za-z0-9][A-Za-z0-9_-]*)|\[\s*([A-Za-z0-9][A-Za-z0-9_-]*)\s*\]")


@dataclass(frozen=True)
class CalendarEvent:
    """One session occurrence from the calendar (instants in UTC).

    `recurrence_id` is the occurrence's original start for events that belong to a series (it
    stays the same when one instance is moved), so `(uid, recurrence_id)` identifies an
    occurrence across re-imports; it is None for a one-off event.
    """

    uid: str
    start: datetime
    end: datetime
    summary: str
    description: str
    cancelled: bool = False
    recurrence_id: datetime | None = None

    @property
    def key(self) -> str:
        """A stable text key of this occurrence, for de-duplicating re-imports."""
        if self.recurrence_id is None:
            return self.uid
        return f"{self.uid}@{self.recurrence_id.strftime('%Y%m%dT%H%M%SZ')}"


# --- reading components ---------------------------------------------------------------------


def _check_shape(ics_bytes: bytes) -> None:
    """Refuse, before parsing, what a calendar export never is: too big, or nested too deep."""
    if len(ics_bytes) > MAX_ICS_BYTES:
        size = len(ics_bytes) / (1024 * 1024)
        raise ValueError(f"the file has {size:.0f} MiB; calendars up to 10 MiB are read")
    depth = 0
    for line in ics_bytes.splitlines():
        if line[:6].upper() == b"BEGIN:":
            depth += 1
            if depth > MAX_NESTING:
                raise ValueError(
                    f"components are nested more than {MAX_NESTING} deep: not a calendar export"
                )
        elif line[:4].upper() == b"END:":
            depth -= 1


def _read_calendar(ics_bytes: bytes) -> icalendar.Calendar:
    _check_shape(ics_bytes)
    try:
        calendar = icalendar.Calendar.from_ical(ics_bytes)
    except Exception as exc:  # icalendar raises several types for malformed input
        # The parser's message quotes the line it choked on, which may be a client's name or a
        # note about them: only its kind is said.
        raise ValueError(f"not a readable iCalendar file ({type(exc).__name__})") from exc
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise ValueError("not an iCalendar file: expected BEGIN:VCALENDAR at the top")
    return calendar


def _text(component: icalendar.cal.Component, name: str) -> str:
    value = component.get(name)
    return str(value) if value is not None else ""


def _uid(component: icalendar.cal.Component) -> str:
    uid = _text(component, "UID").strip()
    if uid:
        return uid
    # RFC 5545 requires a UID; invent a stable one so a re-import still recognises the event.
    seed = (_text(component, "DTSTART") + "\x00" + _text(component, "SUMMARY")).encode()
    return "no-uid-" + hashlib.sha256(seed).hexdigest()[:16]


def _is_cancelled(component: icalendar.cal.Component) -> bool:
    return _text(component, "STATUS").strip().upper() == "CANCELLED"


def _values(component: icalendar.cal.Component, name: str) -> list[Any]:
    """The raw values of a list property (EXDATE, RDATE), however many lines it spans."""
    prop = component.get(name)
    if prop is None:
        return []
    lines = prop if isinstance(prop, list) else [prop]
    return [item.dt for line in lines for item in line.dts]


def _start(component: icalendar.cal.Component, floating: tzinfo) -> datetime | None:
    """DTSTART as an aware datetime, or None for all-day (date-valued) or missing starts."""
    prop = component.get("DTSTART")
    if prop is None:
        return None
    value = prop.dt
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=floating)


def _start_problem(component: icalendar.cal.Component) -> str | None:
    """Why an event's start cannot be read as a session's (None: it can, or it is all-day)."""
    prop = component.get("DTSTART")
    if prop is None:
        broken = [str(m) for name, m in getattr(component, "errors", []) if name == "DTSTART"]
        detail = f" ({' '.join(broken[0].split())[:60]})" if broken else ""
        return f"DTSTART is not a date-time{detail}"
    value = prop.dt
    zone = prop.params.get("TZID") if hasattr(prop, "params") else None
    if isinstance(value, datetime) and value.tzinfo is None and zone:
        return f"unknown time zone {str(zone)[:60]!r} (not guessed)"
    return None


def _other_problems(component: icalendar.cal.Component) -> list[str]:
    """Properties the parser could not read (and so ignored), DTSTART apart."""
    return [
        f"{name or 'a property'} could not be read and was ignored"
        for name, _ in getattr(component, "errors", [])
        if name != "DTSTART"
    ]


def _where(position: int, uid: str) -> str:
    """An event as the report names it: its place in the file and its UID, never its text."""
    shown = uid if len(uid) <= 60 else uid[:57] + "..."
    return f"event {position} (UID {shown})"


def _duration(component: icalendar.cal.Component, start: datetime, default: timedelta) -> timedelta:
    end_prop = component.get("DTEND")
    if end_prop is not None and isinstance(end_prop.dt, datetime):
        end = end_prop.dt
        if end.tzinfo is None:
            end = end.replace(tzinfo=start.tzinfo)
        length = end.astimezone(UTC) - start.astimezone(UTC)
        return length if length > timedelta(0) else default
    duration_prop = component.get("DURATION")
    if duration_prop is not None and isinstance(duration_prop.dt, timedelta):
        return duration_prop.dt if duration_prop.dt > timedelta(0) else default
    return default


def _wall(value: datetime | date, zone: tzinfo, time_of_day: time) -> datetime:
    """A DATE or DATE-TIME from the file as naive wall time in the series' zone."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time_of_day)
    if value.tzinfo is None:
        return value
    return value.astimezone(zone).replace(tzinfo=None)


def _to_utc(wall: datetime, zone: tzinfo) -> datetime:
    return wall.replace(tzinfo=zone).astimezone(UTC)


# --- recurring series -----------------------------------------------------------------------


def _recurrence_set(
    master: icalendar.cal.Component, wall_start: datetime, zone: tzinfo
) -> rruleset:
    rules = master.get("RRULE")
    recurrence = rruleset()
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        spec = vRecur(dict(rule))
        if "UNTIL" in spec:
            # UNTIL may be UTC, floating or a date; recurrence runs in naive wall time here.
            spec["UNTIL"] = [_wall(spec["UNTIL"][0], zone, time(23, 59, 59))]
        text = spec.to_ical().decode()
        try:
            recurrence.rrule(rrulestr(text, dtstart=wall_start))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"event {_uid(master)!r}: unreadable RRULE {text!r}") from exc
    recurrence.rdate(wall_start)  # DTSTART is always the first instance (RFC 5545)
    for value in _values(master, "RDATE"):
        first = value[0] if isinstance(value, tuple) else value  # a PERIOD starts the instance
        recurrence.rdate(_wall(first, zone, wall_start.time()))
    return recurrence


def _expand(
    master: icalendar.cal.Component,
    start: datetime,
    *,
    window: tuple[datetime, datetime],
    replaced: set[datetime],
) -> Iterable[datetime]:
    """UTC starts of a series' occurrences in the window, minus EXDATEs and replaced ones."""
    zone = start.tzinfo
    assert zone is not None
    wall_start = start.replace(tzinfo=None)
    recurrence = _recurrence_set(master, wall_start, zone)
    excluded_days: set[date] = set()
    for value in _values(master, "EXDATE"):
        if isinstance(value, datetime):
            recurrence.exdate(_wall(value, zone, wall_start.time()))
        else:
            excluded_days.add(value)
    low = window[0].astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    high = window[1].astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    for count, wall in enumerate(recurrence):
        if count >= _MAX_OCCURRENCES:
            raise ValueError(f"event {_uid(master)!r} recurs too densely to expand")
        if wall > high:
            break
        if wall < low or wall.date() in excluded_days or wall in replaced:
            continue
        occurrence = _to_utc(wall, zone)
        if window[0] <= occurrence < window[1]:
            yield occurrence


# --- public ---------------------------------------------------------------------------------


def parse_sessions(
    ics_bytes: bytes,
    *,
    window_start: datetime,
    window_end: datetime,
    default_minutes: int = 50,
    default_tz: str = "UTC",
    problems: list[str] | None = None,
) -> list[CalendarEvent]:
    """Session occurrences starting in [window_start, window_end), sorted by start.

    `default_minutes` is the length of an event with neither DTEND nor DURATION; `default_tz`
    reads floating (zone-less) times. Cancelled events and instances are returned with
    `cancelled=True` so the caller can remove sessions it imported before; EXDATE'd instances do
    not appear at all. An event whose start is not a date-time or names an unknown time zone is
    skipped, and a property that cannot be read is ignored: each is appended to `problems`, one
    line naming the event by position and UID. Raises ValueError, with one line, for anything
    that is not a calendar this can read (too big, nested too deep, binary, truncated...).
    """
    try:
        return _parse_sessions(
            ics_bytes,
            window_start=window_start,
            window_end=window_end,
            default_minutes=default_minutes,
            default_tz=default_tz,
            problems=problems if problems is not None else [],
        )
    except ValueError:
        raise
    except Exception as exc:  # hostile input: whatever breaks inside the parser, one line out
        raise ValueError(f"the calendar could not be read ({type(exc).__name__})") from exc


def _parse_sessions(
    ics_bytes: bytes,
    *,
    window_start: datetime,
    window_end: datetime,
    default_minutes: int,
    default_tz: str,
    problems: list[str],
) -> list[CalendarEvent]:
    for name, bound in (("window_start", window_start), ("window_end", window_end)):
        if bound.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    if default_minutes <= 0:
        raise ValueError("default_minutes must be positive")
    window = (window_start.astimezone(UTC), window_end.astimezone(UTC))
    default = timedelta(minutes=default_minutes)
    floating = get_zone(default_tz)
    calendar = _read_calendar(ics_bytes)
    calendar_cancels = _text(calendar, "METHOD").strip().upper() == "CANCEL"

    masters: dict[str, icalendar.cal.Component] = {}
    overrides: dict[str, list[icalendar.cal.Component]] = {}
    for position, component in enumerate(calendar.walk("VEVENT"), start=1):
        uid = _uid(component)
        where = _where(position, uid)
        problems.extend(f"{where}: {problem}" for problem in _other_problems(component))
        problem = _start_problem(component)
        if problem is not None:
            problems.append(f"{where}: {problem}; skipped")
            continue
        if component.get("RECURRENCE-ID") is not None:
            overrides.setdefault(uid, []).append(component)
        elif uid not in masters or _sequence(component) >= _sequence(masters[uid]):
            masters[uid] = component

    events: list[CalendarEvent] = []
    for uid, master in masters.items():
        start = _start(master, floating)
        if start is None:
            continue  # all-day: a holiday or a note, not a session
        zone = start.tzinfo
        assert zone is not None
        recurring = any(master.get(name) is not None for name in ("RRULE", "RDATE"))
        replaced = {
            _wall(component.get("RECURRENCE-ID").dt, zone, start.time().replace(tzinfo=None))
            for component in overrides.get(uid, [])
        }
        length = _duration(master, start, default)
        cancelled = calendar_cancels or _is_cancelled(master)
        for occurrence in _expand(master, start, window=window, replaced=replaced):
            events.append(
                CalendarEvent(
                    uid=uid,
                    start=occurrence,
                    end=occurrence + length,
                    summary=_text(master, "SUMMARY"),
                    description=_text(master, "DESCRIPTION"),
                    cancelled=cancelled,
                    recurrence_id=occurrence if recurring else None,
                )
            )

    for uid, components in overrides.items():
        for component in components:
            event = _override(uid, component, floating, default, calendar_cancels)
            if event is not None and window[0] <= event.start < window[1]:
                events.append(event)

    events.sort(key=lambda e: (e.start, e.uid))
    return events


def _sequence(component: icalendar.cal.Component) -> int:
    try:
        return int(component.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        return 0


def _override(
    uid: str,
    component: icalendar.cal.Component,
    floating: tzinfo,
    default: timedelta,
    calendar_cancels: bool,
) -> CalendarEvent | None:
    """One moved or cancelled instance of a series (None if it became all-day)."""
    start = _start(component, floating)
    if start is None:
        return None
    original = component.get("RECURRENCE-ID").dt
    if isinstance(original, datetime):
        original = original if original.tzinfo is not None else original.replace(tzinfo=floating)
    else:
        original = datetime.combine(original, start.timetz())
    start_utc = start.astimezone(UTC)
    return CalendarEvent(
        uid=uid,
        start=start_utc,
        end=start_utc + _duration(component, start, default),
        summary=_text(component, "SUMMARY"),
        description=_text(component, "DESCRIPTION"),
        cancelled=calendar_cancels or _is_cancelled(component),
        recurrence_id=original.astimezone(UTC),
    )


def normalise_code(code: str) -> str:
    """A client code as compared: without `#` or brackets, upper case (`#rc-7f3k` → `RC-7F3K`)."""
    return code.strip().strip("[]").strip().lstrip("#").strip("-_").upper()


def _codes_in(text: str) -> set[str]:
    found: set[str] = set()
    for match in _CODE_TOKEN.finditer(text):
        token = match.group(1) or match.group(2)
        found.add(normalise_code(token))
    return found


def match_client(event: CalendarEvent, codes: Mapping[str, int]) -> int | None:
    """The one client whose code appears in the event's summary or description, else None.

    Codes are written `#CODE` or `[CODE]`, any case. No known code, or codes of two different
    clients, gives None: the event is listed as unmatched for a person to resolve.
    """
    known = {normalise_code(code): client for code, client in codes.items()}
    found = _codes_in(event.summary) | _codes_in(event.description)
    clients = {known[code] for code in found if code in known}
    return clients.pop() if len(clients) == 1 else None


@dataclass(frozen=True)
class MatchedEvent:
    event: CalendarEvent
    client_id: int


@dataclass(frozen=True)
class ImportPlan:
    """What an import would do: sessions to store, sessions to cancel, events nobody claimed."""

    sessions: tuple[MatchedEvent, ...]
    cancellations: tuple[MatchedEvent, ...]
    unmatched: tuple[CalendarEvent, ...]


def plan_import(events: Iterable[CalendarEvent], codes: Mapping[str, int]) -> ImportPlan:
    """Sort parsed events into sessions, cancellations and unmatched (including cancelled ones)."""
    sessions: list[MatchedEvent] = []
    cancellations: list[MatchedEvent] = []
    unmatched: list[CalendarEvent] = []
    for event in events:
        client = match_client(event, codes)
        if client is None:
            unmatched.append(event)
        elif event.cancelled:
            cancellations.append(MatchedEvent(event, client))
        else:
            sessions.append(MatchedEvent(event, client))
    return ImportPlan(tuple(sessions), tuple(cancellations), tuple(unmatched))
