"""The outbox as its sender sees it (`bot.outbox`): claiming due rows, writing down how each send
went, and asking whether rows are still wanted, each in one transaction. How and when to send (the
limits, the retries' pace, the lanes) is the sender's; what a send's outcome means for the stored
rows is decided here: sent, due again later, failed for good, or its client unreachable.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app import alerts
from app.runtime import OutboxJob, Runtime, Session
from storage import alerts as alert_store
from storage import checkins, outbox, people
from storage.db import short_transaction

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    message_id: int
    status: str  # sent | retry | failed | paused | dropped (erased, or no longer pending)
    telegram_message_id: int | None = None
    error: str | None = None
    retry_in: float = 0.0  # wall seconds
    blocked: bool = False
    alert: bool = False  # the message showed an alert (`app.alerts`): its id is kept


RetryIn = Callable[[int], timedelta | None]
"""After so many attempts at a row, how long until the next (None: give up on it)."""


@dataclass(frozen=True)
class Claim:
    """What one claim brought: rows to send, in sending order, and outcomes of rows whose
    payload cannot be read (written under another key, or damaged), which fail for good instead
    of failing the pass and the messages sent beside them."""

    jobs: list[OutboxJob]
    unreadable: list[Outcome]

    def __len__(self) -> int:
        return len(self.jobs) + len(self.unreadable)


async def claim(
    rt: Runtime,
    *,
    worker: str,
    lease: timedelta,
    limit: int,
    urgent_only: bool = False,
) -> Claim:
    """Claim due rows for `worker` (a claim older than `lease` is taken over)."""
    async with rt.sessions() as s, s.begin():
        rows = await outbox.claim_rows(
            s, now=rt.clock.now(), lease=lease, worker=worker, limit=limit, urgent_only=urgent_only
        )
    return _read(rt, rows)


async def record_and_claim(
    rt: Runtime,
    outcomes: Sequence[Outcome],
    now: datetime,
    retry_in: RetryIn,
    *,
    worker: str,
    lease: timedelta,
    limit: int,
) -> tuple[Claim, int]:
    """Write the outcomes and claim up to `limit` due rows, in one transaction: a chat's next
    message becomes claimable in the transaction that marks its predecessor sent. Also returns
    how many messages failed for good."""
    # Marking is short; a look for due rows scans the backlog, which may be long.
    with short_transaction() if limit == 0 else contextlib.nullcontext():
        async with rt.sessions() as s, s.begin():
            failed = await _record(s, rt, outcomes, now, retry_in)
            rows = (
                await outbox.claim_rows(s, now=now, lease=lease, worker=worker, limit=limit)
                if limit > 0
                else []
            )
    return _read(rt, rows), failed


async def record_and_release(
    rt: Runtime,
    outcomes: Sequence[Outcome],
    left: Sequence[int],
    now: datetime,
    retry_in: RetryIn,
) -> int:
    """Write the outcomes and give back rows claimed but not sent (a sender stopping): due again
    at once. Returns how many messages failed for good."""
    with short_transaction():
        async with rt.sessions() as s, s.begin():
            failed = await _record(s, rt, outcomes, now, retry_in)
            await outbox.release_claims(s, left)
    return failed


async def still_pending(rt: Runtime, ids: Sequence[int]) -> set[int]:
    """Which of these rows are still there and pending (not erased, nor sent by another)."""
    with short_transaction():
        async with rt.sessions() as s:
            return await outbox.still_pending(s, ids)


async def telegram_id_of(rt: Runtime, row_id: int) -> int | None:
    """The Telegram id of the message an outbox row sent (`outbox.telegram_id_of`)."""
    with short_transaction():
        async with rt.sessions() as s:
            return await outbox.telegram_id_of(s, row_id)


async def pending_payloads(rt: Runtime, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The payloads, in clear, of these rows that are still pending (one that cannot be read is
    left out, and so not sent: its claim lapses and a claim then fails it for good)."""
    with short_transaction():
        async with rt.sessions() as s:
            rows = await outbox.pending_payloads(s, ids)
    payloads: dict[int, dict[str, Any]] = {}
    for row_id, payload_enc in rows.items():
        try:
            payloads[row_id] = json.loads(rt.cipher.decrypt(payload_enc))
        except Exception as exc:
            log.warning("outbox message %s unreadable: %s", row_id, type(exc).__name__)
    return payloads


def _read(rt: Runtime, rows: Sequence[Any]) -> Claim:
    """The claimed rows' payloads in clear, read once the claim has committed."""
    jobs: list[OutboxJob] = []
    unreadable: list[Outcome] = []
    for row in rows:
        try:
            payload = outbox.payload_of(rt.cipher, row)
        except Exception as exc:
            unreadable.append(Outcome(row.id, "failed", error=f"unreadable: {type(exc).__name__}"))
            continue
        jobs.append(OutboxJob(row.id, row.chat_id, row.kind, payload, priority=row.priority))
    return Claim(jobs, unreadable)


async def _record(
    s: Session, rt: Runtime, outcomes: Sequence[Outcome], now: datetime, retry_in: RetryIn
) -> int:
    """Sent ones in one statement, paused ones given back in another, the rest row by row.
    Returns how many messages failed for good."""
    sent = [(o.message_id, o.telegram_message_id) for o in outcomes if o.status == "sent"]
    await outbox.mark_sent(s, sent, now)
    await alert_store.note_sent(
        s,
        [(o.message_id, o.telegram_message_id) for o in outcomes if o.alert and o.status == "sent"],
    )
    await outbox.release_claims(s, [o.message_id for o in outcomes if o.status == "paused"])
    failed = 0
    for o in outcomes:
        if o.status in ("sent", "paused", "dropped"):
            continue
        retry_at = _retry_at(now, retry_in) if o.status == "retry" else _never
        row = await outbox.record_attempt(s, o.message_id, o.error, retry_at)
        if row is None or row.status != "failed":
            continue
        failed += 1
        log.warning("outbox message %s failed for good: %s", row.id, o.error)
        if o.blocked and row.client_id is not None:
            await client_unreachable(s, rt, row.client_id, now)
        elif o.blocked and row.therapist_id is not None:
            if await people.mark_therapist_unreachable(s, row.therapist_id, now):
                # Urgent alerts go to the safety contact from now on (`app.alerts.reachable`).
                log.info("therapist %s is unreachable (blocked the bot)", row.therapist_id)
            if o.alert:  # this one too, and the client hears the truth
                await alerts.delivery_failed(s, rt, row.id, now)
    return failed


def _retry_at(now: datetime, retry_in: RetryIn) -> Callable[[int], datetime | None]:
    def at(attempts: int) -> datetime | None:
        wait = retry_in(attempts)
        return None if wait is None else now + wait

    return at


def _never(_attempts: int) -> datetime | None:
    return None


async def client_unreachable(s: Session, rt: Runtime, client_id: int, now: datetime) -> None:
    """A send found that the client blocked the bot: evidence for the signals, and an alert for
    the therapist (`app.alerts.note_withdrawal`)."""
    if await people.mark_unreachable(s, client_id, now):
        await checkins.add_event(s, client_id=client_id, kind="blocked", at=now)
        log.info("client %s is unreachable (blocked the bot)", client_id)
        client = await people.client_by_id(s, client_id)
        if client is not None:
            await alerts.note_withdrawal(s, rt, client, "blocked", now)
