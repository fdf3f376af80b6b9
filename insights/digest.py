"""The pre-session digest: what a therapist should know about a client, in a minute of reading.

`build_digest` gathers the facts (check-ins answered since the last session, ranked signals,
comments, suggested openings); `render_text` turns them into Telegram-sized plain text, `caption`
into a photo caption for the chart, `to_json` into data for the CLI. The digest says plainly when
all is well and when there is too little data to say anything: alert fatigue is a failure mode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any, Final, Literal

from flows import i18n
from flows.visible import visible_text
from insights import config
from insights.history import (
    Acknowledgement,
    CheckinRecord,
    ClientHistory,
    CrisisEvent,
    zone_or_utc,
)
from insights.signals import Signal, detect, rank_and_merge
from insights.texts import date_time, short_date, strip_together, text
from insights.thresholds import Thresholds

MESSAGE_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
MAX_COMMENTS: Final = 10
"""The most recent comments shown; older ones stay in the export."""

_OPENINGS_BY_CODE: Final[dict[str, tuple[str, ...]]] = {
    "silence": ("opening.silence",),
    "slowing": ("opening.silence",),
    "partial": ("opening.silence",),
    "terse": ("opening.silence", "opening.metacommunication"),
    "paused": ("opening.resume",),
    "stopped": ("opening.resume", "opening.silence"),
    "unreachable": ("opening.silence",),
    "falling_alliance": ("opening.metacommunication",),
    "low_alliance": ("opening.metacommunication",),
    "rupture_reported": ("opening.validate", "opening.metacommunication"),
    "confrontation": ("opening.validate", "opening.metacommunication"),
    "ceiling": ("opening.ceiling",),
}
_OPENINGS_BY_DOMAIN: Final[dict[str, str]] = {
    "goals": "opening.goals",
    "approach": "opening.rationale",
    "bond": "opening.validate",
    "overall": "opening.metacommunication",
}
_MARKS: Final[dict[str, str]] = {"alert": "‼", "watch": "•", "info": "·"}

RiskKind = Literal["crisis", "safety_item", "blocked"]


@dataclass(frozen=True)
class RiskItem:
    """Something since the last session a clinician must not miss: an urgent alert (risk
    language, or a positive answer to the safety question) or the client blocking the bot.

    Kind and time only, never the client's words: shown whatever the comments setting.
    """

    kind: RiskKind
    at: datetime
    category: str | None = None
    alerted: str | None = None
    ack: Acknowledgement | None = None

    def to_dict(self) -> dict[str, Any]:
        ack = self.ack
        return {
            "kind": self.kind,
            "at": self.at.isoformat(),
            "category": self.category,
            "alerted": self.alerted,
            "acknowledged": None
            if ack is None
            else {"by": ack.by, "at": ack.at.isoformat() if ack.at else None},
        }


@dataclass(frozen=True)
class Digest:
    """Everything the therapist is shown about one client before a session.

    Counts are for the check-ins sent since the last session before `now` (or since the start).
    `latest_total` / `baseline_total` are the alliance totals behind "steady at 38/40".
    """

    client: str
    alias: str
    timezone: str
    now: datetime
    session_at: datetime | None
    lang: str
    answered: int
    sent: int
    answered_total: int
    signals: tuple[Signal, ...]
    comments: tuple[tuple[datetime, str], ...]
    openings: tuple[str, ...]
    all_well: bool
    too_little_data: bool
    latest_total: int | None
    baseline_total: float | None
    flagged_items: tuple[str, ...]
    risks: tuple[RiskItem, ...] = ()
    since_session: bool = True
    """Whether `risks` (and the counts) run from a previous session, or from the start."""

    @property
    def level(self) -> str:
        """ "alert", "watch", "info" or "none": any risk item makes the digest an alert."""
        if self.risks:
            return "alert"
        for severity in ("alert", "watch", "info"):
            if any(signal.severity == severity for signal in self.signals):
                return severity
        return "none"


def _total(record: CheckinRecord) -> int | None:
    total = 0
    for item in config.ALLIANCE_ITEMS:
        value = record.scores.get(item)
        if value is None:
            return None
        total += value
    return total


def build_digest(
    history: ClientHistory,
    now: datetime,
    session_at: datetime | None,
    thresholds: Thresholds | None = None,
    lang: str = "en",
    include_comments: bool = True,
    *,
    zone: tzinfo | None = None,
) -> Digest:
    """The digest as it would be sent at `now`, using nothing recorded after `now`.

    `zone` is the reader's time zone for dates inside signal sentences (default: the client's).
    """
    th = thresholds or Thresholds()
    merged = rank_and_merge(detect(history, now, th, lang=lang, zone=zone))
    signals = tuple(_without_inner_tails(signal, lang) for signal in merged)
    since = max((s for s in history.sessions if s < now), default=None)
    period = [
        c for c in history.checkins if c.sent_at <= now and (since is None or c.sent_at > since)
    ]
    answered_in_period = [c for c in period if _answered_by(c, now)]
    complete = [c for c in history.checkins if _answered_by(c, now)]
    totals = [t for c in complete if (t := _total(c)) is not None]
    base_n = min(th.baseline_max, len(totals))
    baseline = sum(totals[:base_n]) / base_n if base_n >= th.baseline_min else None
    latest = complete[-1] if complete else None
    flagged = tuple(
        item
        for item in config.ALLIANCE_ITEMS
        if latest is not None
        and (value := latest.scores.get(item)) is not None
        and value <= th.item_flag
    )
    comments: tuple[tuple[datetime, str], ...] = ()
    if include_comments:
        # What the client wrote, as they saw it: invisible characters (bidi overrides, zero
        # widths) could reorder or hide words in the therapist's chat, in old rows too.
        commented = [
            (c.answered_at, seen)
            for c in period
            if c.comment
            and (seen := visible_text(c.comment).strip())
            and c.answered_at is not None
            and c.answered_at <= now
        ]
        comments = tuple(commented[-MAX_COMMENTS:])
    risks = risk_items(history, now, since)
    serious = bool(risks) or any(s.severity != "info" for s in signals)
    too_little = not serious and len(complete) < th.baseline_min
    return Digest(
        client=history.client,
        alias=visible_text(history.alias),
        timezone=history.timezone,
        now=now,
        session_at=session_at,
        lang=lang,
        answered=len(answered_in_period),
        sent=len(period),
        answered_total=len(complete),
        signals=signals,
        comments=comments,
        openings=choose_openings(signals, lang),
        all_well=not serious and not too_little,
        too_little_data=too_little,
        latest_total=totals[-1] if totals else None,
        baseline_total=baseline,
        flagged_items=flagged,
        risks=risks,
        since_session=since is not None,
    )


def risk_items(
    history: ClientHistory, now: datetime, since: datetime | None
) -> tuple[RiskItem, ...]:
    """Urgent alerts and blocking after `since` (the last session; None: from the start), up to
    `now`, in time order."""

    def within(at: datetime) -> bool:
        return at <= now and (since is None or at > since)

    items = [_crisis_item(c) for c in history.crises if within(c.at)]
    items += [
        RiskItem("blocked", e.at) for e in history.events if e.kind == "blocked" and within(e.at)
    ]
    return tuple(sorted(items, key=lambda item: item.at))


def _crisis_item(crisis: CrisisEvent) -> RiskItem:
    kind: RiskKind = "safety_item" if crisis.source == "safety_item" else "crisis"
    return RiskItem(kind, crisis.at, crisis.category, crisis.alerted, crisis.ack)


def _without_inner_tails(signal: Signal, lang: str) -> Signal:
    """A merged entry lists its members anyway: drop their "together with …" tails.

    `rank_and_merge` does this for English sentences; this does it in the reader's language (the
    members are joined with "; ", which no sentence of a catalog contains).
    """
    if not signal.merged or lang == "en":
        return signal
    lead, *members = signal.explanation.split("; ")
    explanation = "; ".join([lead, *(strip_together(member, lang) for member in members)])
    return signal if explanation == signal.explanation else replace(signal, explanation=explanation)


def _answered_by(record: CheckinRecord, now: datetime) -> bool:
    """Fully answered at or before `now` (a started-and-abandoned check-in is not)."""
    if record.answered_at is None or record.answered_at > now or record.status == "partial":
        return False
    return record.completed_at is None or record.completed_at <= now


def choose_openings(signals: tuple[Signal, ...], lang: str = "en") -> tuple[str, ...]:
    """Two or three openings from rupture-repair practice, in the order of the signals."""
    if not signals:
        return ()
    keys: list[str] = []
    for signal in signals:
        for code in (signal.code, *signal.merged):
            for key in _keys_for(code, signal):
                if key not in keys:
                    keys.append(key)
    for fallback in ("opening.metacommunication", "opening.validate"):
        if len(keys) >= 2:
            break
        if fallback not in keys:
            keys.append(fallback)
    return tuple(text(lang, key) for key in keys[:3])


def _keys_for(code: str, signal: Signal) -> tuple[str, ...]:
    if code == "item_drop":
        domain = signal.evidence.get("domain") or signal.evidence.get("item_drop.domain")
        return (_OPENINGS_BY_DOMAIN.get(str(domain), "opening.metacommunication"),)
    return _OPENINGS_BY_CODE.get(code, ())


def _lines(digest: Digest, zone: tzinfo) -> list[str]:
    lang = digest.lang
    lines = [text(lang, "digest.title", alias=digest.alias)]
    if digest.risks:
        since = "digest.risk.since_session" if digest.since_session else "digest.risk.since_start"
        lines.append(text(lang, since))
        lines.extend(_risk_line(item, zone, lang) for item in digest.risks)
        lines.append("")
    if digest.session_at is not None:
        lines.append(text(lang, "digest.session", when=date_time(digest.session_at, zone, lang)))
    else:
        lines.append(text(lang, "digest.no_session"))
    if digest.sent:
        lines.append(text(lang, "digest.counts", answered=digest.answered, sent=digest.sent))
    else:
        lines.append(text(lang, "digest.counts.none"))
    lines.append("")
    lines.extend(_headline(digest))
    if digest.signals and not digest.all_well:
        lines.append("")
        lines.append(text(lang, "digest.signals"))
        for signal in digest.signals:
            mark = _MARKS[signal.severity]
            label = text(lang, f"digest.{signal.severity}")
            lines.append(f"{mark} {label}: {signal.explanation}")
    elif digest.signals:
        for signal in digest.signals:
            lines.append(f"{_MARKS[signal.severity]} {signal.explanation}")
    if digest.flagged_items:
        names = ", ".join(
            text(lang, "digest.flagged_item", item=text(lang, f"item.{item}"))
            for item in digest.flagged_items
        )
        lines.append(text(lang, "digest.flagged", flag=config.ITEM_FLAG, items=names))
    if digest.comments:
        lines.append("")
        lines.append(text(lang, "digest.comments"))
        for at, comment in digest.comments:
            day = short_date(at, zone, lang)
            lines.append(text(lang, "digest.comment", date=day, comment=" ".join(comment.split())))
    if digest.openings:
        lines.append("")
        lines.append(text(lang, "digest.openings"))
        lines.extend(f"– {opening}" for opening in digest.openings)
    return lines


def _risk_line(item: RiskItem, zone: tzinfo, lang: str) -> str:
    """One risk item, marked as an alert, with its time in the reader's zone."""
    when = date_time(item.at, zone, lang)
    if item.kind == "blocked":
        return f"{_MARKS['alert']} {text(lang, 'digest.risk.blocked', when=when)}"
    if item.kind == "safety_item":
        line = text(lang, "digest.risk.safety_item", when=when)
    else:
        # the words of the urgent alert itself: one wording for a kind of language
        kind = i18n.t(lang, f"therapist.crisis_kind.{item.category or 'other'}")
        line = text(lang, "digest.risk.crisis", when=when, kind=kind)
    if item.alerted:
        line += " " + text(lang, f"digest.risk.alerted.{item.alerted}")
    if item.ack is not None and item.ack.by is not None and item.ack.at is not None:
        at = date_time(item.ack.at, zone, lang)
        line += " " + text(lang, "digest.risk.acknowledged", who=item.ack.by, when=at)
    elif item.ack is not None:
        line += " " + text(lang, "digest.risk.not_acknowledged")
    return f"{_MARKS['alert']} {line}"


