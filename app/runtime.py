"""What every use case shares: settings, clock, database, cipher, the wake-ups of this process's
outbox sender, and the heartbeat's set-aside items. Nothing here knows Telegram: what only a
running bot holds (the door, send limits, direct replies) is `bot.runtime.TelegramSide`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.clock import Clock
from app.config import Settings
from app.quarantine import Quarantine
from storage.crypto import Cipher
from storage.db import create_engine, open_pool, session_factory

Session: TypeAlias = AsyncSession
"""A unit of work's database session: adapters hand it on to the use cases, never query it."""


def after_commit(s: Session, action: Callable[[], None]) -> None:
    """Run `action` once the unit of work `s` has committed (never if it rolls back)."""
    event.listen(s.sync_session, "after_commit", lambda _session: action(), once=True)


@dataclass(frozen=True)
class OutboxJob:
    """An outbox row an update's transaction committed already claimed for this process's
    sender, with its payload in clear: it can go out without another database round trip."""

    id: int
    chat_id: int
    kind: str
    payload: dict[str, Any]
    follow_up: bool = False  # the same transaction queued more for this chat, behind this one
    priority: int = 1  # 0: urgent, sent before everything else (`outbox.URGENT`)
    then: tuple[OutboxJob, ...] = ()
    """Rows of the same chat and priority that the same transaction queued behind this one,
    claimed with it: sent after it, in order, and only once it went out."""

    def rows(self) -> tuple[OutboxJob, ...]:
        """This row and those behind it, in sending order."""
        return (self, *self.then)


class Handoff(Protocol):
    """The running outbox sender, as update handlers see it."""

    worker: str

    def take(self, jobs: list[OutboxJob]) -> None: ...

    def drop(self, ids: set[int]) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    cipher: Cipher
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    sender_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once an urgent message is committed: the sender sends it even while busy with others.
    urgent_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by `wake_sender`: the sender looks in the outbox at its next pass.
    outbox_scan: bool = True
    # The sender of this process while it runs; handlers claim their replies for it.
    handoff: Handoff | None = None
    # Heartbeat items that failed on their own (broken rows), retried later with backoff.
    quarantine: Quarantine = field(default_factory=Quarantine)
    # Asks Telegram for the bot's username when the database does not know it yet (the CLI
    # sets it when a token is configured; see `app.admin.bot_username`).
    ask_bot_username: Callable[[], Awaitable[str | None]] | None = None

    @classmethod
    def create(
        cls, settings: Settings, clock: Clock | None = None, cipher: Cipher | None = None
    ) -> Runtime:
        engine = create_engine(settings.database_url)
        return cls(
            settings=settings,
            clock=clock or settings.make_clock(),
            cipher=cipher or settings.cipher(),
            engine=engine,
            sessions=session_factory(engine),
        )

    def wake_sender(self) -> None:
        """Something was committed to the outbox: the sender should look for it now."""
        self.outbox_scan = True
        self.sender_wakeup.set()

    def wake_urgent(self) -> None:
        """An urgent message was committed: it goes out now, ahead of what the sender holds."""
        self.urgent_wakeup.set()
        self.wake_sender()

    def hand_over(self, jobs: list[OutboxJob]) -> None:
        """Committed rows claimed for this process's sender: it sends them without looking."""
        if self.handoff is not None:
            self.handoff.take(jobs)
        else:  # stopped meanwhile: the claims lapse after the lease and the rows go out then
            self.wake_sender()

    async def open_pool(self) -> None:
        """Open the database connections the process will use, before the first burst needs them
        (`storage.db.open_pool`)."""
        await open_pool(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()
