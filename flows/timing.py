"""The instants of scheduling: next check-in, nudge, expiry and digest, as pure functions.

Everything here is a function of its arguments (no clock, no database), so the heartbeat can store
the result and a restart or a second replica computes exactly the same instants. All instants in
and out are timezone-aware; results are UTC. Cadence times and quiet hours are local wall times in
an IANA zone, resolved with these rules:

* a wall time that does not exist (the spring-forward gap) becomes the first valid instant after
  the gap (02:30 on a day that jumps from 02:00 to 03:00 becomes 03:00);
* an ambiguous wall time (the fall-back hour) is its first occurrence (fold=0);
* each local day yields at most one candidate per rule, so DST never skips or doubles a day.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.cadence import (
    AfterSession,
    BeforeSession,
    Cadence,
    EveryNDays,
    Midway,
    Off,
    Rule,
    Weekdays,
)

__all__ = [
    "DIGEST_MARGIN",
    "MIN_CHECKIN_GAP",
    "NUDGE_MIN_BEFORE_EXPIRY",
    "PHASE_EPOCH",
    "CheckinDeadlines",
    "QuietHours",
    "SessionSlot",
    "checkin_deadlines",
    "defer_out_of_quiet",
    "digest_at",
    "expires_at",
    "format_duration",
    "get_zone",
    "local_wall_time",
    "next_checkin_at",
    "nudge_at",
    "parse_duration",
    "parse_quiet_hours",
    "same_local_day",
]

MIN_CHECKIN_GAP = timedelta(hours=12)
"""Two check-ins closer than this are one too many: the later candidate is dropped."""

DIGEST_MARGIN = timedelta(minutes=5)
"""How long before the therapist's quiet hours a displaced digest is sent (20:55 for 21:00)."""

NUDGE_MIN_BEFORE_EXPIRY = timedelta(hours=1)
"""A nudge closer than this to the expiry would only pester: it is not sent at all."""

PHASE_EPOCH = date(2001, 1, 1)
"""Phase origin for `every N days` when no anchor is known (a Monday, so weekly means Mondays)."""

_SEARCH_LIMIT = 2000  # candidates examined per rule before giving up (a guard, never reached)


# --- zones and wall times -------------------------------------------------------------------


