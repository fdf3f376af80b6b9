"""Fan-out: thousands of check-ins due at once, delivered within Telegram's limits.

Run: .venv/bin/python bench/fanout_bench.py [--quick] [--checkins N] [--backend sqlite|postgres]

The default is 3,000 check-ins (1,000 with --quick; pass --checkins 10000 for the full figure:
each check-in is two messages, an introduction and the first question, so 10,000 take about
eleven minutes at 30 messages/s). The sandbox enforces Telegram-like flood limits (30 messages/s
per bot, 1/s per chat with a burst of 3) and answers 429 with retry_after beyond them; the bot
runs as `rapport run` in its own process with its limiter at the defaults (30/s, 1/s).

`--preopen` opens every check-in before the bot starts (the outbox already full) to measure the
sender alone; `--send-rate R` sets Rapport's own per-bot limit (RAPPORT_SEND_RATE) to R.

Reported: the achieved sending rate against 30/s (target ≥ 90%), messages lost (outbox rows the
sandbox never delivered, target 0) or duplicated, 429s seen, and whether any was left unhandled
(every outbox row finally sent).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from app import heartbeat
from app.clock import ManualClock
from app.runtime import Runtime
from bench.common import START, bot_environment, database, make_runtime, summary, timelapse_clock
from bench.population import populate
from bench.processes import BotProcess
from bench.traffic import Traffic, cpu_seconds, watch
from devtools.sandbox import DEFAULT_TOKEN, Sandbox
from storage.models import Checkin, Client, OutboxMessage

TELEGRAM_RATE = 30.0
TARGET_SHARE = 0.9
PROGRESS_EVERY = 10.0


@dataclass
class Tally:
    due: int = 0
    checkins: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    rows_per_chat: dict[int, int] = field(default_factory=dict)


async def tally(rt: Runtime, *, per_chat: bool = False) -> Tally:
    now = rt.clock.now()
    result = Tally()
    async with rt.sessions() as s:
        result.due = int(
            await s.scalar(
                select(func.count()).select_from(Client).where(Client.next_checkin_at <= now)
            )
            or 0
        )
        result.checkins = int(await s.scalar(select(func.count()).select_from(Checkin)) or 0)
        rows = await s.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        for status, count in rows.all():
            if status in ("pending", "sent", "failed"):
                setattr(result, status, int(count))
        if per_chat:
            chats = await s.execute(
                select(OutboxMessage.chat_id, func.count())
                .where(OutboxMessage.status == "sent")
                .group_by(OutboxMessage.chat_id)
            )
            result.rows_per_chat = {int(chat): int(count) for chat, count in chats.all()}
    return result


async def watch_until_done(
    rt: Runtime, traffic: Traffic, process: BotProcess, checkins: int, deadline: float
) -> tuple[Tally, str | None]:
    """Poll the database until every check-in is open and the outbox is empty (or time is up)."""
    began = time.monotonic()
    shown = began
    while True:
        now = time.monotonic()
        t = await tally(rt)
        if t.due == 0 and t.checkins >= checkins and t.pending == 0:
            return t, None
        if process.exited:
            return t, f"the bot exited:\n{process.log_tail()}"
        if now > deadline:
            return t, "time is up before the outbox drained"
        if now - shown >= PROGRESS_EVERY:
            shown = now
            print(
                f"    {now - began:5.0f} s: check-ins opened {t.checkins}/{checkins}, "
                f"outbox sent {t.sent} pending {t.pending}; sandbox delivered "
                f"{traffic.received_total}, 429s {sum(traffic.rejected.values())}",
                flush=True,
            )
        await asyncio.sleep(1.0)  # progress polling of a long run, not a measurement


async def open_all(rt: Runtime) -> float:
    """Open every due check-in here, with the bot's own heartbeat code; seconds it took."""
    began = time.perf_counter()
    while (await heartbeat.run_pass(rt)).opened:
        pass
    return time.perf_counter() - began


