"""The held-out table: the detector scored on generators its thresholds were never fitted to.

Thresholds (and the learned model of `insights.learned`) may be chosen by looking at the
`TUNING` generators of `insights.scenarios` only; the `HELD_OUT` ones are then scored once and
reported worst case first. Tuning and reporting use different seeds as well, so even the tuning
generators' rows are out of sample. Everything is seeded: the same arguments give the same table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from insights.backtest import MethodScore, Outcome, summarise
from insights.learned import Model, ended_by_client, fit, moments, training_rows
from insights.line_stream import LineStream, stream_from_line
from insights.scenarios import GENERATORS, HELD_OUT, TUNING, generate
from insights.thresholds import Thresholds

TUNE_SEED: Final = 201
REPORT_SEED: Final = 301

TARGET_F1: Final = 0.65
TARGET_STAYERS_PCT: Final = 15.0
TARGET_LEAD_DAYS: Final = 7.0


@dataclass(frozen=True, slots=True)
class Row:
    """One method on one generator's data set."""

    generator: str
    held_out: bool
    method: str
    f1: float
    precision: float
    recall: float
    stayers_pct: float
    lead_days: float | None
    clients: int

    @classmethod
    def from_summary(cls, generator: str, method: str, summary: dict[str, Any]) -> Row:
        return cls(
            generator,
            generator in HELD_OUT,
            method,
            summary["f1"],
            summary["precision"],
            summary["recall"],
            summary["alerted_stayers_pct"],
            summary["median_lead_days"],
            summary["n"],
        )

    def meets_targets(self) -> bool:
        lead = self.lead_days or 0.0
        return (
            self.f1 >= TARGET_F1
            and self.stayers_pct <= TARGET_STAYERS_PCT
            and lead >= TARGET_LEAD_DAYS
        )


def lines(generator: str, clients: int, seed: int) -> list[str]:
    """A generator's data set as backtest lines."""
    return [json.dumps(c, separators=(",", ":")) for c in generate(generator, clients, seed)]


def score_rules(
    generator: str, clients: int, seed: int, thresholds: Thresholds | None = None
) -> list[Row]:
    """Rapport's rules and the simple rules on one generator's data set."""
    summary = summarise(lines(generator, clients, seed), thresholds, workers=1)
    return [Row.from_summary(generator, method, s) for method, s in summary.items()]


def worst_first(rows: Iterable[Row]) -> list[Row]:
    """Held-out rows first, each group worst F1 first."""
    return sorted(rows, key=lambda r: (not r.held_out, r.f1, r.generator, r.method))


def objective(rows: Sequence[Row]) -> float:
    """What tuning maximises: the worst F1, less penalties for missing the other two targets."""
    worst_f1 = min(r.f1 for r in rows)
    stayers = max(r.stayers_pct for r in rows)
    lead = min(r.lead_days or 0.0 for r in rows)
    return (
        worst_f1
        - 0.01 * max(0.0, stayers - TARGET_STAYERS_PCT)
        - 0.05 * max(0.0, TARGET_LEAD_DAYS - lead)
    )


def grid(base: Thresholds, options: dict[str, Sequence[float]]) -> list[Thresholds]:
    """Every combination of `options` (name -> values) applied to `base`."""
    settings = [base]
    for name, values in options.items():
        settings = [_with(th, name, value) for th in settings for value in values]
    return settings


def _with(th: Thresholds, name: str, value: float) -> Thresholds:
    changed: dict[str, Any] = {name: value}
    return replace(th, **changed)


TUNING_GRID: Final[dict[str, Sequence[float]]] = {
    "engage_h": (4.0, 5.0, 6.0),
    "engage_missed": (3.0, 3.5, 4.0),
    "engage_k": (1.5, 2.0),
    "silence_missed_alert": (3, 4),
    "falling_h": (3.0, 4.0),
}
"""The accumulation and silence settings tried; everything else stays at its default."""


SILENCE_GRID: Final[dict[str, Sequence[float]]] = {
    "silence_session_alert": (0, 2),
    "pattern_needs_session": (False, True),
    "away_is_watch": (False, True),
    "engage_h": (4.0, 5.0, 6.0),
}
"""The settings around silence and sessions tried by `leave_one_out_rules` (24 combinations)."""


def tune_rules(
    settings: Iterable[Thresholds],
    clients: int,
    seed: int = TUNE_SEED,
    progress: Callable[[Thresholds, float], None] | None = None,
    on: Sequence[str] = TUNING,
) -> tuple[Thresholds, float]:
    """The setting with the best `objective` on the generators `on` (the tuning ones, never the
    held-out)."""
    data = {name: lines(name, clients, seed) for name in on}
    best: tuple[Thresholds, float] | None = None
    for th in settings:
        rows = [
            Row.from_summary(name, "rapport", summarise(text, th, workers=1)["rapport"])
            for name, text in data.items()
        ]
        value = objective(rows)
        if progress is not None:
            progress(th, value)
        if best is None or value > best[1]:
            best = (th, value)
    if best is None:
        raise ValueError("no settings to tune over")
    return best