@lru_cache(maxsize=512)
def get_zone(tz: str) -> ZoneInfo:
    """The IANA zone named `tz`; ValueError (not KeyError) for an unknown or malformed name."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {tz!r}; expected an IANA name like 'Europe/Berlin'"
        ) from exc


def _require_aware(name: str, instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got a naive datetime")


def _offset(zone: tzinfo, instant_utc: datetime) -> timedelta:
    offset = instant_utc.astimezone(zone).utcoffset()
    return offset if offset is not None else timedelta(0)


def local_wall_time(day: date, at: time, zone: tzinfo) -> datetime:
    """The UTC instant of wall time `at` on local `day`, with the gap and fold rules above."""
    wall = datetime.combine(day, at).replace(tzinfo=zone, fold=0)
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    # The wall time falls in a gap. fold=0 read it with the offset from before the gap, which
    # lands after the transition; fold=1 reads it with the later offset, which lands before it.
    # The first valid instant after the gap is the transition itself: find it by bisection.
    before = wall.replace(fold=1).astimezone(UTC)
    after = instant
    if before >= after:  # not a plain forward gap; keep the fold=0 reading
        return instant
    span = int((after - before).total_seconds())
    offset_before = _offset(zone, before)
    low, high = 0, span  # seconds after `before`: low keeps the old offset, high has the new one
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, before + timedelta(seconds=middle)) == offset_before:
            low = middle
        else:
            high = middle
    return before + timedelta(seconds=high)


def _local_date(instant: datetime, zone: tzinfo) -> date:
    return instant.astimezone(zone).date()


def same_local_day(instant: datetime, old_tz: str, new_tz: str) -> datetime:
    """Noon in `new_tz` of the local date `instant` had in `old_tz`.

    `every N days` counts its phase from the local date of the client's anchor; when the client
    moves to another zone, that date may read as the day before or after there (23:30 in Berlin
    is 17:30 of the same day in New York, 00:30 is the day before), which would move every
    check-in by a day. Carried over this way, the anchor keeps its date in both zones."""
    _require_aware("instant", instant)
    return local_wall_time(_local_date(instant, get_zone(old_tz)), time(12), get_zone(new_tz))


# --- quiet hours ----------------------------------------------------------------------------

_CLOCK = re.compile(r"\s*([0-9]{1,2}):([0-9]{2})\s*", re.ASCII)


@dataclass(frozen=True)
class QuietHours:
    """A daily local window [start, end) when nothing is sent; wraps midnight if end <= start.

    `start == end` is the empty window (no quiet hours), spelled `off`.
    """

    start: time
    end: time

    @classmethod
    def none(cls) -> QuietHours:
        return cls(time(0, 0), time(0, 0))

    @property
    def is_empty(self) -> bool:
        return self.start == self.end

    @property
    def wraps(self) -> bool:
        return self.end < self.start

    def contains(self, wall: time) -> bool:
        """Whether a local wall time is quiet (the start is quiet, the end is not)."""
        wall = wall.replace(tzinfo=None)
        if self.is_empty:
            return False
        if self.wraps:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end

    def __str__(self) -> str:
        if self.is_empty:
            return "off"
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(text: str) -> QuietHours:
    """Parse `21:00-09:00` (wrapping midnight), `13:00-14:00`, or `off`/`none`."""
    if not isinstance(text, str):
        raise ValueError(f"expected quiet hours as text, got {type(text).__name__}")
    cleaned = text.strip().lower()
    if cleaned in ("off", "none"):
        return QuietHours.none()
    parts = re.split(r"[-–]", cleaned)
    if len(parts) != 2:
        raise ValueError(f"expected quiet hours like '21:00-09:00' or 'off', got {text!r}")
    bounds: list[time] = []
    for part, name in zip(parts, ("start", "end"), strict=True):
        match = _CLOCK.fullmatch(part)
        if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise ValueError(
                f"expected the quiet-hours {name} as HH:MM (00:00-23:59), got {part.strip()!r} "
                f"in {text!r}"
            )
        bounds.append(time(int(match.group(1)), int(match.group(2))))
    if bounds[0] == bounds[1]:
        raise ValueError(f"quiet hours {text!r} start and end at the same time; use 'off'")
    return QuietHours(bounds[0], bounds[1])


def _window_end(day: date, wall: time, quiet: QuietHours) -> date:
    """The local date on which the quiet window containing (`day`, `wall`) ends."""
    if quiet.wraps and wall >= quiet.start:
        return day + timedelta(days=1)
    return day


def _window_start(day: date, wall: time, quiet: QuietHours) -> date:
    """The local date on which the quiet window containing (`day`, `wall`) began."""
    if quiet.wraps and wall < quiet.end:
        return day - timedelta(days=1)
    return day


def _quiet_window(
    instant: datetime, tz: str, quiet: QuietHours | None
) -> tuple[datetime, datetime] | None:
    """When the local quiet window that `instant` falls in began and ends (UTC); None when
    `instant` is outside the quiet hours."""
    if quiet is None or quiet.is_empty:
        return None
    zone = get_zone(tz)
    local = instant.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not quiet.contains(wall):
        return None
    day = local.date()
    return (
        local_wall_time(_window_start(day, wall, quiet), quiet.start, zone),
        local_wall_time(_window_end(day, wall, quiet), quiet.end, zone),
    )


def defer_out_of_quiet(instant: datetime, tz: str, quiet: QuietHours | None) -> datetime:
    """`instant` in UTC, or if it is inside the local quiet hours, the end of that window."""
    _require_aware("instant", instant)
    instant = instant.astimezone(UTC)
    window = _quiet_window(instant, tz, quiet)
    return instant if window is None else max(window[1], instant)


# --- sessions and rule candidates -----------------------------------------------------------


@dataclass(frozen=True)
class SessionSlot:
    """A scheduled session (aware instants); the timing functions only need when it is."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware("session start", self.start)
        _require_aware("session end", self.end)
        if self.end < self.start:
            raise ValueError("a session cannot end before it starts")


def _daily_candidates(
    zone: tzinfo, at: time, since: datetime, keep: Callable[[date], bool]
) -> Iterator[datetime]:
    """Wall time `at` on each local day accepted by `keep`, ascending, strictly after `since`."""
    day = _local_date(since, zone) - timedelta(days=1)
    for _ in range(_SEARCH_LIMIT * 7):
        if keep(day):
            candidate = local_wall_time(day, at, zone)
            if candidate > since:
                yield candidate
        day += timedelta(days=1)


def _every_n_days(
    rule: EveryNDays, zone: tzinfo, since: datetime, anchor: datetime | None
) -> Iterator[datetime]:
    origin = _local_date(anchor, zone) if anchor is not None else PHASE_EPOCH
    return _daily_candidates(zone, rule.at, since, lambda day: (day - origin).days % rule.days == 0)


