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
import logging
import os
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from app.quarantine import is_transient
from app.runtime import OutboxJob, Runtime
from storage import outbox, repo
from storage.models import Client, OutboxMessage
from storage.outbox import NORMAL

log = logging.getLogger(__name__)

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


def keyboard(rows: list[list[dict[str, str]]] | None) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["label"], callback_data=b["data"]) for b in row] for row in rows]
    )


Job = tuple[int, int, str, dict[str, Any]]
"""A message to send: outbox id, chat, kind, payload in clear."""


class _Unsure(Exception):
    """The database could not say whether a row is still to be sent."""


class PendingCheck:
    """Whether outbox rows are still there and pending, asked just before each send; the sends
    that are ready at the same moment share one query."""

    def __init__(self, sessions: Any) -> None:
        self._sessions = sessions
        self._asked: dict[int, asyncio.Future[bool]] = {}
        self._answering = False

    async def __call__(self, message_id: int) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
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
            async with self._sessions() as s:
                alive = await outbox.still_pending(s, list(asked))
        except Exception as exc:
            for future in asked.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for message_id, future in asked.items():
            if not future.done():
                future.set_result(message_id in alive)


@dataclass
class Outcome:
    message_id: int
    status: str  # sent | retry | failed | paused | dropped (erased, or no longer pending)
    telegram_message_id: int | None = None
    error: str | None = None
    retry_in: float = 0.0  # wall seconds
    blocked: bool = False


