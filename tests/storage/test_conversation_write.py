"""A loaded client's conversation is written by the executor's own UPDATE, not by the ORM's
unit of work (`Executor._set`): what is stored must still be exactly what the transaction left,
whichever way the last write came, and nothing of a transaction that rolled back."""

from __future__ import annotations

from typing import Any, cast

import pytest

from app.effects import Executor
from app.runtime import Runtime
from storage import people
from storage.models import Client
from tests.storage.builders import make_client


async def stored(sessions: Any, client_id: int) -> Any:
    async with sessions() as s:
        return (await loaded(s, client_id)).conversation


async def executor(s: Any, clock: Any) -> Executor:
    # Only the client's columns are written here: no messages, no check-ins, no runtime needed.
    return Executor(s, cast(Runtime, None), await people.get_practice(s, clock.now()), clock.now())


async def loaded(s: Any, client_id: int) -> Client:
    client = await s.get(Client, client_id)
    assert client is not None
    return client


async def set_and_flush(s: Any, clock: Any, client: Client, state: Any) -> None:
    ex = await executor(s, clock)
    ex._set(client, "conversation", state)
    await ex.flush()


async def test_the_conversation_is_stored_without_the_orm_seeing_a_change(
    sessions: Any, cipher: Any, clock: Any
) -> None:
    _therapist_id, client_id = await make_client(sessions, cipher, clock)
    state = {"machine": "checkin", "checkin": {"id": 5, "answers": {"q1": 7}}}
    async with sessions() as s, s.begin():
        client = await loaded(s, client_id)
        ex = await executor(s, clock)
        ex._set(client, "conversation", state)
        assert client.conversation == state  # the transaction reads what it set
        assert ex._state(client) == state
        assert client not in s.dirty  # no unit-of-work flush for it
        await ex.flush()
    assert await stored(sessions, client_id) == state


async def test_an_orm_write_after_the_executors_flush_is_the_one_that_stays(
    sessions: Any, cipher: Any, clock: Any
) -> None:
    """As when a client erases their data or declines consent: the executor flushes, then the
    conversation is cleared the ORM's way (`Executor._leave`)."""
    _therapist_id, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        client = await loaded(s, client_id)
        await set_and_flush(s, clock, client, {"machine": "idle"})
        client.conversation = None
    assert await stored(sessions, client_id) is None


async def test_the_executor_overrides_an_earlier_orm_write_and_a_rollback_keeps_neither(
    sessions: Any, cipher: Any, clock: Any
) -> None:
    _therapist_id, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        client = await loaded(s, client_id)
        client.conversation = {"machine": "onboarding"}  # as redeeming an invite does
        await set_and_flush(s, clock, client, {"machine": "idle"})
    assert await stored(sessions, client_id) == {"machine": "idle"}
    with pytest.raises(RuntimeError):
        async with sessions() as s, s.begin():
            await set_and_flush(s, clock, await loaded(s, client_id), {"machine": "checkin"})
            raise RuntimeError("the transaction fails after the write")
    assert await stored(sessions, client_id) == {"machine": "idle"}
