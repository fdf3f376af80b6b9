"""The writes that ride in a message's INSERT (`storage.along`) under attack, on every backend:
columns of the same kind with different values (times, chats, ids) must each land where they
belong, time zones other than UTC, an item answered already, and a client row as an update finds
it (`people.mark_and_find_client`)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from storage import checkins, due, outbox, people
from storage.models import Answer, Checkin, Client, OutboxMessage
from tests.storage.builders import make_client

BERLIN = ZoneInfo("Europe/Berlin")


async def _opened(sessions, cipher, clock) -> tuple[int, int]:
    _, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        checkin = await checkins.open_checkin(
            s, client_id=client_id, instrument="b", now=clock.now()
        )
        return client_id, checkin.id


async def test_riding_writes_keep_their_own_times_and_ids(sessions, cipher, clock) -> None:
    """Message created_at, answer answered_at (given in Berlin time), first_answer_at and the
    client's next_checkin_at are four different times: none takes another's."""
    client_id, checkin_id = await _opened(sessions, cipher, clock)
    created = clock.now() + timedelta(minutes=10)
    answered = (clock.now() + timedelta(minutes=3)).astimezone(BERLIN)
    next_at = clock.now() + timedelta(days=7, hours=5)
    state = {"machine": "checkin", "step": 1}
    async with sessions() as s, s.begin():
        answer = checkins.NewAnswer(checkin_id, "heard", 9, answered)
        writes = checkins.answer_writes(cipher, answer)
        writes.append(
            due.client_write(client_id, {"conversation": state, "next_checkin_at": next_at})
        )
        await outbox.queue_message(
            s, cipher, along=writes, chat_id=777, kind="text",
            payload={"text": "next"}, now=created, client_id=client_id,
        )  # fmt: skip
    async with sessions() as s:
        row = (await s.execute(select(Answer.checkin_id, Answer.item, Answer.value,
                                      Answer.answered_at))).one()  # fmt: skip
        assert tuple(row) == (checkin_id, "heard", 9, answered)
        checkin = await s.get(Checkin, checkin_id)
        assert checkin is not None and checkin.first_answer_at == answered
        client = await s.get(Client, client_id)
        assert client is not None
        assert (client.conversation, client.next_checkin_at) == (state, next_at)
        message = (await s.scalars(select(OutboxMessage))).one()
        assert (message.chat_id, message.created_at, message.client_id) == (
            777,
            created,
            client_id,
        )


async def test_an_item_answered_already_keeps_value_and_first_time(sessions, cipher, clock) -> None:
    """A second answer to the same item riding later: the first value, time and first answer
    time stay."""
    client_id, checkin_id = await _opened(sessions, cipher, clock)
    first = clock.now() + timedelta(minutes=1)
    async with sessions() as s, s.begin():
        await checkins.store_answer(s, cipher, checkins.NewAnswer(checkin_id, "heard", 3, first))
    later = first + timedelta(minutes=5)
    async with sessions() as s, s.begin():
        writes = checkins.answer_writes(cipher, checkins.NewAnswer(checkin_id, "heard", 8, later))
        await outbox.queue_message(
            s, cipher, along=writes, chat_id=1, kind="text", payload={"text": "x"},
            now=later, client_id=client_id,
        )  # fmt: skip
    async with sessions() as s:
        rows = (await s.execute(select(Answer.value, Answer.answered_at))).all()
        assert [tuple(r) for r in rows] == [(3, first)]
        checkin = await s.get(Checkin, checkin_id)
        assert checkin is not None and checkin.first_answer_at == first


async def test_a_huge_unicode_comment_rides_intact(sessions, cipher, clock) -> None:
    """A long comment with emoji, RTL text and NULs-free control characters is stored as given."""
    client_id, checkin_id = await _opened(sessions, cipher, clock)
    text = ("Ça va 😀 שלום \u202e\t" * 300)[:3900]
    at = clock.now() + timedelta(minutes=2)
    async with sessions() as s, s.begin():
        writes = checkins.answer_writes(
            cipher, checkins.NewAnswer(checkin_id, "comment", None, at, text)
        )
        await outbox.queue_message(
            s, cipher, along=writes, chat_id=1, kind="text", payload={"text": "thanks"},
            now=at, client_id=client_id,
        )  # fmt: skip
    async with sessions() as s:
        stored = await s.scalar(select(Answer.text_enc))
        assert stored is not None and cipher.decrypt(stored) == text


async def test_the_found_client_row_has_every_column_of_the_client(sessions, cipher, clock) -> None:
    """The row an update finds carries the client's columns with the ORM's values and types."""
    _, client_id = await make_client(sessions, cipher, clock)
    when = clock.now().astimezone(BERLIN)
    async with sessions() as s, s.begin():
        client = await s.get(Client, client_id)
        assert client is not None
        client.telegram_user_id, client.chat_id = 9191, 9191
        client.conversation = {"version": 1, "nested": {"a": [1, 2]}}
        client.paused_until, client.timezone, client.language = when, "Europe/Berlin", "es"
    async with sessions() as s, s.begin():
        fresh, found = await people.mark_and_find_client(s, 4040, clock.now(), 9191)
        assert fresh and found is not None
        orm = await s.get(Client, client_id)
        assert orm is not None
        for column in Client.__table__.columns:
            assert getattr(found.client, column.name) == getattr(orm, column.name), column.name
