"""The answer path's storage, on every backend: which message still shows a check-in's buttons
(a typed answer takes them away), and an answer stored once, with the check-in's first answer
time, in one statement."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from storage import checkins, outbox
from storage.models import Answer, Checkin
from tests.storage.builders import make_client

CHAT = 4242


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


async def live(sessions, cipher, client_id: int) -> tuple[int, int] | None:
    async with sessions() as s:
        return await outbox.live_buttons(s, cipher, client_id, "c:")


async def test_the_newest_question_still_showing_its_buttons(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    assert await live(sessions, cipher, client_id) is None  # nothing sent yet
    await sent(sessions, cipher, clock, client_id, "text", question("c:1:0:7"), 10)
    assert await live(sessions, cipher, client_id) == (CHAT, 10)
    # A reply in between (a hint) shows no buttons: the question above still does.
    await sent(sessions, cipher, clock, client_id, "text", {"text": "Tap a number"}, 11)
    assert await live(sessions, cipher, client_id) == (CHAT, 10)
    # Tapped: the same message becomes the next question, in place.
    edit = {"message_id": 10, **question("c:1:1:7")}
    await sent(sessions, cipher, clock, client_id, "edit", edit, 10)
    assert await live(sessions, cipher, client_id) == (CHAT, 10)
    # Typed: its buttons are taken away, and the next question is a new message.
    await sent(sessions, cipher, clock, client_id, "markup", {"message_id": 10}, 10)
    assert await live(sessions, cipher, client_id) is None
    await sent(sessions, cipher, clock, client_id, "text", question("c:1:2:7"), 12)
    assert await live(sessions, cipher, client_id) == (CHAT, 12)
    # An acknowledgement without buttons ends it too; other buttons (a dialog's) do not count.
    await sent(sessions, cipher, clock, client_id, "edit", {"message_id": 12, "text": "✓"}, 12)
    await sent(sessions, cipher, clock, client_id, "text", question("d:del:y"), 13)
    assert await live(sessions, cipher, client_id) is None


async def test_pending_and_other_clients_rows_are_not_shown(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    _, other_id = await make_client(sessions, cipher, clock)
    await sent(sessions, cipher, clock, other_id, "text", question("c:9:0:7"), 20)
    async with sessions() as s, s.begin():  # queued, not sent yet: no message to change
        await outbox.queue_message(
            s, cipher, chat_id=CHAT, kind="text", payload=question("c:1:0:7"), now=clock.now(),
            client_id=client_id,
        )  # fmt: skip
    assert await live(sessions, cipher, client_id) is None
    assert await live(sessions, cipher, other_id) == (CHAT, 20)


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
