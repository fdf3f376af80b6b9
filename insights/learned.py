"""A learned alternative to the rules' combining step: L2-regularised logistic regression.

The model reads the same interpretable quantities the rules do, at the same moments (after each
answered, missed or life event): the two accumulated sums (disengagement, falling alliance) as a
fraction of their alert levels, misses in a row, the quiet since the last reply in cadences, the
recent answer rate, the latest total against the baseline, and the severity of every signal. It
scores how likely the client is to leave within `HORIZON_DAYS`; the first moment that reaches the
model's threshold is its alert, and the signals found then are its evidence, so the digest can
say the same things whichever decides. A client who stopped or blocked the bot is alerted as by
the rules.

Fitting is Newton's method on the penalised log-likelihood (a handful of iterations over some
tens of thousands of moments, about a second), in numpy; features are standardised with the
training means and spreads, which travel with the weights (`to_dict` / `from_dict`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from insights import config
from insights.line_stream import LineStream
from insights.rules import ALERT, RULES, Evaluator, Hit
from insights.state import QUIET_KINDS, ClientState
from insights.thresholds import Thresholds

HORIZON_DAYS: Final = 28.0
"""A moment of a drop-out counts as positive this long before the drop-out."""

_SIGNALS: Final = tuple(c for c in RULES if c not in ("paused", "stopped", "unreachable"))
_ENDED: Final = frozenset(("stopped", "unreachable"))
FEATURES: Final[tuple[str, ...]] = (
    "disengagement_sum",
    "falling_sum",
    "missed_in_row",
    "quiet_cadences",
    "answer_rate_recent",
    "total_below_baseline",
    "silent_through_session",
    "away",
    "item_below_own",
    "total_below_own_noise",
    "tension_unresolved",
    "delay_above_own",
    "wellbeing_below_own",
    *(f"signal_{code}" for code in _SIGNALS),
)
"""The model's inputs. After the rules' own quantities come ones measured against the client
itself, so that one scale fits an acquiescent 9.5 responder and a midpoint 6 one alike: misses
around a session attended while silent, a skipped session (away), the worst item and the total
against the client's own baseline and noise, tension left unresolved lately, reply delay and
wellbeing against the client's own usual."""


def features(state: ClientState, hits: Sequence[Hit], now: float, th: Thresholds) -> list[float]:
    """The feature vector at `now`, in the order of `FEATURES`."""
    engage = state.engage_cusum.score / th.engage_h if th.engage_h > 0 else 0.0
    falling = state.falling_cusum.score / th.falling_h if th.falling_h > 0 else 0.0
    quiet = 0.0
    if state.last_reply is not None:
        quiet = (now - state.last_reply) / state.cadence_seconds
    outcomes = state.outcomes
    recent = outcomes[-4:]
    rate = sum(1 for _, kind, _ in recent if kind != "M") / len(recent) if recent else 1.0
    below = 0.0
    totals = state.totals
    if len(totals) >= 3:
        base_n = min(th.baseline_max, len(totals) - 1)
        base = sum(totals[:base_n]) / base_n
        below = (base - totals[-1]) / th.reliable_change
    severity = {hit.code: hit.severity for hit in hits}
    return [
        min(engage, 3.0),
        min(falling, 3.0),
        float(min(state.missed_in_row, 4)),
        min(quiet, 4.0),
        rate,
        _clip(below, -2.0, 4.0),
        *_own(state, now, th),
        *(severity.get(code, -1) / 2.0 + 0.5 for code in _SIGNALS),
    ]


def _clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _own(state: ClientState, now: float, th: Thresholds) -> list[float]:
    """The client-relative features, in the order of `FEATURES` (0 where there is no baseline)."""
    through = 0.0
    if state.silent_session is not None and not state.silent_skipped and state.silent_after:
        through = float(min(state.silent_before + state.silent_after, 4))
    item_below = 0.0
    for track in state.items:
        values = track.values
        base_n = min(th.baseline_max, len(values) - 2)
        if base_n >= th.baseline_min:
            base = values[:base_n]
            mean = _mean(base)
            spread = max(1.0, (max(base) - min(base)) / 2)
            item_below = max(item_below, (mean - _mean(values[-2:])) / spread)
    totals = state.totals
    total_below = 0.0
    base_n = min(th.baseline_max, len(totals) - 1)
    if base_n >= th.baseline_min:
        noise = state.total_noise() or th.reliable_change / 2
        total_below = (_mean(totals[:base_n]) - totals[-1]) / max(noise, 1.0)
    answers = state.answers
    recent = answers[-th.recent_window :]
    tension = sum(1 for a in recent if a.tension is True and a.talked_through is not True)
    delay_above = 0.0
    logs = state.log_delays
    base_n = min(th.baseline_max, len(logs) - 2)
    if base_n >= th.baseline_min:
        delay_above = _mean(logs[-2:]) - _mean(logs[:base_n])
    wellbeing = [v for a in answers if (v := a.scores.get(config.WELLBEING_ITEM)) is not None]
    wellbeing_below = 0.0
    base_n = min(th.baseline_max, len(wellbeing) - 2)
    if base_n >= th.baseline_min:
        wellbeing_below = _mean(wellbeing[:base_n]) - _mean(wellbeing[-2:])
    return [
        through,
        1.0 if state.away(now) else 0.0,
        _clip(item_below, -2.0, 5.0),
        _clip(total_below, -3.0, 6.0),
        float(tension),
        _clip(delay_above, -3.0, 4.0),
        _clip(wellbeing_below, -4.0, 6.0),
    ]


