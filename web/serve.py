"""`rapport web`: the console alone, for deployments whose bot polls (`rapport run`)."""

from __future__ import annotations

import uvicorn

from app import console
from app.config import ConfigError, Settings
from app.logs import setup_logging
from web.app import console_app


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen: expected HOST:PORT, got {listen!r}")
    return host or "127.0.0.1", int(port)


async def serve_console(settings: Settings, listen: str) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's own handling). The keys are checked first, as
    for any command that writes: a key set that cannot read this database stops here."""
    setup_logging(settings.log_level, settings.log_format)
    host, port = parse_listen(listen)
    rt = await console.open_runtime(settings)
    try:
        config = uvicorn.Config(
            console_app(rt),
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,  # paths name client codes: not for a log
            server_header=False,
        )
        await uvicorn.Server(config).serve()
    finally:
        await rt.close()