async def run(checkins: int, backend: str, *, preopen: bool, send_rate: float | None) -> int:
    sandbox = Sandbox()
    await sandbox.start()
    sandbox.faults.rate_limits(per_bot=TELEGRAM_RATE, per_chat=1.0, burst=3.0)
    bot = sandbox.add_bot(DEFAULT_TOKEN, username="rapport_bench_bot")
    traffic = watch(sandbox)
    traffic.bot_username = bot.username
    users = [sandbox.user(first_name="Client") for _ in range(checkins)]
    for user in users:  # each client started the chat long ago, during onboarding
        sandbox.world.conversation(bot, sandbox.world.chats[user.id]).started = True
    print(
        f"fanout: {checkins:,} check-ins due at once on {backend}; sandbox limits 30/s per bot, "
        f"1/s per chat; Rapport's limiter at "
        + (f"{send_rate:g}/s per bot" if send_rate is not None else "its defaults")
        + (", check-ins opened before the bot starts" if preopen else "")
        + f"; load average {os.getloadavg()[0]:.2f}"
    )
    try:
        async with database(backend) as url:
            rt = make_runtime(url, ManualClock(START))
            try:
                await populate(
                    rt, checkins, now=START, due=checkins, chat_ids=[u.id for u in users]
                )
                if preopen:
                    took = await open_all(rt)
                    print(f"  opened {checkins:,} check-ins in {took:.1f} s before the bot started")
                limits = {} if send_rate is None else {"send_rate": send_rate}
                env = bot_environment(url, sandbox.api_url, clock=timelapse_clock(), **limits)
                process = BotProcess.rapport(env)
                began = time.perf_counter()
                await process.start()
                try:
                    # Two messages per check-in at 30/s, with half as much again to spare.
                    budget = checkins * 2 / TELEGRAM_RATE * 1.5 + 60
                    final, error = await watch_until_done(
                        rt, traffic, process, checkins, time.monotonic() + budget
                    )
                    cpu = cpu_seconds(process.pid)
                finally:
                    code = await process.stop()
                per_chat = (await tally(rt, per_chat=True)).rows_per_chat
            finally:
                await rt.close()
    finally:
        await sandbox.stop()
    return report(checkins, final, per_chat, traffic, began, cpu, error, code)


def report(
    checkins: int,
    final: Tally,
    per_chat: dict[int, int],
    traffic: Traffic,
    began: float,
    bot_cpu: float,
    error: str | None,
    code: int | None,
) -> int:
    delivered = traffic.received_total
    first, last = traffic.first_received, traffic.last_received
    steady = (delivered - 1) / (last - first) if first and last and last > first else math.nan
    overall = delivered / (last - began) if last else math.nan
    chats = set(per_chat) | set(traffic.received)
    lost = sum(max(0, per_chat.get(c, 0) - len(traffic.received.get(c, []))) for c in chats)
    extra = sum(max(0, len(traffic.received.get(c, [])) - per_chat.get(c, 0)) for c in chats)
    seen_429 = sum(traffic.rejected.values())
    unhandled = final.pending + final.failed
    if error:
        print(f"  FAILED: {error}")
    print(f"  check-ins opened   : {final.checkins}/{checkins}")
    print(
        f"  outbox rows        : sent {final.sent}, pending {final.pending}, failed {final.failed}"
    )
    print(f"  sandbox deliveries : {delivered} (lost {lost}, duplicated {extra})")
    print(
        f"  rate               : {steady:.1f} msg/s first to last delivery "
        f"({steady / TELEGRAM_RATE:.0%} of {TELEGRAM_RATE:.0f}); "
        f"{overall:.1f} msg/s from bot start"
    )
    print(
        f"  429s seen          : {seen_429} ({'all' if not unhandled else 'NOT all'} handled: "
        f"{unhandled} rows unsent at the end)"
    )
    print(f"  bot process CPU    : {bot_cpu:.1f} s; exit code {code}")
    ok = (
        error is None
        and final.checkins == checkins
        and lost == 0
        and extra == 0
        and unhandled == 0
        and steady >= TARGET_SHARE * TELEGRAM_RATE
    )
    figure = f"{steady:.1f} msg/s ({steady / TELEGRAM_RATE:.0%}), lost {lost}, 429s {seen_429}"
    target = f"≥ {TARGET_SHARE * TELEGRAM_RATE:.0f} msg/s, 0 lost, all 429s handled"
    print(summary("fanout", figure, target, ok))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 check-ins")
    parser.add_argument("--checkins", type=int, default=None, help="default 3,000")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--preopen", action="store_true", help="measure the sender alone")
    parser.add_argument("--send-rate", type=float, default=None, help="Rapport's per-bot limit")
    args = parser.parse_args()
    checkins = args.checkins or (1_000 if args.quick else 3_000)
    run_it = run(checkins, args.backend, preopen=args.preopen, send_rate=args.send_rate)
    sys.exit(asyncio.run(run_it))


if __name__ == "__main__":
    main()
