"""The signal rules over a `ClientState`: one small function per signal code, then the combining.

Each rule sees only the folded state and the moment of evaluation, and returns a `Hit` (code,
severity, since, evidence) or None. Wording lives in `insights.texts`; the public `Signal` API in
`insights.signals`. Severity is deliberate: a single indication is `watch`; `alert` needs evidence
that persists over check-ins (accumulated as a CUSUM against the client's own habits), several
watch signals telling one story (`combine`), or a client who stopped or blocked the bot. The
defaults in `Thresholds` were tuned on synthetic data; see insights/README.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from insights import config
from insights.state import ANSWER, LIFE, MISSED, SENT, ClientState
from insights.thresholds import Thresholds

INFO: Final = 0
WATCH: Final = 1
ALERT: Final = 2
SEVERITY_NAMES: Final[tuple[str, str, str]] = ("info", "watch", "alert")

DISENGAGEMENT: Final[frozenset[str]] = frozenset(("silence", "slowing", "partial", "terse"))
ALLIANCE: Final[frozenset[str]] = frozenset(
    ("low_alliance", "falling_alliance", "item_drop", "rupture_reported", "confrontation")
)
_RUN_CAP: Final = 12
"""Runs ("N check-ins in a row") are counted up to this, keeping each evaluation constant-time."""

Evidence = dict[str, float | int | str]


class Hit:
    """A rule's finding at one moment: what, how serious, since when, and the numbers."""

    __slots__ = ("code", "evidence", "severity", "since")

    def __init__(self, code: str, severity: int, since: float, evidence: Evidence) -> None:
        self.code = code
        self.severity = severity
        self.since = since
        self.evidence = evidence

    def escalated(self, partners: list[str]) -> Hit:
        evidence = dict(self.evidence)
        evidence["with"] = ",".join(partners)
        return Hit(self.code, ALERT, self.since, evidence)

    def __repr__(self) -> str:
        return f"Hit({self.code}, {SEVERITY_NAMES[self.severity]}, {self.evidence})"


Rule = Callable[[ClientState, float, Thresholds], Hit | None]


def _baseline_count(n: int, recent: int, th: Thresholds) -> int:
    """How many leading answers form the baseline when the last `recent` are being judged.

    The baseline grows from `baseline_min` to `baseline_max` answers and never includes the
    check-ins it is compared with; 0 means there is not enough data yet.
    """
    size = min(th.baseline_max, n - recent)
    return size if size >= th.baseline_min else 0


_MISSING: Final = object()


def _memo(s: ClientState, key: tuple[object, ...], compute: Callable[[], object]) -> Any:
    """A value derived from the state, computed once until the state moves on.

    Baselines stop changing after a few answers, so caching them by the number of answers they
    cover turns most evaluations into lookups.
    """
    memo = s.memo
    value = memo.get(key, _MISSING)
    if value is _MISSING:
        if len(memo) > 64:
            memo.clear()
        value = memo[key] = compute()
    return value


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def _days(seconds: float) -> float:
    return round(seconds / 86400.0, 1)


