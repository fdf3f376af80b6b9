"""Benchmark: `rapport backtest` over 100,000 synthetic client histories.

    .venv/bin/python bench/backtest_bench.py [--clients 100000] [--seed 7] [--workers N]

First writes the data set to a temporary JSON Lines file (timed and reported on its own), then
backtests it the way the CLI does: streamed from the file, every output line serialised to JSON,
the summary at the end. Prints the figures and a one-line summary against the 30 s target.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from insights.backtest import run_backtest
from insights.synthetic import write

TARGET_SECONDS = 30.0


def _write_part(args: tuple[int, int, int, str]) -> int:
    first, count, seed, path = args
    with open(path, "w", encoding="utf-8") as out:
        return write(count, seed, out, first=first)


def generate(clients: int, seed: int, workers: int, directory: Path) -> Path:
    """Write the data set in `workers` slices at once, then join them in order."""
    size = -(-clients // workers)
    parts = [
        (first, min(size, clients - first), seed, str(directory / f"part{n}.jsonl"))
        for n, first in enumerate(range(0, clients, size))
    ]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_part, parts))
    target = directory / "clients.jsonl"
    with target.open("w", encoding="utf-8") as out:
        for *_, part in parts:
            with open(part, encoding="utf-8") as piece:
                out.write(piece.read())
            os.remove(part)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = generate(args.clients, args.seed, args.workers, Path(tmp))
        generation = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.clients} histories ({size_mb:.0f} MB) in {generation:.1f} s")

        started = time.perf_counter()
        lines = 0
        summary: dict[str, dict[str, object]] = {}
        with path.open(encoding="utf-8") as source, open(os.devnull, "w") as sink:
            for obj in run_backtest(source, workers=args.workers):
                sink.write(json.dumps(obj) + "\n")
                if "summary" in obj:
                    summary = obj["summary"]
                else:
                    lines += 1
        elapsed = time.perf_counter() - started

    rate = lines / elapsed if elapsed else float("inf")
    print(f"backtest: {lines} clients in {elapsed:.1f} s with {args.workers} worker(s): "
          f"{rate:,.0f} clients/s, {1e6 / rate:.0f} µs per client")
    for method, figures in summary.items():
        print(f"  {method:12s} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    verdict = "within" if elapsed < TARGET_SECONDS else "OVER"
    print(f"SUMMARY backtest_bench: {lines} histories in {elapsed:.1f} s "
          f"({verdict} the {TARGET_SECONDS:.0f} s target); generation {generation:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
