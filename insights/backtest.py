"""Backtesting: replay past histories event by event and see when Rapport would have spoken.

For each client line (the fixed JSON Lines format) time moves forward one event at a time; after
each answered, missed or life event the signals are evaluated with only what was known then, and
the first moment each signal (at each severity) appeared is recorded, along with
`first_alert_at`. The state is carried from one event to the next and only the rules an event can
change are re-run (`insights.rules.Evaluator`), so a client costs time linear in its events; the
result is the same, to the bit, as evaluating every rule on the history replayed from the start
at every event (`findings_by_replay`, the reference the tests hold it to). The input is streamed
in chunks, in one process or spread over several.

With labels present, a final summary line compares Rapport with the simple rules of
`insights.baseline_rule`. A client counts as alerted in time when its first alert comes before the
drop-out `at`; a stayer alerted at any time is a false alarm; lead time is the days from the first
alert to the drop-out.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from typing import Any

from insights.baseline_rule import STREAM_RULES
from insights.line_stream import LineStream, stream_from_line
from insights.rules import ALERT, SEVERITY_NAMES, Evaluator, Hit, evaluate
from insights.state import QUIET_KINDS, ClientState, Observation
from insights.texts import explain
from insights.thresholds import Thresholds

METHODS = ("rapport", *STREAM_RULES)
"""The methods compared in the summary, Rapport first."""

_CHUNK = 256
"""Lines handed to a worker process at a time."""

_IN_PROCESS_CHUNKS = 4
"""With `workers=None`, inputs of up to this many chunks are not worth starting processes for."""

Findings = dict[tuple[str, int], tuple[float, Hit]]
"""For each (code, severity) seen: the event time it first appeared, and the finding then."""


@dataclass
class Outcome:
    """What one labelled client contributes to the summary: each method's first alert."""

    dropout: bool
    dropout_at: float | None
    first_alerts: dict[str, float | None]


@dataclass
class MethodScore:
    """Counts for one method; turned into precision, recall and the rest by `as_dict`."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    true_negative: int = 0
    leads: list[float] = field(default_factory=list)

    def add(self, outcome: Outcome, alert_at: float | None) -> None:
        if outcome.dropout:
            in_time = alert_at is not None and (
                outcome.dropout_at is None or alert_at < outcome.dropout_at
            )
            if in_time:
                self.true_positive += 1
                if alert_at is not None and outcome.dropout_at is not None:
                    self.leads.append((outcome.dropout_at - alert_at) / 86400.0)
            else:
                self.false_negative += 1
        elif alert_at is not None:
            self.false_positive += 1
        else:
            self.true_negative += 1

    def as_dict(self) -> dict[str, Any]:
        tp, fp, fn, tn = (
            self.true_positive,
            self.false_positive,
            self.false_negative,
            self.true_negative,
        )
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        stayers = fp + tn
        return {
            "precision": round(precision, 3),
            "recall": round(recall, 3),
            "f1": round(f1, 3),
            "median_lead_days": round(statistics.median(self.leads), 1) if self.leads else None,
            "alerted_stayers_pct": round(100.0 * fp / stayers, 1) if stayers else 0.0,
            "n": tp + fp + fn + tn,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
        }


def first_appearances(
    stream: list[Observation], cadence_days: float, thresholds: Thresholds
) -> Findings:
    """For each (code, severity) seen, the event time it first appeared and the finding then."""
    state = ClientState(cadence_days)
    evaluator = Evaluator(state, thresholds)
    seen: Findings = {}
    observe = state.observe
    after = evaluator.after
    for t, kind, subject in stream:
        observe(t, kind, subject)
        if kind in QUIET_KINDS:
            continue  # sending a check-in, or a session being held, changes no finding
        hits = after(kind, t)
        if hits:
            for hit in hits:
                key = (hit.code, hit.severity)
                if key not in seen:
                    seen[key] = (t, hit)
    return seen


def findings_by_replay(
    stream: list[Observation], cadence_days: float, thresholds: Thresholds
) -> Findings:
    """`first_appearances` the slow, obvious way: every rule on a fresh replay at every event.

    Quadratic in the events; it exists to check the incremental evaluation against.
    """
    seen: Findings = {}
    for position, (t, kind, _) in enumerate(stream):
        if kind in QUIET_KINDS:
            continue
        state = ClientState(cadence_days)
        for observation in stream[: position + 1]:
            state.observe(*observation)
        for hit in evaluate(state, t, thresholds):
            seen.setdefault((hit.code, hit.severity), (t, hit))
    return seen


def backtest_client(
    client: LineStream, thresholds: Thresholds
) -> tuple[dict[str, Any], Outcome | None]:
    """One output line for a client, and its contribution to the summary when labelled."""
    seen = first_appearances(client.stream, client.cadence_days, thresholds)
    line = output_line(client, seen)
    if client.dropout is None:
        return line, None
    firsts: dict[str, float | None] = {"rapport": _first_alert(seen)}
    for name, rule in STREAM_RULES.items():
        firsts[name] = rule(client.stream, thresholds)
    return line, Outcome(client.dropout, client.dropout_at, firsts)


def _first_alert(seen: Findings) -> float | None:
    return min((t for (_, severity), (t, _) in seen.items() if severity == ALERT), default=None)


def output_line(client: LineStream, seen: Findings) -> dict[str, Any]:
    """The fixed output format: each signal's first appearance in time order, alerts first."""
    zone = client.zone
    ordered = sorted(seen.items(), key=lambda item: (item[1][0], -item[0][1]))
    signals: list[dict[str, Any]] = []
    first_alert_at: str | None = None
    moments: dict[float, datetime] = {}

    def local(t: float) -> datetime:
        """The client's local time at `t` (signals often share moments)."""
        moment = moments.get(t)
        if moment is None:
            moment = moments[t] = datetime.fromtimestamp(t, zone)
        return moment

    for (code, severity), (t, hit) in ordered:
        since = local(hit.since)
        at_text = local(t).isoformat()
        if severity == ALERT and first_alert_at is None:
            first_alert_at = at_text
        name = SEVERITY_NAMES[severity]
        signals.append(
            {
                "code": code,
                "severity": name,
                "at": at_text,
                "since": since.isoformat(),
                "evidence": hit.evidence,
                "explanation": explain(code, name, since, hit.evidence, zone),
            }
        )
    return {"client": client.client, "signals": signals, "first_alert_at": first_alert_at}


