"""Local stand-in for Telegram's Bot API, speaking the real wire protocol, for tests and the demo.

`Sandbox` runs the HTTP server and is the control API (bots, users, groups, faults, holds, waits);
`serve_forever` and `python -m devtools.sandbox` run it alone. It is a test and demo tool, never a
replacement for Telegram in production.
"""

from devtools.sandbox.actions import ActionError
from devtools.sandbox.control import Sandbox, SandboxChannel, SandboxGroup, SandboxUser
from devtools.sandbox.faults import DISCONNECT, Faults
from devtools.sandbox.holds import Hold
from devtools.sandbox.journal import ApiCall, SandboxStats
from devtools.sandbox.keyboards import buttons_of, callback_data_of
from devtools.sandbox.standalone import main, serve_forever
from devtools.sandbox.world import DEFAULT_TOKEN, SandboxBot

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