class OutboxSender:
    """Sends what the outbox holds: rows handed over by this process's update handlers (claimed
    in the transaction that created them), and rows it finds and claims itself (from the
    heartbeat, other replicas, retries, or a restart).

    Outcomes are written down in the next transaction, which also looks for more rows. Handed
    rows are written down in small batches (within `MARK_WITHIN` seconds, sooner when a chat has
    more waiting behind them); at most `BATCH` messages are ever sent and not yet marked, which
    bounds what a crash can send twice (at least once, as before).
    """

    def __init__(self, rt: Runtime, bot: Bot) -> None:
        self.rt = rt
        self.bot = bot
        self.limiter = rt.limiter
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
        self._still_pending = PendingCheck(rt.sessions)
        self._unmarked: list[Outcome] = []  # sent (or refused) but not yet written down
        self._unmarked_since = 0.0  # monotonic time the oldest of them was added
        self._mark_soon = False  # something unmarked holds up more of its chat, or went wrong
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
            self._handed_at[job.id] = now
        if self._handed_urgent:
            self.rt.urgent_wakeup.set()
        self.rt.sender_wakeup.set()

    def drop(self, ids: set[int]) -> None:
        """These rows were erased: what is handed over is forgotten, and what is being sent does
        not go out (`Runtime.handoff`)."""
        for queue in (self._handed, self._handed_urgent):
            kept = [job for job in queue if job.id not in ids]
            queue.clear()
            queue.extend(kept)
        self._dropped |= ids & self._sending
        for message_id in ids:
            self._handed_at.pop(message_id, None)

    def _pop_handed(self, room: int) -> list[OutboxJob]:
        taken: list[OutboxJob] = []
        for queue in (self._handed_urgent, self._handed):
            while queue and len(taken) < room:
                taken.append(queue.popleft())
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
        async with self.rt.sessions() as s, s.begin():
            claimed = await outbox.claim_rows(
                s,
                now=self.rt.clock.now(),
                lease=self._sim(LEASE_WALL_SECONDS),
                worker=self.worker,
                limit=BATCH,
                urgent_only=True,
            )
        handed = list(self._handed_urgent)
        self._handed_urgent.clear()
        readable, unreadable = self._read(claimed)
        jobs = [(j.id, j.chat_id, j.kind, j.payload) for j in handed]
        jobs += [job for _, job in readable]
        outcomes = unreadable + await asyncio.gather(
            *(self._send(*job, urgent=True) for job in jobs)
        )
        if not outcomes:
            return
        if not self._unmarked:
            self._unmarked_since = time.monotonic()
        self._unmarked.extend(outcomes)
        self._mark_soon = True  # the chats may hold more behind them; mark without delay
        self.rt.sender_wakeup.set()

    async def _after_failure(self, exc: Exception) -> bool:
        """A pass failed; True to go again at once."""
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
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
                or len(unmarked) >= BATCH
                or time.monotonic() - self._unmarked_since >= MARK_WITHIN
            )
        )
        claimed: list[Any] = []
        marked = 0
        if transact:
            claimed, marked = await self._mark_and_claim()
        room = BATCH - len(self._unmarked) - len(claimed)
        handed = self._pop_handed(room)
        readable, unreadable = self._read(claimed)
        # Urgent first (the order in which they meet the rate limits); a stable sort keeps the
        # rest in order.
        ranked = [(j.priority, (j.id, j.chat_id, j.kind, j.payload)) for j in handed] + readable
        ranked.sort(key=lambda pair: pair[0])
        if not ranked and not unreadable:
            return marked > 0
        outcomes = unreadable + await asyncio.gather(
            *(self._send(*job, urgent=priority < NORMAL) for priority, job in ranked)
        )
        if not self._unmarked:
            self._unmarked_since = time.monotonic()
        self._unmarked.extend(outcomes)
        self._mark_soon = (
            self._mark_soon
            or bool(claimed)  # found rows: their chats may hold more (e.g. intro, then question)
            or any(j.follow_up for j in handed)
            or any(o.status != "sent" for o in outcomes)
        )
        return True

    def _read(self, claimed: list[Any]) -> tuple[list[tuple[int, Job]], list[Outcome]]:
        """The claimed rows to send, with their priority, and the outcomes of those whose
        payload cannot be read (written under another key, or damaged): these fail for good
        instead of failing the pass, and with it the messages sent beside them before they were
        marked."""
        jobs: list[tuple[int, Job]] = []
        unreadable: list[Outcome] = []
        for m in claimed:
            try:
                payload = outbox.payload_of(self.rt.cipher, m)
                jobs.append((m.priority, (m.id, m.chat_id, m.kind, payload)))
            except Exception as exc:
                error = f"unreadable: {type(exc).__name__}"
                unreadable.append(Outcome(m.id, "failed", error=error))
        return jobs, unreadable

    async def _mark_and_claim(self) -> tuple[list[Any], int]:
        """Write the unmarked outcomes and (when there is reason to look) claim due rows, in one
        transaction: a chat's next message becomes claimable in the transaction that marks its
        predecessor sent."""
        now = self.rt.clock.now()
        outcomes, self._unmarked = self._unmarked, []
        mark_soon, self._mark_soon = self._mark_soon, False
        # Look for rows when asked to, or when what is marked may hold up more of its chat; a
        # round that only marks handed messages needs no look.
        scan = self.rt.outbox_scan or mark_soon
        self.rt.outbox_scan = False
        limit = BATCH - min(len(self._handed), BATCH) if scan else 0
        try:
            async with self.rt.sessions() as s, s.begin():
                failed = await self._record_in(s, outcomes, now)
                claimed = (
                    await outbox.claim_rows(
                        s,
                        now=now,
                        lease=self._sim(LEASE_WALL_SECONDS),
                        worker=self.worker,
                        limit=limit,
                    )
                    if limit > 0
                    else []
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

    async def flush(self) -> None:
        """Mark outcomes not yet marked, and give back handed rows not sent (a restart sends
        them at once instead of after the lease)."""
        outcomes, self._unmarked = self._unmarked, []
        left = [job.id for job in (*self._handed_urgent, *self._handed)]
        self._handed.clear()
        self._handed_urgent.clear()
        self._handed_at.clear()
        if not outcomes and not left:
            return
        try:
            async with self.rt.sessions() as s, s.begin():
                failed = await self._record_in(s, outcomes, self.rt.clock.now())
                await outbox.release_claims(s, left)
        except BaseException:
            self._unmarked = outcomes
            raise
        self._count(outcomes, failed)

    async def _send(
        self, message_id: int, chat_id: int, kind: str, p: dict[str, Any], urgent: bool = False
    ) -> Outcome:
        self._sending.add(message_id)
        try:
            return await self._send_one(message_id, chat_id, kind, p, urgent)
        finally:
            self._sending.discard(message_id)
            self._dropped.discard(message_id)

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
            return await self._still_pending(message_id)
        except Exception as exc:
            log.info("outbox message %s held back: %s", message_id, type(exc).__name__)
            raise _Unsure from exc

    async def _call(self, chat_id: int, kind: str, p: dict[str, Any]) -> int | None:
        markup = keyboard(p.get("buttons"))
        parse_mode = p.get("parse_mode")
        if kind == "edit":
            result = await self.bot.edit_message_text(
                chat_id=chat_id,
                message_id=p["message_id"],
                text=p["text"],
                parse_mode=parse_mode,
                reply_markup=markup,
            )
            return p["message_id"] if result is True else result.message_id  # type: ignore[union-attr]
        if kind == "photo":
            msg = await self.bot.send_photo(
                chat_id=chat_id,
                photo=base64.b64decode(p["photo"]),
                caption=p.get("caption"),
                parse_mode=parse_mode,
            )
            return msg.message_id
        msg = await self.bot.send_message(
            chat_id=chat_id, text=p["text"], parse_mode=parse_mode, reply_markup=markup
        )
        return msg.message_id

    async def _record_in(self, s: AsyncSession, outcomes: list[Outcome], now: datetime) -> int:
        """Write the outcomes: sent ones in one statement, the rest row by row. Returns how many
        messages failed for good."""
        failed = 0
        await outbox.mark_sent(
            s, [(o.message_id, o.telegram_message_id) for o in outcomes if o.status == "sent"], now
        )
        await outbox.release_claims(s, [o.message_id for o in outcomes if o.status == "paused"])
        for o in outcomes:
            if o.status in ("sent", "paused", "dropped"):
                continue
            row = await s.get(OutboxMessage, o.message_id)
            if row is None:  # erased meanwhile
                continue
            if o.status == "retry" and row.attempts + 1 < MAX_ATTEMPTS:
                row.attempts += 1
                row.claimed_at = None
                row.error = o.error
                row.not_before = now + self._sim(min(60.0, 0.5 * 2**row.attempts))
            else:
                row.status, row.error = "failed", o.error
                row.attempts += 1
                failed += 1
                log.warning("outbox message %s failed for good: %s", row.id, o.error)
                if o.blocked and row.client_id is not None:
                    await self._mark_unreachable(s, row.client_id, now)
        return failed

    def _count(self, outcomes: list[Outcome], failed: int) -> None:
        self.sent_count += sum(o.status == "sent" for o in outcomes)
        self.failed_count += failed

    async def _mark_unreachable(self, s: Any, client_id: int, now: datetime) -> None:
        result = await s.execute(
            update(Client)
            .where(Client.id == client_id, Client.unreachable_at.is_(None))
            .values(unreachable_at=now)
        )
        if result.rowcount == 1:
            await repo.add_event(s, client_id=client_id, kind="blocked", at=now)
            log.info("client %s is unreachable (blocked the bot)", client_id)
