"""The stage for crash tests: a sandbox in the test process, a database, a shared clock, and bot
processes started against them, plus waits on the database (another process writes it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbox import LEASE_WALL_SECONDS
from devtools.sandbox import DEFAULT_TOKEN, Sandbox
from storage.crypto import Cipher
from storage.db import create_engine, session_factory
from storage.models import OutboxMessage
from tests.faults.bot_process import BotProcess
from tests.faults.clocks import OutageClock
from tests.faults.inprocess import poll_db
from tests.faults.traffic import GUARD, Traffic

# A Monday, 11:00 in Berlin: outside every quiet hour while the tests run.
STAGE_START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BOT_USERNAME = "rapport_fault_bot"


class Stage:
    def __init__(
        self, db_url: str, key: str, workdir: Path, speed: float, *, webhook_parallel: bool = False
    ) -> None:
        self.db_url = db_url
        self.key = key
        self.cipher = Cipher(key)
        self.workdir = workdir
        self.clock = OutageClock(STAGE_START, speed)
        self.sandbox = Sandbox(clock=self.clock, webhook_parallel=webhook_parallel)
        self.traffic = Traffic(self.sandbox)
        self.engine = create_engine(db_url)
        self.sessions = session_factory(self.engine)
        self.processes: list[BotProcess] = []

    async def open(self) -> None:
        await self.sandbox.start()
        self.sandbox.add_bot(DEFAULT_TOKEN, username=BOT_USERNAME, first_name="Rapport")

    async def close(self) -> None:
        for process in self.processes:
            if process.running:
                await process.kill()
        await self.sandbox.stop()
        await self.engine.dispose()

    def now(self) -> datetime:
        return self.clock.now()

    def bot(
        self,
        name: str = "bot",
        *,
        polling: bool = True,
        webhook: tuple[str, str] | None = None,
    ) -> BotProcess:
        process = BotProcess(
            name,
            database_url=self.db_url,
            sandbox=self.sandbox,
            traffic=self.traffic,
            clock=self.clock,
            key=self.key,
            workdir=self.workdir,
            polling=polling,
            webhook=webhook,
        )
        self.processes.append(process)
        return process

    def outage_past_lease(self) -> None:
        """The bot comes back after the outbox lease of the dead process has run out."""
        self.clock.jump(timedelta(seconds=(LEASE_WALL_SECONDS + 1) * self.clock.speed))

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.log_tail()}" for p in self.processes)

    async def until_db(
        self,
        check: Callable[[AsyncSession], Awaitable[bool]],
        *,
        timeout: float = GUARD,
        what: str = "database condition",
    ) -> None:
        """Re-check `check` until it holds; the bot process writes the database meanwhile."""
        await poll_db(self.sessions, check, timeout=timeout, what=what, context=self.logs)

    async def outbox(self) -> Counter[str]:
        async with self.sessions() as s:
            rows = await s.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            return Counter({status: int(n) for status, n in rows.all()})

    async def until_outbox_settled(self, timeout: float = GUARD) -> None:
        """Nothing pending: every row is sent or failed for good, and marked so."""

        async def settled(s: AsyncSession) -> bool:
            pending = await s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending")
            )
            return pending == 0

        await self.until_db(settled, timeout=timeout, what="an empty outbox")
