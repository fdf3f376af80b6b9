"""What every part of the running bot shares: settings, clock, database, cipher, and wake-ups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.clock import Clock, SystemClock
from app.config import Settings
from app.quarantine import Quarantine
from bot.flood import InboundThrottle, Recently
from bot.ratelimit import SendLimiter
from storage.crypto import Cipher
from storage.db import create_engine, session_factory

if TYPE_CHECKING:
    from bot.direct import DirectReplies


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
    # Learnt from Telegram when the bot starts; None before (invite links are then refused).
    bot_username: str | None = None
    sender_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once an urgent message is committed: the sender sends it even while busy with others.
    urgent_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by `wake_sender`: the sender looks in the outbox at its next pass.
    outbox_scan: bool = True
    # The sender of this process while it runs; handlers claim their replies for it.
    handoff: Handoff | None = None
    # Heartbeat items that failed on their own (broken rows), retried later with backoff.
    quarantine: Quarantine = field(default_factory=Quarantine)
    # Floods stopped at the door, per sender, before they reach the database.
    door: InboundThrottle = field(default_factory=InboundThrottle)
    # Strangers told recently that the bot is for invited people: not told again for a while.
    strangers_told: Recently = field(default_factory=Recently)
    # Telegram's sending limits, shared by the outbox sender and replies sent directly.
    limiter: SendLimiter = field(init=False)
    # The queue of replies sent directly (strangers, groups, refusals), while the bot runs.
    direct: DirectReplies | None = None

    def __post_init__(self) -> None:
        self.limiter = SendLimiter(self.settings.send_rate, self.settings.chat_send_rate)

    @classmethod
    def create(
        cls, settings: Settings, clock: Clock | None = None, cipher: Cipher | None = None
    ) -> Runtime:
        engine = create_engine(settings.database_url)
        clock = clock or settings.make_clock()
        real = isinstance(clock, SystemClock)  # see `bot.flood` for why simulated time is open
        return cls(
            door=InboundThrottle() if real else InboundThrottle.open(),
            strangers_told=Recently() if real else Recently(window=0.0),
            settings=settings,
            clock=clock,
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

    def invite_link(self, token: str) -> str:
        """A link for the running bot (which learnt its username on start)."""
        if self.bot_username is None:
            raise RuntimeError("the bot's username is not known before it starts")
        return f"https://t.me/{self.bot_username}?start={token}"

    async def close(self) -> None:
        await self.engine.dispose()
