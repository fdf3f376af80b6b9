"""The heartbeat: every few seconds, ask the database what is due and do it, exactly once.

Each due item is claimed and handled in one transaction with a compare-and-set on the column that
made it due (e.g. `next_checkin_at = :seen`). If another replica got there first the update matches
no row and this one moves on; if a process dies mid-way its transaction rolls back and the item is
still due. Check-ins, the bulk of the work, are opened a batch of clients per transaction
(`app.opening`), with their candidates read `FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas
spread the work instead of queueing on the same rows. An item that fails on its own (a broken
row) is set aside for a while (`app.quarantine`) so that it cannot hold up the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from app import alerts, effects
from app.digests import send_digest
from app.opening import open_due
from app.planning import client_quiet
from app.quarantine import DIGEST, ESCALATION, EXPIRY, NUDGE, RESUMPTION, is_transient
from app.runtime import Runtime, Session
from flows import lifecycle
from flows.events import Nudge
from flows.lifecycle import Actor
from flows.statuses import CheckinStatus, ClientStatus
from flows.timing import NUDGE_MIN_BEFORE_EXPIRY, defer_out_of_quiet
from storage import alerts as alert_store
from storage import due, outbox, people, retention
from storage.models import Checkin, Client, Practice, TherapySession

log = logging.getLogger(__name__)

Handler = Callable[[Runtime, int, datetime], Awaitable[bool]]
"""Handles one due item (by id) in its own transaction; True if it did something."""

Finder = Callable[[Session, datetime, Collection[int], int], Awaitable[list[int]]]
"""The ids of due items (`storage.due`): (session, now, ids to leave alone, at most)."""

BATCH = 200
"""Nudges, expiries, digests and resumptions handled per pass, each; check-ins are opened in
batches until none is due (`app.opening`)."""


@dataclass
class Pass:
    opened: int = 0
    nudged: int = 0
    expired: int = 0
    digests: int = 0
    resumed: int = 0
    escalated: int = 0
    open_batches: int = 0  # transactions that opened check-ins (see `app.opening`)
    backlog: bool = False  # check-ins were still due when the pass's time budget ran out

    @property
    def total(self) -> int:
        return (
            self.opened + self.nudged + self.expired + self.digests + self.resumed + self.escalated
        )


def interval_seconds(speed: float, real_seconds: float = 5.0) -> float:
    """Wall seconds between passes: 5 s in real time, shrinking under a time-lapse clock."""
    return max(0.05, real_seconds / max(speed, 1.0))


async def run_pass(rt: Runtime) -> Pass:
    """One heartbeat pass over everything due now."""
    now = rt.clock.now()
    result = Pass()
    result.escalated = await _escalate(rt, now)  # first: quiet hours never delay an urgent alert
    result.resumed = await _resume_paused(rt, now)
    result.expired = await _expire(rt, now)
    opening = await open_due(rt, now)
    result.opened, result.open_batches = opening.opened, opening.batches
    result.backlog = opening.backlog
    result.nudged = await _nudge(rt, now)
    result.digests = await _digests(rt, now)
    if result.total:
        rt.wake_sender()
        log.debug("heartbeat: %s", result)
    return result


async def _each_due(rt: Runtime, now: datetime, kind: str, find: Finder, handle: Handler) -> int:
    """Handle up to `BATCH` due items that `find` finds, each in its own transaction; how many
    were done. An item that fails on its own is set aside (`app.quarantine`) and the rest go on."""
    quarantine = rt.quarantine
    async with rt.sessions() as s:
        ids = await find(s, now, quarantine.held(kind, now), BATCH)
    done = 0
    for item in ids:
        try:
            done += await handle(rt, item, now)
        except Exception as exc:
            if is_transient(exc):
                raise
            quarantine.failed(kind, item, now, exc)
        else:
            quarantine.cleared(kind, (item,))
    return done


def _morning(client: Client, practice: Practice, now: datetime) -> datetime:
    """`now`, or the end of the client's quiet hours if `now` falls inside them.

    Items are planned outside quiet hours, but a heartbeat that was down, or a change of zone or
    quiet hours since the planning, can leave one due at night: it then waits for the morning.
    """
    return defer_out_of_quiet(now, client.timezone or "UTC", client_quiet(client, practice))


async def _nudge(rt: Runtime, now: datetime) -> int:
    return await _each_due(rt, now, NUDGE, due.due_nudges, _nudge_one)


async def _nudge_one(rt: Runtime, checkin_id: int, now: datetime) -> bool:
    async with rt.sessions() as s, s.begin():
        checkin = await s.get(Checkin, checkin_id)
        if checkin is None or checkin.nudge_at is None or checkin.nudge_at > now:
            return False
        client = await s.get(Client, checkin.client_id)
        practice = await people.get_practice(s, now)
        morning = now if client is None else _morning(client, practice, now)
        if morning > now:  # due at night: the morning, unless that is too near the expiry
            expires = checkin.expires_at
            keep = expires is None or morning <= expires - NUDGE_MIN_BEFORE_EXPIRY
            await due.move_nudge(s, checkin_id, checkin.nudge_at, morning if keep else None)
            return False
        if not await due.claim_nudge(s, checkin_id, now):
            return False
        if (
            client is None
            or client.status != ClientStatus.ACTIVE
            or client.unreachable_at is not None
        ):
            return False  # nobody to remind: stopped, paused, or the bot is blocked
        await effects.client_event(s, rt, client, Nudge(at=now), None, now, None)
        return True


async def _expire(rt: Runtime, now: datetime) -> int:
    return await _each_due(rt, now, EXPIRY, due.due_expiries, _expire_one)


async def _expire_one(rt: Runtime, checkin_id: int, now: datetime) -> bool:
    async with rt.sessions() as s, s.begin():
        checkin = await s.get(Checkin, checkin_id)
        if checkin is None or checkin.status != CheckinStatus.OPEN:
            return False
        client = await s.get(Client, checkin.client_id)
        assert client is not None  # a check-in goes with its client
        await effects.expire(s, rt, client, checkin_id, now)
        await alerts.check_missed(s, rt, client, now)  # a withdrawal is alerted the same day
        return True


async def _escalate(rt: Runtime, now: datetime) -> int:
    return await _each_due(rt, now, ESCALATION, alert_store.due_escalations, _escalate_one)


async def _escalate_one(rt: Runtime, alert_id: int, now: datetime) -> bool:
    async with rt.sessions() as s, s.begin():
        return await alerts.escalate(s, rt, alert_id, now)


async def _digests(rt: Runtime, now: datetime) -> int:
    return await _each_due(rt, now, DIGEST, due.due_digests, _digest_one)


async def _digest_one(rt: Runtime, session_id: int, now: datetime) -> bool:
    async with rt.sessions() as s, s.begin():
        if not await due.claim_digest(s, session_id, now):
            return False
        session = await s.get(TherapySession, session_id)
        assert session is not None
        return await send_digest(s, rt, session, now)


async def _resume_paused(rt: Runtime, now: datetime) -> int:
    return await _each_due(rt, now, RESUMPTION, due.due_resumptions, _resume_one)


async def _resume_one(rt: Runtime, client_id: int, now: datetime) -> bool:
    """A pause with an end date ran out: resumed as by anyone else (`flows.lifecycle.resume`)."""
    async with rt.sessions() as s, s.begin():
        if not await due.claim_resumption(s, client_id, now):
            return False
        client = await s.get(Client, client_id)
        assert client is not None
        resumed = lifecycle.resume(client.status, at=now, by=Actor.SCHEDULE)
        await effects.change(s, rt, client, resumed, now)
        return True


SENT_KEPT = timedelta(days=1)
UPDATE_IDS_KEPT = timedelta(days=7)


async def housekeeping(rt: Runtime) -> dict[str, int]:
    """Forget what is no longer needed: old update ids, the bodies of sent messages, and client
    data older than the practice's retention period."""
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        practice = await people.get_practice(s, now)
        done = {
            "update_ids": await retention.forget_processed_updates(s, now - UPDATE_IDS_KEPT),
            "sent_messages": await outbox.forget_sent_messages(s, now - SENT_KEPT),
        }
        if practice.retention_days < MIN_RETENTION_DAYS:
            # Stored by an older version that rounded `--retention 1h` down to 0 days: deleting
            # every answer is never what was meant. Nothing is deleted until it is set again.
            log.error(
                "retention of %d days kept nothing: skipped; set it with rapport practice set "
                "--retention",
                practice.retention_days,
            )
            return done
        return {
            **done,
            **await retention.apply_retention(s, now - timedelta(days=practice.retention_days)),
        }


MIN_RETENTION_DAYS = 1
