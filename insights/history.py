"""A client's history as plain data: the one input every signal, digest and backtest works on.

The bot builds a `ClientHistory` from its database; the backtest builds one from a line of the
fixed JSON Lines format (`history_from_backtest_line`). Nothing here knows about Telegram or SQL.
All datetimes are timezone-aware; histories built here hold them in UTC.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone, tzinfo
from functools import lru_cache
from itertools import pairwise
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.cadence import (
    AfterSession,
    BeforeSession,
    Cadence,
    EveryNDays,
    Midway,
    Rule,
    Weekdays,
    parse_cadence,
)

CheckinStatus = Literal["answered", "partial", "missed", "open"]
LifeEventKind = Literal["paused", "resumed", "stopped", "blocked", "unblocked"]

LIFE_EVENT_KINDS: Final[frozenset[str]] = frozenset(
    ("paused", "resumed", "stopped", "blocked", "unblocked")
)
DEFAULT_CADENCE_DAYS: Final = 7.0


@dataclass(frozen=True, slots=True)
class CheckinRecord:
    """One check-in as it stands: sent, and answered, partly answered, missed or still open.

    `answered_at` is the first tap, so the reply delay is `answered_at - sent_at`. `scores` maps
    item ids to 0–10, None meaning "prefer not to say"; an item absent from the mapping was never
    reached. `expired_at` is when an unanswered or unfinished check-in was given up on (missed or
    abandoned); when it is unknown, the check-in counts as missed from the moment it was sent.
    """

    id: str
    sent_at: datetime
    status: CheckinStatus
    answered_at: datetime | None = None
    completed_at: datetime | None = None
    scores: Mapping[str, int | None] = field(default_factory=dict)
    tension: bool | None = None
    talked_through: bool | None = None
    comment: str | None = None
    expired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LifeEvent:
    """A change in the client's relationship with the bot: paused, resumed, stopped, blocked."""

    kind: LifeEventKind
    at: datetime


@dataclass(frozen=True, slots=True)
class CrisisEvent:
    """An urgent alert about the client: risk language or a positive safety-item answer.

    `source` is what raised it ("safety_item" for the safety question, else written words),
    `category` the kind of language when known, `alerted` who was told ("therapist",
    "safety_contact", "nobody"). No words of the client: the digest shows the kind and time only.
    """

    at: datetime
    source: str = "text"
    category: str | None = None
    alerted: str | None = None
    ack: Acknowledgement | None = None  # None: no alert stored with it (older rows)


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Whether a clinician acknowledged the alert: by whom (their name) and when; `by` None
    while it is still open."""

    by: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClientHistory:
    """Everything Rapport knows about one client, in time order.

    `cadence_days` is the typical interval between check-ins: silence is measured against it.
    """

    client: str
    alias: str
    timezone: str
    cadence_days: float
    checkins: tuple[CheckinRecord, ...]
    events: tuple[LifeEvent, ...] = ()
    sessions: tuple[datetime, ...] = ()
    crises: tuple[CrisisEvent, ...] = ()

    def zone(self) -> tzinfo:
        """The client's time zone, falling back to UTC for a name this system does not know."""
        return zone_or_utc(self.timezone)


@dataclass(frozen=True, slots=True)
class Label:
    """The known outcome of a past client: did they drop out, and when."""

    dropout: bool
    at: datetime | None = None


