"""Telegram JSON shapes: User, Chat, Message, MessageEntity, CallbackQuery, ChatMemberUpdated.

Everything the sandbox hands to a bot goes through these builders, so the JSON is exactly what a
client library parses from Telegram: optional fields are omitted rather than null, dates are unix
seconds, entity offsets are UTF-16 code units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from devtools.sandbox.formatting import utf16_len

# Update kinds Telegram sends unless a bot asks for others (these three need explicit opt-in).
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass
class Person:
    """A Telegram account: a human user or a bot."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass
class Chat:
    """A chat: `private` (id = the user's id), `group` (negative id) or `channel` (-100…)."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    user: Person | None = None
    member_ids: set[int] = field(default_factory=set)

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id}
        if self.type == "private" and self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
        else:
            data["title"] = self.title or ""
            if self.username:
                data["username"] = self.username
        data["type"] = self.type
        return data

    def full_info_json(self) -> dict[str, Any]:
        """ChatFullInfo as getChat returns it (with the fields Bot API 9 always sends)."""
        data = self.json()
        data.update(
            {
                "accent_color_id": self.id % 7 if self.id > 0 else 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            }
        )
        return data


def message_json(
    *,
    message_id: int,
    date: int,
    chat: Chat,
    sender: Person | None,
    content: dict[str, Any],
    reply_to: dict[str, Any] | None = None,
    reply_markup: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Message; `sender` None means a channel post, signed by the channel itself."""
    data: dict[str, Any] = {"message_id": message_id}
    if sender is not None:
        data["from"] = sender.json()
    else:
        data["sender_chat"] = chat.json()
    data["chat"] = chat.json()
    data["date"] = date
    if reply_to is not None:
        data["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
    data.update(content)
    if reply_markup is not None:
        data["reply_markup"] = reply_markup
    return data


def text_content(text: str, entities: list[dict[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {"text": text}
    if entities:
        content["entities"] = entities
    return content


def caption_content(caption: str | None, entities: list[dict[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if caption:
        content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
    return content


_AUTO_ENTITY = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/]))"
    r"|(?P<url>\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]'])"
    r"|(?P<email>\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b)"
    r"|(?P<mention>(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}\b)"
    r"|(?P<hashtag>(?<![\w#])#\w*[^\W\d_]\w*)"
)


def detect_entities(text: str) -> list[dict[str, Any]]:
    """The entities a Telegram client sees in a user's plain text: commands, links, mentions."""
    entities: list[dict[str, Any]] = []
    for match in _AUTO_ENTITY.finditer(text):
        kind = match.lastgroup
        if kind is None:
            continue
        entities.append(
            {
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group(0)),
                "type": kind,
            }
        )
    return entities


def callback_query_json(
    *, query_id: str, sender: Person, message: dict[str, Any], chat_instance: str, data: str
) -> dict[str, Any]:
    return {
        "id": query_id,
        "from": sender.json(),
        "message": message,
        "chat_instance": chat_instance,
        "data": data,
    }


def chat_member_updated_json(
    *, chat: Chat, actor: Person, bot: Person, old_status: str, new_status: str, date: int
) -> dict[str, Any]:
    """my_chat_member: the bot's own membership changed (blocked by a user, added to a group)."""

    def member(status: str) -> dict[str, Any]:
        data: dict[str, Any] = {"user": bot.json(), "status": status}
        if status == "kicked":
            data["until_date"] = 0
        return data

    return {
        "chat": chat.json(),
        "from": actor.json(),
        "date": date,
        "old_chat_member": member(old_status),
        "new_chat_member": member(new_status),
    }
