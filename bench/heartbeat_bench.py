"""Heartbeat: the cost of one scheduler pass over 10,000 and 100,000 stored clients, and the memory
of a bot process that holds 100,000.

Run: .venv/bin/python bench/heartbeat_bench.py [--quick] [--profile] [--sizes 10000,100000]
     [--outcomes phq-9:14d]  (the practice asks outcome measures beside the alliance check)

Clients are bulk-inserted as onboarding leaves them (active, time zone set, next check-in within
the week). Per database size:

* idle pass: nothing due (the floor every pass pays);
* same due count: 100 clients due at both sizes, so any growth is the cost of idle rows;
* 1% due: 100 at 10k, 1,000 at 100k; one pass, which must open them all (a pass opens check-ins
  in transactions of `app.opening.BATCH` clients until none is due or its time budget is spent),
  then passes until nothing is due.

Each opened check-in must leave its outbox row (checked). Then a child process starts the real
BotService (long polling against the sandbox in this process) on the 100k database, runs a few
heartbeat passes that open and send check-ins, and reports its peak RSS (ru_maxrss).
Targets: one pass < 1 s at 100k, opening all 1,000; same-due time(100k) ≤ 1.5 × time(10k), each
the fastest of its repeats (the machine's other load only ever adds time); peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import os
import pstats
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, func, select, update

from app import admin, heartbeat, opening
from app.clock import ManualClock
from app.runtime import Runtime
from bench.common import (
    BENCH_KEY,
    START,
    backends,
    database,
    make_runtime,
    median,
    ms,
    summary,
)
from bench.population import due_count, make_due, populate
from bench.processes import BotProcess
from devtools.sandbox import DEFAULT_TOKEN, Sandbox, SandboxBot
from storage.models import Checkin, Client, OutboxMessage

SCRIPT = Path(__file__).resolve()
SAME_DUE = 100
REPEATS = 3
TARGET_PASS = 1.0
TARGET_GROWTH = 1.5
TARGET_RSS_MB = 300.0
RSS_PASSES = 5
RSS_STEP = timedelta(minutes=10)
RSS_START = START + timedelta(hours=2)


@dataclass
class SizeResult:
    backend: str
    size: int
    populate_seconds: float = 0.0
    idle: list[Timing] = field(default_factory=list)
    same_due: list[Timing] = field(default_factory=list)
    one_percent_due: int = 0
    first: Timing | None = None
    all_passes: int = 0
    all_seconds: float = 0.0
    all_opened: int = 0
    outbox_rows: int = 0
    checkins: int = 0

    @property
    def same_due_median(self) -> float:
        return median([t.wall for t in self.same_due])

    @property
    def same_due_best(self) -> float:
        """The fastest repeat: what the code costs, with less of the machine's other load."""
        return min((t.wall for t in self.same_due), default=math.nan)

    @property
    def first_opened(self) -> int:
        """Check-ins the 1%-due pass opened (all of them, or the pass only looks fast)."""
        if self.first is not None:
            return self.first.done.opened
        return min((t.done.opened for t in self.same_due), default=0)

    @property
    def first_pass(self) -> float:
        """One pass with 1% of the clients due (the same-due pass where that is the same)."""
        if self.first is not None:
            return self.first.wall
        return self.same_due_best if self.one_percent_due <= SAME_DUE else math.nan


@dataclass
class Timing:
    wall: float
    cpu: float  # this process, all threads (aiosqlite runs SQL in a thread of its own)
    statements: int
    transactions: int
    done: heartbeat.Pass


