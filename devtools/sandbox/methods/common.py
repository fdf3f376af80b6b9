"""What every Bot API method needs: the calling bot, chat resolution and Telegram's checks."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from devtools.sandbox.errors import BLOCKED, CHAT_NOT_FOUND, bad_request, forbidden
from devtools.sandbox.formatting import EntityParseError, Formatted, format_text
from devtools.sandbox.keyboards import ReplyMarkup, parse_reply_markup
from devtools.sandbox.params import Params
from devtools.sandbox.wire import Chat
from devtools.sandbox.world import Conversation, SandboxBot, World

MAX_TEXT = 4096
MAX_CAPTION = 1024


@dataclass
class MethodContext:
    world: World
    bot: SandboxBot


@dataclass
class Described:
    """A successful result that Telegram sends with a `description` (setWebhook and friends)."""

    result: Any
    description: str


Handler = Callable[[MethodContext, Params], Awaitable[Any]]


def find_chat(ctx: MethodContext, chat_id: int | str) -> Chat:
    """A chat this bot can address; `@username` works for public groups and channels only."""
    if isinstance(chat_id, str):
        name = chat_id[1:].lower()
        for chat in ctx.world.chats.values():
            if chat.type != "private" and (chat.username or "").lower() == name:
                return chat
        raise bad_request(CHAT_NOT_FOUND)
    found = ctx.world.chats.get(chat_id)
    if found is None:
        raise bad_request(CHAT_NOT_FOUND)
    return found


def known_conversation(ctx: MethodContext, chat_id: int | str) -> Conversation:
    """The bot's conversation with a chat it has met (for edits, deletes, getChat)."""
    return _met(ctx, find_chat(ctx, chat_id))


def _met(ctx: MethodContext, chat: Chat) -> Conversation:
    conversation = ctx.bot.conversations.get(chat.id)
    if conversation is None:
        raise bad_request(CHAT_NOT_FOUND)
    return conversation


def writable_conversation(ctx: MethodContext, chat_id: int | str) -> Conversation:
    """The conversation the bot may post to now, or Telegram's refusal."""
    chat = find_chat(ctx, chat_id)
    if chat.type == "private":
        conversation = ctx.bot.conversations.get(chat.id)
        if conversation is None or not conversation.started:
            if ctx.world.shares_group(ctx.bot, chat.id):
                raise forbidden("bot can't initiate conversation with a user")
            raise bad_request(CHAT_NOT_FOUND)
        if chat.id in ctx.world.deactivated:
            raise forbidden("user is deactivated")
        if conversation.blocked:
            raise forbidden(BLOCKED)
        return conversation
    conversation = _met(ctx, chat)
    if conversation.bot_removed:
        kind = "channel chat" if chat.type == "channel" else "group chat"
        raise forbidden(f"bot was kicked from the {kind}")
    return conversation


def formatted(
    p: Params, text: str, *, mode_field: str = "parse_mode", entities_field: str = "entities"
) -> Formatted:
    """Apply parse_mode/entities like Telegram, refusing malformed markup with its reasons."""
    entities = p.nested(entities_field, "can't parse entities JSON object")
    if entities is not None:
        entities = _checked_entities(entities)
    try:
        return format_text(text, p.string(mode_field), entities)
    except EntityParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from exc


def _checked_entities(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise bad_request("can't parse entities JSON object")
    checked: list[dict[str, Any]] = []
    for entity in raw:
        if not (
            isinstance(entity, dict)
            and isinstance(entity.get("type"), str)
            and isinstance(entity.get("offset"), int)
            and not isinstance(entity.get("offset"), bool)
            and isinstance(entity.get("length"), int)
            and not isinstance(entity.get("length"), bool)
            and entity["offset"] >= 0
            and entity["length"] >= 0
        ):
            raise bad_request('can\'t parse MessageEntity: Field "type" must be of type String')
        checked.append(entity)
    return checked


def reply_markup(p: Params) -> ReplyMarkup:
    raw = p.nested("reply_markup", "can't parse reply keyboard markup JSON object")
    if raw is None:
        return ReplyMarkup()
    return parse_reply_markup(raw)


def replied_message(p: Params, conversation: Conversation) -> dict[str, Any] | None:
    """The message being replied to (reply_parameters or the older reply_to_message_id)."""
    params = p.nested("reply_parameters", "can't parse reply parameters JSON object")
    allow_missing = p.boolean("allow_sending_without_reply")
    message_id: int | None
    if params is not None:
        if not isinstance(params, dict):
            raise bad_request("can't parse reply parameters JSON object")
        raw_id = params.get("message_id")
        if not isinstance(raw_id, int) or isinstance(raw_id, bool):
            raise bad_request('Field "message_id" must be of type Integer')
        message_id = raw_id
        allow_missing = bool(params.get("allow_sending_without_reply", allow_missing))
    else:
        message_id = p.integer("reply_to_message_id")
    if message_id is None or message_id == 0:
        return None
    message = conversation.get(message_id)
    if message is None:
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")
    return message


def message_id_param(p: Params) -> int:
    message_id = p.integer("message_id")
    if message_id is None:
        if p.has("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        raise bad_request("message identifier is not specified")
    return message_id


def sent_by_bot(conversation: Conversation, message: dict[str, Any]) -> bool:
    return message["message_id"] in conversation.bot_message_ids


def snapshot(message: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(message)
