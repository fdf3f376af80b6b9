"""Attacks on the merged writes of PostgreSQL: the update's mark with its client's locked row
(`people.mark_and_find_client`) and the client's columns with the last message's INSERT
(`outbox.queue_message(along=...)`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from storage import due, outbox, people
from storage.db import create_engine, session_factory
from storage.models import Client, OutboxMessage
from tests.storage.builders import make_client

_WAITING = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def _until_waiting(sessions) -> None:
    for _ in range(500):
        async with sessions() as watch:
            if await watch.scalar(_WAITING):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the second statement did not wait for the first")


async def _bound(sessions, cipher, clock, user_id: int) -> tuple[int, int]:
    therapist_id, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        client = await s.get(Client, client_id)
        assert client is not None
        client.telegram_user_id, client.chat_id, client.status = user_id, user_id, "active"
    return therapist_id, client_id


@pytest.mark.postgres
async def test_the_next_update_of_a_client_sees_the_state_the_one_before_committed(
    postgres_url: str, cipher, clock
) -> None:
    """Two updates of one client at once: the second waits on the first's lock, then reads the
    conversation state the first wrote (in its message's INSERT), not the one it would have
    read when its statement began."""
    engine = create_engine(postgres_url)
    sessions = session_factory(engine)
    try:
        _, client_id = await _bound(sessions, cipher, clock, 5151)
        async with sessions() as first, first.begin():
            fresh, client = await people.mark_and_find_client(first, 701, clock.now(), 5151)
            assert fresh and client is not None and client.client.conversation is None

            async def second() -> tuple[bool, Any]:
                async with sessions() as s, s.begin():
                    fresh, found = await people.mark_and_find_client(s, 702, clock.now(), 5151)
                    return fresh, None if found is None else found.client.conversation

            waiting = asyncio.create_task(second())
            await _until_waiting(sessions)
            asked = {"conversation": {"machine": "asked", "step": 2}}
            await outbox.queue_message(
                first, cipher, claim_by="w1", along=[due.client_write(client_id, asked)],
                chat_id=5151, client_id=client_id, kind="text",
                payload={"text": "next"}, now=clock.now(),
            )  # fmt: skip
        assert await waiting == (True, {"machine": "asked", "step": 2})
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_redelivery_racing_a_rolled_back_first_is_handled_once(
    postgres_url: str, cipher, clock
) -> None:
    """The first delivery's transaction dies after its mark: the redelivery, which waited on
    the mark, is then new and finds the client."""
    engine = create_engine(postgres_url)
    sessions = session_factory(engine)
    try:
        _, client_id = await _bound(sessions, cipher, clock, 5252)

        async def again() -> tuple[bool, int | None]:
            async with sessions() as s, s.begin():
                fresh, found = await people.mark_and_find_client(s, 801, clock.now(), 5252)
                return fresh, None if found is None else found.client.id

        with pytest.raises(RuntimeError):
            async with sessions() as first, first.begin():
                assert (await people.mark_and_find_client(first, 801, clock.now(), 5252))[0]
                redelivered = asyncio.create_task(again())
                await _until_waiting(sessions)
                raise RuntimeError("crash")
        assert await redelivered == (True, client_id)
    finally:
        await engine.dispose()


async def test_a_client_column_named_like_a_message_column_keeps_the_clients_value(
    sessions, cipher, clock
) -> None:
    """Every client column the conversation writes that shares a name with an outbox column
    (status, chat_id, therapist_id, created_at), written along with a message whose own values
    differ: the client gets its values, the message its own."""
    therapist_id, client_id = await _bound(sessions, cipher, clock, 5353)
    later = clock.now() + timedelta(days=3)
    along = {"status": "paused", "chat_id": 6060, "created_at": later, "language": "de"}
    async with sessions() as s, s.begin():
        row_id, _ = await outbox.queue_message(
            s, cipher, claim_by="w1", along=[due.client_write(client_id, along)],
            chat_id=7070, client_id=client_id, therapist_id=therapist_id, kind="text",
            payload={"text": "x"}, now=clock.now(),
        )  # fmt: skip
    async with sessions() as s:
        client = await s.get(Client, client_id)
        message = await s.get(OutboxMessage, row_id)
        assert client is not None and message is not None
        assert (client.status, client.chat_id, client.language) == ("paused", 6060, "de")
        assert client.created_at == later
        assert (message.status, message.chat_id, message.created_at) == (
            "pending",
            7070,
            clock.now(),
        )
