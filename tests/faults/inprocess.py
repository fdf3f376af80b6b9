"""The bot in the test process (the e2e `World`) with the request observer installed, and a
drain that moves the manual clock over retry back-offs, for faults that need no crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import ManualClock
from devtools.sandbox import Sandbox
from storage.models import OutboxMessage
from tests.conftest import TEST_KEY
from tests.e2e.harness import World
from tests.faults.traffic import GUARD, Traffic


async def start_world(db_url: str, clock: ManualClock, key: str) -> tuple[World, Traffic]:
    """Like `World.start`, with a `Traffic` observer on the sandbox."""
    sandbox = Sandbox(clock=clock)
    traffic = Traffic(sandbox)
    return await World.start(db_url, clock, key, sandbox=sandbox), traffic


@asynccontextmanager
async def running_world(db_url: str, clock: ManualClock) -> AsyncIterator[tuple[World, Traffic]]:
    """`start_world` with the test key, stopped on the way out (the fixtures' body)."""
    world, traffic = await start_world(db_url, clock, TEST_KEY)
    try:
        yield world, traffic
    finally:
        await world.stop()


async def until_idle(world: World, timeout: float = GUARD) -> None:
    """Until every update queued for the bot has been handled to the end, the replies sent
    after the commit included. The sandbox forgets updates once the bot's getUpdates offset
    confirms them, which the intake sends only once they settled."""
    bot = world.sandbox.default_bot
    await world.sandbox.wait_until(
        lambda: bot.pending_update_count == 0, timeout, what="every update confirmed"
    )
    await asyncio.wait_for(world.service.intake.idle(), timeout)
    await asyncio.wait_for(world.service.direct.idle(), timeout)


async def settle(world: World, timeout: float = GUARD) -> None:
    """Until nothing is pending in the outbox. When the head of every chat's queue waits for its
    retry time, the manual clock jumps there: back-off is simulated time, so tests need not wait
    for it (later messages of a chat wait behind its head whatever their own time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with world.rt.sessions() as s:
            rows = (
                await s.execute(
                    select(
                        OutboxMessage.chat_id, OutboxMessage.not_before, OutboxMessage.claimed_at
                    )
                    .where(OutboxMessage.status == "pending")
                    .order_by(OutboxMessage.id)
                )
            ).all()
        if not rows:
            return
        heads: dict[int, tuple[datetime, datetime | None]] = {}
        for chat_id, not_before, claimed_at in rows:
            heads.setdefault(chat_id, (not_before, claimed_at))
        now = world.clock.now()
        if all(claimed is None and not_before > now for not_before, claimed in heads.values()):
            world.clock.set(min(not_before for not_before, _ in heads.values()))
        if loop.time() > deadline:
            raise TimeoutError(f"the outbox did not settle: {len(rows)} rows pending")
        world.rt.wake_sender()
        await asyncio.sleep(0.02)


async def until_db(
    world: World,
    check: Callable[[AsyncSession], Awaitable[bool]],
    *,
    timeout: float = GUARD,
    what: str = "database condition",
) -> None:
    """Re-check `check` until it holds (the bot writes the database from its own tasks)."""
    await poll_db(world.rt.sessions, check, timeout=timeout, what=what)


async def poll_db(
    sessions: async_sessionmaker[AsyncSession],
    check: Callable[[AsyncSession], Awaitable[bool]],
    *,
    timeout: float,
    what: str,
    context: Callable[[], str] = str,
) -> None:
    """Re-check `check` in a fresh session until it holds; on timeout, say what did not, with
    `context()` (e.g. the bot processes' logs) appended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with sessions() as s:
            if await check(s):
                return
        if loop.time() > deadline:
            raise TimeoutError(f"{what} did not hold within {timeout} s\n{context()}".rstrip())
        await asyncio.sleep(0.02)
