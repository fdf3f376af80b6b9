"""How a tapped check-in answer is delivered (`app.effects.Executor`): the acknowledgement edit
and what follows it become one edit, unless that would not fit in one message, the tapped message
is not the chat's newest, or the tap was not a check-in answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from app.effects import MESSAGE_LIMIT, Executor, _Message
from flows.events import Tap
from storage.models import Client

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CLIENT = cast(Client, type("C", (), {"id": 3, "chat_id": 77})())


def executor_after_ack(text: str, *, newest: bool = True) -> Executor:
    """An executor that has queued the acknowledgement edit of a tap on message 9 (the chat's
    newest message unless `newest` is False)."""
    ex = Executor.__new__(Executor)
    ex._messages = [_Message(77, "edit", {"message_id": 9, "text": text, "buttons": []}, 3)]
    ex._merge_into = 9 if newest else None
    return ex


def merged(ex: Executor, data: str, text: str, buttons: list[Any]) -> bool:
    return ex._onto_edit(CLIENT, Tap(at=AT, data=data, message_id=9), text, buttons, True)


def test_the_next_question_goes_into_the_acknowledgement_edit() -> None:
    ex = executor_after_ack("1/6. Heard?\n\n✓ 7")
    buttons = [[{"label": "0", "data": "c:5:1:0"}]]
    assert merged(ex, "c:5:0:7", "2/6. Goals?", buttons)
    (message,) = ex._messages
    assert message.kind == "edit" and message.payload == {
        "message_id": 9,
        "text": "1/6. Heard?\n\n✓ 7\n\n2/6. Goals?",
        "buttons": buttons,
        "or_send": True,  # sent as a new message should the edit be impossible
    }
    # Once the edit carries buttons, what follows is a message of its own.
    assert not merged(ex, "c:5:0:7", "A note", [])


def test_no_merge_beyond_one_message_or_for_other_buttons() -> None:
    ack = "1/6. Heard?\n\n✓ 7"
    room = MESSAGE_LIMIT - len(ack) - 2
    assert merged(executor_after_ack(ack), "c:5:0:7", "x" * room, [])
    # An emoji is two units of Telegram's count: one too many.
    assert not merged(executor_after_ack(ack), "c:5:0:7", "x" * (room - 1) + "🙂", [])
    assert not merged(executor_after_ack(ack), "d:pause:y", "Paused.", [])  # a dialog's tap
    # Something came below the tapped question: the next one goes below it all.
    assert not merged(executor_after_ack(ack, newest=False), "c:5:0:7", "2/6.", [])
    ex = executor_after_ack(ack)
    assert not ex._onto_edit(CLIENT, Tap(at=AT, data="c:5:0:7", message_id=8), "2/6.", [], True)