def render(rows: Iterable[Row]) -> str:
    """The table as Markdown, in the order given."""
    out = [
        "| generator | method | F1 | precision | recall | stayers alerted | median lead (days) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r.generator if r.held_out else f"{r.generator} (tuning)"
        lead = "–" if r.lead_days is None else f"{r.lead_days:.1f}"
        out.append(
            f"| {name} | {r.method} | {r.f1:.2f} | {r.precision:.2f} | {r.recall:.2f} "
            f"| {r.stayers_pct:.1f}% | {lead} |"
        )
    return "\n".join(out)


def streams(generator: str, clients: int, seed: int) -> list[LineStream]:
    """A generator's data set, ready to replay."""
    return [stream_from_line(c) for c in generate(generator, clients, seed)]


def score_model(
    generator: str, data: Sequence[LineStream], model: Model, thresholds: Thresholds
) -> Row:
    """The learned model on one data set, counted exactly as the backtest counts the rules."""
    return _score_traces(generator, _traces(data, model, thresholds), model.threshold)


Trace = tuple[LineStream, list[float], list[float], float | None]
"""A client, its moments' times and probabilities, and when it stopped or blocked (if so)."""


def _traces(data: Sequence[LineStream], model: Model, thresholds: Thresholds) -> list[Trace]:
    result: list[Trace] = []
    for client in data:
        found = moments(client, thresholds)
        ended = next((m.at for m in found if ended_by_client(m.hits)), None)
        probs = model.probabilities([m.x for m in found])
        result.append((client, [m.at for m in found], probs, ended))
    return result


def _score_traces(generator: str, traces: Sequence[Trace], level: float) -> Row:
    score = MethodScore()
    for client, times, probs, ended in traces:
        first = next((t for t, p in zip(times, probs, strict=True) if p >= level), None)
        if ended is not None and (first is None or ended < first):
            first = ended
        score.add(Outcome(bool(client.dropout), client.dropout_at, {}), first)
    return Row.from_summary(generator, "learned", score.as_dict())


MODEL_THRESHOLDS: Final = tuple(round(0.05 * k, 2) for k in range(2, 19))
"""Probabilities tried as the model's alert level (on the tuning data only)."""


def fit_model(
    clients: int,
    thresholds: Thresholds,
    seed: int = TUNE_SEED,
    l2: float = 1.0,
    on: Sequence[str] = TUNING,
) -> tuple[Model, float]:
    """Fit on the generators `on` (the tuning ones) and pick the alert level by `objective` on
    them."""
    data = {name: streams(name, clients, seed) for name in on}
    x, y = training_rows((c for group in data.values() for c in group), thresholds)
    model = fit(x, y, l2)
    traces = {name: _traces(group, model, thresholds) for name, group in data.items()}
    best: tuple[float, float] | None = None
    for level in MODEL_THRESHOLDS:
        value = objective([_score_traces(n, t, level) for n, t in traces.items()])
        if best is None or value > best[1]:
            best = (level, value)
    assert best is not None
    return model.with_threshold(best[0]), best[1]


def leave_one_out(fit_clients: int, clients: int, thresholds: Thresholds) -> list[Row]:
    """The learned model fitted on every generator but one and scored on that one, for each.

    A check on whether more varied training data makes it generalise (it is not how the
    held-out table is made: that keeps to `TUNING`).
    """
    rows = []
    for name in GENERATORS:
        others = [other for other in GENERATORS if other != name]
        model, _ = fit_model(fit_clients, thresholds, on=others)
        row = score_model(name, streams(name, clients, REPORT_SEED), model, thresholds)
        rows.append(replace(row, method=f"learned (fit on the other {len(others)})", held_out=True))
    return rows


def leave_one_out_rules(
    settings: Sequence[Thresholds], tune_clients: int, clients: int
) -> list[tuple[Row, Thresholds]]:
    """The rules tuned on every generator but one and scored on that one, for each.

    For each generator the setting with the best `objective` on the other four (tuning seed) is
    scored on it (report seed); the first of equals wins, so the order of `settings` breaks ties.
    Returns each fold's row and the setting it chose.
    """
    data = {name: lines(name, tune_clients, TUNE_SEED) for name in GENERATORS}
    scored = [
        {
            name: Row.from_summary(name, "rapport", summarise(text, th, workers=1)["rapport"])
            for name, text in data.items()
        }
        for th in settings
    ]
    folds: list[tuple[Row, Thresholds]] = []
    for name in GENERATORS:
        others = [other for other in GENERATORS if other != name]
        best = max(range(len(settings)), key=lambda i: objective([scored[i][o] for o in others]))
        chosen = settings[best]
        ruled = score_rules(name, clients, REPORT_SEED, chosen)
        row = next(r for r in ruled if r.method == "rapport")
        method = f"rules (tuned on the other {len(others)})"
        folds.append((replace(row, method=method, held_out=True), chosen))
    return folds
