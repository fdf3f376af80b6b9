"""Flow throughput: complete check-ins, state saved to and loaded from JSON between events.

Run: .venv/bin/python bench/flow_bench.py [--checkins N] [--rounds R]
Each check-in is nine events (the scheduler opening it, taps, a typed number, the tension
follow-up and a comment). Prints CPU and wall-clock rates and a one-line summary
`flow: N events/s on one core (target ≥ 20000) OK|MISS` from the best round's CPU time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flows.conversation import ClientContext, handle
from flows.events import Event, OpenCheckin, Tap, Text
from flows.state import new_state

TARGET = 20_000


def checkin_events(checkin_id: int, start: datetime) -> list[Event]:
    """One complete check-in as a client answers it: taps, one typed number, "yes" to the
    tension probe (so the follow-up comes too) and a comment."""
    at = start
    step = timedelta(seconds=20)
    events: list[Event] = [OpenCheckin(at, checkin_id)]
    for index, value in enumerate((8, 9, 7, 9, 6)):
        at += step
        if index == 3:
            events.append(Text(at, str(value)))
        else:
            events.append(Tap(at, f"c:{checkin_id}:{index}:{value}", 100 + index))
    at += step
    events.append(Tap(at, f"c:{checkin_id}:5:1", 105))
    at += step
    events.append(Tap(at, f"c:{checkin_id}:6:1", 106))
    at += step
    events.append(Text(at, "The session felt rushed at the end but it helped."))
    return events


def run(checkins: int) -> tuple[int, float, float]:
    ctx = ClientContext(
        language="en",
        timezone="Europe/Berlin",
        therapist_alias="Dr. Lee",
        crisis_resources="Call 116 123, day or night.",
    )
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    scripts = [checkin_events(n + 1, start + timedelta(days=n)) for n in range(checkins)]
    stored = json.dumps(new_state("idle", "idle"))
    count = 0
    began_cpu, began_wall = time.process_time(), time.perf_counter()
    for script in scripts:
        for event in script:
            outcome = handle(json.loads(stored), event, ctx)
            stored = json.dumps(outcome.state)
            count += 1
    cpu, wall = time.process_time() - began_cpu, time.perf_counter() - began_wall
    final = json.loads(stored)
    if final["machine"] != "idle":
        raise SystemExit("check-ins did not complete: the benchmark measured the wrong thing")
    return count, cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--checkins", type=int, default=1000, help="check-ins per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run(50)  # warm up caches (catalogs, zone tables, regexes, plans)
    rounds = [run(args.checkins) for _ in range(args.rounds)]
    count = rounds[0][0]
    # CPU time of this process is what "events per second on one core" means; wall time also
    # counts whatever else the machine was doing. The best round is the least disturbed one.
    cpu_rates = sorted(n / cpu for n, cpu, _ in rounds)
    wall_rates = sorted(n / wall for n, _, wall in rounds)
    best = cpu_rates[-1]
    print(f"rounds: {args.rounds} x {args.checkins} check-ins ({count} events each)")
    print(
        f"cpu: best {best:.0f} events/s ({1e6 / best:.1f} µs per event: JSON load + handle"
        f" + JSON dump), median {statistics.median(cpu_rates):.0f}"
    )
    print(f"wall: best {wall_rates[-1]:.0f} events/s, median {statistics.median(wall_rates):.0f}")
    verdict = "OK" if best >= TARGET else "MISS"
    print(f"flow: {best:.0f} events/s on one core (target ≥ {TARGET}) {verdict}")


if __name__ == "__main__":
    main()