class StatementCounter:
    """Counts the SQL statements and transactions the engine runs: a pass is made of round trips.
    SQLite's explicit BEGIN is a transaction, not a statement, so both backends compare."""

    def __init__(self, rt: Runtime) -> None:
        self.count = 0
        self.transactions = 0
        event.listen(rt.engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(rt.engine.sync_engine, "begin", self._begin)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            self.count += 1

    def _begin(self, _conn: Any) -> None:
        self.transactions += 1


class Measurer:
    def __init__(self, rt: Runtime, size: int, profile: bool) -> None:
        self.rt = rt
        self.size = size
        self.profile = profile
        self._pool: list[int] = []
        self._statements = StatementCounter(rt)

    async def ids(self) -> None:
        async with self.rt.sessions() as s:
            self._pool = list(await s.scalars(select(Client.id).order_by(Client.id)))
        random.Random(11).shuffle(self._pool)

    def take(self, count: int) -> list[int]:
        """Clients not used by an earlier scenario (they have an open check-in now)."""
        chosen, self._pool = self._pool[:count], self._pool[count:]
        return chosen

    async def timed_pass(self) -> Timing:
        counter = self._statements
        statements, transactions = counter.count, counter.transactions
        cpu = time.process_time()
        began = time.perf_counter()
        result = await heartbeat.run_pass(self.rt)
        return Timing(
            time.perf_counter() - began,
            time.process_time() - cpu,
            counter.count - statements,
            counter.transactions - transactions,
            result,
        )

    async def profiled_pass(self) -> Timing:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            return await self.timed_pass()
        finally:
            profiler.disable()
            print(f"\n  profile of one pass with {SAME_DUE} due at {self.size:,} clients:")
            stats = pstats.Stats(profiler, stream=sys.stdout)
            # Wall time of a pass is mostly waiting on the database; show Rapport's own frames.
            stats.sort_stats("cumulative").print_stats(r"/(bot|storage|flows)/", 30)


async def measure_size(
    rt: Runtime, backend: str, size: int, *, profile: bool, quick: bool, outcomes: str | None
) -> SizeResult:
    result = SizeResult(backend, size)
    began = time.perf_counter()
    await populate(rt, size, now=START)
    if outcomes:
        await admin.practice_set(rt, outcomes=[outcomes])
    result.populate_seconds = time.perf_counter() - began
    m = Measurer(rt, size, profile)
    await m.ids()
    repeats = 2 if quick else REPEATS
    for _ in range(repeats):
        result.idle.append(await m.timed_pass())
    for _ in range(repeats):
        await make_due(rt, m.take(SAME_DUE), START)
        result.same_due.append(await m.timed_pass())
    if profile:
        await make_due(rt, m.take(SAME_DUE), START)
        await m.profiled_pass()
    result.one_percent_due = size // 100
    if quick and result.one_percent_due <= SAME_DUE:
        return await count_rows(rt, result)  # the same-due figure is the 1% figure here
    await make_due(rt, m.take(result.one_percent_due), START)
    result.first = await m.timed_pass()
    result.all_passes, result.all_seconds = 1, result.first.wall
    result.all_opened = result.first.done.opened
    while not quick and await due_count(rt, START) and result.all_passes < 100:
        later = await m.timed_pass()
        result.all_passes += 1
        result.all_seconds += later.wall
        result.all_opened += later.done.opened
    return await count_rows(rt, result)


async def count_rows(rt: Runtime, result: SizeResult) -> SizeResult:
    async with rt.sessions() as s:
        result.outbox_rows = int(
            await s.scalar(select(func.count()).select_from(OutboxMessage)) or 0
        )
        result.checkins = int(await s.scalar(select(func.count()).select_from(Checkin)) or 0)
    return result


def describe(t: Timing) -> str:
    opened = t.done.opened
    per = (
        f" ({t.statements / opened:.2f} per check-in, {t.cpu / opened * 1000:.2f} ms CPU each)"
        if opened
        else ""
    )
    return (
        f"{ms(t.wall)} wall, {ms(t.cpu)} CPU, opened {opened}, {t.statements} SQL statements"
        f"{per} in {t.transactions} transactions"
    )


def print_size(r: SizeResult) -> None:
    print(f"  {r.backend:<8} {r.size:>7,} clients (inserted in {r.populate_seconds:.1f} s)")
    print(
        f"    idle pass      : {describe(r.idle[-1])} "
        f"(median of {len(r.idle)}: {ms(median([t.wall for t in r.idle]))})"
    )
    for n, t in enumerate(r.same_due):
        print(f"    {SAME_DUE} due #{n + 1}      : {describe(t)}")
    print(f"    {SAME_DUE} due        : best {ms(r.same_due_best)}, median {ms(r.same_due_median)}")
    if r.first is not None:
        print(
            f"    1% due ({r.one_percent_due:,}) : first pass {describe(r.first)}"
            f"; {r.first.done.open_batches} batches of at most {opening.BATCH} clients"
            f"{'; time budget spent, the rest left due' if r.first.done.backlog else ''}"
        )
    if r.all_passes > 1 or r.all_opened >= r.one_percent_due:
        print(
            f"    1% due, all    : {r.all_opened} opened in {r.all_passes} passes, "
            f"{r.all_seconds:.2f} s of pass time"
        )
    per_checkin = r.outbox_rows / r.checkins if r.checkins else math.nan
    print(f"    check-ins {r.checkins}, outbox rows {r.outbox_rows} ({per_checkin:.1f} each)")


# --- peak memory of a running bot ---------------------------------------------------------------


async def measure_rss(url: str) -> dict[str, float]:
    """Start the bot in a child process on this database against a sandbox here; its report."""
    sandbox = Sandbox()
    await sandbox.start()
    try:
        bot = sandbox.add_bot(DEFAULT_TOKEN, username="rapport_bench_bot")
        await _reachable_due_clients(url, sandbox, bot)
        env = dict(os.environ)
        env.update(RAPPORT_BENCH_KEY=BENCH_KEY)  # the child must read what this process wrote
        process = BotProcess(
            "rss",
            [sys.executable, str(SCRIPT), "--rss-child", url, sandbox.api_url],
            env,
        )
        await process.start()
        try:
            code = await asyncio.wait_for(process.wait(), 300)
        except TimeoutError:
            await process.stop()
            raise RuntimeError("the memory probe did not finish in 300 s") from None
        lines = [ln for ln in process.log_path.read_text().splitlines() if ln.startswith("{")]
        if code != 0 or not lines:
            raise RuntimeError(f"the memory probe failed ({code}):\n{process.log_tail()}")
        report: dict[str, float] = json.loads(lines[-1])
        report["delivered"] = sandbox.stats.messages_sent
        return report
    finally:
        await sandbox.stop()


async def _reachable_due_clients(url: str, sandbox: Sandbox, bot: SandboxBot) -> None:
    """The clients the child's passes will open get real sandbox users (who started the chat);
    what the timing runs left in the outbox is marked sent, so the child sends only its own."""
    horizon = RSS_START + RSS_STEP * RSS_PASSES
    rt = make_runtime(url)
    try:
        async with rt.sessions() as s, s.begin():
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == "pending")
                .values(status="sent", sent_at=START)
            )
            ids = list(
                await s.scalars(
                    select(Client.id).where(
                        Client.next_checkin_at <= horizon, Client.status == "active"
                    )
                )
            )
            for client_id in ids:
                user = sandbox.user(first_name="Client")
                sandbox.world.conversation(bot, sandbox.world.chats[user.id]).started = True
                await s.execute(
                    update(Client)
                    .where(Client.id == client_id)
                    .values(telegram_user_id=user.id, chat_id=user.id)
                )
    finally:
        await rt.close()


