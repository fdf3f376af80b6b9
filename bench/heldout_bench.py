"""The held-out table: the rules and the learned model on generators they were not fitted to.

    .venv/bin/python bench/heldout_bench.py [--clients 1000] [--tune-clients 600] [--tune-rules]
                                            [--quick]

Seeded throughout, so the same arguments print the same table. Steps, in the order the
discipline needs them: (1) with `--tune-rules`, search `insights.heldout.TUNING_GRID` on the
tuning generators only and print the best setting beside the defaults (about two minutes);
(2) fit the logistic model and pick its alert level on the tuning generators only; (3) score the
rules (defaults), the learned model and the best simple rule on every generator with the report
seed, held-out generators first, worst F1 first; a line for each of the rules and the learned
model against the targets, and last the verdict line for the rules (what Rapport runs). `--quick`
is 200 clients per generator and 150 to fit on (a rougher table, in a few seconds).
`--leave-one-out` adds leave-one-generator-out: for each generator, the rules tuned over
`insights.heldout.SILENCE_GRID` (on half the tuning clients of each of the other four) and the
learned model fitted on the other four, both scored on it; every fold and the worst.
"""

from __future__ import annotations

import argparse
import time

from insights.heldout import (
    REPORT_SEED,
    SILENCE_GRID,
    TARGET_F1,
    TARGET_LEAD_DAYS,
    TARGET_STAYERS_PCT,
    TUNING_GRID,
    Row,
    fit_model,
    grid,
    leave_one_out,
    leave_one_out_rules,
    objective,
    render,
    score_model,
    score_rules,
    streams,
    tune_rules,
    worst_first,
)
from insights.learned import FEATURES
from insights.scenarios import GENERATORS, HELD_OUT
from insights.thresholds import Thresholds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="per generator, reported")
    parser.add_argument("--tune-clients", type=int, default=600, help="per tuning generator")
    parser.add_argument("--tune-rules", action="store_true", help="search the rules' grid too")
    parser.add_argument("--quick", action="store_true", help="200 clients, 150 to fit on")
    parser.add_argument(
        "--leave-one-out", action="store_true", help="also fit on four generators, score the fifth"
    )
    args = parser.parse_args()
    if args.quick:
        args.clients, args.tune_clients = 200, 150
    th = Thresholds()
    started = time.perf_counter()
    if args.tune_rules:
        best, value = tune_rules(grid(th, TUNING_GRID), args.tune_clients)
        (_, default_value) = tune_rules([th], args.tune_clients)
        changed = {k: getattr(best, k) for k in TUNING_GRID if getattr(best, k) != getattr(th, k)}
        print(f"rules: defaults objective {default_value:.3f}; best {value:.3f} with {changed}")
    model, value = fit_model(args.tune_clients, th)
    print(f"learned: objective on tuning {value:.3f}, alert at p >= {model.threshold:.2f}")
    print("  " + ", ".join(f"{f} {w:+.2f}" for f, w in zip(FEATURES, model.weights, strict=True)))
    rows: list[Row] = []
    for name in GENERATORS:
        ruled = score_rules(name, args.clients, REPORT_SEED, th)
        rows.append(next(r for r in ruled if r.method == "rapport"))
        simple = [r for r in ruled if r.method != "rapport"]
        rows.append(max(simple, key=lambda r: r.f1))
        rows.append(score_model(name, streams(name, args.clients, REPORT_SEED), model, th))
    table = worst_first(rows)
    print(render(table))
    verdicts = {}
    for method in ("learned", "rapport"):
        held = [r for r in table if r.held_out and r.method == method]
        worst = min(held, key=lambda r: r.f1)
        verdicts[method] = (
            f"worst held-out F1 {worst.f1:.2f} ({worst.generator}), stayers alerted up to "
            f"{max(r.stayers_pct for r in held):.1f}%, median lead at least "
            f"{min(r.lead_days or 0.0 for r in held):.1f} d",
            all(r.meets_targets() for r in held),
            objective(held),
        )
    if args.leave_one_out:
        folds = leave_one_out_rules(grid(th, SILENCE_GRID), args.tune_clients // 2, args.clients)
        for row, chosen in folds:
            picked = ", ".join(f"{k} {getattr(chosen, k)}" for k in SILENCE_GRID)
            print(f"  {row.generator}: tuned on the other four to {picked}")
        learned = leave_one_out(args.tune_clients, args.clients, th)
        loo = sorted([row for row, _ in folds] + learned, key=lambda r: (r.f1, r.method))
        print(render(loo))
        for method in (folds[0][0].method, learned[0].method):
            rows = [r for r in loo if r.method == method]
            worst = min(rows, key=lambda r: r.f1)
            print(
                f"leave-one-out, {method}: worst F1 {worst.f1:.2f} ({worst.generator}), stayers "
                f"alerted up to {max(r.stayers_pct for r in rows):.1f}%, median lead at least "
                f"{min(r.lead_days or 0.0 for r in rows):.1f} d; objective {objective(rows):.3f}"
            )
    print(f"({time.perf_counter() - started:.0f} s)")
    target = (
        f"F1 >= {TARGET_F1}, stayers <= {TARGET_STAYERS_PCT:.0f}%, lead >= "
        f"{TARGET_LEAD_DAYS:.0f} d on each of {', '.join(HELD_OUT)}"
    )
    text, ok, value = verdicts["learned"]
    print(f"learned model: {text}; objective {value:.3f} ({'OK' if ok else 'MISS'})")
    text, ok, value = verdicts["rapport"]
    print(f"heldout: rules {text} (target {target}) {'OK' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
