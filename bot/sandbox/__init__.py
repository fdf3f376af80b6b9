"""Local stand-in for Telegram's Bot API, speaking the real wire protocol, for tests and the demo.

`Sandbox` runs the HTTP server and is the control API (bots, users, groups, faults, holds, waits);
`serve_forever` and `python -m bot.sandbox` run it alone. It is a test and demo tool, never a
replacement for Telegram in production.
"""

from bot.sandbox.actions import ActionError
from bot.sandbox.control import Sandbox, SandboxChannel, SandboxGroup, SandboxUser
from bot.sandbox.faults import DISCONNECT, Faults
from bot.sandbox.holds import Hold
from bot.sandbox.journal import ApiCall, SandboxStats
from bot.sandbox.keyboards import buttons_of, callback_data_of
from bot.sandbox.standalone import main, serve_forever
from bot.sandbox.world import DEFAULT_TOKEN, SandboxBot

__all__ = [
    "DEFAULT_TOKEN",
    "DISCONNECT",
    "ActionError",
    "ApiCall",
    "Faults",
    "Hold",
    "Sandbox",
    "SandboxBot",
    "SandboxChannel",
    "SandboxGroup",
    "SandboxStats",
    "SandboxUser",
    "buttons_of",
    "callback_data_of",
    "main",
    "serve_forever",
]
