"""Pipeline: text messages from many sandbox users through PTB, Rapport's handler, the database
commit, the outbox and back, against a bare PTB echo bot on the same sandbox in the same run.

Run: .venv/bin/python bench/pipeline_bench.py [--quick] [--users N] [--per-user N]

Each bot runs in its own process (`rapport run` exactly as an operator starts it; the echo bot in
bench/echo_bot.py with the same polling and update concurrency); the sandbox and the simulated
users share this process. Both bots run side by side, one idle while the other is measured:

* burst: every user sends `--per-user` texts as fast as the sandbox takes them; throughput is
  messages / (last reply − first send). The two bots take turns, `--rounds` bursts each, and the
  ratio is the median of the rounds' ratios: a machine whose speed drifts (a shared host) moves
  both bots of a round alike, where one burst each would credit the drift to one of them;
* paced: texts at 100 per second; latency is each text's send to its reply arriving in the
  sandbox (timestamps taken as the sandbox records each call);
* light: texts at 20 per second, well below capacity: the latency of one message on its own.

Rapport's clients are created through `app.admin` and then set to the state onboarding leaves
(active, idle conversation, no check-in due), so every text takes the real client path and gets
the flow's reply. The limiter is lifted (send_rate=0, chat_send_rate=0): this measures the
pipeline. Runs on SQLite, and on PostgreSQL too when RAPPORT_BENCH_POSTGRES_URL (or
RAPPORT_TEST_POSTGRES_URL) is set.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import update

from app import admin
from bench.common import (
    POSTGRES_ENVS,
    START,
    TIMEZONE,
    backends,
    bot_environment,
    database,
    make_runtime,
    ms,
    percentile,
    summary,
    timelapse_clock,
)
from bench.processes import BotProcess
from bench.traffic import Traffic, cpu_seconds, watch
from devtools.sandbox import DEFAULT_TOKEN, Sandbox, SandboxBot, SandboxUser
from flows.onboarding import CONSENT_VERSION
from flows.state import new_state
from storage.models import Client

ECHO_TOKEN = "7000000002:AAFsandboxEchoBaselineToken_k3Jd8Qp1"
CONCURRENCY = 32  # Rapport's Application handles up to 32 updates at once; the echo bot too
PACED_RATE = 100.0
LIGHT_RATE = 20.0
TARGET_RATIO = 0.5
TARGET_P99 = 0.100
WARM_UP = 10
ROUNDS = 5


@dataclass
class Phase:
    count: int
    answered: int
    wall: float
    latencies: list[float]
    bot_cpu: float
    polls: int = 0  # getUpdates calls that brought updates
    polled: int = 0  # the updates they carried, each redelivery counted

    @property
    def throughput(self) -> float:
        return self.answered / self.wall if self.wall > 0 else math.nan

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)

    def describe(self) -> str:
        lost = self.count - self.answered
        cpu = self.bot_cpu / self.answered * 1000 if self.answered else math.nan
        return (
            f"{self.answered}/{self.count} answered in {self.wall:.2f} s = "
            f"{self.throughput:,.0f} msg/s; latency p50 {ms(self.p50)} p99 {ms(self.p99)}; "
            f"bot CPU {cpu:.2f} ms/msg; {self.polls / max(self.answered, 1):.2f} getUpdates/msg "
            f"carrying {self.polled / max(self.polls, 1):.1f} updates each"
            + (f"; {lost} UNANSWERED" if lost else "")
        )


@dataclass(frozen=True)
class Plan:
    per_user: int  # burst: texts from every user
    paced: int  # texts at PACED_RATE
    light: int  # texts at LIGHT_RATE


@dataclass
class BotResult:
    label: str
    bursts: list[Phase] = field(default_factory=list)
    paced: Phase | None = None
    light: Phase | None = None
    error: str | None = None

    @property
    def burst(self) -> Phase | None:
        """The median round by throughput."""
        ranked = sorted(self.bursts, key=lambda phase: phase.throughput)
        return ranked[len(ranked) // 2] if ranked else None

    @property
    def complete(self) -> bool:
        phases = (*self.bursts, self.paced, self.light)
        return (
            self.error is None
            and bool(self.bursts)
            and all(p is not None and p.answered == p.count for p in phases)
        )


class Load:
    """The simulated users of one bot, and the traffic they cause."""

    def __init__(self, sandbox: Sandbox, bot: SandboxBot, users: list[SandboxUser]) -> None:
        self.sandbox = sandbox
        self.users = [user.with_bot(bot) for user in users]
        self.traffic: Traffic = watch(sandbox)
        self.traffic.bot_username = bot.username
        self.counter = 0

    async def send(self, user: SandboxUser) -> None:
        self.counter += 1
        self.traffic.note_send(user.chat_id)
        await user.send(f"a short note from a client, number {self.counter}")

    async def replies(self, expected: int, timeout: float) -> bool:
        try:
            await self.sandbox.wait_until(
                lambda: self.traffic.received_total >= expected, timeout, what="the replies"
            )
        except TimeoutError:
            return False
        return True

    async def warm_up(self, process: BotProcess) -> str | None:
        """Prove the whole path works (and fill connection pools) before measuring."""
        self.traffic.reset()
        for user in self.users[:WARM_UP]:
            await self.send(user)
        expected = min(WARM_UP, len(self.users))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if await self.replies(expected, 1.0):
                return None
            if process.exited:
                break
        return f"no replies to the warm-up texts ({self.traffic.received_total}/{expected})"

    async def burst(self, per_user: int, pid: int | None) -> Phase:
        self.traffic.reset()
        count = per_user * len(self.users)
        cpu_before = cpu_seconds(pid)
        for _round in range(per_user):
            for user in self.users:
                await self.send(user)
        await self.replies(count, timeout=max(60.0, count / 20))
        return self._phase(count, cpu_seconds(pid) - cpu_before)

    async def paced(self, count: int, rate: float, pid: int | None) -> Phase:
        self.traffic.reset()
        cpu_before = cpu_seconds(pid)
        loop = asyncio.get_running_loop()
        began = loop.time()
        for i in range(count):
            delay = began + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load, not waiting for a result
            await self.send(self.users[i % len(self.users)])
        await self.replies(count, timeout=60.0)
        return self._phase(count, cpu_seconds(pid) - cpu_before)

    def _phase(self, count: int, bot_cpu: float) -> Phase:
        traffic = self.traffic
        latencies, _missing = traffic.latencies()
        first, last = traffic.first_sent, traffic.last_received
        wall = (last - first) if first is not None and last is not None else math.nan
        return Phase(
            count,
            min(count, traffic.received_total),
            wall,
            latencies,
            bot_cpu,
            traffic.polls,
            traffic.polled,
        )


def settle_sandbox() -> None:
    """The sandbox keeps everything said so far, in this process. Left to the collector, the pile
    the bursts before left behind makes its full passes longer and longer, the users' sending
    stalls, and the texts reach the bot a few at a time: a bot polling for them then spends
    more per message. Frozen before each phase, every phase meets the same sandbox."""
    gc.collect()
    gc.freeze()


@dataclass
class Bot:
    result: BotResult
    process: BotProcess
    load: Load


async def ready(bot: Bot) -> bool:
    """A short warm-up of the bot about to be measured, then a settled sandbox. A bot left idle
    through the other's phase has let its HTTP connections expire, and would pay for that
    inside the measurement."""
    error = await bot.load.warm_up(bot.process)
    if error is not None:
        bot.result.error = f"{error}; bot log:\n{bot.process.log_tail()}"
        return False
    settle_sandbox()
    return True


async def measure_pair(echo: Bot, rapport: Bot, plan: Plan, rounds: int) -> None:
    """Both bots up; bursts in turns, then each bot's paced and light phases."""
    bots = (echo, rapport)
    try:
        for bot in bots:
            await bot.process.start()
        for n in range(rounds):
            for bot in bots:
                if not await ready(bot):
                    return
                phase = await bot.load.burst(plan.per_user, bot.process.pid)
                bot.result.bursts.append(phase)
                print(f"  {bot.result.label:<18} burst {n + 1}: {phase.describe()}", flush=True)
        for bot in bots:
            if not await ready(bot):
                return
            label = bot.result.label
            bot.result.paced = await bot.load.paced(plan.paced, PACED_RATE, bot.process.pid)
            print(f"  {label:<18} paced  : {bot.result.paced.describe()}", flush=True)
            bot.result.light = await bot.load.paced(plan.light, LIGHT_RATE, bot.process.pid)
            print(f"  {label:<18} light  : {bot.result.light.describe()}", flush=True)
    finally:
        for bot in bots:
            code = await bot.process.stop()
            if code not in (0, None) and bot.result.error is None and not bot.result.bursts:
                bot.result.error = f"the bot exited with {code}:\n{bot.process.log_tail()}"


