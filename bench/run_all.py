"""Runs every benchmark in bench/ (`*_bench.py`) one after another and tabulates their summaries.

Run: .venv/bin/python bench/run_all.py [--full] [--only NAME,NAME] (`make bench` runs it)

Each benchmark runs in its own process with --quick unless --full is given (a script without a
--quick option runs as it is; digest and backtest always run at the issue's full size, 1,000
digests and 100,000 histories, which fit the ten-minute budget), its output passed through as it
comes. Its summary is its last line
of the form `<name>: <figure> (target <target>) OK|MISS`; for a script that prints its summary in
another form, its last line is shown as it is, with no verdict. A script that exits with an error
is FAILED. The exit status is 0 whatever the figures: benchmarks report, they do not gate.
The `host:` lines before and after give the CPU and a reference workload's time, to compare runs
made on different (or drifting) hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUMMARY = re.compile(
    r"^(?P<name>[\w-]+): (?P<figure>.*) \(target (?P<target>.*)\) (?P<verdict>OK|MISS)$"
)
# The quick, in-process ones first, so their figures are on screen early.
ORDER = ("flow", "digest", "backtest", "handler", "pipeline", "answer", "heartbeat", "fanout")
TIMEOUT = 900.0
# Their full size is the figure asked for, and it fits in `make bench`'s ten minutes.
ALWAYS_FULL = ("digest", "backtest")


@dataclass
class Outcome:
    script: str
    seconds: float
    code: int | None
    quick_missing: bool  # a quick run was asked for but the script has no --quick
    summary: str = ""  # the summary line, or the last line when there is none
    verdict: str = "-"  # OK | MISS | - (not stated) | FAILED

    @property
    def name(self) -> str:
        return self.script.removesuffix(".py").removesuffix("_bench")


def scripts(only: set[str] | None) -> list[Path]:
    found = [p for p in HERE.glob("*_bench.py")]

    def rank(path: Path) -> tuple[int, str]:
        stem = path.stem.removesuffix("_bench")
        return (ORDER.index(stem) if stem in ORDER else len(ORDER), stem)

    chosen = [p for p in found if only is None or p.stem.removesuffix("_bench") in only]
    return sorted(chosen, key=rank)


def accepts_quick(script: Path) -> bool:
    """Whether the script has a --quick option (each owner decides; none is assumed)."""
    try:
        shown = subprocess.run(
            [sys.executable, str(script), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=HERE.parent,
        )
    except subprocess.TimeoutExpired:
        return False
    return "--quick" in shown.stdout


def run_one(script: Path, full: bool) -> Outcome:
    always_full = script.stem.removesuffix("_bench") in ALWAYS_FULL
    quick = not full and not always_full and accepts_quick(script)
    argv = [sys.executable, str(script)] + (["--quick"] if quick else [])
    print(f"\n=== {script.name} {' '.join(argv[2:])}".rstrip(), flush=True)
    began = time.perf_counter()
    summary: re.Match[str] | None = None
    last_line = ""
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=HERE.parent,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        assert process.stdout is not None
        watchdog = threading.Timer(TIMEOUT, process.kill)  # a silent hang ends too
        watchdog.start()
        try:
            for line in process.stdout:
                print(line, end="", flush=True)
                if line.strip():
                    last_line = line.strip()
                    summary = SUMMARY.match(last_line) or summary
        finally:
            watchdog.cancel()
            code = process.wait()
    if code == -9:
        print(f"  (stopped after {TIMEOUT:.0f} s)")
    quick_missing = not full and not always_full and not quick
    outcome = Outcome(script.name, time.perf_counter() - began, code, quick_missing)
    if summary is not None:
        outcome.summary, outcome.verdict = summary.group(0), summary["verdict"]
    else:
        outcome.summary = last_line
    if code != 0:
        outcome.verdict = "FAILED"
        outcome.summary = f"exit code {code}: {last_line}"
    return outcome


def _reference_work() -> None:
    records = [{"id": n, "name": f"client {n}", "scores": [n % 11, n % 7]} for n in range(5_000)]
    for _ in range(6):
        json.loads(json.dumps(records))
    total = 0
    for n in range(800_000):
        total += n % 7


def reference_ms() -> float:
    """CPU milliseconds of a fixed pure-Python workload (loops, dicts, strings, JSON), the median
    of five. The targets are absolute and hosts of the same size differ in speed per core; this
    figure, printed with every run, tells a slower host from a slower Rapport."""
    times = []
    for _ in range(5):
        began = time.process_time()
        _reference_work()
        times.append(time.process_time() - began)
    return statistics.median(times) * 1000


def host() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"host: {model}, {os.cpu_count()} cores; reference workload {reference_ms():.0f} ms CPU "
        "(lower is faster)"
    )


def table(outcomes: list[Outcome]) -> str:
    rows = [("benchmark", "result", "time", "summary")]
    for o in outcomes:
        seconds = f"{o.seconds:.0f} s" + (" (no --quick)" if o.quick_missing else "")
        rows.append((o.name, o.verdict, seconds, o.summary))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}"
        for row in rows
    ]
    lines.insert(1, "-" * min(120, max(len(line) for line in lines)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full sizes (takes much longer)")
    parser.add_argument("--only", default=None, help="comma-separated names, e.g. pipeline,fanout")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    began = time.perf_counter()
    before = host()
    print(before, flush=True)
    outcomes = [run_one(script, args.full) for script in scripts(only)]
    print("\n=== summary")
    print(before)
    print(host().replace("host:", "host after:", 1))
    for o in outcomes:
        named = o.summary.startswith(f"{o.name}:") or o.verdict in ("OK", "MISS")
        print(o.summary if named else f"{o.name}: {o.summary}")
    print()
    print(table(outcomes))
    mode = "full" if args.full else "quick where offered"
    print(f"\n{len(outcomes)} benchmarks in {time.perf_counter() - began:.0f} s ({mode})")


if __name__ == "__main__":
    main()
