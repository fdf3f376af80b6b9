"""Benchmark: 1,000 pre-session digests with their charts (target: under 60 s).

    .venv/bin/python bench/digest_bench.py [--digests 1000] [--seed 9] [--workers N] [--quick]

Each digest is built for a synthetic client the way the bot sends it: signals, ranked text split
for Telegram, the caption, the JSON form and the PNG chart. Making up the client is not counted.

The machine this runs on is often shared, so besides the wall time it reports the CPU time each
digest took (`time.process_time` in the process that built it), split into the text and the
chart, and the load average. The verdict uses the CPU time spread over the cores, which hardly
depends on the load: `digest: <figures> (target 60 s for 1000 on 2 cores) OK|MISS`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

from insights.chart import render_chart
from insights.digest import build_digest, caption, render_text, to_json
from insights.history import history_from_backtest_line
from insights.synthetic import generate_client

TARGET_SECONDS = 60.0
TARGET_DIGESTS = 1000
TARGET_CORES = 2


def _one(args: tuple[int, int]) -> tuple[float, float, int, int]:
    """(text CPU seconds, chart CPU seconds, chart bytes, text characters) for client `index`."""
    seed, index = args
    history, label = history_from_backtest_line(generate_client(seed, index))
    moments = [c.sent_at for c in history.checkins] or [history.sessions[0]]
    now = max(moments) + timedelta(hours=1)
    if label is not None and label.dropout and label.at is not None:
        now = min(now, label.at - timedelta(days=2))
    started = time.process_time()
    digest = build_digest(history, now, now + timedelta(hours=3))
    chunks = render_text(digest)
    caption(digest)
    to_json(digest)
    text_done = time.process_time()
    png = render_chart(history, now)
    chart_done = time.process_time()
    return text_done - started, chart_done - text_done, len(png), sum(len(c) for c in chunks)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=TARGET_DIGESTS)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="200 digests")
    args = parser.parse_args()
    count = 200 if args.quick else args.digests

    jobs = [(args.seed, index) for index in range(count)]
    load_before = _load()
    started = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(_one, jobs, chunksize=16))
    else:
        results = [_one(job) for job in jobs]
    wall = time.perf_counter() - started

    text_cpu = [r[0] for r in results]
    chart_cpu = [r[1] for r in results]
    total_cpu = [r[0] + r[1] for r in results]
    sizes = [r[2] for r in results]
    texts = [r[3] for r in results]
    per_digest = statistics.fmean(total_cpu)
    idle_wall = per_digest * TARGET_DIGESTS / TARGET_CORES
    print(
        f"{len(results)} digests with charts in {wall:.1f} s wall ({args.workers} worker(s)); "
        f"load average before {load_before}, after {_load()}"
    )
    print(
        f"  CPU per digest: mean {per_digest * 1e3:.1f} ms "
        f"(text {statistics.fmean(text_cpu) * 1e3:.1f} ms, "
        f"chart {statistics.fmean(chart_cpu) * 1e3:.1f} ms), "
        f"p95 {sorted(total_cpu)[int(0.95 * len(total_cpu)) - 1] * 1e3:.1f} ms"
    )
    print(f"  {TARGET_DIGESTS} digests on {TARGET_CORES} idle cores: about {idle_wall:.1f} s")
    print(
        f"  chart PNG: median {statistics.median(sizes) / 1e3:.0f} KB, "
        f"min {min(sizes) / 1e3:.0f} KB, max {max(sizes) / 1e3:.0f} KB"
    )
    print(f"  text: median {statistics.median(texts):.0f} characters")
    figure = (
        f"{per_digest * 1e3:.1f} ms CPU per digest, {idle_wall:.1f} s for "
        f"{TARGET_DIGESTS} on {TARGET_CORES} idle cores ({wall:.1f} s wall for "
        f"{len(results)} at load {load_before.split()[0]})"
    )
    ok = idle_wall < TARGET_SECONDS
    print(
        f"digest: {figure} (target {TARGET_SECONDS:.0f} s for {TARGET_DIGESTS} on "
        f"{TARGET_CORES} cores) {'OK' if ok else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
