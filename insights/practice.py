"""Learning from the practice itself: its own histories, with observed endings and therapists'
acknowledgements as labels, scored as the backtest scores a file, and thresholds suggested.

Labels, all from what the practice has seen:

* a client whose course **ended** (stopped, or blocked the bot, and not undone) is a drop-out. The
  drop-out is dated at the first session after their last reply, or at the ending if earlier: the
  moment the practice could first have known, so leads are counted conservatively;
* a client followed for at least `min_weeks` without an ending, and still active (a reply or a
  session within `lapse_weeks`), is a stayer (they may still leave: the figures are as good as
  the follow-up), and so is any client an alert about was acknowledged as **not a concern** (the
  false alarm the therapist told us about);
* anyone else is left out of the figures: too recent to judge, or lapsed without a recorded
  ending (a planned ending and a drop-out look the same in the data).

Acknowledgements (`Acknowledgement`) are plain data: whatever stores them hands them in.
Suggested thresholds are the best of a small grid by `insights.heldout.objective`, offered only
with enough endings and stayers to mean something, and only when clearly better than the current
ones on this practice's own history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from insights.backtest import METHODS, MethodScore, backtest_client
from insights.heldout import TUNING_GRID, Row, grid, objective
from insights.history import ClientHistory, Label, posix, zone_or_utc
from insights.line_stream import LineStream
from insights.state import observations
from insights.thresholds import Thresholds

MIN_ENDINGS: Final = 10
MIN_STAYERS: Final = 20
CLEARLY_BETTER: Final = 0.02
"""How much higher the objective must be before other thresholds are suggested."""

_UNDOES: Final = {"stopped": "resumed", "blocked": "unblocked"}


@dataclass(frozen=True, slots=True)
class Labelling:
    """How long a client must be followed, and how recently active, to count as a stayer."""

    min_weeks: int = 8
    lapse_weeks: int = 4


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A therapist's verdict on an alert about a client: a concern, or not a concern."""

    client: str
    at: datetime
    concern: bool


def ended_at(history: ClientHistory, also: datetime | None = None) -> datetime | None:
    """When the client's course ended (a stop or block not undone since), or `also` if earlier."""
    ended: datetime | None = None
    for event in sorted(history.events, key=lambda e: e.at):
        if event.kind in _UNDOES:
            ended = ended or event.at
        elif event.kind in _UNDOES.values():
            ended = None
    if also is not None and (ended is None or also < ended):
        return also
    return ended


def label_for(
    history: ClientHistory,
    ending: datetime | None,
    acks: Sequence[Acknowledgement],
    now: datetime,
    labelling: Labelling = Labelling(),
) -> Label | None:
    """The client's label as the practice knows it (see the module docstring), or None."""
    if ending is not None:
        replies = [
            c.answered_at for c in history.checkins if c.answered_at and c.answered_at < ending
        ]
        last = max(replies, default=None)
        after = [s for s in history.sessions if last is not None and last < s < ending]
        return Label(True, min(after, default=ending))
    sent = [c.sent_at for c in history.checkins]
    followed = bool(sent) and now - min(sent) >= timedelta(weeks=labelling.min_weeks)
    seen = [c.answered_at for c in history.checkins if c.answered_at] + list(history.sessions)
    active = any(now - t <= timedelta(weeks=labelling.lapse_weeks) for t in seen if t <= now)
    if (followed and active) or any(not a.concern for a in acks):
        return Label(False)
    return None


def stream_of(history: ClientHistory, label: Label | None) -> LineStream:
    """The history as the backtest replays it."""
    return LineStream(
        client=history.client,
        timezone=history.timezone,
        zone=zone_or_utc(history.timezone),
        cadence_days=history.cadence_days,
        stream=observations(history),
        dropout=None if label is None else label.dropout,
        dropout_at=None if label is None or label.at is None else posix(label.at),
    )


@dataclass
class PracticeBacktest:
    """The practice's own history scored, and what the thresholds could be."""

    clients: int
    dropouts: int
    stayers: int
    unlabelled: int
    summary: dict[str, dict[str, Any]]
    """Each method's figures (as the file backtest gives them) under the current thresholds."""
    not_a_concern: int = 0
    """Clients alerted before an acknowledgement that said "not a concern"."""
    concern: int = 0
    """Clients alerted before an acknowledgement that said "a concern"."""
    suggested: dict[str, Any] | None = None
    """Changed thresholds (name -> value), when clearly better; None to keep the current ones."""
    suggested_summary: dict[str, Any] | None = None
    reason: str = ""
    """Why nothing is suggested, when nothing is."""
    lines: list[dict[str, Any]] = field(default_factory=list)
    """The per-client output lines of the fixed format, under the current thresholds."""


Scored = tuple[dict[str, MethodScore], list[dict[str, Any]]]


