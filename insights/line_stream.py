"""Read a backtest line straight into an observation stream, for speed.

`history_from_backtest_line` builds the full `ClientHistory` (datetimes, records) that digests
and the bot use; the backtest needs only POSIX times and the answers, so this reads the same
format into the same stream `insights.state.observations` would give, several times faster. A
line it cannot read is handed to `history_from_backtest_line`, whose errors name the problem;
a test keeps the two readers in agreement.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from itertools import pairwise
from operator import itemgetter
from typing import Any

from insights.history import (
    DEFAULT_CADENCE_DAYS,
    LIFE_EVENT_KINDS,
    history_from_backtest_line,
    needs_sessions,
    posix,
    spec_cadence_days,
    zone_or_utc,
)
from insights.state import (
    ANSWER,
    LIFE,
    MISSED,
    SENT,
    SESSION,
    Observation,
    Reply,
    observations,
)

_fromisoformat = datetime.fromisoformat


@dataclass(frozen=True, slots=True)
class LineStream:
    """One client of a backtest file, ready to replay."""

    client: str
    timezone: str
    zone: tzinfo
    cadence_days: float
    stream: list[Observation]
    dropout: bool | None
    """None when the line has no label."""
    dropout_at: float | None


def _ts(text: str, zone: tzinfo) -> float:
    value = _fromisoformat(text)
    return posix(value) if value.tzinfo is not None else posix(value.replace(tzinfo=zone))


def _instant(value: datetime, zone: tzinfo) -> float:
    return posix(value if value.tzinfo is not None else value.replace(tzinfo=zone))


def stream_from_line(obj: Mapping[str, Any]) -> LineStream:
    """The observation stream of one parsed line; ValueError (naming the problem) if malformed."""
    try:
        return _fast(obj)
    except (KeyError, TypeError, ValueError, AttributeError):
        return _slow(obj)


def _fast(obj: Mapping[str, Any]) -> LineStream:
    client = obj["client"]
    if not isinstance(client, str) or not client:
        raise ValueError("client")
    timezone = obj.get("timezone") or "UTC"
    zone = zone_or_utc(timezone)
    # per check-in: [sent, first answer, completed, expired, scores, tension, talked, comment,
    # partial]
    drafts: dict[str, list[Any]] = {}
    life: list[Observation] = []
    sessions: list[datetime] = []
    for event in obj.get("events") or ():
        kind = event["type"]
        if kind == "answer":
            at = _ts(event["at"], zone)
            key = str(event["checkin"])
            draft = drafts.get(key)
            if draft is None:
                draft = drafts[key] = [at, at, None, None, {}, None, None, None, False]
            elif draft[1] is None or at < draft[1]:
                draft[1] = at
            scores = event.get("scores")
            if scores:
                for value in scores.values():
                    if type(value) is not int and value is not None:
                        raise ValueError("score")
                draft[4].update(scores)
            if event.get("partial") is True:
                draft[8] = True
            else:
                draft[8] = False
                draft[2] = at if draft[2] is None or at > draft[2] else draft[2]
            if "tension" in event:
                draft[5] = _flag(event["tension"])
            if "talked_through" in event:
                draft[6] = _flag(event["talked_through"])
            comment = event.get("comment")
            if comment and isinstance(comment, str) and comment.strip():
                draft[7] = comment
        elif kind == "checkin_sent":
            at = _ts(event["at"], zone)
            key = str(event["id"])
            draft = drafts.get(key)
            if draft is None:
                drafts[key] = [at, None, None, None, {}, None, None, None, False]
            elif at < draft[0]:
                draft[0] = at
        elif kind == "session":
            held = _fromisoformat(event["at"])
            sessions.append(held)
            life.append((_instant(held, zone), SESSION, "session"))
        elif kind == "checkin_missed":
            at = _ts(event["at"], zone)
            key = str(event["checkin"])
            draft = drafts.setdefault(key, [at, None, None, None, {}, None, None, None, False])
            if draft[3] is None or at < draft[3]:
                draft[3] = at
            if draft[1] is not None:
                draft[8] = draft[2] is None
        elif kind in LIFE_EVENT_KINDS:
            life.append((_ts(event["at"], zone), LIFE, kind))

    stream: list[Observation] = life
    append = stream.append
    sends: list[float] = []
    for sent, answered, _, expired, scores, tension, talked, comment, partial in drafts.values():
        reply = Reply(sent, scores, comment, partial, tension, talked)
        sends.append(sent)
        append((sent, SENT, reply))
        if answered is not None:
            append((answered, ANSWER, reply))
        elif expired is not None:
            append((expired, MISSED, reply))
    stream.sort(key=itemgetter(0, 1))

    spec = obj.get("cadence")
    cadence = _cadence_days(spec if isinstance(spec, str) else None, sessions, zone) or (
        _median_gap(sends) or DEFAULT_CADENCE_DAYS
    )
    dropout, dropout_at = _label(obj.get("label"), zone)
    return LineStream(client, timezone, zone, cadence, stream, dropout, dropout_at)


_SPEC_DAYS: dict[str, float | None] = {}
"""Cadence texts that do not follow the sessions, and the days they mean: a file uses a few."""


def _cadence_days(spec: str | None, sessions: list[datetime], zone: tzinfo) -> float | None:
    if spec is None:
        return None
    if spec in _SPEC_DAYS:
        return _SPEC_DAYS[spec]
    if needs_sessions(spec):
        return spec_cadence_days(spec, [utc(_instant(value, zone)) for value in sessions])
    days = spec_cadence_days(spec, [])
    if len(_SPEC_DAYS) < 1024:
        _SPEC_DAYS[spec] = days
    return days


def _flag(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError("flag")


def _median_gap(times: list[float]) -> float | None:
    ordered = sorted(times)
    gaps = [(b - a) / 86400 for a, b in pairwise(ordered) if b > a]
    return statistics.median(gaps) if gaps else None


def _label(raw: object, zone: tzinfo) -> tuple[bool | None, float | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("dropout"), bool):
        raise ValueError("label")
    at = raw.get("at")
    return raw["dropout"], (_ts(at, zone) if at is not None else None)


def _slow(obj: Mapping[str, Any]) -> LineStream:
    """The careful reader: raises the readable error, or agrees with the fast one."""
    history, label = history_from_backtest_line(obj)
    at = label.at.timestamp() if label is not None and label.at is not None else None
    return LineStream(
        client=history.client,
        timezone=history.timezone,
        zone=history.zone(),
        cadence_days=history.cadence_days,
        stream=observations(history),
        dropout=label.dropout if label is not None else None,
        dropout_at=at,
    )


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)
