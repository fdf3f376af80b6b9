"""Withdrawal and rupture signals over a client's history: the public face of `insights.rules`.

Each signal code has a function `(history, now, thresholds) -> Signal | None` that looks only at
what was known at `now`. `detect` runs them all and combines them: single indications are
`watch`; `alert` needs evidence that persists across check-ins against the client's own habits
(misses and late replies piling up, a sustained fall from the baseline), several kinds of watch
signal telling the same story, or a client who stopped or blocked the bot.
`is_alerting` is the backtest's definition of an alert; `rank_and_merge` orders signals for a
therapist, most serious first, folding related ones into one entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Final, Literal

from insights import rules
from insights.history import ClientHistory
from insights.rules import SEVERITY_NAMES, Hit
from insights.state import ClientState, replay
from insights.texts import explain
from insights.thresholds import Thresholds

Severity = Literal["info", "watch", "alert"]
SEVERITY_RANK: Final[dict[str, int]] = {"info": 0, "watch": 1, "alert": 2}

CODES: Final[tuple[str, ...]] = tuple(rules.RULES)

_PRIORITY: Final[tuple[str, ...]] = (
    "unreachable",
    "stopped",
    "silence",
    "falling_alliance",
    "rupture_reported",
    "confrontation",
    "low_alliance",
    "item_drop",
    "slowing",
    "partial",
    "terse",
    "paused",
    "ceiling",
)
"""Among signals of equal severity, the order a therapist should read them in."""

_FAMILIES: Final[tuple[tuple[str, ...], ...]] = (
    ("silence", "slowing", "partial", "terse"),
    ("falling_alliance", "low_alliance", "item_drop"),
    ("rupture_reported", "confrontation"),
)
"""Signals that tell one story and are shown as one entry when they appear together."""


@dataclass(frozen=True)
class Signal:
    """One finding about a client: what, how serious, since when, the numbers, and in words.

    `merged` lists the codes folded into this entry by `rank_and_merge` (empty otherwise).
    """

    code: str
    severity: Severity
    since: datetime
    evidence: dict[str, float | int | str]
    explanation: str
    merged: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = {
            "code": self.code,
            "severity": self.severity,
            "since": self.since.isoformat(),
            "evidence": dict(self.evidence),
            "explanation": self.explanation,
        }
        if self.merged:
            result["merged"] = list(self.merged)
        return result


def to_signal(hit: Hit, zone: tzinfo = UTC, lang: str = "en") -> Signal:
    """Dress a rule's finding for people: datetimes and a plain sentence."""
    since = datetime.fromtimestamp(hit.since, UTC)
    severity: Severity = SEVERITY_NAMES[hit.severity]  # type: ignore[assignment]
    return Signal(
        code=hit.code,
        severity=severity,
        since=since,
        evidence=dict(hit.evidence),
        explanation=explain(hit.code, severity, since, hit.evidence, zone, lang),
    )


def state_at(history: ClientHistory, now: datetime) -> ClientState:
    """The folded history as it stood at `now`."""
    return replay(history, _instant(now).timestamp())


