"""Why the detector misses its targets: whom it alerts, whom it misses, what any detector could do.

    .venv/bin/python bench/heldout_analysis.py [--clients 1000] [--seed 401] [--only abrupt,...]

Three parts, per generator of `insights.scenarios`:

1. Failure analysis (seed `--seed`, not the report seed): for the stayers alerted, the signal
   that made the first alert, by archetype; for the drop-outs, how many were caught with a week
   of warning, caught late, or missed, and which watch signals the missed ones had.
2. The silence ceiling (report seed): an oracle that alerts the moment a client's gap since the
   last reply reaches L days (no waiting for a check-in to expire) or the client stops or blocks
   the bot, with L chosen on the scored data itself. No detector whose evidence is silence can
   do better; where drop-outs and stayers differ only in silence (`abrupt`, by construction),
   no detector at all can.
3. Misses in a row (report seed): alert at the k-th miss in a row, k = 1..5, for comparison.
4. With `--in-fit`, the learned model fitted on the generator itself: an in-sample ceiling for
   the model's features.

Looking at held-out generators here is judging, not choosing: nothing in the rules is set from
this output.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from insights.backtest import MethodScore, Outcome, first_appearances
from insights.heldout import REPORT_SEED, TARGET_STAYERS_PCT, fit_model, score_model, streams
from insights.learned import FEATURES, moments
from insights.line_stream import LineStream, stream_from_line
from insights.rules import ALERT, WATCH, Hit
from insights.scenarios import GENERATORS, generate
from insights.state import ANSWER, LIFE, MISSED, SENT, SKIPPED_GAP, ClientState
from insights.state import SESSION as SESSION_KIND
from insights.thresholds import Thresholds

DAY = 86400.0


def _name(hit: Hit) -> str:
    reason = hit.evidence.get("reason")
    return (
        hit.code
        + (f":{reason}" if reason else "")
        + (" (combined)" if "with" in hit.evidence else "")
    )


def failures(generator: str, clients: int, seed: int, th: Thresholds) -> list[str]:
    """Part 1 as lines of text."""
    stayers: Counter[str] = Counter()
    alerted: Counter[str] = Counter()
    by_signal: dict[str, Counter[str]] = defaultdict(Counter)
    dropouts: dict[str, Counter[str]] = defaultdict(Counter)
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    """Per drop-out mode (the archetype's last word): a week ahead, late, missed, and of the
    missed, those with no signal and those with two kinds of watch or more."""
    for line in generate(generator, clients, seed):
        client = stream_from_line(line)
        seen = first_appearances(client.stream, client.cadence_days, th)
        alerts = sorted(((t, h) for (_, sev), (t, h) in seen.items() if sev == ALERT), key=_first)
        archetype = str(line["archetype"])
        if not client.dropout:
            stayers[archetype] += 1
            if alerts:
                alerted[archetype] += 1
                by_signal[archetype][_name(alerts[0][1])] += 1
            continue
        cut = client.dropout_at
        total = totals[archetype.rsplit("_", 1)[-1]]
        total["drop-outs"] += 1
        if alerts and cut is not None and alerts[0][0] < cut:
            lead = (cut - alerts[0][0]) / DAY
            when = "caught, a week ahead" if lead >= 7 else "caught late"
            dropouts[archetype][f"{when} by {_name(alerts[0][1])}"] += 1
            total["a week ahead" if lead >= 7 else "late"] += 1
        else:
            watches = sorted(
                {code for (code, sev), (t, _) in seen.items() if sev == WATCH and t < (cut or t)}
            )
            dropouts[archetype]["missed; watch before: " + (", ".join(watches) or "none")] += 1
            total["missed"] += 1
            total["missed, no signal"] += not watches
            total["missed, 2+ kinds of watch"] += len(watches) >= 2
    out = [f"{generator}: stayers alerted {sum(alerted.values())} of {sum(stayers.values())}"]
    for archetype, count in stayers.most_common():
        first = ", ".join(f"{k} {v}" for k, v in by_signal[archetype].most_common(4))
        out.append(f"  stayer {archetype}: {alerted[archetype]}/{count} alerted ({first})")
    for mode, counts in totals.items():
        out.append(f"  drop-outs ({mode}): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for archetype, outcomes in dropouts.items():
        out.append(f"  drop-out {archetype}: {sum(outcomes.values())}")
        out += [f"    {count:4d} {what}" for what, count in outcomes.most_common(5)]
    return out


def _first(pair: tuple[float, Hit]) -> float:
    return pair[0]


Detector = Callable[[LineStream], float | None]


def score(data: Sequence[LineStream], detector: Detector) -> dict[str, float]:
    result = MethodScore()
    for client in data:
        result.add(Outcome(bool(client.dropout), client.dropout_at, {}), detector(client))
    summary = result.as_dict()
    return {
        "f1": summary["f1"],
        "recall": summary["recall"],
        "stayers": summary["alerted_stayers_pct"],
        "lead": summary["median_lead_days"] or 0.0,
    }


def silence_oracle(days: float) -> Detector:
    """Alerts when the gap since the last reply (or the first check-in) reaches `days`."""
    limit = days * DAY

    def detect(client: LineStream) -> float | None:
        last: float | None = None
        for t, kind, subject in client.stream:
            if last is not None and t - last >= limit:
                return last + limit
            if kind == ANSWER or (kind == SENT and last is None):
                last = t
            elif kind == LIFE and subject in ("stopped", "blocked"):
                return t
        if last is not None and client.stream and client.stream[-1][0] - last >= limit:
            return last + limit
        return None

    return detect


def misses_in_row(k: int) -> Detector:
    def detect(client: LineStream) -> float | None:
        run = 0
        for t, kind, subject in client.stream:
            if kind == ANSWER:
                run = 0
            elif kind == MISSED:
                run += 1
                if run >= k:
                    return t
            elif kind == LIFE and subject in ("stopped", "blocked"):
                return t
        return None

    return detect


def _ended(kind: int, subject: object) -> bool:
    return kind == LIFE and subject in ("stopped", "blocked")


def through_session(th: Thresholds) -> Detector:
    """The first moment check-ins were missed on both sides of a session held while the client
    was silent, with no session skipped (the learned model's `silent_through_session`)."""
    column = FEATURES.index("silent_through_session")

    def detect(client: LineStream) -> float | None:
        ended = next((t for t, kind, subject in client.stream if _ended(kind, subject)), None)
        found = next((m.at for m in moments(client, th) if m.x[column] > 0), None)
        return min((t for t in (ended, found) if t is not None), default=None)

    return detect


def session_bound(data: Sequence[LineStream]) -> tuple[float, float]:
    """Of the drop-outs, the share with a session held after their last reply and after a
    check-in went out unanswered (or a stop or block), before the drop-out; and the median lead
    from that session. No evidence from sessions can catch the others in time."""
    leads: list[float] = []
    dropouts = 0
    for client in data:
        cut = client.dropout_at
        if not client.dropout or cut is None:
            continue
        dropouts += 1
        waiting = False
        first: float | None = None
        for t, kind, subject in client.stream:
            if t >= cut:
                break
            if kind == ANSWER:
                waiting, first = False, None
            elif kind == SENT:
                waiting = True
            elif (kind == SESSION_KIND and waiting and first is None) or _ended(kind, subject):
                first = t if first is None else first
        if first is not None:
            leads.append((cut - first) / DAY)
    leads.sort()
    return len(leads) / max(dropouts, 1), leads[len(leads) // 2] if leads else 0.0


def aware_silence_oracle(cadences: float) -> Detector:
    """`silence_oracle` in cadences, holding back while a session has been skipped during the
    silence (what a holiday looks like on the calendar)."""

    def detect(client: LineStream) -> float | None:
        state = ClientState(client.cadence_days)
        limit = cadences * state.cadence_seconds
        for t, kind, subject in client.stream:
            last = state.last_reply
            if last is not None and state.unanswered_since is not None and t >= last + limit:
                crossing = last + limit
                gaps = state.session_gaps
                away = state.silent_skipped or (
                    bool(gaps)
                    and state.last_session is not None
                    and crossing - state.last_session > SKIPPED_GAP * gaps[len(gaps) // 2]
                )
                if not away:
                    return crossing
            if _ended(kind, subject):
                return t
            state.observe(t, kind, subject)
        return None

    return detect


def _fmt(label: str, s: dict[str, float] | None) -> str:
    if s is None:
        return f"{label}: none"
    return (
        f"{label}: F1 {s['f1']:.2f}, recall {s['recall']:.2f}, stayers alerted "
        f"{s['stayers']:.1f}%, median lead {s['lead']:.1f} d"
    )


def ceilings(generator: str, clients: int, th: Thresholds) -> list[str]:
    """Parts 2, 3 and 4 as lines of text."""
    data = streams(generator, clients, REPORT_SEED)
    swept = [(d / 2, score(data, silence_oracle(d / 2))) for d in range(2, 61)]
    best = max(swept, key=lambda r: r[1]["f1"])
    few = [r for r in swept if r[1]["stayers"] <= TARGET_STAYERS_PCT]
    best_few = max(few, key=lambda r: r[1]["f1"]) if few else None
    out = [
        f"{generator}: silence oracle, best L = {best[0]} d",
        "  " + _fmt("best", best[1]),
        "  "
        + _fmt(
            f"best with <= {TARGET_STAYERS_PCT:.0f}% stayers (L = "
            f"{best_few[0] if best_few else '-'} d)",
            best_few[1] if best_few else None,
        ),
    ]
    out += ["  " + _fmt(f"{k} missed in a row", score(data, misses_in_row(k))) for k in range(1, 6)]
    share, lead = session_bound(data)
    out.append(
        f"  sessions bound: {100 * share:.0f}% of drop-outs have a session while silent (or a "
        f"stop) before dropping out, median lead {lead:.1f} d; F1 at most "
        f"{2 * share / (1 + share):.2f} from that evidence alone"
    )
    out.append("  " + _fmt("silent through a session", score(data, through_session(th))))
    aware = [(c / 2, score(data, aware_silence_oracle(c / 2))) for c in range(2, 13)]
    best_aware = max(aware, key=lambda r: r[1]["f1"])
    few_aware = [r for r in aware if r[1]["stayers"] <= TARGET_STAYERS_PCT]
    out.append(
        "  "
        + _fmt(
            f"silence oracle minding skipped sessions, best ({best_aware[0]} cadences)",
            best_aware[1],
        )
    )
    if few_aware:
        pick = max(few_aware, key=lambda r: r[1]["f1"])
        out.append(
            "  "
            + _fmt(
                f"  the same, <= {TARGET_STAYERS_PCT:.0f}% stayers ({pick[0]} cadences)", pick[1]
            )
        )
    return out


def in_fit(generator: str, clients: int, th: Thresholds) -> str:
    """The learned model fitted on the generator itself (600 clients of the tuning seed) and
    scored on its report seed: what these features can do when they know how clients leave."""
    model, _ = fit_model(600, th, on=(generator,))
    row = score_model(generator, streams(generator, clients, REPORT_SEED), model, th)
    return (
        f"{generator}: learned model fitted on itself: F1 {row.f1:.2f}, stayers alerted "
        f"{row.stayers_pct:.1f}%, median lead {row.lead_days or 0.0:.1f} d"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=401, help="for the failure analysis")
    parser.add_argument("--only", default=",".join(GENERATORS), help="generators, comma-separated")
    parser.add_argument(
        "--in-fit", action="store_true", help="also fit the learned model on each generator itself"
    )
    args = parser.parse_args()
    th = Thresholds()
    for name in args.only.split(","):
        print("\n".join(failures(name, args.clients, args.seed, th)))
        print("\n".join(ceilings(name, args.clients, th)))
        if args.in_fit:
            print(in_fit(name, args.clients, th))


if __name__ == "__main__":
    main()
