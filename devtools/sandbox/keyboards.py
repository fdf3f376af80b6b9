"""`reply_markup` as Telegram validates it: inline keyboards are echoed in the message, others not.

Only an inline keyboard becomes part of the Message JSON; reply keyboards, `remove_keyboard` and
`force_reply` change what the user's client shows and are kept per chat for tests to inspect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devtools.sandbox.errors import ApiError, bad_request

MAX_CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100

_INLINE_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)  # fmt: skip
_URL_SCHEMES = ("http://", "https://", "tg://", "ton://")


@dataclass(frozen=True)
class ReplyMarkup:
    """A validated markup: `inline` is echoed in messages; `keyboard` is the custom keyboard."""

    inline: dict[str, Any] | None = None
    keyboard: dict[str, Any] | None = None


def _button_error(reason: str) -> ApiError:
    return bad_request(f"can't parse inline keyboard button: {reason}")


def parse_reply_markup(raw: Any) -> ReplyMarkup:
    """Validate a decoded `reply_markup` object and normalise it as Telegram echoes it."""
    if not isinstance(raw, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        return ReplyMarkup(inline={"inline_keyboard": _inline_rows(raw["inline_keyboard"])})
    if "keyboard" in raw:
        return ReplyMarkup(keyboard=_reply_keyboard(raw))
    if raw.get("remove_keyboard") is True:
        return ReplyMarkup(keyboard={"remove_keyboard": True})
    if raw.get("force_reply") is True:
        return ReplyMarkup(keyboard={"force_reply": True})
    raise bad_request('can\'t find field "inline_keyboard"')


def _inline_rows(rows: Any) -> list[list[dict[str, Any]]]:
    if not isinstance(rows, list):
        raise bad_request('Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    result: list[list[dict[str, Any]]] = []
    count = 0
    for row in rows:
        if not isinstance(row, list):
            raise bad_request(
                'Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        result.append([_inline_button(button) for button in row])
        count += len(row)
    if count > MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    return [row for row in result if row]


def _inline_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict):
        raise _button_error("InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str):
        raise _button_error('Field "text" must be of type String')
    if not text.strip():
        raise bad_request("BUTTON_TEXT_EMPTY")
    actions = [name for name in _INLINE_ACTIONS if name in button]
    if not actions:
        raise _button_error("Text buttons are unallowed in the inline keyboard")
    action = actions[0]
    value = button[action]
    if action == "callback_data":
        if not isinstance(value, str):
            raise _button_error('Field "callback_data" must be of type String')
        size = len(value.encode("utf-8"))
        if size == 0 or size > MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    elif action == "url":
        if not isinstance(value, str):
            raise _button_error('Field "url" must be of type String')
        if not value.startswith(_URL_SCHEMES) or len(value) <= len("http://"):
            raise bad_request(f"inline keyboard button URL '{value}' is invalid: Wrong HTTP URL")
    return {"text": text, action: value}


def _reply_keyboard(raw: dict[str, Any]) -> dict[str, Any]:
    rows = raw["keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('Field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
    normalised: list[list[dict[str, Any]]] = []
    for row in rows:
        buttons: list[dict[str, Any]] = []
        for button in row:
            if isinstance(button, str):
                buttons.append({"text": button})
            elif isinstance(button, dict) and isinstance(button.get("text"), str):
                buttons.append(dict(button))
            else:
                raise bad_request("can't parse keyboard button: KeyboardButton must be a String "
                                  "or an Object")  # fmt: skip
        normalised.append(buttons)
    keyboard = dict(raw)
    keyboard["keyboard"] = normalised
    return keyboard


def callback_data_of(message: dict[str, Any]) -> list[str]:
    """All callback_data values on a message's inline keyboard, in reading order."""
    markup = message.get("reply_markup") or {}
    return [
        button["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for button in row
        if "callback_data" in button
    ]


def buttons_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """All inline buttons of a message, flattened in reading order."""
    markup = message.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]
