"""The console's rows on each backend: a sign-in link is spent once, even by two at the same
moment; sessions idle out; supervision is replaced, not added to."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import ManualClock
from storage import console
from storage.crypto import Cipher
from tests.storage.builders import make_client

TTL = timedelta(minutes=10)


async def test_a_link_is_spent_once_even_by_two_at_once(
    sessions: async_sessionmaker[AsyncSession], cipher: Cipher, clock: ManualClock
) -> None:
    therapist, _ = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        token = await console.create_link(s, therapist, now=clock.now(), ttl=TTL)

    async def redeem() -> int | None:
        async with sessions() as s, s.begin():
            return await console.redeem_link(s, token, now=clock.now())

    got = await asyncio.gather(redeem(), redeem(), return_exceptions=True)
    assert got.count(therapist) == 1 and got.count(None) == 1, got
    async with sessions() as s, s.begin():
        late = await console.create_link(s, therapist, now=clock.now(), ttl=TTL)
    clock.advance(TTL)
    async with sessions() as s, s.begin():
        assert await console.redeem_link(s, late, now=clock.now()) is None
        assert await console.redeem_link(s, "never-issued" * 3, now=clock.now()) is None


async def test_sessions_idle_out_and_supervision_is_replaced(
    sessions: async_sessionmaker[AsyncSession], cipher: Cipher, clock: ManualClock
) -> None:
    therapist, _ = await make_client(sessions, cipher, clock)
    idle, longest = timedelta(minutes=30), timedelta(hours=12)
    async with sessions() as s, s.begin():
        cookie, csrf = await console.open_session(s, therapist, now=clock.now())
    clock.advance(timedelta(minutes=29))
    async with sessions() as s, s.begin():
        found = await console.live_session(s, cookie, now=clock.now(), idle=idle, longest=longest)
        assert found is not None and found[0].csrf == csrf
    clock.advance(timedelta(minutes=31))
    async with sessions() as s, s.begin():
        gone = await console.live_session(s, cookie, now=clock.now(), idle=idle, longest=longest)
        assert gone is None
    async with sessions() as s, s.begin():
        await console.set_supervised(s, therapist, [])
        assert list(await console.supervised(s, therapist)) == []
