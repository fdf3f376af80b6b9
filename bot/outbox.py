"""The outbox sender: delivers committed messages through PTB, within Telegram's limits.

Only the head of each chat's queue can be claimed, so one chat's messages go out in order even with
several replicas. A 429 pauses all sending for `retry_after`; 5xx and timeouts are retried with
capped backoff; `Forbidden` marks the client unreachable (evidence for the signals). A message that
finally fails is kept with its error and reported in the log by id, never dropped silently.

Urgent messages (crisis alerts, crisis resources) go first: claims take them first, and an urgent
lane sends one committed while other messages are on their way at once, ahead of those waiting
for the rate limits. Every message is checked against the database just before it goes out: one
erased meanwhile (the client's `/delete`, `rapport client erase` from another process) is not
sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, Generic, TypeVar

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from app import sending
from app.alerts import ALERT_KINDS
from app.quarantine import connection_lost, is_transient
from app.runtime import OutboxJob
from app.sending import Claim, Outcome
from bot.runtime import TelegramSide
from storage.outbox import MARKUP_OF, NORMAL

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 8
LEASE_WALL_SECONDS = 60.0
BATCH = 60
IDLE_SCAN_SECONDS = 0.25
"""How often an idle sender looks for rows nobody woke it for (other replicas, retries due)."""
MARK_WITHIN = 0.05
"""Wall seconds a handed message may stay sent but not marked: handed rows are marked a few at
a time, in one transaction, instead of one transaction each."""
SEND_CONCURRENCY = 8
"""Requests on the wire at once. Enough for Telegram's 30/s at its round-trip times; more only
grows the HTTP connection pool, which every request then scans (a cost per request that grows
with the pool's size)."""
FRESH_SECONDS = 30.0
"""Wall seconds for which a row handed over by this process's own commit is sent without asking
the database again whether it is still wanted. Handed rows are only replies to the person whose
update it was (alerts and digests are claimed from the database and always asked), an erasure
in this process drops them in memory (`drop`), and one from another process (the CLI) must fall
inside this window for the client's own reply to still reach the client. Asking costs a query
per batch, which in a burst, when replies wait a second or two, was a good part of a reply's
cost."""


def keyboard(rows: list[list[dict[str, str]]] | None) -> dict[str, Any] | None:
    """A stored keyboard as the Bot API takes it (`reply_markup`); None for none."""
    if not rows:
        return None
    return {
        "inline_keyboard": [
            [{"text": b["label"], "callback_data": b["data"]} for b in row] for row in rows
        ]
    }


def message_id_of(result: Any, default: int | None = None) -> int | None:
    """The message id in a Bot API answer (an edit may answer just `true`)."""
    if isinstance(result, dict) and isinstance(result.get("message_id"), int):
        return int(result["message_id"])
    return default


class _Unsure(Exception):
    """The database could not say whether a row is still to be sent."""


class Asked(Generic[T]):
    """What the database holds of outbox rows, asked just before each send (`fetch`: the answer
    for each row that has one); the sends that are ready at the same moment share one query."""

    def __init__(self, fetch: Callable[[list[int]], Awaitable[Mapping[int, T]]]) -> None:
        self._fetch = fetch
        self._asked: dict[int, asyncio.Future[T | None]] = {}
        self._answering = False

    async def __call__(self, message_id: int) -> T | None:
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._asked[message_id] = future
        if not self._answering:
            self._answering = True
            asyncio.get_running_loop().create_task(self._answer())
        return await future

    async def _answer(self) -> None:
        await asyncio.sleep(0)  # the other sends of this moment ask too
        asked, self._asked = self._asked, {}
        self._answering = False
        try:
            found = await self._fetch(list(asked))
        except Exception as exc:
            for future in asked.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for message_id, future in asked.items():
            if not future.done():
                future.set_result(found.get(message_id))


class OutboxSender:
    """Sends what the outbox holds: rows handed over by this process's update handlers (claimed
    in the transaction that created them), and rows it finds and claims itself (from the
    heartbeat, other replicas, retries, or a restart).

    Outcomes are written down in the next transaction, which also looks for more rows. Handed
    rows are written down in small batches (within `MARK_WITHIN` seconds, sooner when a chat has
    more waiting behind them); at most `BATCH` messages are ever sent and not yet marked, which
    bounds what a crash can send twice (at least once, as before).
    """

    def __init__(self, side: TelegramSide, bot: Bot) -> None:
        self.rt = rt = side.rt
        self.bot = bot
        self.limiter = side.limiter
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._stopping = asyncio.Event()
        self.sent_count = 0
        self.failed_count = 0
        self._handed: deque[OutboxJob] = deque()
        self._handed_urgent: deque[OutboxJob] = deque()
        self._dropped: set[int] = set()  # erased while being sent
        self._outage = 0  # passes failed in a row because the database is away
        self._handed_at: dict[int, float] = {}  # handed rows not yet sent: when (wall time)
        self._sending: set[int] = set()
        self._still_pending = Asked(self._pending)
        self._current = Asked(functools.partial(sending.pending_payloads, rt))
        self._unmarked: list[Outcome] = []  # sent (or refused) but not yet written down
        self._unmarked_since = 0.0  # monotonic time the oldest of them was added
        self._mark_soon = False  # something unmarked holds up more of its chat, or went wrong
        # Rows sent together in a chat: marked at once, with no look for more. Until then the
        # chat's messages read as not sent yet, and an answer would take the buttons off the
        # stored copy of a question instead of the one the client sees.
        self._mark_now = False
        self._wire = asyncio.Semaphore(SEND_CONCURRENCY)

    def _sim(self, wall_seconds: float) -> timedelta:
        """Wall seconds expressed on the injected clock (a time-lapse clock runs faster)."""
        return timedelta(seconds=wall_seconds * self.rt.clock.speed)

    def take(self, jobs: list[OutboxJob]) -> None:
        """Committed rows claimed for this sender by an update's transaction (`Runtime.handoff`).
        Urgent ones go ahead of the rest, through the urgent lane."""
        now = time.monotonic()
        for job in jobs:
            (self._handed_urgent if job.priority < NORMAL else self._handed).append(job)
            for row in job.rows():
                self._handed_at[row.id] = now
        if self._handed_urgent:
            self.rt.urgent_wakeup.set()
        self.rt.sender_wakeup.set()

    def drop(self, ids: set[int]) -> None:
        """These rows were erased: what is handed over is forgotten, and what is being sent does
        not go out (`Runtime.handoff`)."""
        for queue in (self._handed, self._handed_urgent):
            kept = [
                replace(job, then=tuple(row for row in job.then if row.id not in ids))
                for job in queue
                if job.id not in ids
            ]
            queue.clear()
            queue.extend(kept)
        self._dropped |= ids & self._sending
        for message_id in ids:
            self._handed_at.pop(message_id, None)

    def _pop_handed(self, room: int) -> list[OutboxJob]:
        """Handed rows for up to `room` sends, a row and those behind it together (at least
        one such group when there is room at all)."""
        taken: list[OutboxJob] = []
        rows = 0
        for queue in (self._handed_urgent, self._handed):
            while queue and rows < room and (not taken or rows + len(queue[0].rows()) <= room):
                job = queue.popleft()
                taken.append(job)
                rows += len(job.rows())
        return taken

    async def run(self) -> None:
        self.rt.handoff = self
        lane = asyncio.get_running_loop().create_task(self._urgent_lane())
        try:
            while not self._stopping.is_set():
                # Cleared before the pass, not after: a wake-up that comes while the pass runs
                # (a row committed just after the pass looked) must not wait for the timeout.
                self.rt.sender_wakeup.clear()
                try:
                    busy = await self.pass_once()
                except Exception as exc:  # the loop must outlive any single failure
                    busy = await self._after_failure(exc)
                else:
                    if self._outage:
                        log.info("outbox: the database is back after %d tries", self._outage)
                    self._outage = 0
                if not busy:
                    await self._idle()
        finally:
            if self.rt.handoff is self:
                self.rt.handoff = None
            self._stopping.set()
            self.rt.urgent_wakeup.set()  # the lane sees the stop, once its sends are done
            with contextlib.suppress(Exception):
                await lane
            with contextlib.suppress(Exception):  # what was sent last is marked before stopping
                await self.flush()

    async def _urgent_lane(self) -> None:
        """Sends urgent messages as soon as they are committed (`Runtime.wake_urgent`) or handed
        over, even while a pass is busy sending others: they claim no wire slot and take their
        turn of the rate limits ahead of every waiting message. Outcomes are marked with the
        main loop's."""
        wakeup = self.rt.urgent_wakeup
        while not self._stopping.is_set():
            await wakeup.wait()
            wakeup.clear()
            if self._stopping.is_set():
                break
            try:
                await self._send_urgent()
            except Exception as exc:
                log.warning("urgent lane pass failed: %s", type(exc).__name__)
                self.rt.outbox_scan = True  # the main loop claims them instead
                self.rt.sender_wakeup.set()

    async def _send_urgent(self) -> None:
        claimed = await sending.claim(
            self.rt,
            worker=self.worker,
            lease=self._sim(LEASE_WALL_SECONDS),
            limit=BATCH,
            urgent_only=True,
        )
        jobs = [*self._handed_urgent, *claimed.jobs]
        self._handed_urgent.clear()
        sent = await asyncio.gather(*(self._send_rows(job, urgent=True) for job in jobs))
        outcomes = claimed.unreadable + [outcome for each in sent for outcome in each]
        if not outcomes:
            return
        if not self._unmarked:
            self._unmarked_since = time.monotonic()
        self._unmarked.extend(outcomes)
        self._mark_soon = True  # the chats may hold more behind them; mark without delay
        self.rt.sender_wakeup.set()

    async def _after_failure(self, exc: Exception) -> bool:
        """A pass failed; True to go again at once."""
        if connection_lost(exc):
            # A connection died under the pass (a restarted server): the pool replaces it, and
            # what the pass wrote is written again (marking twice is harmless).
            log.info("outbox pass lost its database connection; going again")
            await asyncio.sleep(0.05)
            return True
        if is_transient(exc):
            # The database is away: said once, not every half second until it is back.
            self._outage += 1
            if self._outage == 1:
                log.warning(
                    "outbox: the database is unavailable (%s); retrying", type(exc).__name__
                )
            await asyncio.sleep(min(0.5 * self._outage, 5.0))
            return False
        log.exception("outbox pass failed; retrying")
        await asyncio.sleep(0.5)
        return False

    async def _idle(self) -> None:
        """Wait for a wake-up, the moment unmarked outcomes are due, or the next look."""
        if self._unmarked:
            timeout = max(0.0, self._unmarked_since + MARK_WITHIN - time.monotonic())
        else:
            timeout = IDLE_SCAN_SECONDS
        try:
            await asyncio.wait_for(self.rt.sender_wakeup.wait(), timeout=timeout)
        except TimeoutError:
            if not self._unmarked:
                self.rt.outbox_scan = True

    def stop(self) -> None:
        self._stopping.set()
        self.rt.sender_wakeup.set()

    async def pass_once(self) -> bool:
        """One round: if due, mark outcomes and claim more rows in one transaction; then send
        what was claimed or handed over. True if anything was marked or sent."""
        unmarked = self._unmarked
        transact = self.rt.outbox_scan or (
            bool(unmarked)
            and (
                self._mark_soon
                or self._mark_now
                or len(unmarked) >= BATCH
                or time.monotonic() - self._unmarked_since >= MARK_WITHIN
            )
        )
        claimed = Claim([], [])
        marked = 0
        if transact:
            claimed, marked = await self._mark_and_claim()
        room = BATCH - len(self._unmarked) - len(claimed)
        handed = self._pop_handed(room)
        # Urgent first (the order in which they meet the rate limits); a stable sort keeps the
        # rest in order.
        ranked = sorted([*handed, *claimed.jobs], key=lambda job: job.priority)
        if not ranked and not claimed.unreadable:
            return marked > 0
        sent = await asyncio.gather(
            *(self._send_rows(job, urgent=job.priority < NORMAL) for job in ranked)
        )
        outcomes = claimed.unreadable + [outcome for each in sent for outcome in each]
        if not self._unmarked:
            self._unmarked_since = time.monotonic()
        self._unmarked.extend(outcomes)
        self._mark_soon = (
            self._mark_soon
            or bool(claimed)  # found rows: their chats may hold more (e.g. intro, then question)
            or any(j.follow_up for j in handed)
            or any(o.status != "sent" for o in outcomes)
        )
        self._mark_now = self._mark_now or any(j.then for j in handed)
        return True

    async def _mark_and_claim(self) -> tuple[Claim, int]:
        """Write the unmarked outcomes and (when there is reason to look) claim due rows, in one
        transaction (`sending.record_and_claim`)."""
        now = self.rt.clock.now()
        outcomes, self._unmarked = self._unmarked, []
        mark_soon, self._mark_soon = self._mark_soon, False
        self._mark_now = False
        # Look for rows when asked to, or when what is marked may hold up more of its chat; a
        # round that only marks handed messages needs no look.
        scan = self.rt.outbox_scan or mark_soon
        self.rt.outbox_scan = False
        limit = BATCH - min(len(self._handed), BATCH) if scan else 0
        try:
            claimed, failed = await sending.record_and_claim(
                self.rt,
                outcomes,
                now,
                self._retry_in,
                worker=self.worker,
                lease=self._sim(LEASE_WALL_SECONDS),
                limit=limit,
            )
        except BaseException:
            # Nothing of the transaction stands: mark them and look again next time.
            self._unmarked = outcomes + self._unmarked
            self._mark_soon = mark_soon
            self.rt.outbox_scan = True
            raise
        if scan and (limit == 0 or len(claimed) == limit):
            self.rt.outbox_scan = True  # more may be waiting
        self._count(outcomes, failed)
        return claimed, len(outcomes)

    def _retry_in(self, attempts: int) -> timedelta | None:
        """A send that may succeed later (5xx, timeouts) is retried with capped backoff, up to
        `MAX_ATTEMPTS` in all."""
        if attempts >= MAX_ATTEMPTS:
            return None
        return self._sim(min(60.0, 0.5 * 2**attempts))

    async def flush(self) -> None:
        """Mark outcomes not yet marked, and give back handed rows not sent (a restart sends
        them at once instead of after the lease)."""
        outcomes, self._unmarked = self._unmarked, []
        left = [row.id for job in (*self._handed_urgent, *self._handed) for row in job.rows()]
        self._handed.clear()
        self._handed_urgent.clear()
        self._handed_at.clear()
        if not outcomes and not left:
            return
        try:
            failed = await sending.record_and_release(
                self.rt, outcomes, left, self.rt.clock.now(), self._retry_in
            )
        except BaseException:
            self._unmarked = outcomes
            raise
        self._count(outcomes, failed)

    async def _send_rows(self, job: OutboxJob, urgent: bool) -> list[Outcome]:
        """A row, then those its transaction queued behind it in its chat (`OutboxJob.then`),
        one after another. Once one does not go out, the rest are given back unsent, to be
        claimed again in their order behind it.

        A row behind goes out as the database holds it just before: meanwhile another answer
        may have taken its buttons off (`outbox.drop_buttons`), an account move cancelled it,
        an erasure removed it (`drop` finds it among the rows being sent)."""
        behind = {row.id for row in job.then}
        self._sending |= behind
        outcomes: list[Outcome] = []
        try:
            for row in job.rows():
                if outcomes and outcomes[-1].status != "sent":
                    self._handed_at.pop(row.id, None)
                    outcomes.append(Outcome(row.id, "paused"))
                    continue
                try:
                    current = await self._as_stored(row) if row.id in behind else row
                except Exception as exc:  # the database cannot say: kept for later, unsent
                    log.info("outbox message %s held back: %s", row.id, type(exc).__name__)
                    self._handed_at.pop(row.id, None)
                    outcomes.append(Outcome(row.id, "paused"))
                    continue
                if current is None:
                    self._handed_at.pop(row.id, None)
                    outcomes.append(Outcome(row.id, "dropped"))
                    continue
                outcomes.append(await self._send(current, urgent=urgent))
        finally:
            self._sending -= behind
            self._dropped -= behind
        return outcomes

    async def _as_stored(self, row: OutboxJob) -> OutboxJob | None:
        """The row with the payload stored now; None if it is no longer pending (or was dropped
        here)."""
        if row.id in self._dropped:
            return None
        payload = await self._current(row.id)
        return None if payload is None else replace(row, payload=payload)

    async def _pending(self, ids: list[int]) -> dict[int, bool]:
        return dict.fromkeys(await sending.still_pending(self.rt, ids), True)

    async def _send(self, job: OutboxJob, urgent: bool = False) -> Outcome:
        self._sending.add(job.id)
        try:
            outcome = await self._send_one(job.id, job.chat_id, job.kind, job.payload, urgent)
            outcome.alert = job.kind in ALERT_KINDS
            return outcome
        finally:
            self._sending.discard(job.id)
            self._dropped.discard(job.id)

    async def _send_one(
        self, message_id: int, chat_id: int, kind: str, p: dict[str, Any], urgent: bool
    ) -> Outcome:
        await self.limiter.acquire(chat_id, urgent=urgent)
        try:
            async with contextlib.nullcontext() if urgent else self._wire:
                await self.limiter.wait_unpaused()  # a 429 may have come while this waited
                if not await self._wanted(message_id):
                    return Outcome(message_id, "dropped")
                sent_id = await self._call(chat_id, kind, p)
        except _Unsure:
            return Outcome(message_id, "paused")  # kept for later, unsent
        except RetryAfter as exc:
            seconds = exc.retry_after
            wait = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
            self.limiter.pause(wait)
            return Outcome(message_id, "paused", retry_in=wait)
        except Forbidden as exc:
            error = f"forbidden: {exc.message}"[:300]
            return Outcome(message_id, "failed", error=error, blocked=True)
        except BadRequest as exc:
            if "not modified" in exc.message:
                return Outcome(message_id, "sent")
            return Outcome(message_id, "failed", error=f"bad request: {exc.message}"[:300])
        except (NetworkError, TelegramError) as exc:  # 5xx, timeouts, connection errors
            return Outcome(message_id, "retry", error=type(exc).__name__)
        except Exception as exc:  # e.g. a payload missing a field: retried, then failed
            log.warning("outbox message %s not sent: %s", message_id, type(exc).__name__)
            return Outcome(message_id, "retry", error=type(exc).__name__)
        return Outcome(message_id, "sent", telegram_message_id=sent_id)

    async def _wanted(self, message_id: int) -> bool:
        """Whether the row is still to be sent, asked when nothing but the wire is left between
        it and the chat: erased meanwhile (here, or by another process such as the CLI), or
        sent by another replica whose claim outlived ours, it must not go out."""
        if message_id in self._dropped:
            return False
        handed_at = self._handed_at.pop(message_id, None)
        if handed_at is not None and time.monotonic() - handed_at < FRESH_SECONDS:
            return True
        try:
            return bool(await self._still_pending(message_id))
        except Exception as exc:
            log.info("outbox message %s held back: %s", message_id, type(exc).__name__)
            raise _Unsure from exc

    async def _call(self, chat_id: int, kind: str, p: dict[str, Any]) -> int | None:
        """Send one row; the Telegram id of the message sent or changed. Texts and edits go out
        as raw Bot API calls whose answer is read for the message id alone: PTB would build a
        whole `Message` (a question's keyboard included) from every answer, on the hot path."""
        if kind == "photo":
            msg = await self.bot.send_photo(
                chat_id=chat_id,
                photo=base64.b64decode(p["photo"]),
                caption=p.get("caption"),
                parse_mode=p.get("parse_mode"),
            )
            return msg.message_id
        data: dict[str, Any] = {"chat_id": chat_id, "reply_markup": keyboard(p.get("buttons"))}
        if kind == "markup":  # the buttons of an answered question go, its text stays
            target = p.get("message_id")
            if target is None:  # of a message that was on its way: sent by now, or never
                target = await sending.telegram_id_of(self.rt, p[MARKUP_OF])
                if target is None:
                    return None
            data["message_id"] = target
            await self.bot._post("editMessageReplyMarkup", data)
            return int(target)
        data.update(text=p["text"], parse_mode=p.get("parse_mode"))
        if kind == "edit":
            try:
                result = await self.bot._post(
                    "editMessageText", {**data, "message_id": p["message_id"]}
                )
            except BadRequest as exc:
                # An edit that carries the next question must reach the client even when the
                # message is gone (deleted, too old to edit): as a new message then.
                if not p.get("or_send") or "not modified" in exc.message:
                    raise
                log.info("edit not possible, sent as a new message: %s", type(exc).__name__)
            else:
                return message_id_of(result, default=int(p["message_id"]))
        return message_id_of(await self.bot._post("sendMessage", data))

    def _count(self, outcomes: list[Outcome], failed: int) -> None:
        self.sent_count += sum(o.status == "sent" for o in outcomes)
        self.failed_count += failed
