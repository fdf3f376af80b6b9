"""The bot in the test process (the e2e `World`) with the request observer installed, and a
drain that moves the manual clock over retry back-offs, for faults that need no crash."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import ManualClock
from bot.config import load_settings
from bot.runtime import Runtime
from bot.sandbox import DEFAULT_TOKEN, Sandbox
from bot.service import BotService
from storage.crypto import Cipher
from storage.models import OutboxMessage
from tests.e2e.harness import BOT_USERNAME, World
from tests.faults.traffic import GUARD, Traffic


async def start_world(db_url: str, clock: ManualClock, key: str) -> tuple[World, Traffic]:
    """Like `World.start`, with a `Traffic` observer on the sandbox."""
    sandbox = Sandbox(clock=clock)
    traffic = Traffic(sandbox)
    await sandbox.start()
    sandbox.add_bot(DEFAULT_TOKEN, username=BOT_USERNAME, first_name="Rapport")
    conf = load_settings(
        database_url=db_url,
        telegram_token=DEFAULT_TOKEN,
        telegram_api_url=sandbox.api_url,
        encryption_key=key,
        send_rate=0,
        chat_send_rate=0,
    )
    rt = Runtime.create(conf, clock=clock, cipher=Cipher(key))
    service = BotService(rt, heartbeat_interval=3600)  # passes are run by the tests
    await service.start()
    return World(sandbox, rt, service, clock), traffic


async def until_idle(world: World, timeout: float = GUARD) -> None:
    """Until every update queued for the bot has been fetched and handled to the end, the
    replies sent after the commit included. The sandbox forgets updates once the bot's next
    getUpdates confirms them, which PTB sends only after queueing the batch it got; PTB marks a
    queued update done only when its handler has returned."""
    bot = world.sandbox.default_bot
    await world.sandbox.wait_until(
        lambda: bot.pending_update_count == 0, timeout, what="every update fetched"
    )
    await asyncio.wait_for(world.service.app.update_queue.join(), timeout)


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
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with world.rt.sessions() as s:
            if await check(s):
                return
        if loop.time() > deadline:
            raise TimeoutError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(0.02)