async def rss_child(url: str, api_url: str) -> None:
    """In the child: the real BotService, a few heartbeat passes, the outbox drained each time."""
    from bot.service import BotService

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    clock = ManualClock(RSS_START)
    rt = make_runtime(url, clock, api_url=api_url, send_rate=0, chat_send_rate=0)
    service = BotService(rt, heartbeat_interval=3600)
    await service.start()
    opened = 0
    try:
        for _ in range(RSS_PASSES):
            clock.advance(RSS_STEP)
            opened += (await heartbeat.run_pass(rt)).opened
            await _drain(rt)
    finally:
        await service.stop()
        await rt.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "rss_start_mb": rss_start / 1024,
                "maxrss_mb": peak / 1024,
                "passes": RSS_PASSES,
                "opened": opened,
            }
        ),
        flush=True,
    )


async def _drain(rt: Runtime, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with rt.sessions() as s:
            pending = await s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending")
            )
        if not pending:
            return
        rt.wake_sender()
        await asyncio.sleep(0.05)


# --- the run ------------------------------------------------------------------------------------


async def run(
    sizes: list[int], profile: bool, rss: bool, *, quick: bool, outcomes: str | None = None
) -> int:
    results: list[SizeResult] = []
    rss_report: dict[str, float] | None = None
    rss_error: str | None = None
    print(
        f"heartbeat: sizes {', '.join(f'{n:,}' for n in sizes)}; backends {backends()}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for backend in backends():
        for size in sizes:
            async with database(backend) as url:
                rt = make_runtime(url, ManualClock(START))
                try:
                    result = await measure_size(
                        rt,
                        backend,
                        size,
                        profile=profile and size == sizes[-1],
                        quick=quick,
                        outcomes=outcomes,
                    )
                finally:
                    await rt.close()
                results.append(result)
                print_size(result)
                if rss and backend == "sqlite" and size == sizes[-1]:
                    try:
                        rss_report = await measure_rss(url)
                    except RuntimeError as exc:
                        rss_error = str(exc)
    return report(results, rss_report, rss_error, sizes)


def report(
    results: list[SizeResult],
    rss_report: dict[str, float] | None,
    rss_error: str | None,
    sizes: list[int],
) -> int:
    ok = True
    figures: list[str] = []
    for backend in dict.fromkeys(r.backend for r in results):
        mine = {r.size: r for r in results if r.backend == backend}
        small, large = mine[sizes[0]], mine[sizes[-1]]
        growth = large.same_due_best / small.same_due_best
        complete = all(r.outbox_rows >= r.checkins for r in mine.values())
        print(
            f"  {backend}: one pass at {large.size:,} (1% due) {ms(large.first_pass)}; "
            f"{SAME_DUE} due (best of {len(small.same_due)}): {ms(small.same_due_best)} at "
            f"{small.size:,} vs {ms(large.same_due_best)} at {large.size:,} (×{growth:.2f})"
        )
        opened_all = large.first_opened == large.one_percent_due
        ok = ok and complete and opened_all
        ok = ok and large.first_pass < TARGET_PASS and growth <= TARGET_GROWTH
        figures.append(
            f"{backend} pass {ms(large.first_pass)} "
            f"({large.first_opened:,}/{large.one_percent_due:,} opened) growth ×{growth:.2f}"
        )
    if rss_report is not None:
        peak = rss_report["maxrss_mb"]
        print(
            f"  bot process with {sizes[-1]:,} stored clients: peak RSS {peak:.0f} MB "
            f"(after imports {rss_report['rss_start_mb']:.0f} MB); the service's first beat and "
            f"{int(rss_report['passes'])} more passes ({int(rss_report['opened'])} opened by "
            f"those) sent {int(rss_report['delivered'])} messages"
        )
        ok = ok and peak < TARGET_RSS_MB
        figures.append(f"RSS {peak:.0f} MB")
    elif rss_error is not None:
        print(f"  memory probe FAILED: {rss_error}")
        ok = False
    target = (
        f"pass < 1 s at 100k opening all, growth ≤ ×{TARGET_GROWTH}, RSS < {TARGET_RSS_MB:.0f} MB"
    )
    print(summary("heartbeat", "; ".join(figures), target, ok))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats; no passes after the 1%% due pass"
    )
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated client counts")
    parser.add_argument("--profile", action="store_true", help="cProfile a pass at the top size")
    parser.add_argument("--no-rss", action="store_true", help="skip the memory probe")
    parser.add_argument("--outcomes", help="the practice's outcome measures, e.g. phq-9:14d")
    parser.add_argument("--rss-child", nargs=2, metavar=("DB", "API"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        asyncio.run(rss_child(*args.rss_child))
        return
    sizes = sorted(int(n) for n in args.sizes.split(","))
    sys.exit(
        asyncio.run(
            run(sizes, args.profile, not args.no_rss, quick=args.quick, outcomes=args.outcomes)
        )
    )


if __name__ == "__main__":
    main()