def silence(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """Missed check-ins in a row, a long quiet against the cadence, or a falling response rate."""
    if s.paused_at is not None or s.stopped_at is not None or s.blocked_at is not None:
        return None
    cadence = s.cadence_seconds
    reference = s.last_reply if s.last_reply is not None else s.unanswered_since
    quiet = now - reference if reference is not None and s.unanswered_since is not None else 0.0
    evidence: Evidence = {"cadence_days": round(cadence / 86400.0, 1)}
    missed = s.missed_in_row
    if missed >= th.silence_missed_alert and s.missed_run_start is not None:
        evidence["missed_in_row"] = missed
        evidence["days_since_reply"] = _days(quiet) if quiet else 0.0
        evidence["reason"] = "missed"
        return Hit("silence", ALERT, s.missed_run_start, evidence)
    drift = _disengagement(s, th)
    if drift is not None:
        since, score, missed_recent, late_recent, window = drift
        evidence["reason"] = "pattern"
        evidence["missed_recent"] = missed_recent
        evidence["late_recent"] = late_recent
        evidence["window"] = window
        evidence["score"] = round(score, 2)
        return Hit("silence", ALERT, since, evidence)
    if missed >= th.silence_missed_watch and s.missed_run_start is not None:
        evidence["missed_in_row"] = missed
        evidence["days_since_reply"] = _days(quiet) if quiet else 0.0
        evidence["reason"] = "missed"
        return Hit("silence", WATCH, s.missed_run_start, evidence)
    if quiet > th.silence_cadences * cadence and reference is not None:
        evidence["days_since_reply"] = _days(quiet)
        evidence["missed_in_row"] = missed
        evidence["reason"] = "quiet"
        since = s.unanswered_since if s.unanswered_since is not None else reference
        return Hit("silence", WATCH, since, evidence)
    window = th.silence_rate_window
    outcomes = s.outcomes
    if len(outcomes) >= window + th.baseline_min:
        recent = outcomes[-window:]
        answered_recent = sum(1 for _, kind, _ in recent if kind != "M")
        rate = answered_recent / window
        if rate <= th.silence_rate_low:
            before = outcomes[:-window]
            rate_before = sum(1 for _, kind, _ in before if kind != "M") / len(before)
            if rate_before >= th.silence_rate_before:
                evidence["answered"] = answered_recent
                evidence["window"] = window
                evidence["rate_before_pct"] = round(100 * rate_before)
                evidence["reason"] = "rate"
                return Hit("silence", WATCH, recent[0][0], evidence)
    return None


def _disengagement(
    s: ClientState, th: Thresholds
) -> tuple[float, float, int, int, int] | None:
    """Missed, unfinished and late check-ins accumulated against the client's own habits (CUSUM).

    Each resolved check-in scores how unusual it was: a miss `engage_missed`, an unfinished one
    `engage_partial`, an answer its reply delay in standard units above the client's usual
    (log-normal) delay. The running sum, less an allowance per check-in and floored at zero,
    must reach `engage_h`: a lone miss or slow reply fades, a drift of several does not.
    Returns (since, score, misses, late answers, check-ins in the run) when it does.
    """
    if th.engage_h <= 0:
        return None
    result: tuple[float, float, int, int, int] | None = _memo(
        s, ("disengagement", id(th), len(s.outcomes)), lambda: _disengagement_now(s, th)
    )
    return result


def _disengagement_now(
    s: ClientState, th: Thresholds
) -> tuple[float, float, int, int, int] | None:
    answers = s.answers
    base_n = _baseline_count(len(answers), 1, th)
    if not base_n:
        return None
    usual: float = _memo(
        s,
        ("usual_delay", base_n),
        lambda: sum(math.log(max(a.delay_hours, 1 / 60)) for a in answers[:base_n]) / base_n,
    )
    sigma = th.delay_sigma
    cap = th.engage_cap
    k = th.engage_k
    score = 0.0
    start = -1
    outcomes = s.outcomes[-_RUN_CAP:]
    for index, (_, kind, log_delay) in enumerate(outcomes):
        if kind == "M":
            step = th.engage_missed
        elif kind == "P":
            step = th.engage_partial
        else:
            step = max(-cap, min(cap, (log_delay - usual) / sigma))
        score = max(0.0, score + step - k)
        if score <= 0:
            start = -1
        elif start < 0:
            start = index
    if score < th.engage_h or start < 0:
        return None
    run = outcomes[start:]
    missed = sum(1 for _, kind, _ in run if kind == "M")
    late = sum(1 for _, kind, d in run if kind != "M" and (d - usual) / sigma >= 1.0)
    return run[0][0], score, missed, late, len(run)


def slowing(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """The median delay of the latest replies against the client's own usual delay."""
    answers = s.answers
    window = th.slowing_window
    base_n = _baseline_count(len(answers), window, th)
    if not base_n:
        return None
    recent = _median([a.delay_hours for a in answers[-window:]])
    if recent < th.slowing_min_hours:
        return None
    base: float = _memo(
        s, ("median_delay", base_n), lambda: _median([a.delay_hours for a in answers[:base_n]])
    )
    if recent < th.slowing_ratio * base:
        return None
    evidence: Evidence = {
        "median_delay_hours": round(recent, 1),
        "baseline_delay_hours": round(base, 1),
        "ratio": round(recent / max(base, 1 / 60), 1),
        "window": window,
    }
    return Hit("slowing", WATCH, answers[-window].at, evidence)


def low_alliance(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """The latest alliance total is under the cut-off; persistently so is an alert."""
    series = s.total_series
    if not series or series[-1][1] >= th.cutoff:
        return None
    in_row = 0
    for _, total in reversed(series[-_RUN_CAP:]):
        if total >= th.cutoff:
            break
        in_row += 1
    evidence: Evidence = {"total": round(series[-1][1]), "cutoff": th.cutoff, "in_row": in_row}
    severity = ALERT if 0 < th.low_alert_in_row <= in_row else WATCH
    return Hit("low_alliance", severity, series[-in_row][0], evidence)


def falling_alliance(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """Totals below the client's own baseline, accumulated over check-ins (a CUSUM), or a downtrend.

    Each total after the baseline adds its shortfall in units of half a reliable change (or of
    the client's own noise, if larger), capped so one bad week cannot do it alone, minus an
    allowance; the sum resets at zero. An alert needs the sum to reach `falling_h`, which takes at
    least two check-ins well below baseline; a single reliable drop is a watch.
    """
    series = s.total_series
    n = len(series)
    base_n = _baseline_count(n, 1, th)
    if base_n:
        base: float = _memo(
            s, ("total", base_n), lambda: sum(total for _, total in series[:base_n]) / base_n
        )
        scale = th.reliable_change / 2
        if th.falling_noise_z > 0:
            noise = s.total_noise()
            if noise is not None:
                scale = max(scale, th.falling_noise_z * noise)
        cusum = 0.0
        run = 0
        for _, total in series[base_n:][-_RUN_CAP:]:
            cusum = max(0.0, cusum + min((base - total) / scale, th.falling_cap) - th.falling_k)
            run = run + 1 if cusum > 0 else 0
        if cusum >= th.falling_h and run:
            evidence = _fall(series, base, run)
            evidence["cusum"] = round(cusum, 2)
            return Hit("falling_alliance", ALERT, series[-run][0], evidence)
        if base - series[-1][1] >= th.reliable_change:
            evidence = _fall(series, base, max(run, 1))
            evidence["cusum"] = round(cusum, 2)
            return Hit("falling_alliance", WATCH, series[-max(run, 1)][0], evidence)
    window = th.trend_window
    if n >= window + 1:
        values = [total for _, total in series[-window:]]
        slope = _slope(values)
        if slope * (window - 1) <= -th.trend_drop and values[-1] < values[0]:
            trend: Evidence = {
                "total": round(values[-1]),
                "first": round(values[0]),
                "window": window,
                "slope": round(slope, 2),
                "reason": "trend",
            }
            return Hit("falling_alliance", WATCH, series[-window][0], trend)
    return None


def _fall(series: list[tuple[float, float]], base: float, run: int) -> Evidence:
    latest = series[-1][1]
    return {
        "total": round(latest),
        "baseline": round(base, 1),
        "drop": round(base - latest, 1),
        "sustained": run,
        "reason": "baseline",
    }


def _slope(values: list[float]) -> float:
    """Least-squares slope per check-in."""
    n = len(values)
    mean_x = (n - 1) / 2.0
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def item_drop(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """One alliance item well below its own baseline, or very low; names the worst one."""
    worst: tuple[float, str, int, float | None, int, float] | None = None
    points = th.item_drop_points
    low = th.item_low
    for item, series in s.item_series.items():
        if not series:
            continue
        latest = series[-1][1]
        base_n = _baseline_count(len(series), 1, th)
        base: float | None = _item_baseline(s, item, series, base_n) if base_n else None
        drop = base - latest if base is not None else 0.0
        if drop < points and latest > low:
            continue
        in_row = 0
        for _, value in reversed(series[-_RUN_CAP:]):
            if value > low and (base is None or base - value < points):
                break
            in_row += 1
        rank = drop + (low - latest + 1 if latest <= low else 0)
        if worst is None or rank > worst[0]:
            worst = (rank, item, latest, base, in_row, series[-in_row][0])
    if worst is None:
        return None
    _, item, latest, base, in_row, since = worst
    evidence: Evidence = {
        "item": item,
        "domain": config.ITEM_DOMAINS.get(item, item),
        "value": latest,
        "in_row": in_row,
    }
    if base is not None:
        evidence["baseline"] = round(base, 1)
        evidence["drop"] = round(base - latest, 1)
    severity = ALERT if 0 < th.item_alert_in_row <= in_row else WATCH
    return Hit("item_drop", severity, since, evidence)


def _item_baseline(
    s: ClientState, item: str, series: list[tuple[float, int]], base_n: int
) -> float:
    return float(
        _memo(s, ("item", item, base_n), lambda: sum(v for _, v in series[:base_n]) / base_n)
    )


def partial(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """Check-ins started and abandoned; one is a note, several in a short span a watch."""
    window = s.outcomes[-th.partial_window :]
    if not window:
        return None
    count = sum(1 for _, kind, _ in window if kind == "P")
    if count >= th.partial_watch:
        first = next(t for t, kind, _ in window if kind == "P")
        return Hit("partial", WATCH, first, {"count": count, "window": len(window)})
    if window[-1][1] == "P":
        return Hit("partial", INFO, window[-1][0], {"count": count, "window": len(window)})
    return None


def terse(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """Stopped commenting after commenting, or comments shrinking sharply."""
    answers = s.answers
    window = th.terse_window
    base_n = _baseline_count(len(answers), window, th)
    if not base_n:
        return None
    base = answers[:base_n]
    recent = answers[-window:]
    commented_before = sum(1 for a in base if a.commented)
    rate_before = commented_before / base_n
    recent_lengths = [a.comment_len for a in recent if a.commented]
    if not recent_lengths:
        if rate_before >= th.terse_rate_before:
            evidence: Evidence = {
                "window": window,
                "rate_before_pct": round(100 * rate_before),
                "reason": "stopped",
            }
            return Hit("terse", WATCH, recent[0].at, evidence)
        return None
    base_lengths = [a.comment_len for a in base if a.commented]
    if len(base_lengths) < 2:
        return None
    mean_before = sum(base_lengths) / len(base_lengths)
    mean_recent = sum(recent_lengths) / len(recent_lengths)
    if mean_before >= 15 and mean_recent <= th.terse_shrink * mean_before:
        evidence = {
            "chars_recent": round(mean_recent),
            "chars_before": round(mean_before),
            "reason": "shrinking",
        }
        return Hit("terse", WATCH, recent[0].at, evidence)
    return None


def ceiling(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """Perfect scores again and again without a word: maybe reluctance to criticise (info)."""
    k = th.ceiling_in_row
    answers = s.answers[-k:]
    if len(answers) < k:
        return None
    top = th.total_max
    for a in answers:
        if a.total != top or a.commented:
            return None
    return Hit("ceiling", INFO, answers[0].at, {"in_row": k, "total": top})


def rupture_reported(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """The client said there was tension with the therapist; worse if not talked through."""
    answers = s.answers
    if not answers or answers[-1].tension is not True:
        return None
    last = answers[-1]
    recent = answers[-th.recent_window :]
    unresolved = sum(1 for a in recent if a.tension is True and a.talked_through is not True)
    evidence: Evidence = {
        "talked_through": "yes" if last.talked_through else "no",
        "unresolved_recent": unresolved,
    }
    if last.talked_through is True:
        return Hit("rupture_reported", INFO, last.at, evidence)
    severity = ALERT if 0 < th.rupture_alert_count <= unresolved else WATCH
    return Hit("rupture_reported", severity, last.at, evidence)


def confrontation(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """A strongly negative comment about the therapy or the therapist in the latest answer."""
    answers = s.answers
    if not answers or not answers[-1].confrontational:
        return None
    count = sum(1 for a in answers[-th.recent_window :] if a.confrontational)
    severity = ALERT if 0 < th.confrontation_alert_count <= count else WATCH
    return Hit("confrontation", severity, answers[-1].at, {"count_recent": count})


def paused(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    if s.paused_at is None or s.stopped_at is not None:
        return None
    return Hit("paused", WATCH, s.paused_at, {"days": _days(now - s.paused_at)})


def stopped(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    if s.stopped_at is None:
        return None
    return Hit("stopped", ALERT, s.stopped_at, {"days": _days(now - s.stopped_at)})


def unreachable(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    if s.blocked_at is None:
        return None
    return Hit("unreachable", ALERT, s.blocked_at, {"days": _days(now - s.blocked_at)})


RULES: Final[dict[str, Rule]] = {
    "silence": silence,
    "slowing": slowing,
    "low_alliance": low_alliance,
    "falling_alliance": falling_alliance,
    "item_drop": item_drop,
    "partial": partial,
    "terse": terse,
    "ceiling": ceiling,
    "rupture_reported": rupture_reported,
    "confrontation": confrontation,
    "paused": paused,
    "stopped": stopped,
    "unreachable": unreachable,
}
"""Every signal code and its rule; the order is the order of evaluation, not of importance."""

_TRIGGERS: Final[dict[int, tuple[str, ...]]] = {
    SENT: (),
    ANSWER: (
        "silence",
        "slowing",
        "low_alliance",
        "falling_alliance",
        "item_drop",
        "partial",
        "terse",
        "ceiling",
        "rupture_reported",
        "confrontation",
    ),
    MISSED: ("silence", "partial"),
    LIFE: ("silence", "paused", "stopped", "unreachable"),
}
"""Which rules an observation of each kind can change. Only `silence` also depends on the clock
(a long quiet); it is re-read when a check-in is answered or missed and at life events, which
is when the backtest evaluates: sending a check-in changes nothing a therapist could act on."""


def combine(hits: list[Hit], th: Thresholds) -> list[Hit]:
    """Escalate watch signals to an alert when several kinds of evidence point the same way."""
    disengaged = [h for h in hits if h.severity >= WATCH and h.code in DISENGAGEMENT]
    strained = [h for h in hits if h.severity >= WATCH and _persistent(h, th)]
    escalate: list[Hit] = []
    if th.combine_across_groups and disengaged and strained:
        escalate = disengaged + strained
    else:
        for group in (disengaged, strained):
            if len(group) >= th.combine_within_group:
                escalate = group
    if not escalate:
        return hits
    members = {id(h) for h in escalate}
    codes = [h.code for h in escalate]
    result: list[Hit] = []
    for hit in hits:
        if id(hit) in members and hit.severity == WATCH:
            hit = hit.escalated([code for code in codes if code != hit.code])
        result.append(hit)
    return result


def _persistent(hit: Hit, th: Thresholds) -> bool:
    """Alliance evidence that has lasted beyond one check-in (a single dip does not combine)."""
    code = hit.code
    evidence = hit.evidence
    if code == "low_alliance":
        return 0 < th.combine_low_in_row <= int(evidence["in_row"])
    if code == "falling_alliance":
        if evidence.get("reason") == "trend":
            return False
        return int(evidence["sustained"]) >= th.combine_min_run
    if code == "item_drop":
        return int(evidence["in_row"]) >= th.combine_min_run
    return code in ALLIANCE and hit.severity == ALERT


def evaluate(state: ClientState, now: float, th: Thresholds) -> list[Hit]:
    """All signals at `now`, combined."""
    hits = [hit for rule in RULES.values() if (hit := rule(state, now, th)) is not None]
    return combine(hits, th)


class Evaluator:
    """Re-runs only the rules an observation can affect, keeping the others' last findings.

    After the same observations it gives what `evaluate` would, at a fraction of the cost: the
    backtest calls it after every event of every client. `after` returns None when nothing that
    could change the combined (code, severity) set has changed.
    """

    __slots__ = ("_current", "_signature", "state", "th")

    def __init__(self, state: ClientState, th: Thresholds) -> None:
        self.state = state
        self.th = th
        self._current: dict[str, Hit] = {}
        self._signature: frozenset[tuple[str, int, bool]] = frozenset()

    def after(self, kind: int, now: float) -> list[Hit] | None:
        triggered = _TRIGGERS[kind]
        if not triggered:
            return None
        current = self._current
        state = self.state
        th = self.th
        for code in triggered:
            hit = RULES[code](state, now, th)
            if hit is None:
                current.pop(code, None)
            else:
                current[code] = hit
        signature = frozenset(
            (hit.code, hit.severity, _persistent(hit, th)) for hit in current.values()
        )
        if signature == self._signature:
            return None
        self._signature = signature
        return combine(list(current.values()), th)
