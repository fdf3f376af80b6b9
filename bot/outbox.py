"""The outbox sender: delivers committed messages through PTB, within Telegram's limits.

Only the head of each chat's queue can be claimed, so one chat's messages go out in order even with
several replicas. A 429 pauses all sending for `retry_after`; 5xx and timeouts are retried with
capped backoff; `Forbidden` marks the client unreachable (evidence for the signals). A message that
finally fails is kept with its error and reported in the log by id, never dropped silently.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.ratelimit import SendLimiter
from bot.runtime import Runtime
from storage import repo
from storage.models import Client, OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE_WALL_SECONDS = 60.0
BATCH = 60


def keyboard(rows: list[list[dict[str, str]]] | None) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["label"], callback_data=b["data"]) for b in row] for row in rows]
    )


@dataclass
class Outcome:
    message_id: int
    status: str  # sent | retry | failed | paused
    telegram_message_id: int | None = None
    error: str | None = None
    retry_in: float = 0.0  # wall seconds
    blocked: bool = False


class OutboxSender:
    def __init__(self, rt: Runtime, bot: Bot) -> None:
        self.rt = rt
        self.bot = bot
        self.limiter = SendLimiter(rt.settings.send_rate, rt.settings.chat_send_rate)
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._stopping = asyncio.Event()
        self.sent_count = 0
        self.failed_count = 0

    def _sim(self, wall_seconds: float) -> timedelta:
        """Wall seconds expressed on the injected clock (a time-lapse clock runs faster)."""
        return timedelta(seconds=wall_seconds * self.rt.clock.speed)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = await self.pass_once()
            except Exception:  # the loop must outlive any single failure (e.g. DB restart)
                log.exception("outbox pass failed; retrying")
                busy = False
                await asyncio.sleep(0.5)
            if not busy:
                self.rt.sender_wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.rt.sender_wakeup.wait(), timeout=0.25)

    def stop(self) -> None:
        self._stopping.set()
        self.rt.sender_wakeup.set()

    async def pass_once(self) -> bool:
        """Claim and send one batch; True if anything was claimed."""
        now = self.rt.clock.now()
        async with self.rt.sessions() as s, s.begin():
            claimed = await repo.claim_outbox(
                s, now=now, lease=self._sim(LEASE_WALL_SECONDS), worker=self.worker, limit=BATCH
            )
            cipher = self.rt.cipher
            jobs = [(m.id, m.chat_id, m.kind, repo.outbox_payload(cipher, m)) for m in claimed]
        if not jobs:
            return False
        outcomes = await asyncio.gather(*(self._send(*job) for job in jobs))
        await self._record(outcomes)
        return True

    async def _send(self, message_id: int, chat_id: int, kind: str, p: dict[str, Any]) -> Outcome:
        await self.limiter.acquire(chat_id)
        try:
            sent_id = await self._call(chat_id, kind, p)
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
        return Outcome(message_id, "sent", telegram_message_id=sent_id)

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

    async def _record(self, outcomes: list[Outcome]) -> None:
        now = self.rt.clock.now()
        async with self.rt.sessions() as s, s.begin():
            for o in outcomes:
                row = await s.get(OutboxMessage, o.message_id)
                if row is None:  # erased meanwhile
                    continue
                if o.status == "sent":
                    row.status, row.sent_at = "sent", now
                    row.telegram_message_id = o.telegram_message_id
                    row.attempts += 1
                    self.sent_count += 1
                elif o.status == "paused":
                    row.claimed_at = None
                elif o.status == "retry" and row.attempts + 1 < MAX_ATTEMPTS:
                    row.attempts += 1
                    row.claimed_at = None
                    row.error = o.error
                    row.not_before = now + self._sim(min(60.0, 0.5 * 2**row.attempts))
                else:
                    row.status, row.error = "failed", o.error
                    row.attempts += 1
                    self.failed_count += 1
                    log.warning("outbox message %s failed for good: %s", row.id, o.error)
                    if o.blocked and row.client_id is not None:
                        await self._mark_unreachable(s, row.client_id, now)

    async def _mark_unreachable(self, s: Any, client_id: int, now: datetime) -> None:
        result = await s.execute(
            update(Client)
            .where(Client.id == client_id, Client.unreachable_at.is_(None))
            .values(unreachable_at=now)
        )
        if result.rowcount == 1:
            await repo.add_event(s, client_id=client_id, kind="blocked", at=now)
            log.info("client %s is unreachable (blocked the bot)", client_id)
