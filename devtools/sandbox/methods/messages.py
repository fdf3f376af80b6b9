"""Text messages and what a bot does with them: send, edit, delete, answer button taps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from devtools.sandbox.errors import NOT_MODIFIED, QUERY_TOO_OLD, bad_request
from devtools.sandbox.keyboards import ReplyMarkup
from devtools.sandbox.methods.common import (
    MAX_CAPTION,
    MAX_TEXT,
    MethodContext,
    formatted,
    known_conversation,
    message_id_param,
    replied_message,
    reply_markup,
    sent_by_bot,
    snapshot,
    writable_conversation,
)
from devtools.sandbox.params import Params
from devtools.sandbox.wire import caption_content, message_json, text_content
from devtools.sandbox.world import Conversation

DELETE_WINDOW = timedelta(hours=48)
CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
     "upload_document", "choose_sticker", "find_location", "record_video_note",
     "upload_video_note"}
)  # fmt: skip
MAX_CALLBACK_ANSWER = 200
_MEDIA_KEYS = ("photo", "document", "voice", "sticker", "video", "audio", "animation")


def post_message(
    ctx: MethodContext,
    conversation: Conversation,
    content: dict[str, Any],
    markup: ReplyMarkup,
    reply_to: dict[str, Any] | None,
) -> dict[str, Any]:
    """Store a new bot message in the chat and count it; returns the Message JSON."""
    chat = conversation.chat
    message = message_json(
        message_id=conversation.allocate_id(),
        date=ctx.world.now(),
        chat=chat,
        sender=None if chat.type == "channel" else ctx.bot.person,
        content=content,
        reply_to=reply_to,
        reply_markup=markup.inline,
    )
    conversation.add(message, from_bot=True)
    if markup.keyboard is not None:
        conversation.reply_keyboard = (
            None if "remove_keyboard" in markup.keyboard else markup.keyboard
        )
    ctx.world.stats.messages_per_chat[chat.id] += 1
    return snapshot(message)


async def send_message(ctx: MethodContext, p: Params) -> dict[str, Any]:
    conversation = writable_conversation(ctx, p.chat_id())
    text = p.string("text", required=True, empty_error="message text is empty") or ""
    body = formatted(p, text)
    if not body.text:
        raise bad_request("message text is empty")
    if len(body.text) > MAX_TEXT:
        raise bad_request("message is too long")
    return post_asked(ctx, p, conversation, text_content(body.text, body.entities))


def post_asked(
    ctx: MethodContext, p: Params, conversation: Conversation, content: dict[str, Any]
) -> dict[str, Any]:
    """`post_message` with the reply markup and the message replied to that the call asks for."""
    markup = reply_markup(p)
    return post_message(ctx, conversation, content, markup, replied_message(p, conversation))


def _editable(ctx: MethodContext, p: Params) -> tuple[Conversation, dict[str, Any]]:
    if not p.has("chat_id") and p.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    conversation = known_conversation(ctx, p.chat_id())
    message = conversation.get(message_id_param(p))
    if message is None:
        raise bad_request("message to edit not found")
    if not sent_by_bot(conversation, message):
        raise bad_request("message can't be edited")
    return conversation, message


def _apply_edit(
    ctx: MethodContext, message: dict[str, Any], changes: dict[str, Any], markup: ReplyMarkup
) -> dict[str, Any]:
    """Replace content fields (None removes one); refuse an edit that changes nothing."""
    unchanged = all(message.get(key) == value for key, value in changes.items())
    if unchanged and message.get("reply_markup") == markup.inline:
        raise bad_request(NOT_MODIFIED)
    for key, value in changes.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    if markup.inline is None:
        message.pop("reply_markup", None)
    else:
        message["reply_markup"] = markup.inline
    message["edit_date"] = ctx.world.now()
    return snapshot(message)


async def edit_message_text(ctx: MethodContext, p: Params) -> dict[str, Any]:
    _, message = _editable(ctx, p)
    text = p.string("text", required=True, empty_error="message text is empty") or ""
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    body = formatted(p, text)
    if not body.text:
        raise bad_request("message text is empty")
    if len(body.text) > MAX_TEXT:
        raise bad_request("message is too long")
    changes = {"text": body.text, "entities": body.entities or None}
    return _apply_edit(ctx, message, changes, reply_markup(p))


async def edit_message_caption(ctx: MethodContext, p: Params) -> dict[str, Any]:
    _, message = _editable(ctx, p)
    if not any(key in message for key in _MEDIA_KEYS):
        raise bad_request("there is no caption in the message to edit")
    body = formatted(p, p.string("caption") or "", entities_field="caption_entities")
    if len(body.text) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    content = caption_content(body.text, body.entities)
    changes = {
        "caption": content.get("caption"),
        "caption_entities": content.get("caption_entities"),
    }
    return _apply_edit(ctx, message, changes, reply_markup(p))


async def edit_message_reply_markup(ctx: MethodContext, p: Params) -> dict[str, Any]:
    _, message = _editable(ctx, p)
    return _apply_edit(ctx, message, {}, reply_markup(p))


async def delete_message(ctx: MethodContext, p: Params) -> bool:
    conversation = known_conversation(ctx, p.chat_id())
    message_id = message_id_param(p)
    message = conversation.get(message_id)
    if message is None:
        raise bad_request("message to delete not found")
    own = sent_by_bot(conversation, message)
    if not own and conversation.chat.type != "private":
        raise bad_request("message can't be deleted")
    if ctx.world.now() - message["date"] > DELETE_WINDOW.total_seconds():
        raise bad_request("message can't be deleted")
    conversation.deleted.add(message_id)
    return True


async def answer_callback_query(ctx: MethodContext, p: Params) -> bool:
    query_id = p.string("callback_query_id", required=True) or ""
    record = ctx.world.callbacks.get(query_id)
    if record is None or record.bot_id != ctx.bot.id or record.answered:
        raise bad_request(QUERY_TOO_OLD)
    text = p.string("text") or ""
    if len(text) > MAX_CALLBACK_ANSWER:
        raise bad_request("MESSAGE_TOO_LONG")
    answer: dict[str, Any] = {"text": text, "show_alert": p.boolean("show_alert")}
    if p.has("url"):
        answer["url"] = p.string("url")
    cache_time = p.integer("cache_time")
    if cache_time is not None:
        answer["cache_time"] = cache_time
    record.answer = answer
    return True


async def send_chat_action(ctx: MethodContext, p: Params) -> bool:
    conversation = writable_conversation(ctx, p.chat_id())
    action = p.string("action", required=True, empty_error="action is empty") or ""
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    conversation.last_action = action
    return True