def ended_by_client(hits: Sequence[Hit]) -> bool:
    """The client stopped or blocked the bot: an alert whatever the model says."""
    return any(h.code in _ENDED and h.severity == ALERT for h in hits)


@dataclass(frozen=True)
class Moment:
    """One evaluation of one client: when, the features, the signals found then."""

    at: float
    x: list[float]
    hits: list[Hit]


def moments(client: LineStream, th: Thresholds) -> list[Moment]:
    """Every evaluation moment of a client's history, with only what was known then."""
    state = ClientState(client.cadence_days)
    evaluator = Evaluator(state, th)
    hits: list[Hit] = []
    result: list[Moment] = []
    for t, kind, subject in client.stream:
        state.observe(t, kind, subject)
        if kind in QUIET_KINDS:
            continue
        found = evaluator.after(kind, t)
        if found is not None:
            hits = found
        result.append(Moment(t, features(state, hits, t, th), hits))
    return result


def training_rows(
    clients: Iterable[LineStream], th: Thresholds
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Rows and labels: a drop-out's moments within the horizon before it are 1, a stayer's 0.

    Moments at or after a drop-out are left out (too late to matter).
    """
    xs: list[list[float]] = []
    ys: list[float] = []
    horizon = HORIZON_DAYS * 86400.0
    for client in clients:
        at = client.dropout_at if client.dropout else None
        for moment in moments(client, th):
            if at is not None and moment.at >= at:
                break
            xs.append(moment.x)
            ys.append(1.0 if at is not None and at - moment.at <= horizon else 0.0)
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


@dataclass(frozen=True)
class Model:
    """Weights over standardised features, and the probability that raises an alert."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float = 0.5

    def probability(self, x: Sequence[float]) -> float:
        z = (np.asarray(x) - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = float(z @ np.asarray(self.weights)) + self.bias
        return float(1.0 / (1.0 + np.exp(-logit)))

    def probabilities(self, rows: Sequence[Sequence[float]]) -> list[float]:
        if not rows:
            return []
        z = (np.asarray(rows) - np.asarray(self.mean)) / np.asarray(self.scale)
        logits = z @ np.asarray(self.weights) + self.bias
        return [float(p) for p in 1.0 / (1.0 + np.exp(-logits))]

    def first_alert(self, client: LineStream, th: Thresholds) -> tuple[float, list[Hit]] | None:
        """The first moment the model (or a stop or block) alerts, and the signals found then."""
        for moment in moments(client, th):
            if ended_by_client(moment.hits) or self.probability(moment.x) >= self.threshold:
                return moment.at, moment.hits
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "weights": list(self.weights),
            "bias": self.bias,
            "mean": list(self.mean),
            "scale": list(self.scale),
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        if list(data.get("features", ())) != list(FEATURES):
            raise ValueError("the model was fitted on other features")
        try:
            vectors = [tuple(map(float, data[k])) for k in ("weights", "mean", "scale")]
            bias, threshold = float(data["bias"]), float(data["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a model: {exc}") from None
        if any(len(v) != len(FEATURES) for v in vectors) or 0.0 in vectors[2]:
            raise ValueError("not a model: one weight, mean and non-zero scale per feature")
        weights, mean, scale = vectors
        return cls(weights, bias, mean, scale, threshold)

    def with_threshold(self, threshold: float) -> Model:
        return Model(self.weights, self.bias, self.mean, self.scale, threshold)


def fit(x: NDArray[np.float64], y: NDArray[np.float64], l2: float = 1.0) -> Model:
    """Penalised maximum likelihood by Newton's method; the bias is not penalised."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return Model(tuple(map(float, w[:-1])), float(w[-1]), tuple(mean), tuple(scale))