def _weekdays(rule: Weekdays, zone: tzinfo, since: datetime) -> Iterator[datetime]:
    return _daily_candidates(zone, rule.at, since, lambda day: day.weekday() in rule.days)


def _midway_candidates(
    rule: Midway, zone: tzinfo, since: datetime, sessions: Sequence[SessionSlot]
) -> Iterator[datetime]:
    """For each gap between consecutive sessions, the `at` wall time closest to its middle.

    Only days whose `at` lies strictly inside the gap qualify; a gap too short for any
    (sessions on the same evening) gets no mid-way check-in.
    """
    ordered = sorted(sessions, key=lambda s: s.start)
    for previous, following in pairwise(ordered):
        gap_start, gap_end = previous.end, following.start
        if gap_end <= gap_start:
            continue
        middle = gap_start + (gap_end - gap_start) / 2
        best: datetime | None = None
        day = _local_date(gap_start, zone)
        last = _local_date(gap_end, zone)
        while day <= last:
            candidate = local_wall_time(day, rule.at, zone)
            if gap_start < candidate < gap_end and (
                best is None or abs(candidate - middle) < abs(best - middle)
            ):
                best = candidate
            day += timedelta(days=1)
        if best is not None and best > since:
            yield best


def _rule_candidates(
    rule: Rule,
    zone: tzinfo,
    since: datetime,
    sessions: Sequence[SessionSlot],
    anchor: datetime | None,
) -> Iterator[datetime]:
    """Raw (not yet quiet-deferred) candidates of one rule, ascending, strictly after `since`."""
    if isinstance(rule, Off):
        return iter(())
    if isinstance(rule, AfterSession):
        offset = timedelta(hours=rule.hours)
        return iter(sorted(t for s in sessions if (t := s.end + offset) > since))
    if isinstance(rule, BeforeSession):
        offset = timedelta(hours=rule.hours)
        return iter(sorted(t for s in sessions if (t := s.start - offset) > since))
    if isinstance(rule, EveryNDays):
        return _every_n_days(rule, zone, since, anchor)
    if isinstance(rule, Weekdays):
        return _weekdays(rule, zone, since)
    if isinstance(rule, Midway):
        return _midway_candidates(rule, zone, since, sessions)
    raise TypeError(f"unknown cadence rule {rule!r}")


def next_checkin_at(
    cadence: Cadence,
    *,
    after: datetime,
    tz: str,
    sessions: Sequence[SessionSlot],
    anchor: datetime | None,
    quiet: QuietHours | None,
    previous: datetime | None = None,
    min_gap: timedelta = MIN_CHECKIN_GAP,
) -> datetime | None:
    """The next check-in strictly after `after` (UTC), or None if the cadence gives none.

    A candidate is a rule's local wall time (or session offset) moved out of quiet hours; the
    result is the earliest such instant over all rules that is later than `after` and, when the
    last check-in actually sent is given as `previous`, at least `min_gap` after it. So rules whose
    candidates fall within 12 h of each other merge into the earlier one, and after a move to a
    new zone the same local day is not asked twice. Callers should pass `previous` whenever a
    check-in has been sent; `after` alone may be any instant (joining, a cadence change, now).
    """
    _require_aware("after", after)
    after = after.astimezone(UTC)
    if anchor is not None:
        _require_aware("anchor", anchor)
    if previous is not None:
        _require_aware("previous", previous)
    zone = get_zone(tz)
    # A raw candidate up to a day before `after` may still be due after it once deferred out of
    # quiet hours (a 22:30 candidate waits until 09:00), so the search starts a day early.
    since = after - timedelta(days=1, hours=1)
    floor = previous.astimezone(UTC) + min_gap if previous is not None else None
    best: datetime | None = None
    for rule in cadence.rules:
        for examined, raw in enumerate(_rule_candidates(rule, zone, since, sessions, anchor)):
            if examined >= _SEARCH_LIMIT or (best is not None and raw >= best):
                break
            due = defer_out_of_quiet(raw, tz, quiet)
            if due > after and (floor is None or due >= floor):
                if best is None or due < best:
                    best = due
                break
    return best


# --- an open check-in: nudge and expiry -----------------------------------------------------


def expires_at(
    opened_at: datetime,
    next_session_start: datetime | None,
    after: timedelta = timedelta(days=4),
) -> datetime:
    """When an unanswered check-in counts as missed: `after` it opened, or at the next session.

    A next session that does not start after the check-in opened is ignored (it is stale).
    """
    _require_aware("opened_at", opened_at)
    if after <= timedelta(0):
        raise ValueError("the expiry delay must be positive")
    expiry = opened_at.astimezone(UTC) + after
    if next_session_start is not None:
        _require_aware("next_session_start", next_session_start)
        start = next_session_start.astimezone(UTC)
        if opened_at < start < expiry:
            expiry = start
    return expiry


