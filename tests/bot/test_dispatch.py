"""What a Telegram update means to `app.conversation` (`bot.dispatch.incoming`): plain data only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from telegram import Bot, Update

from app.conversation import FromPerson, GroupCommand, Membership
from bot.dispatch import incoming
from flows.events import Command, Media, Tap, Text

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
BOT = Bot("7000000001:AAFsandboxDefaultToken_abcdefghij12")
PERSON = {"id": 42, "is_bot": False, "first_name": "Ana", "language_code": "es-MX"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Ana"}
GROUP = {"id": -100, "type": "group", "title": "Team"}


def update(**fields: Any) -> Update:
    parsed = Update.de_json({"update_id": 1, **fields}, BOT)
    assert parsed is not None
    return parsed


def message(chat: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"message_id": 5, "date": 1_772_445_600, "chat": chat, "from": PERSON, **fields}


def membership(chat: dict[str, Any], status: str) -> Update:
    member = {"user": {"id": 1, "is_bot": True, "first_name": "Rapport"}, "status": status}
    if status == "kicked":
        member["until_date"] = 0
    return update(
        my_chat_member={
            "chat": chat,
            "from": PERSON,
            "date": 1_772_445_600,
            "old_chat_member": {**member, "status": "member"},
            "new_chat_member": member,
        }
    )


def test_a_private_message_becomes_an_event_from_a_person() -> None:
    got = incoming(update(message=message(PRIVATE, text="a good week")), NOW)
    assert got == FromPerson(
        user_id=42,
        chat_id=42,
        language="es",
        event=Text(at=NOW, text="a good week"),
        telegram_language="es-MX",
    )
    command = incoming(update(message=message(PRIVATE, text="/start@rapport_bot tok")), NOW)
    assert isinstance(command, FromPerson)
    assert command.event == Command(at=NOW, name="start", args="tok")
    sticker = {"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}
    media = incoming(update(message=message(PRIVATE, sticker={**sticker, "is_animated": False,
                     "is_video": False, "type": "regular"})), NOW)  # fmt: skip
    assert isinstance(media, FromPerson) and media.event == Media(at=NOW, kind="sticker", text="")


def test_a_tap_keeps_its_message() -> None:
    query = {
        "id": "q1",
        "from": PERSON,
        "chat_instance": "1",
        "data": "c:7",
        "message": message(PRIVATE, text="How heard did you feel?"),
    }
    got = incoming(update(callback_query=query), NOW)
    assert isinstance(got, FromPerson)
    assert got.event == Tap(at=NOW, data="c:7", message_id=5)


def test_groups_hear_only_about_commands() -> None:
    assert incoming(update(message=message(GROUP, text="/help")), NOW) == GroupCommand(-100, "es")
    assert incoming(update(message=message(GROUP, text="hello all")), NOW) is None


def test_blocking_the_bot_counts_in_private_chats_only() -> None:
    assert incoming(membership(PRIVATE, "kicked"), NOW) == Membership(user_id=42, blocked=True)
    assert incoming(membership(PRIVATE, "member"), NOW) == Membership(user_id=42, blocked=False)
    assert incoming(membership(GROUP, "left"), NOW) is None


def test_updates_with_no_person_behind_them_mean_nothing() -> None:
    post = {"message_id": 1, "date": 1_772_445_600, "chat": {"id": -5, "type": "channel"}}
    assert incoming(update(channel_post={**post, "text": "news"}), NOW) is None
