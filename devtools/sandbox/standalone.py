"""Running the sandbox on its own: `python -m devtools.sandbox --port 8081` (or `rapport sandbox`).

Point a bot at it with `RAPPORT_TELEGRAM_API_URL=<printed api url>` and the printed token, then
act as its users through the JSON control API under `/sandbox/` (see `http_control`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

import typer

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


PROG = "python -m devtools.sandbox"
command = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@command.command(help="A local stand-in for Telegram's Bot API, for tests and demos.")
def serve(
    host: str = "127.0.0.1",
    port: int = 8081,
    tokens: Annotated[
        list[str] | None,
        typer.Option(
            "--token", help="register this bot token (repeatable); default: the sandbox demo token"
        ),
    ] = None,
    username: str = "rapport_demo_bot",
    clock: Annotated[
        str | None,
        typer.Option(help="'system' or 'timelapse:<ISO start>x<speed>' for dates"),
    ] = None,
) -> None:
    try:
        chosen = parse_clock(clock)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--clock") from exc
    serving = serve_forever(
        host, port, tokens=tokens or (DEFAULT_TOKEN,), username=username, clock=chosen
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_until_terminated(serving))


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (`argv`, default the process's own): serve, then exit (SystemExit)."""
    command(args=None if argv is None else list(argv), prog_name=PROG)


async def _until_terminated(serving: Coroutine[Any, Any, None]) -> None:
    """Serve until done or SIGTERM (a service manager's stop, `kill`): then close, exit 0."""
    task = asyncio.ensure_future(serving)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