def _headline(digest: Digest) -> list[str]:
    lang = digest.lang
    if digest.too_little_data:
        return [text(lang, "digest.too_little", answered=digest.answered_total)]
    if digest.all_well:
        answered, sent = (
            (digest.answered, digest.sent)
            if digest.sent
            else (
                digest.answered_total,
                digest.answered_total,
            )
        )
        if digest.latest_total is None:
            return [text(lang, "digest.all_well.no_total", answered=answered, sent=sent)]
        return [
            text(
                lang,
                "digest.all_well",
                answered=answered,
                sent=sent,
                total=digest.latest_total,
                max=config.TOTAL_MAX,
            )
        ]
    if digest.latest_total is not None:
        return [text(lang, "digest.latest", total=digest.latest_total, max=config.TOTAL_MAX)]
    return []


def render_text(digest: Digest, tz: tzinfo | str | None = None) -> list[str]:
    """The digest as plain-text messages, each ≤ 4096 characters, split on line boundaries.

    `tz` is the reader's time zone (a zone or an IANA name); by default the client's.
    """
    return split_message(_lines(digest, _zone(tz, digest)), MESSAGE_LIMIT)


def caption(digest: Digest, tz: tzinfo | str | None = None) -> str:
    """A photo caption (≤ 1024 characters): the head of the digest, cut at a line boundary."""
    lines = _lines(digest, _zone(tz, digest))
    kept: list[str] = []
    size = 0
    for line in lines:
        line = line if len(line) <= CAPTION_LIMIT else line[: CAPTION_LIMIT - 1] + "…"
        extra = len(line) + (1 if kept else 0)
        if size + extra > CAPTION_LIMIT - 2:
            if kept and kept[-1] != "":
                kept.append("…")
            break
        kept.append(line)
        size += extra
    while kept and kept[-1] == "":
        kept.pop()
    return "\n".join(kept)[:CAPTION_LIMIT]


