"""The Bot API methods the sandbox implements, by name (matched case-insensitively)."""

from __future__ import annotations

from devtools.sandbox.methods import media, messages, profile, updates
from devtools.sandbox.methods.common import Described, Handler, MethodContext

_HANDLERS: dict[str, Handler] = {
    "getMe": profile.get_me,
    "logOut": profile.log_out,
    "close": profile.log_out,
    "getUpdates": updates.get_updates,
    "setWebhook": updates.set_webhook,
    "deleteWebhook": updates.delete_webhook,
    "getWebhookInfo": updates.get_webhook_info,
    "sendMessage": messages.send_message,
    "editMessageText": messages.edit_message_text,
    "editMessageCaption": messages.edit_message_caption,
    "editMessageReplyMarkup": messages.edit_message_reply_markup,
    "deleteMessage": messages.delete_message,
    "answerCallbackQuery": messages.answer_callback_query,
    "sendChatAction": messages.send_chat_action,
    "sendPhoto": media.send_photo,
    "sendDocument": media.send_document,
    "getFile": media.get_file,
    "setMyCommands": profile.set_my_commands,
    "getMyCommands": profile.get_my_commands,
    "deleteMyCommands": profile.delete_my_commands,
    "setMyName": profile.set_my_name,
    "getMyName": profile.get_my_name,
    "setMyDescription": profile.set_my_description,
    "getMyDescription": profile.get_my_description,
    "setMyShortDescription": profile.set_my_short_description,
    "getMyShortDescription": profile.get_my_short_description,
    "getChat": profile.get_chat,
    "setChatMenuButton": profile.set_chat_menu_button,
    "getChatMenuButton": profile.get_chat_menu_button,
}
_BY_LOWER = {name.lower(): (name, handler) for name, handler in _HANDLERS.items()}

METHOD_NAMES: tuple[str, ...] = tuple(_HANDLERS)


def lookup(method: str) -> tuple[str, Handler] | None:
    """The canonical name and handler for a method name in any letter case."""
    return _BY_LOWER.get(method.lower())


__all__ = ["METHOD_NAMES", "Described", "Handler", "MethodContext", "lookup"]
