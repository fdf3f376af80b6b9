"""Kept and removed: the updates seen (duplicates dropped), retention, and erasure. Each function
takes the caller's session and never commits: the caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, bindparam, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import audit
from storage.models import (
    Alert,
    AlertMessage,
    Answer,
    AuditEvent,
    Checkin,
    Client,
    ClientEvent,
    ClientNote,
    Invite,
    OutboxMessage,
    ProcessedUpdate,
    TherapySession,
)
from storage.outbox import URGENT
from storage.types import UTCDateTime

# --- duplicate updates ------------------------------------------------------------------------


# One INSERT that skips a known id: no savepoint, and no error to recover from. On PostgreSQL a
# concurrent insert of the same id waits for the other transaction and then skips (or inserts,
# if that one rolled back), so a duplicate is still stored once. The same text runs on both
# backends; written as text because the dialects' ON CONFLICT constructs are never cached (each
# use would compile the statement anew).
_MARK_SQL = (
    "INSERT INTO processed_update (update_id, processed_at) VALUES (:update_id, :processed_at) "
    "ON CONFLICT DO NOTHING"
)
_MARK_PARAMS = (
    bindparam("update_id", type_=BigInteger()),
    bindparam("processed_at", type_=UTCDateTime()),
)
_MARK_PROCESSED = text(_MARK_SQL).bindparams(*_MARK_PARAMS)

MARKED = (
    select(func.count())
    .select_from(
        text(f"{_MARK_SQL} RETURNING update_id")
        .bindparams(*_MARK_PARAMS)
        .columns(update_id=BigInteger())
        .cte("mark")
    )
    .scalar_subquery()
)
"""The same mark as a column of another PostgreSQL statement, which then needs no round trip of
its own: 1 for an update seen first, 0 for a duplicate (parameters `update_id` and
`processed_at`). PostgreSQL runs an INSERT in a WITH clause once, whatever the statement reads."""


async def mark_update_processed(s: AsyncSession, update_id: int, now: datetime) -> bool:
    """Record an update id; False if it was processed before (a duplicate delivery)."""
    if s.get_bind().dialect.name in ("sqlite", "postgresql"):
        result = await s.execute(_MARK_PROCESSED, {"update_id": update_id, "processed_at": now})
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
    try:
        async with s.begin_nested():
            s.add(ProcessedUpdate(update_id=update_id, processed_at=now))
            await s.flush()
    except IntegrityError:
        return False
    return True


async def forget_processed_updates(s: AsyncSession, before: datetime) -> int:
    result = await s.execute(delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def apply_retention(s: AsyncSession, before: datetime) -> dict[str, int]:
    """Delete check-ins (with their answers), events, sessions, and messages that failed for
    good, older than `before`. Pending messages are never dropped; sent ones go sooner
    (`forget_sent_messages`)."""
    old = select(Checkin.id).where(Checkin.opened_at < before)
    answers = await s.execute(delete(Answer).where(Answer.checkin_id.in_(old)))
    checkins = await s.execute(delete(Checkin).where(Checkin.opened_at < before))
    events = await s.execute(delete(ClientEvent).where(ClientEvent.at < before))
    notes = await s.execute(delete(ClientNote).where(ClientNote.at < before))
    sessions = await s.execute(delete(TherapySession).where(TherapySession.ends_at < before))
    old_alerts = select(Alert.id).where(Alert.raised_at < before)
    await s.execute(delete(AlertMessage).where(AlertMessage.alert_id.in_(old_alerts)))
    await s.execute(delete(Alert).where(Alert.raised_at < before))
    failed = await s.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status == "failed", OutboxMessage.created_at < before
        )
    )
    return {
        name: int(result.rowcount or 0)  # type: ignore[attr-defined]
        for name, result in (
            ("answers", answers),
            ("checkins", checkins),
            ("events", events),
            ("notes", notes),
            ("sessions", sessions),
            ("failed_messages", failed),
        )
    }


# --- erasure ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    """What an erasure removed that a running process may still hold in memory by id."""

    client_id: int
    checkin_ids: tuple[int, ...]
    session_ids: tuple[int, ...]
    outbox_ids: tuple[int, ...]


async def erase_client(s: AsyncSession, client_id: int, now: datetime, actor: str) -> Erased | None:
    """Hard-delete every row derived from the client: the client, their check-ins and answers,
    events, notes (requests to talk, why they stopped), sessions, invites, and every outbox row
    to them or about them (pending, failed or sent: undelivered digests and alerts are
    cancelled), except an urgent alert still on its way to a person. The audit trail stays,
    reduced to actor, action, time and the bare id, and records the erasure itself. None if no
    such client."""
    client = await s.get(Client, client_id)
    if client is None:
        return None
    checkin_ids = tuple(await s.scalars(select(Checkin.id).where(Checkin.client_id == client_id)))
    session_ids = tuple(
        await s.scalars(select(TherapySession.id).where(TherapySession.client_id == client_id))
    )
    # An urgent alert still on its way to a person outlives the erasure: the client was told
    # someone knows, and safety comes first. It goes out as nobody's message (its alert row,
    # and so its buttons' effect and its escalation, go with the client).
    await s.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.about_client_id == client_id,
            OutboxMessage.priority == URGENT,
            OutboxMessage.status == "pending",
            or_(OutboxMessage.client_id.is_(None), OutboxMessage.client_id != client_id),
        )
        .values(about_client_id=None)
    )
    theirs = or_(OutboxMessage.client_id == client_id, OutboxMessage.about_client_id == client_id)
    outbox_ids = tuple(await s.scalars(select(OutboxMessage.id).where(theirs)))
    await s.execute(
        delete(Answer).where(
            Answer.checkin_id.in_(select(Checkin.id).where(Checkin.client_id == client_id))
        )
    )
    alert_ids = select(Alert.id).where(Alert.client_id == client_id)
    await s.execute(delete(AlertMessage).where(AlertMessage.alert_id.in_(alert_ids)))
    for model in (Checkin, ClientEvent, ClientNote, TherapySession, Invite, Alert):
        await s.execute(delete(model).where(model.client_id == client_id))
    await s.execute(delete(OutboxMessage).where(theirs))
    # Audit rows hold no client data by construction (`audit`); clear any older detail anyway.
    await s.execute(update(AuditEvent).where(AuditEvent.client_id == client_id).values(detail=None))
    await s.delete(client)
    await s.flush()
    await audit(s, actor=actor, action="client_erased", now=now, client_id=client_id)
    return Erased(client_id, checkin_ids, session_ids, outbox_ids)
