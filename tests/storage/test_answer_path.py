"""The answer path's storage, on every backend: which message still shows a check-in's buttons
(a typed answer takes them away), and an answer stored once, with the check-in's first answer
time, in one statement."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine.interfaces import CacheStats

from flows.statuses import CheckinStatus
from storage import checkins, due, outbox
from storage.models import Answer, Checkin, Client, OutboxMessage
from tests.storage.builders import make_client

CHAT = 4242
CACHE_HIT = CacheStats.CACHE_HIT


def question(data: str) -> dict[str, Any]:
    return {"text": "How was it?", "buttons": [[{"label": "7", "data": data}]]}


async def sent(sessions, cipher, clock, client_id: int, kind: str, payload, tg_id: int) -> int:
    """A row as the sender leaves it once Telegram took it (`tg_id`: the message it made or
    changed)."""
    async with sessions() as s, s.begin():
        row_id, _ = await outbox.queue_message(
            s,
            cipher,
            chat_id=CHAT,
            kind=kind,
            payload=payload,
            now=clock.now(),
            client_id=client_id,
        )
        await outbox.mark_sent(s, [(row_id, tg_id)], clock.now())
    return row_id


async def live(sessions, cipher, client_id: int) -> list[tuple[int | None, bool]]:
    """(Telegram message id, sent) of each of the client's messages showing check-in buttons,
    or to show them once on their way, newest first."""
    async with sessions() as s:
        shown = await outbox.recent_messages(s, cipher, client_id, "c:")
    return [(m.message_id, m.sent) for m in shown if m.data]


async def test_the_questions_still_showing_their_buttons(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    assert await live(sessions, cipher, client_id) == []  # nothing sent yet
    await sent(sessions, cipher, clock, client_id, "text", question("c:1:0:7"), 10)
    assert await live(sessions, cipher, client_id) == [(10, True)]
    # A reply in between (a hint) shows no buttons: the question above still does.
    await sent(sessions, cipher, clock, client_id, "text", {"text": "Tap a number"}, 11)
    assert await live(sessions, cipher, client_id) == [(10, True)]
    # Tapped: the same message becomes the next question, in place.
    edit = {"message_id": 10, **question("c:1:1:7")}
    await sent(sessions, cipher, clock, client_id, "edit", edit, 10)
    assert await live(sessions, cipher, client_id) == [(10, True)]
    # Asked again below (a reminder): both copies show buttons.
    await sent(sessions, cipher, clock, client_id, "text", question("c:1:1:7"), 12)
    assert await live(sessions, cipher, client_id) == [(12, True), (10, True)]
    # Typed: their buttons are taken away, and the next question is a new message.
    await sent(sessions, cipher, clock, client_id, "markup", {"message_id": 10}, 10)
    await sent(sessions, cipher, clock, client_id, "markup", {"message_id": 12}, 12)
    assert await live(sessions, cipher, client_id) == []
    await sent(sessions, cipher, clock, client_id, "text", question("c:1:2:7"), 13)
    assert await live(sessions, cipher, client_id) == [(13, True)]
    # An acknowledgement without buttons ends it too; other buttons (a dialog's) do not count.
    await sent(sessions, cipher, clock, client_id, "edit", {"message_id": 13, "text": "✓"}, 13)
    await sent(sessions, cipher, clock, client_id, "text", question("d:del:y"), 14)
    assert await live(sessions, cipher, client_id) == []


async def test_rows_on_their_way_count_and_other_clients_do_not(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    _, other_id = await make_client(sessions, cipher, clock)
    await sent(sessions, cipher, clock, other_id, "text", question("c:9:0:7"), 20)
    await sent(sessions, cipher, clock, client_id, "text", question("c:1:0:7"), 21)
    async with sessions() as s, s.begin():  # an edit on its way: it is message 21's newest row
        await outbox.queue_message(
            s, cipher, chat_id=CHAT, kind="edit", now=clock.now(), client_id=client_id,
            payload={"message_id": 21, **question("c:1:1:7")},
        )  # fmt: skip
    async with sessions() as s:
        (shown,) = await outbox.recent_messages(s, cipher, client_id, "c:")
    assert (shown.message_id, shown.kind, shown.sent, shown.data) == (
        21,
        "edit",
        False,
        ("c:1:1:7",),
    )
    async with sessions() as s, s.begin():  # a new message on its way: no Telegram id yet
        await outbox.queue_message(
            s, cipher, chat_id=CHAT, kind="text", payload=question("c:1:2:7"), now=clock.now(),
            client_id=client_id,
        )  # fmt: skip
    assert await live(sessions, cipher, client_id) == [(None, False), (21, False)]
    assert await live(sessions, cipher, other_id) == [(20, True)]
    # Answered meanwhile: the new message goes out without its buttons, its text unchanged.
    async with sessions() as s, s.begin():
        waiting = (await outbox.recent_messages(s, cipher, client_id, "c:"))[0]
        await outbox.drop_buttons(s, cipher, waiting)
    async with sessions() as s:
        now = (await outbox.recent_messages(s, cipher, client_id, "c:"))[0]
    assert (now.row_id, now.data, now.payload) == (waiting.row_id, (), {"text": "How was it?"})


async def test_a_client_s_sent_rows_outlive_a_day_while_their_checkin_is_open(
    sessions, cipher, clock
) -> None:
    """A question asked days ago may still be answered: its rows say which copies show its
    buttons, so they are kept until the check-in is over; anyone else's go after a day."""
    _, client_id = await make_client(sessions, cipher, clock)
    _, other_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        checkin = await checkins.open_checkin(
            s, client_id=client_id, instrument="b", now=clock.now()
        )
    await sent(sessions, cipher, clock, client_id, "text", question("c:1:0:7"), 10)
    await sent(sessions, cipher, clock, other_id, "text", question("c:2:0:7"), 11)
    clock.advance(timedelta(days=2))
    day_ago = clock.now() - timedelta(days=1)
    async with sessions() as s, s.begin():
        assert await outbox.forget_sent_messages(s, day_ago) == 1  # the other client's
    assert await live(sessions, cipher, client_id) == [(10, True)]
    async with sessions() as s, s.begin():
        await checkins.close(s, [(checkin.id, CheckinStatus.PARTIAL, clock.now())])
        assert await outbox.forget_sent_messages(s, day_ago) == 1
    assert await live(sessions, cipher, client_id) == []