def zone_or_utc(name: str | None) -> tzinfo:
    """Look up an IANA zone; unknown or empty names mean UTC rather than an error."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


_EPOCH_ORDINAL: Final = 719163
"""`date(1970, 1, 1).toordinal()`."""
_OFFSET_SECONDS: dict[tzinfo, int] = {}
"""Whole-second UTC offsets of the fixed-offset zones seen so far."""


def posix(moment: datetime) -> float:
    """`moment.timestamp()`, bit for bit, several times faster for whole-second fixed offsets.

    `datetime.timestamp` subtracts datetimes, which is slow next to the arithmetic below; reading
    a backtest file converts every event's time, so this is where that file spends its time.
    A whole number of seconds is exact as a float, so only fractions need the long way.
    """
    zone = moment.tzinfo
    if zone is None:
        return moment.timestamp()
    offset = _OFFSET_SECONDS.get(zone)
    if offset is None:
        delta = moment.utcoffset() if type(zone) is timezone else None
        if delta is None or delta.microseconds or len(_OFFSET_SECONDS) > 256:
            return moment.timestamp()
        offset = _OFFSET_SECONDS[zone] = delta.days * 86400 + delta.seconds
    seconds = (
        (moment.toordinal() - _EPOCH_ORDINAL) * 86400
        + moment.hour * 3600
        + moment.minute * 60
        + moment.second
        - offset
    )
    if moment.microsecond:
        return (seconds * 1_000_000 + moment.microsecond) / 1_000_000
    return float(seconds)


def parse_instant(text: object, zone: tzinfo = UTC) -> datetime:
    """An ISO 8601 instant as aware UTC; a value without an offset is read as local to `zone`."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 date-time, got {text!r}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"bad date-time {text!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def cadence_days_from_spec(
    spec: str | None, sends: list[datetime], sessions: list[datetime]
) -> float:
    """The typical days between check-ins: from the cadence text, else the median gap between sends.

    "every N days" is N, "weekdays a,b" is 7/2, a session-bound rule follows the sessions, and
    several rules joined with "+" or ";" add up their frequencies.
    """
    return spec_cadence_days(spec, sessions) or _median_gap_days(sends) or DEFAULT_CADENCE_DAYS


@lru_cache(maxsize=256)
def _cadence(spec: str) -> Cadence | None:
    """The cadence text read by the one cadence grammar; None for text it does not accept (a
    backtest file may carry anything there: the gaps between sends are the estimate then)."""
    try:
        return parse_cadence(spec)
    except ValueError:
        return None


def spec_cadence_days(spec: str | None, sessions: list[datetime]) -> float | None:
    """The typical days between check-ins that the cadence text implies (None: it does not)."""
    cadence = _cadence(spec) if spec else None
    if cadence is None:
        return None
    frequency = 0.0
    for rule in cadence.rules:
        days = _rule_days(rule, sessions)
        if days:
            frequency += 1.0 / days
    return 1.0 / frequency if frequency > 0 else None


def needs_sessions(spec: str | None) -> bool:
    """Whether `spec_cadence_days` reads the session times for this cadence text."""
    cadence = _cadence(spec) if spec else None
    return cadence is not None and any(isinstance(r, _SESSION_BOUND) for r in cadence.rules)


_SESSION_BOUND: Final = (AfterSession, BeforeSession, Midway)


def _rule_days(rule: Rule, sessions: list[datetime]) -> float | None:
    if isinstance(rule, EveryNDays):
        return float(rule.days)
    if isinstance(rule, Weekdays):
        return 7.0 / len(rule.days)
    if isinstance(rule, _SESSION_BOUND):
        return _median_gap_days(sessions) or DEFAULT_CADENCE_DAYS
    return None  # off


def _median_gap_days(instants: list[datetime]) -> float | None:
    ordered = sorted(instants)
    gaps = [(b - a).total_seconds() / 86400 for a, b in pairwise(ordered)]
    gaps = [gap for gap in gaps if gap > 0]
    return statistics.median(gaps) if gaps else None


class _Draft:
    """A check-in being assembled from its events."""

    __slots__ = (
        "answered_at",
        "comment",
        "completed_at",
        "expired_at",
        "id",
        "partial",
        "scores",
        "sent_at",
        "talked_through",
        "tension",
    )

    def __init__(self, checkin_id: str, sent_at: datetime) -> None:
        self.id = checkin_id
        self.sent_at = sent_at
        self.answered_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.expired_at: datetime | None = None
        self.scores: dict[str, int | None] = {}
        self.tension: bool | None = None
        self.talked_through: bool | None = None
        self.comment: str | None = None
        self.partial = False

    def record(self) -> CheckinRecord:
        status: CheckinStatus
        if self.answered_at is None:
            status = "missed" if self.expired_at is not None else "open"
        elif self.partial:
            status = "partial"
        else:
            status = "answered"
        return CheckinRecord(
            id=self.id,
            sent_at=self.sent_at,
            status=status,
            answered_at=self.answered_at,
            completed_at=self.completed_at,
            scores=self.scores,
            tension=self.tension,
            talked_through=self.talked_through,
            comment=self.comment,
            expired_at=self.expired_at,
        )


def history_from_backtest_line(obj: Mapping[str, Any]) -> tuple[ClientHistory, Label | None]:
    """Build a history (and its label, if any) from one parsed line of the backtest format.

    Raises ValueError naming what is wrong when the line does not follow the format. Unknown
    event types are skipped so that richer exports stay readable.
    """
    if not isinstance(obj, Mapping):
        raise ValueError("each line must be a JSON object")
    client = obj.get("client")
    if not isinstance(client, str) or not client:
        raise ValueError("'client' must be a non-empty string")
    timezone = obj.get("timezone") or "UTC"
    if not isinstance(timezone, str):
        raise ValueError("'timezone' must be a string")
    zone = zone_or_utc(timezone)
    events = obj.get("events") or []
    if not isinstance(events, list):
        raise ValueError("'events' must be a list")

    drafts: dict[str, _Draft] = {}
    life: list[LifeEvent] = []
    sessions: list[datetime] = []
    for position, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise ValueError(f"event {position} is not an object")
        try:
            _apply_event(event, zone, drafts, life, sessions)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"event {position} ({event.get('type')!r}): {exc}") from exc

    checkins = tuple(sorted((d.record() for d in drafts.values()), key=lambda r: r.sent_at))
    cadence = obj.get("cadence")
    history = ClientHistory(
        client=client,
        alias=str(obj.get("alias") or client),
        timezone=timezone,
        cadence_days=cadence_days_from_spec(
            cadence if isinstance(cadence, str) else None,
            [c.sent_at for c in checkins],
            sessions,
        ),
        checkins=checkins,
        events=tuple(sorted(life, key=lambda e: e.at)),
        sessions=tuple(sorted(sessions)),
    )
    return history, _label(obj.get("label"), zone)