async def prepare_clients(url: str, api_url: str, users: list[SandboxUser]) -> None:
    """Clients created as an operator does, then put where onboarding leaves them."""
    rt = make_runtime(url, api_url=api_url)
    try:
        therapist = await admin.add_therapist(rt, "Dana Bench", TIMEZONE)
        bound: list[tuple[int, int]] = []
        for n, user in enumerate(users):
            data = await admin.add_client(
                rt, therapist["id"], f"Client {n}", timezone=TIMEZONE, language="en"
            )
            bound.append((data["id"], user.id))
        async with rt.sessions() as s, s.begin():
            for client_id, user_id in bound:
                await s.execute(
                    update(Client)
                    .where(Client.id == client_id)
                    .values(
                        telegram_user_id=user_id,
                        chat_id=user_id,
                        status="active",
                        conversation=new_state("idle", "idle"),
                        consent_version=CONSENT_VERSION,
                        consent_at=START - timedelta(days=7),
                        joined_at=START - timedelta(days=7),
                        cadence_anchor=START - timedelta(days=7),
                        next_checkin_at=START + timedelta(days=30),
                    )
                )
    finally:
        await rt.close()


async def run(users_count: int, plan: Plan, rounds: int) -> int:
    sandbox = Sandbox()
    await sandbox.start()
    rapport_bot = sandbox.add_bot(DEFAULT_TOKEN, username="rapport_bench_bot")
    echo_bot = sandbox.add_bot(ECHO_TOKEN, username="echo_bench_bot", first_name="Echo")
    users = [sandbox.user(first_name=f"U{n}") for n in range(users_count)]
    echo_load, rapport_load = Load(sandbox, echo_bot, users), Load(sandbox, rapport_bot, users)
    print(
        f"pipeline: {users_count} users × {plan.per_user} texts (burst), {plan.paced} texts at "
        f"{PACED_RATE:.0f}/s, {plan.light} at {LIGHT_RATE:.0f}/s; bots in their own processes, "
        f"{rounds} bursts each in turns; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if "postgres" not in backends():
        print(f"  (PostgreSQL not measured: set {' or '.join(POSTGRES_ENVS)})")
    pairs: list[tuple[BotResult, BotResult]] = []
    try:
        for backend in backends():
            baseline = BotResult("echo (PTB only)")
            rapport = BotResult(f"rapport ({backend})")
            try:
                async with database(backend) as url:
                    await prepare_clients(url, sandbox.api_url, users)
                    env = bot_environment(
                        url,
                        sandbox.api_url,
                        send_rate=0,
                        chat_send_rate=0,
                        clock=timelapse_clock(),
                    )
                    await measure_pair(
                        Bot(
                            baseline,
                            BotProcess.echo(sandbox.api_url, ECHO_TOKEN, CONCURRENCY),
                            echo_load,
                        ),
                        Bot(rapport, BotProcess.rapport(env), rapport_load),
                        plan,
                        rounds,
                    )
            except Exception as exc:  # a broken part of the bot is a finding, not a crash
                rapport.error = f"{type(exc).__name__}: {exc}"
            pairs.append((baseline, rapport))
    finally:
        await sandbox.stop()
    return report(pairs)


def cpu_per_message(phase: Phase | None) -> float:
    if phase is None or not phase.answered:
        return math.nan
    return phase.bot_cpu / phase.answered


def p(phase: Phase | None, q: float) -> float:
    return percentile(phase.latencies, q) if phase is not None else math.nan


def round_ratios(baseline: BotResult, rapport: BotResult) -> tuple[list[float], list[float]]:
    """Per round: Rapport's throughput over the echo bot's, and the echo bot's CPU per message
    over Rapport's."""
    rounds = list(zip(baseline.bursts, rapport.bursts, strict=False))
    speed = [r.throughput / e.throughput for e, r in rounds]
    cost = [cpu_per_message(e) / cpu_per_message(r) for e, r in rounds]
    return speed, cost


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def report(pairs: list[tuple[BotResult, BotResult]]) -> int:
    ok = bool(pairs)
    figures: list[str] = []
    print(
        f"\n  {'bot':<18} {'msg/s':>6} {'CPU/msg':>8} {'p50@100/s':>10} {'p99@100/s':>10} "
        f"{'p50@20/s':>9} {'p99@20/s':>9}  ratio: throughput, CPU cost (median round)"
    )
    for baseline, rapport in pairs:
        for result in (baseline, rapport):
            if result.error:
                print(f"  {result.label}: FAILED: {result.error}")
        rates = [r.burst.throughput if r.burst else math.nan for r in (baseline, rapport)]
        costs = [cpu_per_message(r.burst) for r in (baseline, rapport)]
        speeds, savings = round_ratios(baseline, rapport)
        ratio, cost_ratio = median(speeds), median(savings)
        for result, rate, cost in zip((baseline, rapport), rates, costs, strict=True):
            tail = f"  {ratio:.2f}, {cost_ratio:.2f}" if result is rapport else ""
            print(
                f"  {result.label:<18} {rate:>6,.0f} {ms(cost):>8} {ms(p(result.paced, 50)):>10} "
                f"{ms(p(result.paced, 99)):>10} {ms(p(result.light, 50)):>9} "
                f"{ms(p(result.light, 99)):>9}{tail}"
            )
        if speeds:
            print(
                f"  {'':<18} rounds' ratios {min(speeds):.2f}–{max(speeds):.2f} (throughput), "
                f"{min(savings):.2f}–{max(savings):.2f} (CPU cost)"
            )
        p99 = p(rapport.paced, 99)
        complete = baseline.complete and rapport.complete
        ok = ok and complete and ratio >= TARGET_RATIO and p99 < TARGET_P99
        backend = rapport.label.split()[-1].strip("()")
        spread = f" ({min(speeds):.2f}–{max(speeds):.2f})" if speeds else ""
        figures.append(f"{backend} ratio {ratio:.2f}{spread} p99 {ms(p99)}")
    figure = "; ".join(figures) or "nothing measured"
    print(summary("pipeline", figure, f"ratio ≥ {TARGET_RATIO}, p99 < 100 ms", ok))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer users and texts")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--per-user", type=int, default=None)
    parser.add_argument("--paced", type=int, default=None, help="texts in the paced phase")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="bursts per bot, in turns")
    args = parser.parse_args()
    users = args.users or (100 if args.quick else 200)
    plan = Plan(
        per_user=args.per_user or (5 if args.quick else 10),
        paced=args.paced or (400 if args.quick else 1_000),
        light=100 if args.quick else 300,
    )
    sys.exit(asyncio.run(run(users, plan, args.rounds)))


if __name__ == "__main__":
    main()
