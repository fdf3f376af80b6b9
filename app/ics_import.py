"""Reading a practice's session calendar (an ICS export) into session occurrences.

Pure parsing: bytes in, events out; the CLI and the repositories decide what to store. Recurring
series (RRULE, RDATE, EXDATE, instances moved or cancelled through RECURRENCE-ID, RANGE=
THISANDFUTURE, X-WR-TIMEZONE) are expanded by recurring-ical-events, in the event's own local
wall time as iCalendar prescribes, so a weekly 10:00 session stays at 10:00 across DST. This
module only guards the expansion (a cost estimate refuses a series too dense to walk), reads
each occurrence into a `CalendarEvent`, and reports what it skipped. All-day events are not
sessions and are skipped. Events are tied to clients only through an explicit code in the text
(`#RC-7F3K` or `[RC-7F3K]`); an event with no known code or with codes of several clients is
left unmatched, never guessed.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import icalendar
import recurring_ical_events

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
"""Steps the expansion may take per series (an estimate, from the first instance to the end of
the window): guards against minutely rules from 1970 and rules that never match."""
MAX_ICS_BYTES = 10 * 1024 * 1024
"""The largest file read: years of a busy practice's calendar fit in a few megabytes."""
MAX_NESTING = 8
"""Components inside components (VCALENDAR > VEVENT > VALARM is 3): deeper is not an export,
and the parser would recurse once per level."""

_CODE_TOKEN = re.compile(r"#([A-Za-z0-9][A-Za-z0-9_-]*)|\[\s*([A-Za-z0-9][A-Za-z0-9_-]*)\s*\]")
_CALENDAR_ZONE = "X-WR-TIMEZONE"


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


def _aware(value: datetime, floating: tzinfo) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=floating)


def _calendar_zone(calendar: icalendar.Calendar, problems: list[str]) -> str | None:
    """The zone the calendar names in X-WR-TIMEZONE (Google's exports), if it is a known one.

    The expansion reads the file's UTC and floating times in it; an unknown one is dropped, so
    the rest of the file is still read, and reported.
    """
    value = calendar.get(_CALENDAR_ZONE)
    if value is None:
        return None
    name = str(value).strip()
    try:
        get_zone(name)
    except ValueError:
        del calendar[_CALENDAR_ZONE]
        problems.append(f"the calendar's time zone {name[:60]!r} is unknown (not guessed); ignored")
        return None
    return name


# --- guarding the expansion -----------------------------------------------------------------
#
# Rule engines walk every period from a series' first instance on, matching or not, and every
# instance a period yields: a rule every second since 1970 would take minutes. A series whose
# walk up to just past the window would be too long is refused. (A sub-daily rule that never
# matches, like every hour on 30 February, is still searched day by day to the year 9999, some
# seconds per series.) The recurrence itself is recurring-ical-events'.


class _TooDense(Exception):
    """A series whose expansion would walk more than `_MAX_OCCURRENCES` steps."""


