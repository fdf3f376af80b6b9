"""What every part of the running bot shares: settings, clock, database, cipher, and wake-ups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from storage.crypto import Cipher
from storage.db import create_engine, session_factory


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    cipher: Cipher
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bot_username: str = "rapport_bot"
    sender_wakeup: asyncio.Event = field(default_factory=asyncio.Event)

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
        self.sender_wakeup.set()

    def invite_link(self, token: str) -> str:
        return f"https://t.me/{self.bot_username}?start={token}"

    async def close(self) -> None:
        await self.engine.dispose()