def _apply_event(
    event: Mapping[str, Any],
    zone: tzinfo,
    drafts: dict[str, _Draft],
    life: list[LifeEvent],
    sessions: list[datetime],
) -> None:
    kind = event.get("type")
    if kind == "session":
        sessions.append(parse_instant(event["at"], zone))
    elif kind == "checkin_sent":
        checkin_id = str(event["id"])
        at = parse_instant(event["at"], zone)
        draft = drafts.get(checkin_id)
        if draft is None:
            drafts[checkin_id] = _Draft(checkin_id, at)
        else:
            draft.sent_at = min(draft.sent_at, at)
    elif kind == "answer":
        _apply_answer(event, parse_instant(event["at"], zone), drafts)
    elif kind == "checkin_missed":
        checkin_id = str(event["checkin"])
        at = parse_instant(event["at"], zone)
        draft = drafts.setdefault(checkin_id, _Draft(checkin_id, at))
        if draft.expired_at is None or at < draft.expired_at:
            draft.expired_at = at
        if draft.answered_at is not None:
            draft.partial = draft.completed_at is None
    elif kind in LIFE_EVENT_KINDS:
        life.append(LifeEvent(kind, parse_instant(event["at"], zone)))


def _apply_answer(event: Mapping[str, Any], at: datetime, drafts: dict[str, _Draft]) -> None:
    checkin_id = str(event["checkin"])
    draft = drafts.setdefault(checkin_id, _Draft(checkin_id, at))
    if draft.answered_at is None or at < draft.answered_at:
        draft.answered_at = at
    scores = event.get("scores") or {}
    if not isinstance(scores, Mapping):
        raise ValueError("'scores' must be an object")
    for item, value in scores.items():
        draft.scores[str(item)] = _score(value)
    if event.get("partial") is True:
        draft.partial = True
    else:
        draft.partial = False
        draft.completed_at = at if draft.completed_at is None else max(draft.completed_at, at)
    if "tension" in event:
        draft.tension = _flag(event["tension"])
    if "talked_through" in event:
        draft.talked_through = _flag(event["talked_through"])
    comment = event.get("comment")
    if isinstance(comment, str) and comment.strip():
        draft.comment = comment


def _score(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"score must be a number or null, got {value!r}")
    return round(value)


def _flag(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"expected true, false or null, got {value!r}")


def _label(raw: object, zone: tzinfo) -> Label | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("dropout"), bool):
        raise ValueError("'label' must be an object with a boolean 'dropout'")
    at = raw.get("at")
    return Label(dropout=raw["dropout"], at=parse_instant(at, zone) if at is not None else None)
