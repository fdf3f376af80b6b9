"""Rows the storage tests start from."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import ManualClock
from storage import people
from storage.crypto import Cipher


async def make_client(
    sessions: async_sessionmaker[AsyncSession], cipher: Cipher, clock: ManualClock
) -> tuple[int, int]:
    """A therapist and one client of theirs: (therapist id, client id)."""
    async with sessions() as s, s.begin():
        therapist = await people.add_therapist(
            s, cipher, name="Dana Lee", timezone="UTC", now=clock.now()
        )
        client = await people.add_client(
            s, cipher, therapist_id=therapist.id, name="Ana Maria Perez", now=clock.now()
        )
        return therapist.id, client.id
