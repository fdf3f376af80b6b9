"""`rapport web`: the console alone, for deployments whose bot polls (`rapport run`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn

from app import console
from app.config import ConfigError, Settings
from app.console_alerts import ConsoleAlerts
from app.logs import setup_logging
from app.runtime import Runtime
from flows.parsing import is_number
from web.app import console_app


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not is_number(port) or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen: expected HOST:PORT, got {listen!r}")
    return host or "127.0.0.1", int(port)


class _Server(uvicorn.Server):
    """uvicorn that ends on SIGINT or SIGTERM with exit code 0, like `rapport run`: it stops
    serving, answers the requests underway and returns (uvicorn's own handling raises the
    signal again once it has stopped)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _stop(self) -> None:
        self.force_exit = self.should_exit  # a second Ctrl-C: do not wait for the requests
        self.should_exit = True


def console_server(rt: Runtime, host: str, port: int) -> uvicorn.Server:
    """uvicorn serving the console alone, logging nothing about requests (paths name client
    codes)."""
    config = uvicorn.Config(
        console_app(rt, alerts=ConsoleAlerts()),
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return _Server(config)


async def serve_console(settings: Settings, listen: str) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's own handling). The keys are checked first, as
    for any command that writes: a key set that cannot read this database stops here."""
    setup_logging(settings.log_level, settings.log_format)
    host, port = parse_listen(listen)
    rt = await console.open_runtime(settings)
    try:
        await console_server(rt, host, port).serve()
    finally:
        await rt.close()
