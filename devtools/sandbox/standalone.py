"""Running the sandbox on its own: `python -m devtools.sandbox --port 8081` (or `rapport sandbox`).

Point a bot at it with `RAPPORT_TELEGRAM_API_URL=<printed api url>` and the printed token, then
act as its users through the JSON control API under `/sandbox/` (see `http_control`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from app.clock import Clock, parse_clock
from devtools.sandbox.control import Sandbox
from devtools.sandbox.http_control import add_control_routes
from devtools.sandbox.world import DEFAULT_TOKEN


def _announce(sandbox: Sandbox) -> None:
    print(f"Sandbox Bot API listening: api url {sandbox.api_url}", flush=True)
    print(f"  file url {sandbox.file_url}; control API {sandbox.base_url}/sandbox", flush=True)
    for bot in sandbox.bots:
        if bot.token == DEFAULT_TOKEN:
            print(f"  bot @{bot.username}, sandbox demo token {bot.token}", flush=True)
        else:
            print(f"  bot @{bot.username} (token as given)", flush=True)


async def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    tokens: Sequence[str] = (DEFAULT_TOKEN,),
    username: str = "rapport_demo_bot",
    clock: Clock | None = None,
    on_ready: Callable[[Sandbox], None] = _announce,
) -> None:
    """Serve until cancelled; the first token's bot gets `username`, later ones numbered names."""
    sandbox = Sandbox(clock=clock)
    for index, token in enumerate(tokens):
        sandbox.add_bot(token, username if index == 0 else f"{username}{index + 1}")
    add_control_routes(sandbox.app, sandbox)
    await sandbox.start(host, port)
    try:
        on_ready(sandbox)
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.sandbox",
        description="A local stand-in for Telegram's Bot API, for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        help="register this bot token (repeatable); default: the sandbox demo token",
    )
    parser.add_argument("--username", default="rapport_demo_bot")
    parser.add_argument(
        "--clock", default=None, help="'system' or 'timelapse:<ISO start>x<speed>' for dates"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        clock = parse_clock(args.clock)
    except ValueError as exc:
        raise SystemExit(f"--clock: {exc}") from exc
    serving = serve_forever(
        args.host,
        args.port,
        tokens=args.tokens or (DEFAULT_TOKEN,),
        username=args.username,
        clock=clock,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_until_terminated(serving))


async def _until_terminated(serving: Coroutine[Any, Any, None]) -> None:
    """Serve until done or SIGTERM (a service manager's stop, `kill`): then close, exit 0."""
    task = asyncio.ensure_future(serving)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