_PERIOD = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
    "MONTHLY": timedelta(days=28),
    "YEARLY": timedelta(days=365),
}
_DAYS_IN_PERIOD = {"WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}
_DAY_PARTS = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH")
_TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")


def _rules(component: icalendar.cal.Component) -> list[Any]:
    rules = component.get("RRULE")
    return rules if isinstance(rules, list) else [] if rules is None else [rules]


def _first(parts: Mapping[str, Any], name: str) -> Any:
    values = parts.get(name)
    return values[0] if isinstance(values, list) and values else values


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _horizon(
    components: list[icalendar.cal.Component], floating: tzinfo, end: datetime
) -> datetime:
    """How far the expansion looks: past the window's end by a day, and by as far as any
    instance was moved (the library widens its search so that a moved instance is found)."""
    reach = timedelta(days=1)
    for component in components:
        original = component.get("RECURRENCE-ID")
        start = component["DTSTART"].dt
        if (
            original is not None
            and isinstance(original.dt, datetime)
            and isinstance(start, datetime)
        ):
            reach = max(reach, abs(_aware(start, floating) - _aware(original.dt, floating)))
    return end + reach + timedelta(days=1)


def _steps(parts: Mapping[str, Any], start: datetime, horizon: datetime) -> float:
    """An upper bound of the steps a rule's expansion takes from `start` to `horizon`."""
    freq = str(_first(parts, "FREQ") or "").upper()
    if freq not in _PERIOD:
        return 0  # the expansion refuses it as unreadable
    until = _first(parts, "UNTIL")
    if isinstance(until, datetime):
        horizon = min(horizon, _aware(until, start.tzinfo or UTC))
    given = _first(parts, "INTERVAL")
    interval = 1 if given is None else _number(given)
    if interval is None or interval < 1:
        raise ValueError("INTERVAL must be a positive number")  # an endless walk on the spot
    periods = max((horizon - start) / (_PERIOD[freq] * interval), 0) + 1
    count = _number(_first(parts, "COUNT"))
    if not any(name.startswith("BY") for name in parts):
        return min(periods, count) if count else periods  # one instance per period
    per_period = math.prod(len(parts[name]) for name in _TIME_PARTS if name in parts)
    if any(name in parts for name in _DAY_PARTS):
        per_period *= _DAYS_IN_PERIOD.get(freq, 1)
    produced = periods * per_period
    return periods + (min(produced, count) if count else produced)


def _until_includes_its_day(
    component: icalendar.cal.Component, start: datetime, *, floats: bool
) -> None:
    """An UNTIL given as a day, for a timed series, includes that day as calendar programs show
    it (the library would stop at its midnight UTC): written as the day's last second, floating
    for a floating series and in UTC otherwise, the forms the expansion compares it in."""
    for rule in _rules(component):
        until = _first(rule, "UNTIL")
        if isinstance(until, date) and not isinstance(until, datetime):
            last = datetime.combine(until, time(23, 59, 59))
            rule["UNTIL"] = [last if floats else last.replace(tzinfo=start.tzinfo).astimezone(UTC)]


# --- expanding a series ---------------------------------------------------------------------


def _drop_backward_end(component: icalendar.cal.Component, start: datetime) -> None:
    """Forget an end that is not after the start, so the default length applies.

    The expansion would take such an end for the start and move the session.
    """
    end = component.get("DTEND")
    if end is not None and (
        not isinstance(end.dt, datetime) or _aware(end.dt, start.tzinfo or UTC) <= start
    ):
        del component["DTEND"]
    duration = component.get("DURATION")
    if duration is not None and (
        not isinstance(duration.dt, timedelta) or duration.dt <= timedelta(0)
    ):
        del component["DURATION"]


def _shifts(
    components: list[icalendar.cal.Component], floating: tzinfo
) -> dict[datetime, timedelta]:
    """How far each RANGE=THISANDFUTURE change moves the rest of its series, by RECURRENCE-ID."""
    shifts: dict[datetime, timedelta] = {}
    for component in components:
        original = component.get("RECURRENCE-ID")
        start = component["DTSTART"].dt
        if original is None or original.params.get("RANGE") != "THISANDFUTURE":
            continue
        if isinstance(start, datetime) and isinstance(original.dt, datetime):
            start = _aware(start, floating)
            # In wall time, as the expansion applies it.
            moved_from = _aware(original.dt, floating).astimezone(start.tzinfo)
            shifts[moved_from.astimezone(UTC)] = start - moved_from
    return shifts


def _series_events(
    uid: str,
    components: list[icalendar.cal.Component],
    *,
    calendar_zone: str | None,
    floating: tzinfo,
    span: tuple[datetime, datetime],
    default: timedelta,
    calendar_cancels: bool,
) -> list[CalendarEvent]:
    """The occurrences of one UID's events (a one-off, or a series and its changed instances)."""
    series = icalendar.Calendar()
    if calendar_zone is not None:
        series.add(_CALENDAR_ZONE, calendar_zone)
    horizon = _horizon(components, floating, span[1])
    steps = 0.0
    for component in components:
        start = component["DTSTART"].dt
        if not isinstance(start, datetime):
            if component.get("RECURRENCE-ID") is None:
                continue  # an all-day series is not sessions: not expanded
        else:
            floats = start.tzinfo is None and calendar_zone is None
            start = _aware(start, floating)
            _drop_backward_end(component, start)
            _until_includes_its_day(component, start, floats=floats)
            steps += sum(_steps(rule, start, horizon) for rule in _rules(component))
        series.add_component(component)
    if steps > _MAX_OCCURRENCES:
        raise _TooDense
    # Margins: floating times are compared as UTC inside the library; the caller cuts exactly.
    occurrences = recurring_ical_events.of(series, keep_recurrence_attributes=True).between(
        span[0] - timedelta(days=1), span[1] + timedelta(days=1)
    )
    in_series = any(
        component.get(name) is not None
        for component in components
        for name in ("RRULE", "RDATE", "RECURRENCE-ID")
    )
    shifts = _shifts(components, floating) if in_series else {}
    events = []
    for occurrence in occurrences:
        event = _event(uid, occurrence, floating, default, calendar_cancels, shifts, in_series)
        if event is not None:
            events.append(event)
    return events


def _event(
    uid: str,
    occurrence: icalendar.cal.Component,
    floating: tzinfo,
    default: timedelta,
    calendar_cancels: bool,
    shifts: Mapping[datetime, timedelta],
    in_series: bool,
) -> CalendarEvent | None:
    """One occurrence as the library wrote it out (None if it is all-day: not a session)."""
    start = occurrence["DTSTART"].dt
    if not isinstance(start, datetime):
        return None
    start = _aware(start, floating)
    start_utc = start.astimezone(UTC)
    end = occurrence.get("DTEND")
    end_utc = _aware(end.dt, floating).astimezone(UTC) if end is not None else start_utc
    if end_utc <= start_utc:  # the event had no length: neither DTEND nor DURATION
        end_utc = start_utc + default
    recurrence_id = None
    if in_series:
        original = occurrence["RECURRENCE-ID"]
        value = original.dt
        if not isinstance(value, datetime):
            value = datetime.combine(value, start.timetz())
        recurrence_id = _aware(value, floating).astimezone(UTC)
        if original.params.get("RANGE") == "THISANDFUTURE" and recurrence_id in shifts:
            # Moved along with a change to the rest of the series: identified by where the
            # series had put it.
            recurrence_id = (start - shifts[recurrence_id]).astimezone(UTC)
    return CalendarEvent(
        uid=uid,
        start=start_utc,
        end=end_utc,
        summary=_text(occurrence, "SUMMARY"),
        description=_text(occurrence, "DESCRIPTION"),
        cancelled=calendar_cancels or _is_cancelled(occurrence),
        recurrence_id=recurrence_id,
    )


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
    reads floating (zone-less) times, unless the calendar names its own zone (X-WR-TIMEZONE).
    Cancelled events and instances are returned with `cancelled=True` so the caller can remove
    sessions it imported before; EXDATE'd instances do not appear at all. An event whose start
    is not a date-time or names an unknown time zone is skipped, and so is a series whose rules
    cannot be read; a property that cannot be read is ignored: each is appended to `problems`,
    one line naming the event by position and UID. Raises ValueError, with one line, for
    anything that is not a calendar this can read (too big, nested too deep, binary,
    truncated...) or a series too dense to expand.
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
    calendar = _read_calendar(ics_bytes)
    calendar_zone = _calendar_zone(calendar, problems)
    floating = get_zone(calendar_zone or default_tz)
    calendar_cancels = _text(calendar, "METHOD").strip().upper() == "CANCEL"

    series: dict[str, tuple[int, list[icalendar.cal.Component]]] = {}
    for position, component in enumerate(calendar.walk("VEVENT"), start=1):
        uid = _uid(component)
        where = _where(position, uid)
        problems.extend(f"{where}: {problem}" for problem in _other_problems(component))
        problem = _start_problem(component)
        if problem is not None:
            problems.append(f"{where}: {problem}; skipped")
            continue
        if component.get("UID") is None:
            component["UID"] = uid  # the invented one, so its series stays together
        series.setdefault(uid, (position, []))[1].append(component)

    events: list[CalendarEvent] = []
    for uid, (position, components) in series.items():
        try:
            found = _series_events(
                uid,
                components,
                calendar_zone=calendar_zone,
                floating=floating,
                span=window,
                default=default,
                calendar_cancels=calendar_cancels,
            )
        except _TooDense:
            raise ValueError(f"{_where(position, uid)}: recurs too densely to expand") from None
        except Exception as exc:  # a rule the library refuses: this series only
            problems.append(
                f"{_where(position, uid)}: its dates could not be read ({type(exc).__name__}); "
                "skipped"
            )
            continue
        events.extend(event for event in found if window[0] <= event.start < window[1])
    events.sort(key=lambda e: (e.start, e.uid))
    return events


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
