"""The running bot: the intake (long polling or webhook, `bot.intake`), the heartbeat on PTB's
JobQueue and the outbox sender, started and stopped together. PTB's Application gives the Bot
and the JobQueue; it receives nothing itself (its Updater confirms updates before they are
handled)."""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import logging

from telegram.ext import Application, ApplicationBuilder, ContextTypes

from app import admin, health, heartbeat, instances
from app.console_alerts import ConsoleAlerts
from app.runtime import Runtime
from bot.direct import DirectReplies
from bot.intake import ALLOWED_UPDATES, Intake
from bot.outbox import OutboxSender
from bot.runtime import TelegramSide
from bot.webhook import WebServer, webhook_app
from bot.wire import BotApiRequest
from web.app import console_app

log = logging.getLogger(__name__)


def webhook_secret(token: str) -> str:
    """The same secret on every replica (they share one webhook), and not the token itself."""
    return hashlib.sha256(b"rapport-webhook:" + token.encode()).hexdigest()


def build_application(rt: Runtime) -> Application:
    """PTB's Application with our HTTP requests (`bot.wire`: PTB's settings, a tenth of the CPU
    per call); a pool of one for getUpdates, as PTB gives it."""
    app = (
        ApplicationBuilder()
        .token(rt.settings.token())
        .base_url(rt.settings.telegram_api_url)
        .base_file_url(rt.settings.api_file_url)
        .request(BotApiRequest())
        .get_updates_request(BotApiRequest(connection_pool_size=1))
        .updater(None)
        .build()
    )
    app.bot_data["rt"] = rt
    return app


@functools.cache
def freeze_startup_heap() -> None:
    """Once per process: keep what start-up built (modules, mappers, catalogs, the Application;
    alive until the end anyway) out of the garbage collector's full passes. Otherwise each full
    pass walks all of it and stalls the event loop for tens of milliseconds, a tail latency of
    every update waiting meanwhile."""
    gc.collect()
    gc.freeze()


class BotService:
    def __init__(
        self,
        rt: Runtime,
        *,
        telegram: TelegramSide | None = None,
        heartbeat_interval: float | None = None,
    ) -> None:
        """`telegram`: the door, limits and memory of strangers to run with (kept across
        restarts by a caller that passes the same one); a fresh one by default."""
        self.rt = rt
        self.telegram = telegram or TelegramSide.create(rt)
        self.app = build_application(rt)
        self.sender = OutboxSender(self.telegram, self.app.bot)
        self.intake = Intake(self.telegram, self.app.bot)
        self.direct = DirectReplies(self.app.bot, self.telegram.limiter)
        self._web: WebServer | None = None
        self.heartbeat_interval = heartbeat_interval or heartbeat.interval_seconds(rt.clock.speed)
        self._sender_task: asyncio.Task[None] | None = None
        self._beating = asyncio.Lock()
        self.instance_id = instances.new_id()

    async def start(
        self,
        *,
        polling: bool = True,
        webhook_url: str | None = None,
        listen: tuple[str, int] = ("0.0.0.0", 8443),
    ) -> None:
        await instances.register(self.rt, self.instance_id)  # refuses keys that cannot read
        await self.rt.open_pool()
        await self.app.initialize()
        await self._remember_username()
        await self.app.start()
        if webhook_url:
            secret = webhook_secret(self.rt.settings.token())
            # One ASGI app: `/telegram` and the practice console beside it.
            receiver = webhook_app(self.intake, secret)
            self._web = WebServer(
                console_app(self.rt, extra=receiver.routes, alerts=ConsoleAlerts()), *listen
            )
            await self._web.start()
            await self.app.bot.set_webhook(
                webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
            )
        elif polling:
            await self.intake.start_polling()
        self._sender_task = asyncio.create_task(self.sender.run(), name="outbox-sender")
        self.direct.start()
        self.telegram.direct = self.direct
        job_queue = self.app.job_queue
        assert job_queue is not None
        beat = job_queue.run_repeating(
            self._beat, interval=self.heartbeat_interval, name="heartbeat"
        )
        # APScheduler cannot start an interval job "now" (first=0 waits a whole interval, as
        # PTB documents), so the first pass runs here: a restart catches up at once.
        await beat.run(self.app)
        job_queue.run_repeating(
            self._housekeeping, interval=3600.0, first=60.0, name="housekeeping"
        )
        freeze_startup_heap()

    async def _remember_username(self) -> None:
        await admin.remember_bot_username(self.rt, self.app.bot.username)

    async def _beat(self, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await instances.refresh(self.rt, self.instance_id)
        if self._beating.locked():
            return  # the previous pass is still running
        async with self._beating:
            try:
                await heartbeat.run_pass(self.rt)
                health.beat(self.rt.settings.database_url, self.rt.quarantine.count())
            except Exception:
                log.exception("heartbeat pass failed")

    async def _housekeeping(self, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await heartbeat.housekeeping(self.rt)

    async def stop(self) -> None:
        # Updates first: a handler that finishes meanwhile still hands its answer to a running
        # sender, which then marks what it sent and gives back what it did not.
        try:
            self.intake.stopping()
            if self._web is not None:
                await self._web.stop()
            await self.intake.stop()
            if self.app.running:
                await self.app.stop()
        finally:
            self.sender.stop()
            if self._sender_task is not None:
                await self._sender_task
            if self.telegram.direct is self.direct:
                self.telegram.direct = None
            await self.direct.stop()
        await self.app.shutdown()
        await instances.forget(self.rt, self.instance_id)
