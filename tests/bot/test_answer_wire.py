"""What a tap costs on the wire: the tapped message's keyboard is not read back, and the
sender's rows go out as raw Bot API calls read for the message id alone."""

from __future__ import annotations

from bot.intake import without_keyboard
from bot.outbox import keyboard, message_id_of


def test_a_taps_update_is_read_without_the_keyboard_it_came_from() -> None:
    markup = {"inline_keyboard": [[{"text": "7", "callback_data": "c:1:0:7"}]]}
    message = {"message_id": 5, "text": "How was it?", "reply_markup": markup}
    update = {"update_id": 9, "callback_query": {"id": "q", "data": "c:1:0:7", "message": message}}
    read = without_keyboard(update)
    assert read["callback_query"]["message"] == {"message_id": 5, "text": "How was it?"}
    assert read["callback_query"]["data"] == "c:1:0:7"
    assert update["callback_query"]["message"]["reply_markup"] == markup  # the input is kept
    text = {"update_id": 10, "message": {"message_id": 6, "text": "7", "reply_markup": markup}}
    assert without_keyboard(text) is text  # only a tap's message loses it
    assert without_keyboard({"update_id": 11, "callback_query": None}) == {
        "update_id": 11,
        "callback_query": None,
    }


def test_keyboards_and_answers_as_the_bot_api_has_them() -> None:
    assert keyboard(None) is None and keyboard([]) is None
    assert keyboard(
        [[{"label": "Yes", "data": "c:1:5:1"}, {"label": "No", "data": "c:1:5:0"}]]
    ) == {
        "inline_keyboard": [
            [
                {"text": "Yes", "callback_data": "c:1:5:1"},
                {"text": "No", "callback_data": "c:1:5:0"},
            ]
        ]
    }
    assert message_id_of({"message_id": 42, "chat": {"id": 1}}) == 42
    assert message_id_of(True, default=7) == 7  # an edit may answer just `true`
    assert message_id_of({"ok": True}) is None
