"""What people on Telegram do to a bot: write, edit, tap buttons, block it, add it to groups.

Each action stores what the person's client would show and queues the update Telegram would send
the bot. In groups a bot in privacy mode (Telegram's default) only gets commands, replies to its
own messages, mentions of it and service messages.
"""

from __future__ import annotations

import copy
import re
import secrets
from typing import Any

from devtools.sandbox.wire import (
    Chat,
    Person,
    callback_query_json,
    chat_member_updated_json,
    detect_entities,
    message_json,
    text_content,
)
from devtools.sandbox.world import CallbackRecord, Conversation, SandboxBot, World

_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,64}(?:@(?P<bot>[A-Za-z0-9_]{3,32}))?(?:\s|$)")


class ActionError(ValueError):
    """Something a real Telegram client would not let a person do."""


def text_message(text: str) -> dict[str, Any]:
    """Content of a plain text message as a client sends it (commands, links marked)."""
    return text_content(text, detect_entities(text))


def _addressed_to(bot: SandboxBot, conversation: Conversation, message: dict[str, Any]) -> bool:
    """Whether a group message reaches a bot in privacy mode."""
    text = message.get("text") or message.get("caption") or ""
    command = _COMMAND.match(text)
    if command:
        target = command.group("bot")
        return target is None or target.lower() == bot.username.lower()
    if f"@{bot.username}".lower() in text.lower():
        return True
    replied = message.get("reply_to_message")
    return bool(replied and replied["message_id"] in conversation.bot_message_ids)


def _deliver(
    world: World, bot: SandboxBot, conversation: Conversation, kind: str, message: dict[str, Any]
) -> bool:
    chat = conversation.chat
    if chat.type == "group" and bot.privacy_mode and not _addressed_to(bot, conversation, message):
        world.notify()
        return False
    world.enqueue(bot, kind, message)
    return True


def post(
    world: World,
    bot: SandboxBot,
    conversation: Conversation,
    sender: Person | None,
    content: dict[str, Any],
    reply_to_message_id: int | None = None,
) -> dict[str, Any]:
    """A person (or, with `sender` None, a channel) posts a message; returns its JSON."""
    chat = conversation.chat
    if chat.type == "private":
        if conversation.blocked:
            raise ActionError("this user has blocked the bot: unblock() first")
        if chat.id in world.deactivated:
            raise ActionError("this account is deactivated")
        conversation.started = True
    if conversation.bot_removed:
        raise ActionError("the bot is no longer in this chat")
    reply_to = None
    if reply_to_message_id is not None:
        reply_to = conversation.get(reply_to_message_id)
        if reply_to is None:
            raise ActionError(f"no message {reply_to_message_id} to reply to in this chat")
    message = message_json(
        message_id=conversation.allocate_id(),
        date=world.now(),
        chat=chat,
        sender=sender,
        content=content,
        reply_to=reply_to,
    )
    conversation.add(message, from_bot=False)
    kind = "channel_post" if chat.type == "channel" else "message"
    _deliver(world, bot, conversation, kind, message)
    return copy.deepcopy(message)


def edit(
    world: World,
    bot: SandboxBot,
    conversation: Conversation,
    sender: Person | None,
    message_id: int,
    new_text: str,
) -> dict[str, Any]:
    """A person edits the text of their own message: the bot gets edited_message."""
    message = conversation.get(message_id)
    if message is None:
        raise ActionError(f"no message {message_id} in this chat")
    author = message.get("from", {}).get("id")
    if (sender is None and author is not None) or (sender is not None and author != sender.id):
        raise ActionError("people can only edit their own messages")
    if "text" not in message:
        raise ActionError("only text messages can be edited here")
    message.pop("entities", None)
    message.update(text_message(new_text))
    message["edit_date"] = world.now()
    kind = "edited_channel_post" if conversation.chat.type == "channel" else "edited_message"
    _deliver(world, bot, conversation, kind, message)
    return copy.deepcopy(message)


def tap(
    world: World,
    bot: SandboxBot,
    conversation: Conversation,
    sender: Person,
    message_id: int,
    data: str,
) -> dict[str, Any]:
    """A person taps an inline button of a bot message: the bot gets a callback_query."""
    message = conversation.get(message_id)
    if message is None:
        raise ActionError(f"no message {message_id} in this chat (deleted?)")
    if message_id not in conversation.bot_message_ids:
        raise ActionError("only the bot's own messages carry its buttons")
    query_id = str(secrets.randbits(63))
    world.callbacks[query_id] = CallbackRecord(
        query_id, bot.id, sender.id, conversation.chat.id, message_id, data
    )
    query = callback_query_json(
        query_id=query_id,
        sender=sender,
        message=copy.deepcopy(message),
        chat_instance=conversation.chat_instance,
        data=data,
    )
    world.enqueue(bot, "callback_query", query)
    return query


def set_blocked(world: World, bot: SandboxBot, person: Person, blocked: bool) -> bool:
    """Block or unblock the bot; the bot gets my_chat_member. False if nothing changed."""
    conversation = world.conversation(bot, world.chats[person.id])
    if conversation.blocked == blocked:
        return False
    conversation.blocked = blocked
    if not blocked:
        conversation.started = True
    old, new = ("member", "kicked") if blocked else ("kicked", "member")
    _bot_status_changed(world, bot, conversation.chat, person, old, new)
    return True


def _bot_status_changed(
    world: World, bot: SandboxBot, chat: Chat, actor: Person, old: str, new: str
) -> None:
    """The bot learns that `actor` changed its status in `chat` (a my_chat_member update)."""
    update = chat_member_updated_json(
        chat=chat, actor=actor, bot=bot.person, old_status=old, new_status=new, date=world.now()
    )
    world.enqueue(bot, "my_chat_member", update)


def add_to_group(world: World, bot: SandboxBot, chat: Chat, actor: Person) -> Conversation:
    """`actor` adds the bot to a group: my_chat_member plus the new_chat_members service message."""
    conversation = world.conversation(bot, chat)
    conversation.started = True
    conversation.bot_removed = False
    _bot_status_changed(world, bot, chat, actor, "left", "member")
    service = message_json(
        message_id=conversation.allocate_id(),
        date=world.now(),
        chat=chat,
        sender=actor,
        content={"new_chat_participant": bot.person.json(),
                 "new_chat_member": bot.person.json(),
                 "new_chat_members": [bot.person.json()]},
    )  # fmt: skip
    conversation.add(service, from_bot=False)
    world.enqueue(bot, "message", service)
    return conversation


def remove_from_group(world: World, bot: SandboxBot, chat: Chat, actor: Person) -> None:
    """`actor` removes the bot from a group; later sends there are refused."""
    conversation = world.conversation(bot, chat)
    if conversation.bot_removed:
        return
    conversation.bot_removed = True
    _bot_status_changed(world, bot, chat, actor, "member", "left")


def add_to_channel(world: World, bot: SandboxBot, chat: Chat) -> Conversation:
    """The bot is an administrator of a channel and gets its posts."""
    conversation = world.conversation(bot, chat)
    conversation.started = True
    return conversation
