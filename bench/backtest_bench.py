"""Benchmark: `rapport backtest` over 100,000 synthetic client histories (target: under 30 s).

    .venv/bin/python bench/backtest_bench.py [--clients 100000] [--seed 7] [--workers N] [--quick]

First writes the data set to a temporary JSON Lines file (timed and reported on its own), then
backtests it the way the CLI does: streamed from the file, every output line serialised to JSON,
the summary at the end. `--workers` defaults to the number of cores.

The machine this runs on is often shared, so besides the wall time it reports the CPU time this
process and its workers spent (`time.process_time` and the children's resource usage) and the load
average before and after. CPU time per client hardly depends on the load; the wall time the same
run would take on idle cores is the CPU time spread over them, and that is what the verdict uses:
`backtest: <figures> (target 30 s for 100000 on 2 cores) OK|MISS`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from insights.backtest import run_backtest
from insights.synthetic import write

TARGET_SECONDS = 30.0
TARGET_CLIENTS = 100_000
TARGET_CORES = 2


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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=TARGET_CLIENTS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="10,000 clients")
    args = parser.parse_args()
    clients = 10_000 if args.quick else args.clients

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = generate(clients, args.seed, args.workers, Path(tmp))
        generation = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        print(f"generated {clients} histories ({size_mb:.0f} MB) in {generation:.1f} s")

        load_before = _load()
        started = time.perf_counter()
        own_cpu = time.process_time()
        children_cpu = _children_cpu()
        lines = 0
        summary: dict[str, dict[str, object]] = {}
        with path.open(encoding="utf-8") as source, open(os.devnull, "w") as sink:
            for obj in run_backtest(source, workers=args.workers):
                sink.write(json.dumps(obj, ensure_ascii=False) + "\n")
                if "summary" in obj:
                    summary = obj["summary"]
                else:
                    lines += 1
        wall = time.perf_counter() - started
        own_cpu = time.process_time() - own_cpu
        children_cpu = _children_cpu() - children_cpu

    cpu = own_cpu + children_cpu
    per_client = cpu / max(lines, 1)
    idle_wall = per_client * TARGET_CLIENTS / TARGET_CORES
    print(f"backtest: {lines} clients with {args.workers} worker(s)")
    print(
        f"  wall {wall:.1f} s ({lines / wall:,.0f} clients/s); "
        f"load average before {load_before}, after {_load()}"
    )
    print(
        f"  CPU {cpu:.1f} s (this process {own_cpu:.1f} s, workers {children_cpu:.1f} s): "
        f"{per_client * 1e6:.0f} µs per client"
    )
    print(f"  {TARGET_CLIENTS} clients on {TARGET_CORES} idle cores: about {idle_wall:.1f} s")
    for method, figures in summary.items():
        print(f"  {method:12s} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    figure = (
        f"{per_client * 1e6:.0f} µs CPU per client, {idle_wall:.1f} s for "
        f"{TARGET_CLIENTS} on {TARGET_CORES} idle cores ({wall:.1f} s wall for {lines} "
        f"at load {load_before.split()[0]})"
    )
    ok = idle_wall < TARGET_SECONDS
    print(
        f"backtest: {figure} (target {TARGET_SECONDS:.0f} s for {TARGET_CLIENTS} on "
        f"{TARGET_CORES} cores) {'OK' if ok else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