def split_message(lines: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Pack lines into chunks of at most `limit` characters; only over-long lines are broken."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in _fit(lines, limit):
        extra = len(line) + (1 if current else 0)
        if current and size + extra > limit:
            chunks.append("\n".join(current).strip("\n"))
            current, size = [], 0
            extra = len(line)
            if not line:
                continue
        current.append(line)
        size += extra
    if current:
        chunks.append("\n".join(current).strip("\n"))
    return [chunk for chunk in chunks if chunk]


def _fit(lines: list[str], limit: int) -> list[str]:
    """Break any line longer than `limit` at spaces (or hard, for one enormous word)."""
    fitted: list[str] = []
    for line in lines:
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            if cut <= 0:
                cut = limit
            fitted.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        fitted.append(line)
    return fitted


def _zone(tz: tzinfo | str | None, digest: Digest) -> tzinfo:
    """The reader's zone: given as a zone or an IANA name, else the client's own."""
    if tz is None:
        return zone_or_utc(digest.timezone)
    if isinstance(tz, str):
        return zone_or_utc(tz)
    return tz


def to_json(digest: Digest) -> dict[str, Any]:
    """The digest as JSON-ready data (datetimes as ISO 8601)."""
    return {
        "client": digest.client,
        "alias": digest.alias,
        "timezone": digest.timezone,
        "now": digest.now.isoformat(),
        "session_at": digest.session_at.isoformat() if digest.session_at else None,
        "lang": digest.lang,
        "answered": digest.answered,
        "sent": digest.sent,
        "answered_total": digest.answered_total,
        "level": digest.level,
        "all_well": digest.all_well,
        "too_little_data": digest.too_little_data,
        "latest_total": digest.latest_total,
        "baseline_total": (
            None if digest.baseline_total is None else round(digest.baseline_total, 1)
        ),
        "flagged_items": list(digest.flagged_items),
        "risks_since": "last_session" if digest.since_session else "start",
        "risks": [item.to_dict() for item in digest.risks],
        "signals": [signal.to_dict() for signal in digest.signals],
        "comments": [{"at": at.isoformat(), "text": comment} for at, comment in digest.comments],
        "openings": list(digest.openings),
    }
