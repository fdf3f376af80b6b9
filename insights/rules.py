"""The signal rules over a `ClientState`: one small function per signal code, then the combining.

Each rule sees only the folded state and the moment of evaluation, and returns a `Hit` (code,
severity, since, evidence) or None. Wording lives in `insights.texts`; the public `Signal` API in
`insights.signals`. Severity is deliberate: a single indication is `watch`; `alert` needs evidence
that persists over check-ins (accumulated as a CUSUM against the client's own habits), several
watch signals telling one story (`combine`), or a client who stopped or blocked the bot. The
defaults in `Thresholds` were tuned on synthetic data; see insights/README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from insights import config
from insights.state import ANSWER, LIFE, MISSED, SENT, SESSION, ClientState
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
    size = n - recent  # compared, not min(): every rule asks this, for every check-in
    if size > th.baseline_max:
        return th.baseline_max
    return size if size >= th.baseline_min else 0


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
    waiting = s.unanswered_since
    reference = s.last_reply if s.last_reply is not None else waiting
    quiet = now - reference if reference is not None and waiting is not None else 0.0
    missed = s.missed_in_row
    run_start = s.missed_run_start
    loud = ALERT if not (th.away_is_watch and s.away(now)) else WATCH
    if missed >= th.silence_missed_alert and run_start is not None:
        return Hit("silence", loud, run_start, _missed(cadence, missed, quiet))
    through = _silent_through_session(s, cadence, quiet, th)
    if through is not None and through.severity == ALERT:
        return through
    drift = _disengagement(s, th)
    if drift is None and through is not None:
        return through
    if drift is not None:
        since, score, missed_recent, late_recent, window = drift
        evidence: Evidence = {
            "cadence_days": round(cadence / 86400.0, 1),
            "reason": "pattern",
            "missed_recent": missed_recent,
            "late_recent": late_recent,
            "window": window,
            "score": round(score, 2),
        }
        alone = _pattern_alone(s, window, th) and not (th.pattern_needs_session and not late_recent)
        return Hit("silence", loud if alone else WATCH, since, evidence)
    if missed >= th.silence_missed_watch and run_start is not None:
        return Hit("silence", WATCH, run_start, _missed(cadence, missed, quiet))
    if quiet > th.silence_cadences * cadence and reference is not None:
        evidence = {
            "cadence_days": round(cadence / 86400.0, 1),
            "days_since_reply": _days(quiet),
            "missed_in_row": missed,
            "reason": "quiet",
        }
        return Hit("silence", WATCH, waiting if waiting is not None else reference, evidence)
    window = th.silence_rate_window
    n = len(s.outcomes)
    if n >= window + th.baseline_min:
        answered = s.answered_upto
        answered_recent = answered[n] - answered[n - window]
        if answered_recent / window <= th.silence_rate_low:
            rate_before = answered[n - window] / (n - window)
            if rate_before >= th.silence_rate_before:
                evidence = {
                    "cadence_days": round(cadence / 86400.0, 1),
                    "answered": answered_recent,
                    "window": window,
                    "rate_before_pct": round(100 * rate_before),
                    "reason": "rate",
                }
                return Hit("silence", WATCH, s.outcomes[n - window][0], evidence)
    return None


def _silent_through_session(
    s: ClientState, cadence: float, quiet: float, th: Thresholds
) -> Hit | None:
    """Check-ins missed on both sides of a session the client attended, with none answered since.

    A client on holiday has no sessions while away, and one who misses a check-in now and then
    answers the next; a client who keeps coming but has gone silent between sessions is neither.
    A spell with a skipped session (a gap well beyond the client's usual one) does not count.
    An alert from `silence_session_alert` misses in the spell (0: never), else a watch.
    """
    if (
        s.silent_session is None
        or s.silent_skipped
        or not s.silent_before
        or not s.silent_after
        or s.missed_run_start is None
    ):
        return None
    missed = s.silent_before + s.silent_after
    evidence: Evidence = {
        "cadence_days": round(cadence / 86400.0, 1),
        "missed_in_row": missed,
        "sessions": s.silent_sessions,
        "days_since_reply": _days(quiet) if quiet else 0.0,
        "reason": "sessions",
    }
    alert = 0 < th.silence_session_alert <= missed
    return Hit("silence", ALERT if alert else WATCH, s.missed_run_start, evidence)


def _pattern_alone(s: ClientState, run: int, th: Thresholds) -> bool:
    """Whether a disengagement pattern is an alert on its own.

    With `pattern_habit_after` set (off by default), not for a client known to miss now and
    then: at least that many check-ins resolved before the run, one of them missed. Stayers like
    that drift into a pattern and out again; for them the pattern is a watch, an alert only
    beside another sign of disengagement (`combine`). Three misses in a row stay an alert.
    """
    before = len(s.outcomes) - run
    if th.pattern_habit_after <= 0 or before < th.pattern_habit_after:
        return True
    return s.answered_upto[before] == before


def _missed(cadence: float, missed: int, quiet: float) -> Evidence:
    return {
        "cadence_days": round(cadence / 86400.0, 1),
        "missed_in_row": missed,
        "days_since_reply": _days(quiet) if quiet else 0.0,
        "reason": "missed",
    }


def _disengagement(s: ClientState, th: Thresholds) -> tuple[float, float, int, int, int] | None:
    """Missed, unfinished and late check-ins accumulated against the client's own habits (CUSUM).

    Each resolved check-in scores how unusual it was: a miss `engage_missed`, an unfinished one
    `engage_partial`, an answer its reply delay in standard units above the client's usual
    (log-normal) delay. The running sum over the last check-ins, less an allowance per check-in
    and floored at zero, must reach `engage_h`: a lone miss or slow reply fades, a drift of
    several does not. Returns (since, score, misses, late answers, check-ins in the run) when it
    does.
    """
    if th.engage_h <= 0:
        return None
    base_n = _baseline_count(len(s.answers), 1, th)
    if not base_n:
        return None
    usual = sum(s.log_delays[:base_n]) / base_n
    sigma = th.delay_sigma
    cap = th.engage_cap
    outcomes = s.outcomes
    n = len(outcomes)

    def step(index: int) -> float:
        _, kind, log_delay = outcomes[index]
        if kind == "A":
            x = (log_delay - usual) / sigma  # within [-cap, cap]
            return (x if x < cap else cap) if x > -cap else -cap
        return th.engage_missed if kind == "M" else th.engage_partial

    score, first = s.engage_cusum.over(
        (th, usual), n - _RUN_CAP if n > _RUN_CAP else 0, n, step, th.engage_k
    )
    if score < th.engage_h:
        return None
    run = outcomes[first:]
    missed = sum(1 for _, kind, _ in run if kind == "M")
    late = sum(1 for _, kind, d in run if kind != "M" and (d - usual) / sigma >= 1.0)
    return run[0][0], score, missed, late, len(run)


def slowing(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """The median delay of the latest replies against the client's own usual delay."""
    delays = s.delays
    window = th.slowing_window
    base_n = _baseline_count(len(delays), window, th)
    if not base_n:
        return None
    recent = _median(delays[-window:])
    if recent < th.slowing_min_hours:
        return None
    key = ("median_delay", base_n)
    base: Any = s.memo.get(key)
    if base is None:
        base = s.memo[key] = _median(delays[:base_n])
    if recent < th.slowing_ratio * base:
        return None
    evidence: Evidence = {
        "median_delay_hours": round(recent, 1),
        "baseline_delay_hours": round(base, 1),
        "ratio": round(recent / max(base, 1 / 60), 1),
        "window": window,
    }
    return Hit("slowing", WATCH, s.answers[-window].at, evidence)


def low_alliance(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """The latest alliance total is under the cut-off; persistently so is an alert."""
    totals = s.totals
    cutoff = th.cutoff
    if not totals or totals[-1] >= cutoff:
        return None
    in_row = 1
    n = len(totals)
    while in_row < _RUN_CAP and in_row < n and totals[-in_row - 1] < cutoff:
        in_row += 1
    evidence: Evidence = {"total": round(totals[-1]), "cutoff": cutoff, "in_row": in_row}
    severity = ALERT if 0 < th.low_alert_in_row <= in_row else WATCH
    return Hit("low_alliance", severity, s.total_times[-in_row], evidence)


def falling_alliance(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """Totals below the client's own baseline, accumulated over check-ins (a CUSUM), or a downtrend.

    Each total after the baseline adds its shortfall in units of half a reliable change (or of
    the client's own noise, if larger), capped so one bad week cannot do it alone, minus an
    allowance; the sum over the last check-ins resets at zero. An alert needs the sum to reach
    `falling_h`, which takes at least two check-ins well below baseline; a single reliable drop is
    a watch.
    """
    totals = s.totals
    n = len(totals)
    base_n = _baseline_count(n, 1, th)
    if base_n:
        base = sum(totals[:base_n]) / base_n
        scale = th.reliable_change / 2
        if th.falling_noise_z > 0:
            noise = s.total_noise()
            if noise is not None:
                scale = max(scale, th.falling_noise_z * noise)
        cap = th.falling_cap

        def step(index: int) -> float:
            x = (base - totals[index]) / scale
            return x if x < cap else cap

        cusum, first = s.falling_cusum.over(
            (th, base, scale),
            base_n if base_n > n - _RUN_CAP else n - _RUN_CAP,
            n,
            step,
            th.falling_k,
        )
        run = n - first
        if cusum >= th.falling_h and run:
            evidence = _fall(totals[-1], base, run)
            evidence["cusum"] = round(cusum, 2)
            return Hit("falling_alliance", ALERT, s.total_times[-run], evidence)
        if base - totals[-1] >= th.reliable_change:
            evidence = _fall(totals[-1], base, max(run, 1))
            evidence["cusum"] = round(cusum, 2)
            return Hit("falling_alliance", WATCH, s.total_times[-max(run, 1)], evidence)
    window = th.trend_window
    if n >= window + 1 and totals[-1] < totals[-window]:
        values = totals[-window:]
        slope = _slope(values)
        if slope * (window - 1) <= -th.trend_drop:
            trend: Evidence = {
                "total": round(values[-1]),
                "first": round(values[0]),
                "window": window,
                "slope": round(slope, 2),
                "reason": "trend",
            }
            return Hit("falling_alliance", WATCH, s.total_times[-window], trend)
    return None


def _fall(latest: float, base: float, run: int) -> Evidence:
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
    offsets, den = _SLOPE_X.get(n) or _slope_x(n)
    mean_y = sum(values) / n
    return sum([x * (v - mean_y) for x, v in zip(offsets, values, strict=True)]) / den


_SLOPE_X: dict[int, tuple[list[float], float]] = {}


def _slope_x(n: int) -> tuple[list[float], float]:
    """For n check-ins: each one's distance from the middle, and the sum of their squares."""
    mean_x = (n - 1) / 2.0
    offsets = [i - mean_x for i in range(n)]
    result = _SLOPE_X[n] = offsets, sum(x**2 for x in offsets)
    return result


def item_drop(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """One alliance item well below its own baseline, or very low; names the worst one."""
    worst: tuple[float, str, int, float | None, int, float] | None = None
    points = th.item_drop_points
    low = th.item_low
    for track in s.items:
        values = track.values
        if not values:
            continue
        latest = values[-1]
        base_n = _baseline_count(len(values), 1, th)
        base: float | None = sum(values[:base_n]) / base_n if base_n else None
        drop = base - latest if base is not None else 0.0
        if drop < points and latest > low:
            continue
        in_row = 0
        for value in reversed(values[-_RUN_CAP:]):
            if value > low and (base is None or base - value < points):
                break
            in_row += 1
        rank = drop + (low - latest + 1 if latest <= low else 0)
        if worst is None or rank > worst[0]:
            worst = (rank, track.item, latest, base, in_row, track.times[-in_row])
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


def partial(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """Check-ins started and abandoned; one is a note, several in a short span a watch."""
    upto = s.partial_upto
    n = len(upto) - 1
    first = n - th.partial_window if n > th.partial_window else 0
    count = upto[n] - upto[first]
    if not count:
        return None
    window = s.outcomes[first:]
    if count >= th.partial_watch:
        since = next(t for t, kind, _ in window if kind == "P")
        return Hit("partial", WATCH, since, {"count": count, "window": len(window)})
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
    habit: Any = s.memo.get(("comments", base_n))
    rate_before, mean_before = habit if habit is not None else _comment_habit(s, base_n)
    recent = answers[-window:]
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
    if mean_before is None:
        return None
    mean_recent = sum(recent_lengths) / len(recent_lengths)
    if mean_before >= 15 and mean_recent <= th.terse_shrink * mean_before:
        evidence = {
            "chars_recent": round(mean_recent),
            "chars_before": round(mean_before),
            "reason": "shrinking",
        }
        return Hit("terse", WATCH, recent[0].at, evidence)
    return None


def _comment_habit(s: ClientState, base_n: int) -> tuple[float, float | None]:
    """Share of the first `base_n` answers with a comment, and their mean length (None: < 2)."""
    lengths = [a.comment_len for a in s.answers[:base_n] if a.commented]
    mean = sum(lengths) / len(lengths) if len(lengths) >= 2 else None
    habit: tuple[float, float | None] = (len(lengths) / base_n, mean)
    s.memo[("comments", base_n)] = habit
    return habit


def ceiling(s: ClientState, now: float, th: Thresholds) -> Hit | None:
    """Perfect scores again and again without a word: maybe reluctance to criticise (info)."""
    k = th.ceiling_in_row
    answers = s.answers
    top = th.total_max
    if len(answers) < k or answers[-1].total != top:
        return None
    for a in answers[-k:]:
        if a.total != top or a.commented:
            return None
    return Hit("ceiling", INFO, answers[-k].at, {"in_row": k, "total": top})


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
    SESSION: (),
}
"""Which rules an observation of each kind can change. Only `silence` also depends on the clock
(a long quiet); it is re-read when a check-in is answered or missed and at life events, which
is when the backtest evaluates: sending a check-in, or a session being held, changes nothing a
therapist could act on until the next check-in is answered or missed."""


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
        patterns = [h for h in disengaged if h.severity == WATCH and _lone_pattern(h)]
        partners = [h for h in disengaged if h.code != "silence"]
        if patterns and partners:
            escalate = patterns + partners
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


def _lone_pattern(hit: Hit) -> bool:
    """A disengagement pattern left at watch (see `_pattern_alone`): it needs a partner."""
    return hit.code == "silence" and hit.evidence.get("reason") == "pattern"


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


_CHECKS: Final[dict[int, tuple[tuple[int, Rule, bool], ...]]] = {
    kind: tuple((list(RULES).index(code), RULES[code], code in ALLIANCE) for code in codes)
    for kind, codes in _TRIGGERS.items()
}
"""`_TRIGGERS` resolved: (position in `RULES`, the rule, whether it can strain the alliance)."""


class Evaluator:
    """Re-runs only the rules an observation can affect, keeping the others' last findings.

    After the same observations it gives what `evaluate` would, in the same order, at a fraction
    of the cost: the backtest calls it after every event of every client. `after` returns None
    when nothing that could change the combined (code, severity) set has changed.
    """

    __slots__ = ("_hits", "_marks", "state", "th")

    def __init__(self, state: ClientState, th: Thresholds) -> None:
        self.state = state
        self.th = th
        self._hits: list[Hit | None] = [None] * len(RULES)
        """Each rule's latest finding, in the order of `RULES`."""
        self._marks: list[int] = [-1] * len(RULES)
        """What combining reads of each finding: -1 none, else 2 × severity + (persistent
        alliance evidence, or a disengagement pattern)."""

    def after(self, kind: int, now: float) -> list[Hit] | None:
        checks = _CHECKS[kind]
        if not checks:
            return None
        hits = self._hits
        marks = self._marks
        state = self.state
        th = self.th
        changed = False
        for index, rule, alliance in checks:
            hit = rule(state, now, th)
            if hit is None:
                if marks[index] >= 0:
                    hits[index] = None
                    marks[index] = -1
                    changed = True
                continue
            hits[index] = hit
            combines = _persistent(hit, th) if alliance else _lone_pattern(hit)
            mark = 2 * hit.severity + (1 if combines else 0)
            if mark != marks[index]:
                marks[index] = mark
                changed = True
        if not changed:
            return None
        return combine([hit for hit in hits if hit is not None], th)
