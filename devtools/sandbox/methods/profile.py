"""The bot's identity and settings: getMe, commands, name and descriptions, getChat, logOut."""

from __future__ import annotations

import re
from typing import Any

from devtools.sandbox.errors import bad_request
from devtools.sandbox.methods.common import MethodContext, known_conversation
from devtools.sandbox.params import Params
from devtools.sandbox.world import scope_key

_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_MAX_COMMANDS = 100
_SCOPES = frozenset(
    {"default", "all_private_chats", "all_group_chats", "all_chat_administrators", "chat",
     "chat_administrators", "chat_member"}
)  # fmt: skip
_TEXT_LIMITS = {"name": 64, "description": 512, "short_description": 120}


async def get_me(ctx: MethodContext, p: Params) -> dict[str, Any]:
    return ctx.bot.me_json()


async def log_out(ctx: MethodContext, p: Params) -> bool:
    return True


def _scope_and_language(p: Params) -> tuple[dict[str, Any] | None, str]:
    scope = p.nested("scope", "can't parse BotCommandScope JSON object")
    kind = scope.get("type") if isinstance(scope, dict) else None
    if scope is not None and (not isinstance(kind, str) or kind not in _SCOPES):
        raise bad_request("can't parse BotCommandScope JSON object")
    language = p.string("language_code") or ""
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise bad_request("invalid language code specified")
    return scope, language


async def set_my_commands(ctx: MethodContext, p: Params) -> bool:
    commands = p.nested("commands", "can't parse commands JSON object")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > _MAX_COMMANDS:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    checked: list[dict[str, str]] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand: BotCommand must be an Object")
        command, description = item.get("command"), item.get("description")
        if not isinstance(command, str) or not _COMMAND.match(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        checked.append({"command": command, "description": description})
    scope, language = _scope_and_language(p)
    ctx.bot.commands[(scope_key(scope), language)] = checked
    return True


async def get_my_commands(ctx: MethodContext, p: Params) -> list[dict[str, str]]:
    scope, language = _scope_and_language(p)
    return ctx.bot.commands_for(scope, language)


async def delete_my_commands(ctx: MethodContext, p: Params) -> bool:
    scope, language = _scope_and_language(p)
    ctx.bot.commands.pop((scope_key(scope), language), None)
    return True


def _set_text(ctx: MethodContext, p: Params, field: str) -> bool:
    value = p.string(field) or ""
    if len(value) > _TEXT_LIMITS[field]:
        raise bad_request(f"{field.upper()}_INVALID")
    _, language = _scope_and_language(p)
    if value:
        ctx.bot.texts[(field, language)] = value
    else:
        ctx.bot.texts.pop((field, language), None)
    return True


def _get_text(ctx: MethodContext, p: Params, field: str) -> dict[str, str]:
    _, language = _scope_and_language(p)
    value = ctx.bot.texts.get((field, language), ctx.bot.texts.get((field, ""), ""))
    if field == "name" and not value:
        value = ctx.bot.first_name
    return {field: value}


async def set_my_name(ctx: MethodContext, p: Params) -> bool:
    return _set_text(ctx, p, "name")


async def get_my_name(ctx: MethodContext, p: Params) -> dict[str, str]:
    return _get_text(ctx, p, "name")


async def set_my_description(ctx: MethodContext, p: Params) -> bool:
    return _set_text(ctx, p, "description")


async def get_my_description(ctx: MethodContext, p: Params) -> dict[str, str]:
    return _get_text(ctx, p, "description")


async def set_my_short_description(ctx: MethodContext, p: Params) -> bool:
    return _set_text(ctx, p, "short_description")


async def get_my_short_description(ctx: MethodContext, p: Params) -> dict[str, str]:
    return _get_text(ctx, p, "short_description")


async def get_chat(ctx: MethodContext, p: Params) -> dict[str, Any]:
    conversation = known_conversation(ctx, p.chat_id())
    return conversation.chat.full_info_json()


async def set_chat_menu_button(ctx: MethodContext, p: Params) -> bool:
    button = p.nested("menu_button", "can't parse menu button JSON object")
    if button is not None and not isinstance(button, dict):
        raise bad_request("can't parse menu button JSON object")
    return True


async def get_chat_menu_button(ctx: MethodContext, p: Params) -> dict[str, str]:
    return {"type": "commands"}
