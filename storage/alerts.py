"""Alerts about clients and the messages that show them to clinicians: stored, acknowledged
once (a compare-and-set), escalated once (another), and listed while open. The messages' text
is stored encrypted by the caller; this module never reads it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Exists, Table, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Alert, AlertMessage, Client, OutboxMessage


async def add_alert(
    s: AsyncSession,
    *,
    client_id: int,
    kind: str,
    cause: str | None,
    urgent: bool,
    raised_at: datetime,
    escalate_at: datetime | None,
) -> Alert:
    alert = Alert(
        client_id=client_id,
        kind=kind,
        cause=cause,
        urgent=urgent,
        raised_at=raised_at,
        escalate_at=escalate_at,
    )
    s.add(alert)
    await s.flush()
    return alert


async def add_message(
    s: AsyncSession,
    *,
    alert_id: int,
    therapist_id: int,
    chat_id: int,
    outbox_id: int | None,
    text_enc: bytes,
) -> None:
    s.add(
        AlertMessage(
            alert_id=alert_id,
            therapist_id=therapist_id,
            chat_id=chat_id,
            outbox_id=outbox_id,
            text_enc=text_enc,
        )
    )
    await s.flush()


_MESSAGE = cast(Table, AlertMessage.__table__)
_NOTE_SENT = (
    update(_MESSAGE)
    .where(_MESSAGE.c.outbox_id == bindparam("b_outbox"))
    .values(telegram_message_id=bindparam("b_telegram"))
)


async def note_sent(s: AsyncSession, sent: Sequence[tuple[int, int | None]]) -> None:
    """Keep the Telegram message id of alert messages just sent (outbox id, message id): the
    outbox forgets sent rows within a day, and the message is edited when acknowledged."""
    params = [{"b_outbox": o, "b_telegram": tg} for o, tg in sent if tg is not None]
    if params:
        await s.execute(_NOTE_SENT, params)


async def get(s: AsyncSession, alert_id: int) -> Alert | None:
    return await s.get(Alert, alert_id)


async def messages_of(s: AsyncSession, alert_id: int) -> Sequence[AlertMessage]:
    return (
        await s.scalars(
            select(AlertMessage).where(AlertMessage.alert_id == alert_id).order_by(AlertMessage.id)
        )
    ).all()


async def sent_message_ids(s: AsyncSession, messages: Sequence[AlertMessage]) -> dict[int, int]:
    """alert message id -> Telegram message id, for those sent (asked of the outbox for any
    whose sending was not yet noted)."""
    found = {m.id: m.telegram_message_id for m in messages if m.telegram_message_id is not None}
    waiting = {m.outbox_id: m.id for m in messages if m.id not in found and m.outbox_id}
    if waiting:
        rows = await s.execute(
            select(OutboxMessage.id, OutboxMessage.telegram_message_id).where(
                OutboxMessage.id.in_(list(waiting)), OutboxMessage.status == "sent"
            )
        )
        for outbox_id, telegram_id in rows:
            if telegram_id is not None:
                found[waiting[outbox_id]] = telegram_id
    return found


async def message_by_outbox(s: AsyncSession, outbox_id: int) -> AlertMessage | None:
    return await s.scalar(select(AlertMessage).where(AlertMessage.outbox_id == outbox_id))


async def acknowledge(
    s: AsyncSession, alert_id: int, *, choice: str, by: int, at: datetime
) -> bool:
    """Record the acknowledgement; False if the alert was acknowledged already."""
    done = await s.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.ack_at.is_(None))
        .values(ack_choice=choice, ack_by=by, ack_at=at, escalate_at=None)
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def _shown_to(therapist_id: int) -> Exists:
    return exists().where(
        AlertMessage.alert_id == Alert.id, AlertMessage.therapist_id == therapist_id
    )


async def open_ids_shown_to(s: AsyncSession, therapist_id: int) -> set[int]:
    """Ids of the unacknowledged alerts shown to the therapist."""
    query = select(Alert.id).where(Alert.ack_at.is_(None), _shown_to(therapist_id))
    return set((await s.scalars(query)).all())


async def open_for_therapist(s: AsyncSession, therapist_id: int) -> Sequence[Alert]:
    """Unacknowledged alerts shown to the therapist, oldest first."""
    return (
        await s.scalars(
            select(Alert)
            .where(Alert.ack_at.is_(None), _shown_to(therapist_id))
            .order_by(Alert.raised_at, Alert.id)
        )
    ).all()


async def open_alerts(
    s: AsyncSession, client_ids: Collection[int] | None = None
) -> Sequence[Alert]:
    """Every unacknowledged alert (of these clients, if given), oldest first."""
    query = select(Alert).where(Alert.ack_at.is_(None))
    if client_ids is not None:
        query = query.where(Alert.client_id.in_(list(client_ids)))
    return (await s.scalars(query.order_by(Alert.raised_at))).all()


async def alerts_of(s: AsyncSession, client_id: int, since: datetime | None) -> Sequence[Alert]:
    query = select(Alert).where(Alert.client_id == client_id)
    if since is not None:
        query = query.where(Alert.raised_at > since)
    return (await s.scalars(query.order_by(Alert.raised_at))).all()


async def last_of_kind(
    s: AsyncSession, client_id: int, kind: str, *, open_urgent: bool = False
) -> Alert | None:
    """The client's latest alert of `kind` (`open_urgent`: an urgent one nobody acknowledged)."""
    query = select(Alert).where(Alert.client_id == client_id, Alert.kind == kind)
    if open_urgent:
        query = query.where(Alert.urgent.is_(True), Alert.ack_at.is_(None))
    return await s.scalar(query.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(1))


async def due_escalations(
    s: AsyncSession, now: datetime, skip: Collection[int], limit: int
) -> list[int]:
    """Urgent alerts still unacknowledged at their escalation time."""
    query = select(Alert.id).where(Alert.escalate_at <= now, Alert.ack_at.is_(None))
    if skip:
        query = query.where(Alert.id.notin_(list(skip)))
    return list(await s.scalars(query.order_by(Alert.escalate_at).limit(limit)))


async def claim_escalation(s: AsyncSession, alert_id: int, now: datetime) -> bool:
    """Take the alert's one escalation; False if it was acknowledged or escalated meanwhile."""
    done = await s.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.escalate_at <= now, Alert.ack_at.is_(None))
        .values(escalate_at=None)
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


async def ongoing_flag(
    s: AsyncSession, client_id: int, kind: str, *, lock: bool = False
) -> Alert | None:
    """The client's latest alert of `kind` whose episode has not ended (a flag). `lock`: first
    lock the client's row till the transaction ends, so that two digests of one client at once
    (two replicas, a digest asked for as the heartbeat sends one) raise one flag, not two."""
    if lock:
        await s.execute(select(Client.id).where(Client.id == client_id).with_for_update())
    return await s.scalar(
        select(Alert)
        .where(Alert.client_id == client_id, Alert.kind == kind, Alert.ended_at.is_(None))
        .order_by(Alert.raised_at.desc(), Alert.id.desc())
        .limit(1)
    )


async def acknowledged(s: AsyncSession, *, urgent: bool) -> Sequence[tuple[int, datetime, str]]:
    """(client id, when, choice) of every acknowledged alert, urgent or not, in time order."""
    rows = await s.execute(
        select(Alert.client_id, Alert.ack_at, Alert.ack_choice)
        .where(Alert.ack_at.is_not(None), Alert.ack_choice.is_not(None), Alert.urgent == urgent)
        .order_by(Alert.ack_at, Alert.id)
    )
    return [(client_id, at, choice) for client_id, at, choice in rows if at and choice]
