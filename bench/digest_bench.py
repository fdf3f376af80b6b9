"""Benchmark: 1,000 pre-session digests with their charts.

    .venv/bin/python bench/digest_bench.py [--digests 1000] [--seed 9] [--workers N]

Each digest is built for a synthetic client the way the bot sends it: signals, ranked text split
for Telegram, the caption, the JSON form and the PNG chart. Prints the figures and a one-line
summary against the 60 s target.
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


def _one(args: tuple[int, int]) -> tuple[float, int, int]:
    """(seconds, chart bytes, text characters) for the digest of client `index`."""
    seed, index = args
    history, label = history_from_backtest_line(generate_client(seed, index))
    moments = [c.sent_at for c in history.checkins] or [history.sessions[0]]
    now = max(moments) + timedelta(hours=1)
    if label is not None and label.dropout and label.at is not None:
        now = min(now, label.at - timedelta(days=2))
    started = time.perf_counter()
    digest = build_digest(history, now, now + timedelta(hours=3))
    chunks = render_text(digest)
    caption(digest)
    to_json(digest)
    png = render_chart(history, now)
    return time.perf_counter() - started, len(png), sum(len(c) for c in chunks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    jobs = [(args.seed, index) for index in range(args.digests)]
    started = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(_one, jobs, chunksize=16))
    else:
        results = [_one(job) for job in jobs]
    elapsed = time.perf_counter() - started

    seconds = [r[0] for r in results]
    sizes = [r[1] for r in results]
    texts = [r[2] for r in results]
    print(f"{len(results)} digests with charts in {elapsed:.1f} s ({args.workers} worker(s))")
    print(f"  per digest: median {statistics.median(seconds) * 1e3:.0f} ms, "
          f"p95 {sorted(seconds)[int(0.95 * len(seconds)) - 1] * 1e3:.0f} ms")
    print(f"  chart PNG: median {statistics.median(sizes) / 1e3:.0f} KB, "
          f"min {min(sizes) / 1e3:.0f} KB, max {max(sizes) / 1e3:.0f} KB")
    print(f"  text: median {statistics.median(texts):.0f} characters")
    verdict = "within" if elapsed < TARGET_SECONDS else "OVER"
    print(f"SUMMARY digest_bench: {len(results)} digests in {elapsed:.1f} s "
          f"({verdict} the {TARGET_SECONDS:.0f} s target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