def nudge_at(
    opened_at: datetime,
    tz: str,
    quiet: QuietHours | None,
    after: timedelta = timedelta(days=2),
    *,
    expires: datetime | None = None,
    min_before_expiry: timedelta = NUDGE_MIN_BEFORE_EXPIRY,
) -> datetime | None:
    """The one reminder for an unanswered check-in: `after` it opened, out of quiet hours.

    None when it would land less than `min_before_expiry` before `expires` (or after it): a
    nudge for a check-in about to close only pesters. There is never a second nudge.
    """
    _require_aware("opened_at", opened_at)
    if after <= timedelta(0):
        raise ValueError("the nudge delay must be positive")
    due = defer_out_of_quiet(opened_at + after, tz, quiet)
    if expires is not None:
        _require_aware("expires", expires)
        if due > expires.astimezone(UTC) - min_before_expiry:
            return None
    return due


@dataclass(frozen=True)
class CheckinDeadlines:
    """What to store with a newly opened check-in: its nudge (if any) and its expiry."""

    nudge_at: datetime | None
    expires_at: datetime


def checkin_deadlines(
    opened_at: datetime,
    *,
    tz: str,
    quiet: QuietHours | None,
    next_session_start: datetime | None,
    nudge_after: timedelta | None = timedelta(days=2),
    expire_after: timedelta = timedelta(days=4),
) -> CheckinDeadlines:
    """Nudge and expiry of a check-in opened at `opened_at`, consistent with each other;
    `nudge_after=None`: the practice sends no nudge."""
    expiry = expires_at(opened_at, next_session_start, expire_after)
    if nudge_after is None:
        return CheckinDeadlines(None, expiry)
    return CheckinDeadlines(nudge_at(opened_at, tz, quiet, nudge_after, expires=expiry), expiry)


# --- the therapist's digest -----------------------------------------------------------------


def digest_at(
    session_start: datetime,
    lead: timedelta = timedelta(hours=3),
    *,
    therapist_tz: str,
    therapist_quiet: QuietHours | None,
    margin: timedelta = DIGEST_MARGIN,
) -> datetime:
    """When the digest for a session is sent: `lead` before it, moved earlier out of quiet hours.

    Rule: if `session_start - lead` falls inside the therapist's quiet window, the digest goes
    `margin` (5 minutes) before that window began, e.g. 20:55 the evening before for quiet hours
    21:00-09:00. It is never later than `session_start - lead`, so the therapist always has at
    least the lead time to read it.
    """
    _require_aware("session_start", session_start)
    if lead < timedelta(0):
        raise ValueError("the digest lead time cannot be negative")
    target = session_start.astimezone(UTC) - lead
    window = _quiet_window(target, therapist_tz, therapist_quiet)
    return target if window is None else min(window[0] - margin, target)


# --- durations ------------------------------------------------------------------------------

_DURATION = re.compile(
    r"(?:(?P<d>[0-9]{1,7})\s*d)?\s*(?:(?P<h>[0-9]{1,7})\s*h)?\s*(?:(?P<m>[0-9]{1,7})\s*m)?",
    re.ASCII,
)
_MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """Parse `3h`, `90m`, `2d`, `1h30m` (units d, h, m in that order); positive, up to 10 years."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration as text, got {type(text).__name__}")
    cleaned = text.strip().lower()
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None or not any(match.groupdict().values()):
        hint = " (add a unit)" if cleaned.isascii() and cleaned.isdigit() else ""
        raise ValueError(
            f"expected a duration like '3h', '90m', '2d' or '1h30m'{hint}, got {text!r}"
        )
    parts = {unit: int(value) if value else 0 for unit, value in match.groupdict().items()}
    result = timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"])
    if result <= timedelta(0):
        raise ValueError(f"expected a positive duration, got {text!r}")
    if result > _MAX_DURATION:
        raise ValueError(f"duration {text!r} is too long (at most 3650 days)")
    return result


def format_duration(value: timedelta) -> str:
    """The canonical spelling `parse_duration` reads back: `3h`, `1h30m`, `2d` (whole minutes)."""
    minutes = int(value.total_seconds() // 60)
    if minutes <= 0 or value != timedelta(minutes=minutes):
        raise ValueError(f"only positive whole-minute durations can be written, got {value}")
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "")
    return text + (f"{mins}m" if mins else "")
