"""Handler: the CPU Rapport spends on one client text inside its update handler (duplicate check,
client load, flow, outbox row, commit), with no HTTP around it, on SQLite through SQLAlchemy's
stock aiosqlite adapter and through Rapport's one-trip adapter, in the same run (and on
PostgreSQL for reference when RAPPORT_BENCH_POSTGRES_URL or RAPPORT_TEST_POSTGRES_URL is set).

Run: .venv/bin/python bench/handler_bench.py [--quick] [--updates N] [--rounds N]

The variants take turns, a round each, on their own database with the same clients; texts go
through `bot.dispatch.handle` 32 at a time, one at a time per user, as the Application
runs them. Reported per update: the process's CPU (event loop and aiosqlite's thread) and the
event loop thread's alone, median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram import Bot, Update

from app.runtime import Runtime
from bench.common import backends, database, make_runtime, summary
from bench.pipeline_bench import prepare_clients
from bot import dispatch
from bot.runtime import TelegramSide
from devtools.sandbox import DEFAULT_TOKEN, Sandbox, SandboxUser
from storage import aiosqlite_cursor

CONCURRENCY = 32
USERS = 100
WARM_UP = 200


@dataclass
class Variant:
    label: str
    rt: Runtime
    cpu: list[float] = field(default_factory=list)  # per update, each round
    loop_cpu: list[float] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"  {self.label:<32} {statistics.median(self.cpu) * 1e3:.2f} ms CPU per update, "
            f"{statistics.median(self.loop_cpu) * 1e3:.2f} ms of it on the event loop "
            f"(rounds {min(self.cpu) * 1e3:.2f}–{max(self.cpu) * 1e3:.2f} ms)"
        )


def texts(users: list[SandboxUser], first_id: int, count: int) -> list[Update]:
    bot = Bot(DEFAULT_TOKEN)
    updates = []
    for n in range(count):
        user = users[n % len(users)]
        person = {"id": user.id, "is_bot": False, "first_name": "U", "language_code": "en"}
        data = {
            "update_id": first_id + n,
            "message": {
                "message_id": first_id + n,
                "date": 1_772_445_600,
                "chat": {"id": user.id, "type": "private", "first_name": "U"},
                "from": person,
                "text": f"a short note from a client, number {n}",
            },
        }
        updates.append(Update.de_json(data, bot))
    return updates


async def handle_all(rt: Runtime, updates: list[Update]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)
    locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
    side = TelegramSide.create(rt)

    async def one(update: Update) -> None:
        assert update.effective_user is not None
        async with gate, locks[update.effective_user.id]:
            await dispatch.handle(side, update)

    await asyncio.gather(*(one(u) for u in updates))


@contextlib.asynccontextmanager
async def runtime(backend: str, users: list[SandboxUser], stock: bool) -> AsyncIterator[Runtime]:
    async with database(backend) as url:
        await prepare_clients(url, "http://127.0.0.1:9/bot", users)
        # The stock adapter is what the engine falls back to without aiosqlite's thread hook.
        with (
            mock.patch.object(aiosqlite_cursor, "available", lambda: False)
            if stock
            else (contextlib.nullcontext())
        ):
            rt = make_runtime(url)
        try:
            yield rt
        finally:
            await rt.close()


async def run(count: int, rounds: int) -> int:
    sandbox = Sandbox()  # only to mint users as the pipeline benchmark does
    users = [sandbox.user(first_name=f"U{n}") for n in range(USERS)]
    kinds: list[tuple[str, str, bool]] = [
        ("sqlite, stock aiosqlite adapter", "sqlite", True),
        ("sqlite, one-trip adapter", "sqlite", False),
    ]
    if "postgres" in backends():
        kinds.append(("postgres (asyncpg)", "postgres", False))
    print(
        f"handler: {count} client texts per round, {rounds} rounds in turns, "
        f"{CONCURRENCY} at a time"
    )
    async with contextlib.AsyncExitStack() as stack:
        variants = []
        for label, backend, stock in kinds:
            rt = await stack.enter_async_context(runtime(backend, users, stock))
            variants.append(Variant(label, rt))
        next_id = 1
        for variant in variants:
            await handle_all(variant.rt, texts(users, next_id, WARM_UP))
        next_id += WARM_UP
        for _ in range(rounds):
            updates = texts(users, next_id, count)
            next_id += count
            for variant in variants:
                cpu, loop_cpu = time.process_time(), time.thread_time()
                await handle_all(variant.rt, updates)
                variant.cpu.append((time.process_time() - cpu) / count)
                variant.loop_cpu.append((time.thread_time() - loop_cpu) / count)
    for variant in variants:
        print(variant.describe())
    stock_cpu, one_trip_cpu = (statistics.median(v.cpu) for v in variants[:2])
    figure = (
        f"one-trip {one_trip_cpu * 1e3:.2f} ms vs stock {stock_cpu * 1e3:.2f} ms CPU per update "
        f"({one_trip_cpu / stock_cpu:.2f}×)"
    )
    if len(variants) > 2:
        figure += f"; postgres {statistics.median(variants[2].cpu) * 1e3:.2f} ms"
    print(summary("handler", figure, "one-trip below stock", one_trip_cpu < stock_cpu))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts per round")
    parser.add_argument("--updates", type=int, default=None, help="texts per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    count = args.updates or (1_000 if args.quick else 3_000)
    sys.exit(asyncio.run(run(count, args.rounds)))


if __name__ == "__main__":
    main()
