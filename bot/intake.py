"""Receiving updates from Telegram, each confirmed only once it has settled.

Telegram forgets an update once it is confirmed: by a getUpdates offset above its id (polling)
or by a 2xx answer to its webhook POST. An update confirmed before its transaction committed is
lost to a crash in between (and the client's next answers then fill the wrong items), so here:

* settled = committed, dropped as a duplicate, or answered conclusively: a stranger's reply, or
  a failure that is not the database's (its sender hears so, and a poison update cannot loop);
* an update the database could not take (down, restarting, locked, no connection free:
  `quarantine.is_transient`) is not settled. Polling retries it with backoff and never sends an
  offset past it, so a process that dies meanwhile leaves it to the next; the webhook answers
  503 and Telegram delivers it again.

Polling is our own getUpdates loop (PTB's Updater confirms a batch as soon as it has queued it,
before any handler ran). Updates are handled concurrently, each user's in update order: a task
takes its user's lock before anything else, and tasks start in update order. Telegram returns
every unconfirmed update on each call, so a call that brings nothing new waits for an update in
flight to settle before the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

from telegram import Bot, Update
from telegram.error import RetryAfter, TelegramError

from app.quarantine import is_transient
from bot import dispatch
from bot.flood import Recently, Verdict
from bot.runtime import TelegramSide
from bot.updates import language_of, written
from flows.crisis import detect_crisis
from flows.i18n import t

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
POLL_SECONDS = 10
"""How long a getUpdates call waits for something new."""
READ_MARGIN_SECONDS = 30
"""How much longer than that its HTTP read may take before it counts as failed."""
CONCURRENCY = 32
"""Updates handled at once (each user's one at a time whatever this is)."""
FIRST_RETRY_SECONDS = 0.25
LONGEST_RETRY_SECONDS = 15.0
ROOM_WAIT_SECONDS = 1.0
"""The longest the next getUpdates waits for an update in flight to settle."""
CRISIS_TOLD_SECONDS = 24 * 3600.0
"""How long a crisis text kept waiting for the database is remembered as answered."""
STOP_GRACE_SECONDS = 10.0
"""How long a stop waits for the updates in flight before giving up on them (unconfirmed)."""


def without_keyboard(data: dict[str, Any]) -> dict[str, Any]:
    """A tap's update without the keyboard of the message it was on: nothing reads it, and
    PTB would build an object for each of its buttons on every tap."""
    query = data.get("callback_query")
    if not isinstance(query, dict):
        return data
    message = query.get("message")
    if not isinstance(message, dict) or "reply_markup" not in message:
        return data
    message = {k: v for k, v in message.items() if k != "reply_markup"}
    return {**data, "callback_query": {**query, "message": message}}


class Intake:
    """The receiving side of one bot process: long polling, or what the webhook hands in."""

    def __init__(self, side: TelegramSide, bot: Bot, *, concurrency: int = CONCURRENCY) -> None:
        self.side = side
        self.bot = bot
        # Per intake, not per module: an asyncio lock belongs to one event loop, and a process
        # may run the bot more than once (tests, the demo), each time on a new loop.
        self.locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        # Received and not yet confirmed: the task handling it, or None once it settled.
        self._pending: dict[int, asyncio.Task[bool] | None] = {}
        self._next: int | None = None  # the offset once everything received has settled
        self._sent: int | None = None  # the offset of the last getUpdates that came back
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._notices: set[asyncio.Task[None]] = set()
        # Crisis texts that got the resources while the database was away (by update id):
        # told once, however often the update is tried or delivered again.
        self._crisis_told = Recently(window=CRISIS_TOLD_SECONDS)

    # --- one update ------------------------------------------------------------------------

    async def settle(self, update: Update) -> bool:
        """Handle `update` once (the webhook's way): True once it settled, False if the
        database could not take it (or the bot is stopping) and Telegram must deliver it again."""
        if self._stopping.is_set():
            return False
        if not self._admitted(update):
            return True
        async with self._lock_of(update), self._slots:
            return await self._attempt(update)

    async def settle_raw(self, data: dict[str, Any]) -> bool:
        update = self._read(data)
        return True if update is None else await self.settle(update)

    def _read(self, data: dict[str, Any]) -> Update | None:
        """The update, or None if PTB cannot read it: then it is dropped (answered), since it
        would fail the same way every time it came back. Logged by id, never by content."""
        try:
            return Update.de_json(without_keyboard(data), self.bot)
        except Exception as exc:
            log.warning(
                "update %s could not be read (%s): dropped",
                data.get("update_id"),
                type(exc).__name__,
            )
            return None

    def _admitted(self, update: Update) -> bool:
        """The door (`bot.flood`): False for an update of a flood, which is settled unhandled,
        without touching the database; the flood's first such update gets one notice. Crisis
        language and blocks or unblocks of the bot always come in."""
        user = update.effective_user
        if user is None or update.my_chat_member is not None:
            return True
        verdict = self.side.door.admit(user.id, urgent=lambda: detect_crisis(written(update)))
        if verdict is Verdict.HANDLE:
            return True
        chat = update.effective_chat
        if verdict is Verdict.NOTICE and chat is not None and chat.type == "private":
            text = t(language_of(update), "chat.flood")
            if update.callback_query is not None:  # a tap waits for its answer
                self._answer_later(update.callback_query.id, text)
            else:
                dispatch.reply_directly(self.side, self.bot, chat.id, text)
        return False

    def _answer_later(self, query_id: str, text: str) -> None:
        async def answer() -> None:
            try:
                await self.bot.answer_callback_query(query_id, text=text)
            except TelegramError as exc:
                log.info("flood notice not delivered: %s", type(exc).__name__)

        task = asyncio.create_task(answer())
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    def _lock_of(self, update: Update) -> asyncio.Lock:
        user = update.effective_user
        return self.locks[user.id if user else 0]

    async def _attempt(self, update: Update, *, retry: bool = False) -> bool:
        try:
            after = await dispatch.handle(self.side, update)
        except Exception as exc:
            if is_transient(exc):
                if retry:
                    return False  # said at the first attempt
                log.warning(
                    "update %s not handled, the database is unavailable (%s): left unconfirmed",
                    update.update_id,
                    type(exc).__name__,
                )
                if self._crisis_told.first(update.update_id):
                    await dispatch.resources_while_down(update, self.bot)
                return False
            # Without the update's content (it may carry a client's words).
            log.error("update %s failed: %s", update.update_id, type(exc).__name__, exc_info=exc)
            await dispatch.apologise(update, self.bot)
            return True
        try:
            await dispatch.deliver(self.side, self.bot, after)
        except Exception as exc:  # committed all the same: the outbox has what matters
            log.error(
                "update %s: replies after the commit failed: %s",
                update.update_id,
                type(exc).__name__,
                exc_info=exc,
            )
        return True

    async def _handle(self, update: Update) -> bool:
        """Until the update settles, with backoff while the database is away; False only if
        the bot stops first."""
        if not self._admitted(update):
            return True
        async with self._lock_of(update):
            delay, attempts = FIRST_RETRY_SECONDS, 0
            while True:
                async with self._slots:
                    if await self._attempt(update, retry=attempts > 0):
                        if attempts:
                            log.info(
                                "update %s handled after %d retries", update.update_id, attempts
                            )
                        return True
                attempts += 1
                if not await self._pause(delay):
                    return False
                delay = min(delay * 2, LONGEST_RETRY_SECONDS)

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds`; False at once if the bot is stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False

    # --- long polling ----------------------------------------------------------------------

    async def start_polling(self) -> None:
        await self.bot.delete_webhook()  # getUpdates is refused while a webhook is set
        self._poller = asyncio.create_task(self._poll(), name="intake-polling")

    def offset(self) -> int | None:
        """The lowest update id not settled: everything below it may be confirmed."""
        unsettled = [uid for uid, task in self._pending.items() if task is not None]
        return min(unsettled) if unsettled else self._next

    async def _poll(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while not self._stopping.is_set():
            try:
                batch = await self._get_updates(self.offset(), POLL_SECONDS)
            except RetryAfter as exc:
                wait = exc.retry_after
                await self._pause(wait.total_seconds() if isinstance(wait, timedelta) else wait)
                continue
            except TelegramError as exc:
                log.warning("getUpdates failed: %s; again in %.2f s", type(exc).__name__, delay)
                await self._pause(delay)
                delay = min(delay * 2, LONGEST_RETRY_SECONDS)
                continue
            delay = FIRST_RETRY_SECONDS
            if batch:
                self._receive(batch)
                await self._room()

    async def _get_updates(self, offset: int | None, timeout: int, limit: int = 100) -> list[Any]:
        kwargs: dict[str, Any] = {
            "timeout": timeout,
            "limit": limit,
            "allowed_updates": ALLOWED_UPDATES,
        }
        if offset is not None:
            kwargs["offset"] = offset
        # The raw call, not `Bot.get_updates`: that one parses the whole batch, so one update
        # PTB cannot read would fail every call (and log the batch whole), and a batch is
        # mostly updates already in flight. `do_api_request` would do, but warns on every call
        # that `get_updates` exists; `_post` is what both use (and picks the polling pool).
        result = await self.bot._post(
            "getUpdates", kwargs, read_timeout=timeout + READ_MARGIN_SECONDS
        )
        if offset is not None:  # Telegram has forgotten everything below it
            self._sent = offset
            for uid in [uid for uid in self._pending if uid < offset]:
                del self._pending[uid]
        return result if isinstance(result, list) else []

    def _receive(self, batch: list[Any]) -> None:
        """Start a task for each update not seen before, in update order."""
        for data in batch:
            uid = data.get("update_id") if isinstance(data, dict) else None
            if not isinstance(uid, int) or uid in self._pending:
                continue
            if self._sent is not None and uid < self._sent:
                continue
            self._next = uid + 1 if self._next is None else max(self._next, uid + 1)
            update = self._read(data)
            if update is None:
                self._pending[uid] = None
                continue
            task = asyncio.create_task(self._handle(update), name=f"update-{uid}")
            task.add_done_callback(functools.partial(self._finished, uid))
            self._pending[uid] = task

    def _finished(self, uid: int, task: asyncio.Task[bool]) -> None:
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.error("update %s: handling crashed", uid, exc_info=task.exception())
            return  # not settled: left for the next process
        if task.result() and uid in self._pending:
            self._pending[uid] = None

    def _in_flight(self) -> list[asyncio.Task[bool]]:
        return [task for task in self._pending.values() if task is not None and not task.done()]

    async def _room(self) -> None:
        """After a batch, wait until an update in flight is done and fewer than the concurrency
        are in flight (or the stop). Until then the next call would only bring back what is in
        flight (Telegram returns every unconfirmed update) and what could not start anyway. An
        update retried for long (the database away) holds the next call back a second at most,
        so the others' updates still come in."""
        tasks = self._in_flight()
        if not tasks:
            return
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while tasks and not stop.done():
                done, _ = await asyncio.wait(
                    [*tasks, stop], timeout=ROOM_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                tasks = self._in_flight()
                if not done or len(tasks) < self._concurrency:
                    return
        finally:
            stop.cancel()

    async def idle(self) -> None:
        """Until no update is in flight (tests)."""
        while tasks := self._in_flight():
            await asyncio.wait(tasks)

    # --- stop --------------------------------------------------------------------------------

    def stopping(self) -> None:
        """From now on nothing new is handled: the webhook answers 503, retries end."""
        self._stopping.set()

    async def stop(self) -> None:
        """Let the updates in flight finish (for a while), then confirm exactly what settled."""
        self.stopping()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        tasks = self._in_flight()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        offset = self.offset()
        if self._poller is None or offset is None or offset == self._sent:
            return
        try:
            await self._get_updates(offset, 0, limit=1)
        except TelegramError as exc:
            log.warning("the last confirmation failed: %s", type(exc).__name__)