def _instant(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("'now' must be timezone-aware")
    return now


def _single(
    code: str, history: ClientHistory, now: datetime, thresholds: Thresholds | None
) -> Signal | None:
    th = thresholds or Thresholds()
    moment = _instant(now).timestamp()
    hit = rules.RULES[code](replay(history, moment), moment, th)
    return to_signal(hit, history.zone()) if hit is not None else None


def silence(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """Missed check-ins in a row, no reply for over 2 cadence intervals, or a falling reply rate."""
    return _single("silence", history, now, thresholds)


def slowing(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """Median delay of the last 3 replies at least twice the client's own usual delay."""
    return _single("slowing", history, now, thresholds)


def low_alliance(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """Latest alliance total under the cut-off; an alert when it stays there."""
    return _single("low_alliance", history, now, thresholds)


def falling_alliance(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """A reliable drop from the client's baseline (alert when sustained) or a clear downtrend."""
    return _single("falling_alliance", history, now, thresholds)


def item_drop(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """One item 3+ points under its baseline or at 5 or below, naming its domain."""
    return _single("item_drop", history, now, thresholds)


def partial(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """Check-ins started and abandoned."""
    return _single("partial", history, now, thresholds)


def terse(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """Stopped commenting after commenting, or comments shrinking sharply."""
    return _single("terse", history, now, thresholds)


def ceiling(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """Perfect scores repeatedly with no comments (info only)."""
    return _single("ceiling", history, now, thresholds)


def rupture_reported(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """Tension reported in the latest check-in; higher when not talked through."""
    return _single("rupture_reported", history, now, thresholds)


def confrontation(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """A strongly negative comment about the therapy or therapist in the latest check-in."""
    return _single("confrontation", history, now, thresholds)


def paused(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """The client paused check-ins and has not resumed."""
    return _single("paused", history, now, thresholds)


def stopped(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """The client stopped check-ins."""
    return _single("stopped", history, now, thresholds)


def unreachable(
    history: ClientHistory, now: datetime, thresholds: Thresholds | None = None
) -> Signal | None:
    """The client blocked the bot."""
    return _single("unreachable", history, now, thresholds)


def detect(
    history: ClientHistory,
    now: datetime,
    thresholds: Thresholds | None = None,
    *,
    lang: str = "en",
    zone: tzinfo | None = None,
) -> list[Signal]:
    """Every signal at `now`, combined, using only data at or before `now` (unranked)."""
    th = thresholds or Thresholds()
    moment = _instant(now).timestamp()
    hits = rules.evaluate(replay(history, moment), moment, th)
    reader_zone = zone or history.zone()
    return [to_signal(hit, reader_zone, lang) for hit in hits]


def is_alerting(signals: Iterable[Signal]) -> bool:
    """True when any signal is an alert: the backtest's definition of "Rapport alerted"."""
    return any(signal.severity == "alert" for signal in signals)


def _order(signal: Signal) -> tuple[int, int, datetime]:
    priority = _PRIORITY.index(signal.code) if signal.code in _PRIORITY else len(_PRIORITY)
    return (-SEVERITY_RANK[signal.severity], priority, signal.since)


def rank(signals: Iterable[Signal]) -> list[Signal]:
    """Most serious first, each signal on its own (the digest gives every one its own line)."""
    return sorted(signals, key=_order)


def rank_and_merge(signals: Iterable[Signal]) -> list[Signal]:
    """Most serious first; signals of one family (e.g. the alliance scores) become one entry.

    A merged entry keeps the code of its most serious member, the highest severity, the earliest
    `since`, the members' evidence (prefixed with their code) and their sentences joined.
    """
    ordered = sorted(signals, key=_order)
    merged: list[Signal] = []
    taken: set[int] = set()
    for position, signal in enumerate(ordered):
        if position in taken:
            continue
        family = next((f for f in _FAMILIES if signal.code in f), None)
        members = [signal]
        if family is not None:
            for other_position in range(position + 1, len(ordered)):
                other = ordered[other_position]
                if other_position not in taken and other.code in family:
                    members.append(other)
                    taken.add(other_position)
        merged.append(members[0] if len(members) == 1 else _merge(members))
    return sorted(merged, key=_order)


def _merge(members: list[Signal]) -> Signal:
    lead = members[0]
    evidence: dict[str, float | int | str] = dict(lead.evidence)
    for other in members[1:]:
        for key, value in other.evidence.items():
            evidence[f"{other.code}.{key}"] = value
    sentences = [lead.explanation] + [
        m.explanation for m in members[1:] if m.explanation not in lead.explanation
    ]
    return Signal(
        code=lead.code,
        severity=max((m.severity for m in members), key=SEVERITY_RANK.__getitem__),
        since=min(m.since for m in members),
        evidence=evidence,
        explanation="; ".join(_strip_together(s) if i else s for i, s in enumerate(sentences)),
        merged=tuple(m.code for m in members[1:]),
    )


def _strip_together(sentence: str) -> str:
    """Inside a merged entry the members are listed anyway: drop their "together with" tails."""
    head, sep, _ = sentence.partition(", together with ")
    return head if sep else sentence


def signals_to_json(signals: Iterable[Signal]) -> list[Mapping[str, object]]:
    return [signal.to_dict() for signal in signals]