Numbered = list[tuple[int, str]]
Results = list[tuple[dict[str, Any], Outcome | None]]


def _process(lines: Numbered, thresholds: Thresholds) -> Results:
    # one stage at a time over the whole chunk: measurably faster than line by line
    clients: list[LineStream] = []
    for number, text in lines:
        try:
            clients.append(stream_from_line(json.loads(text)))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from exc
    return [backtest_client(client, thresholds) for client in clients]


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield number, text


def _chunks(lines: Iterable[str]) -> Iterator[Numbered]:
    numbered = _numbered(lines)
    while chunk := list(islice(numbered, _CHUNK)):
        yield chunk


def _worker(args: tuple[Numbered, Thresholds]) -> Results:
    return _process(*args)


def run_backtest(
    lines: Iterable[str], thresholds: Thresholds | None = None, *, workers: int | None = None
) -> Iterator[dict[str, Any]]:
    """One output object per client line, then (when any line had a label) a summary object.

    `workers` > 1 spreads the clients over that many processes; the output order is the input
    order either way. None (the default) decides by itself: a short input stays in this
    process, a long one uses every core that is idle (see `auto_workers`). A malformed line
    raises ValueError naming its line number.
    """
    th = thresholds or Thresholds()
    scores = {method: MethodScore() for method in METHODS}
    labelled = False
    for results in _results(lines, th, workers):
        for line, outcome in results:
            yield line
            if outcome is not None:
                labelled = True
                for method, score in scores.items():
                    score.add(outcome, outcome.first_alerts[method])
    if labelled:
        yield {"summary": {method: score.as_dict() for method, score in scores.items()}}


def _results(lines: Iterable[str], th: Thresholds, workers: int | None) -> Iterator[Results]:
    chunks = _chunks(lines)
    if workers is None:
        for chunk in islice(chunks, _IN_PROCESS_CHUNKS):
            yield _process(chunk, th)
        first = next(chunks, None)
        if first is None:
            return
        chunks = chain((first,), chunks)
        workers = auto_workers()
    if workers <= 1:
        for chunk in chunks:
            yield _process(chunk, th)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn" if _threads_running() else "fork")
    with context.Pool(workers) as pool:
        yield from pool.imap(_worker, ((chunk, th) for chunk in chunks), chunksize=1)


def auto_workers() -> int:
    """Processes worth using now: one per core if at least one core is idle, else just this one.

    On a busy machine more processes only add the cost of handing data between them.
    """
    cores = os.cpu_count() or 1
    if cores < 2:
        return 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return 1
    return cores if cores - busy >= 1.0 else 1


def _threads_running() -> bool:
    import threading

    return threading.active_count() > 1


def summarise(
    lines: Iterable[str], thresholds: Thresholds | None = None, *, workers: int | None = None
) -> dict[str, Any]:
    """Just the summary of a labelled backtest (empty when nothing was labelled)."""
    summary: dict[str, Any] = {}
    for obj in run_backtest(lines, thresholds, workers=workers):
        if "summary" in obj:
            summary = obj["summary"]
    return summary
