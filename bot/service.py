"""The running bot: PTB Application (long polling or webhook), the heartbeat on PTB's JobQueue,
and the outbox sender, started and stopped together."""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import logging

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot import health, heartbeat, instances
from bot.dispatch import apologise, on_update
from bot.outbox import OutboxSender
from bot.runtime import Runtime
from storage import repo

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]


def webhook_secret(token: str) -> str:
    """The same secret on every replica (they share one webhook), and not the token itself."""
    return hashlib.sha256(b"rapport-webhook:" + token.encode()).hexdigest()


def build_application(rt: Runtime) -> Application:
    app = (
        ApplicationBuilder()
        .token(rt.settings.token())
        .base_url(rt.settings.telegram_api_url)
        .base_file_url(rt.settings.api_file_url)
        .concurrent_updates(32)
        .get_updates_read_timeout(40)
        .build()
    )
    app.bot_data["rt"] = rt
    app.add_handler(TypeHandler(Update, on_update))
    app.add_error_handler(on_error)
    return app


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure without the update's content (it may carry a client's words), and tell
    its sender."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error(
        "update %s failed: %s",
        update_id,
        type(context.error).__name__,
        exc_info=(type(context.error), context.error, context.error.__traceback__)
        if context.error
        else None,
    )
    if isinstance(update, Update):
        await apologise(update, context.bot)


@functools.cache
def freeze_startup_heap() -> None:
    """Once per process: keep what start-up built (modules, mappers, catalogs, the Application;
    alive until the end anyway) out of the garbage collector's full passes. Otherwise each full
    pass walks all of it and stalls the event loop for tens of milliseconds, a tail latency of
    every update waiting meanwhile."""
    gc.collect()
    gc.freeze()


class BotService:
    def __init__(self, rt: Runtime, *, heartbeat_interval: float | None = None) -> None:
        self.rt = rt
        self.app = build_application(rt)
        self.sender = OutboxSender(rt, self.app.bot)
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
        await self.app.initialize()
        await self._remember_username()
        await self.app.start()
        updater = self.app.updater
        assert updater is not None
        if webhook_url:
            secret = webhook_secret(self.rt.settings.token())
            await updater.start_webhook(
                listen=listen[0],
                port=listen[1],
                url_path="telegram",
                webhook_url=webhook_url,
                secret_token=secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        elif polling:
            await updater.start_polling(
                poll_interval=0, timeout=10, allowed_updates=ALLOWED_UPDATES
            )
        self._sender_task = asyncio.create_task(self.sender.run(), name="outbox-sender")
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
        username = self.app.bot.username
        self.rt.bot_username = username
        async with self.rt.sessions() as s, s.begin():
            practice = await repo.get_practice(s, self.rt.clock.now())
            practice.bot_username = username

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
            updater = self.app.updater
            if updater is not None and updater.running:
                await updater.stop()
            if self.app.running:
                await self.app.stop()
        finally:
            self.sender.stop()
            if self._sender_task is not None:
                await self._sender_task
        await self.app.shutdown()
        await instances.forget(self.rt, self.instance_id)