def _score(streams: Iterable[LineStream], th: Thresholds) -> Scored:
    scores = {method: MethodScore() for method in METHODS}
    lines: list[dict[str, Any]] = []
    for client in streams:
        line, outcome = backtest_client(client, th)
        lines.append(line)
        if outcome is not None:
            for method, score in scores.items():
                score.add(outcome, outcome.first_alerts[method])
    return scores, lines


def run(
    histories: Sequence[tuple[ClientHistory, datetime | None]],
    acks: Sequence[Acknowledgement],
    now: datetime,
    thresholds: Thresholds | None = None,
    settings: Sequence[Thresholds] | None = None,
    labelling: Labelling = Labelling(),
) -> PracticeBacktest:
    """Score every client (history, and its ending if the store knows one beyond the history)."""
    th = thresholds or Thresholds()
    by_client: dict[str, list[Acknowledgement]] = {}
    for ack in acks:
        by_client.setdefault(ack.client, []).append(ack)
    streams: list[LineStream] = []
    for history, also in histories:
        mine = by_client.get(history.client, [])
        label = label_for(history, ended_at(history, also), mine, now, labelling)
        streams.append(stream_of(history, label))
    labelled = [c for c in streams if c.dropout is not None]
    scores, lines = _score(streams, th)
    result = PracticeBacktest(
        clients=len(streams),
        dropouts=sum(1 for c in labelled if c.dropout),
        stayers=sum(1 for c in labelled if not c.dropout),
        unlabelled=len(streams) - len(labelled),
        summary={m: s.as_dict() for m, s in scores.items()},
        lines=lines,
    )
    _count_acks(result, lines, by_client)
    if result.dropouts < MIN_ENDINGS or result.stayers < MIN_STAYERS:
        result.reason = (
            f"too few labelled clients to suggest thresholds (need {MIN_ENDINGS} endings and "
            f"{MIN_STAYERS} stayers followed for {labelling.min_weeks} weeks)"
        )
        return result
    current = objective([Row.from_summary("practice", "rapport", result.summary["rapport"])])
    best: tuple[float, Thresholds, dict[str, Any]] | None = None
    for candidate in settings if settings is not None else grid(th, TUNING_GRID):
        summary = _score(labelled, candidate)[0]["rapport"].as_dict()
        value = objective([Row.from_summary("practice", "rapport", summary)])
        if best is None or value > best[0]:
            best = (value, candidate, summary)
    if best is None or best[0] < current + CLEARLY_BETTER:
        result.reason = "no setting tried is clearly better on this practice's history"
        return result
    _, chosen, summary = best
    result.suggested = {
        name: value for name, value in chosen.to_dict().items() if value != getattr(th, name)
    }
    result.suggested_summary = summary
    return result


def _count_acks(
    result: PracticeBacktest, lines: list[dict[str, Any]], acks: dict[str, list[Acknowledgement]]
) -> None:
    for line in lines:
        first = line["first_alert_at"]
        if first is None:
            continue
        alerted = datetime.fromisoformat(first)
        for ack in acks.get(line["client"], []):
            if alerted <= ack.at:
                if ack.concern:
                    result.concern += 1
                else:
                    result.not_a_concern += 1
                break


def report(result: PracticeBacktest) -> list[str]:
    """A plain report a practice admin can read."""
    r = result.summary["rapport"]
    out = [
        f"{result.clients} clients: {result.dropouts} ended their course, {result.stayers} stayed "
        f"(followed long enough or an alert marked not a concern), {result.unlabelled} too "
        "recent or lapsed without a recorded ending to judge.",
    ]
    if result.dropouts + result.stayers == 0:
        out.append("Nothing to score yet.")
        return out
    out.append(f"With the current thresholds: {_figures(r)}")
    if result.not_a_concern or result.concern:
        out.append(
            f"Acknowledged alerts: {result.concern} marked a concern, {result.not_a_concern} "
            "marked not a concern."
        )
    if result.suggested is None:
        out.append(f"Thresholds: keep the current ones ({result.reason}).")
        return out
    changes = ", ".join(f"{k} = {v}" for k, v in sorted(result.suggested.items()))
    out.append(f"Suggested thresholds: {changes}.")
    out.append(f"On the same history they give: {_figures(result.suggested_summary or {})}")
    out.append(
        "These are fitted to this history: try them with `rapport backtest --config` and watch a "
        "few weeks before relying on them."
    )
    return out


def _figures(r: dict[str, Any]) -> str:
    lead = r.get("median_lead_days")
    return (
        f"{r['tp']} of {r['tp'] + r['fn']} clients who ended were alerted in time "
        f"(recall {r['recall']:.2f}), and {r['fp']} of {r['fp'] + r['tn']} who stayed "
        f"({r['alerted_stayers_pct']:.1f}%); F1 {r['f1']:.2f}"
        + (f", median warning {lead:.1f} days." if lead is not None else ".")
    )
