"""`rapport run`: the bot until interrupted."""

from __future__ import annotations

import asyncio
import logging
import signal

from app.config import ConfigError, Settings
from app.logs import setup_logging
from app.runtime import Runtime
from bot.service import BotService
from flows.parsing import is_number
from storage.db import upgrade_async

log = logging.getLogger(__name__)


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not is_number(port):
        raise ConfigError(f"--listen: expected HOST:PORT, got {listen!r}")
    return host or "0.0.0.0", int(port)


async def run_bot(
    settings: Settings,
    *,
    webhook_url: str | None = None,
    listen: str = "0.0.0.0:8443",
    polling: bool = True,
) -> None:
    setup_logging(settings.log_level, settings.log_format)
    settings.token()  # fail fast, with one line, before anything starts
    settings.cipher()
    address = parse_listen(listen)
    if webhook_url and not webhook_url.startswith("https://") and "127.0.0.1" not in webhook_url:
        raise ConfigError("--webhook-url: Telegram only delivers to https:// URLs")
    await upgrade_async(settings.database_url)
    rt = Runtime.create(settings)
    try:
        service = BotService(rt)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # The keys are checked first: a key set that cannot read this database, or one that a
        # running bot cannot read, raises `storage.keyring.KeyRefused` before anything is written.
        await service.start(webhook_url=webhook_url, listen=address, polling=polling)
        mode = (
            "webhook" if webhook_url else "long polling" if polling else "heartbeat and outbox only"
        )
        log.info("bot running (%s)", mode)
        await stop.wait()
        log.info("stopping")
        await service.stop()
    finally:
        await rt.close()