async def test_an_answer_is_stored_once_with_the_first_answer_time(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        checkin = await checkins.open_checkin(
            s, client_id=client_id, instrument="b", now=clock.now()
        )
        checkin_id = checkin.id
    first = clock.now() + timedelta(minutes=1)
    later = first + timedelta(minutes=1)
    async with sessions() as s, s.begin():
        kw: dict[str, Any] = {"checkin_id": checkin_id, "at": first}
        assert await checkins.record_answer(s, cipher, item="heard", value=7, **kw)
        assert not await checkins.record_answer(s, cipher, item="heard", value=2, **kw)
    async with sessions() as s, s.begin():
        kw = {"checkin_id": checkin_id, "at": later, "maybe_first": False}
        assert await checkins.record_answer(s, cipher, item="goals", value=None, **kw)
        assert await checkins.record_answer(s, cipher, item="comment", value=None, text="ok", **kw)
    async with sessions() as s:
        rows = (await s.execute(select(Answer.item, Answer.value).order_by(Answer.id))).all()
        assert [tuple(r) for r in rows] == [("heard", 7), ("goals", None), ("comment", None)]
        text_enc = await s.scalar(select(Answer.text_enc).where(Answer.item == "comment"))
        assert text_enc is not None and cipher.decrypt(text_enc) == "ok"
        assert await s.scalar(select(Checkin.first_answer_at)) == first  # the first one's time


async def test_an_answer_rides_with_a_message_and_the_first_one_is_kept(
    sessions, cipher, clock
) -> None:
    """`checkins.answer_writes` along with a message and the client's state
    (`outbox.queue_message`): one statement on PostgreSQL, the same rows on both backends. None
    of the three writes takes another's values (they share column names: a message's and a
    client's chat, an answer's and a check-in's time); a repeated item keeps the first answer
    and the first answer time; a rollback keeps none of them. The statements are compiled once:
    a statement SQLAlchemy cannot cache costs more to compile than to run."""
    _, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        opened = await checkins.open_checkin(
            s, client_id=client_id, instrument="b", now=clock.now()
        )
        checkin_id = opened.id
    first, later = clock.now() + timedelta(minutes=1), clock.now() + timedelta(minutes=2)

    async def along(at, item, value, text=None, state=None, chat=CHAT):
        """Queue a message with an answer (and the client's state): the statements it took,
        and whether each was compiled already."""
        counted: list[tuple[str, bool]] = []

        def count(*args: Any) -> None:
            statement, context = args[2], args[4]
            counted.append((statement.split(None, 1)[0].upper(), context.cache_hit is CACHE_HIT))

        async with sessions() as s, s.begin():
            sync = s.get_bind()
            event.listen(sync, "before_cursor_execute", count)
            try:
                answer = checkins.NewAnswer(checkin_id, item, value, at, text)
                writes = checkins.answer_writes(cipher, answer)
                writes.append(due.client_write(client_id, {"conversation": state}))
                await outbox.queue_message(
                    s, cipher, along=writes, chat_id=chat, kind="text",
                    payload={"text": item}, now=at, client_id=client_id,
                )  # fmt: skip
            finally:
                event.remove(sync, "before_cursor_execute", count)
        return counted

    counted = await along(first, "heard", 7, state={"machine": "asked", "step": 1})
    postgres = sessions.kw["bind"].dialect.name == "postgresql"
    made = ["WITH"] if postgres else ["INSERT", "INSERT", "UPDATE", "UPDATE"]
    assert [word for word, _ in counted] == made
    again = await along(later, "heard", 2, state={"machine": "asked", "step": 2})  # the same item
    assert again == [(word, True) for word in made]
    again = await along(later, "comment", None, text="the last session felt rushed")
    assert again == [(word, True) for word in made]
    with pytest.raises(RuntimeError):
        async with sessions() as s, s.begin():
            answer = checkins.NewAnswer(checkin_id, "goals", 3, later)
            await outbox.queue_message(
                s, cipher, along=checkins.answer_writes(cipher, answer), chat_id=99,
                kind="text", payload={"text": "lost"}, now=later, client_id=client_id,
            )  # fmt: skip
            raise RuntimeError("crash before the commit")
    async with sessions() as s:
        rows = await s.execute(select(Answer.item, Answer.value, Answer.answered_at))
        assert sorted(tuple(r) for r in rows) == [("comment", None, later), ("heard", 7, first)]
        comment = await s.scalar(select(Answer.text_enc).where(Answer.item == "comment"))
        assert comment is not None and b"rushed" not in comment
        assert cipher.decrypt(comment) == "the last session felt rushed"
        checkin = await s.get(Checkin, checkin_id)
        assert checkin is not None
        assert (checkin.first_answer_at, checkin.status) == (first, CheckinStatus.OPEN)
        client = await s.get(Client, client_id)
        assert client is not None and client.conversation is None  # the last write's state
        chats = await s.scalars(select(OutboxMessage.chat_id).order_by(OutboxMessage.id))
        assert list(chats) == [CHAT, CHAT, CHAT]
