"""Repositories: the only place that speaks SQL. Each function works inside the caller's session so
that a handler can commit state, answers and outbox rows in one transaction.

Works the same on SQLite and PostgreSQL; the shared suite in `tests/storage` runs against both.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.crypto import Cipher
from storage.models import (
    Answer,
    AuditEvent,
    Checkin,
    Client,
    ClientEvent,
    Invite,
    OutboxMessage,
    Practice,
    ProcessedUpdate,
    Therapist,
    TherapySession,
)

INVITE_TTL = timedelta(days=14)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A deep-link token: 43 characters of A-Za-z0-9_- (256 bits)."""
    return secrets.token_urlsafe(32)


def initials(name: str) -> str:
    parts = [p for p in name.replace("-", " ").split() if p and p[0].isalpha()]
    return "".join(p[0].upper() + "." for p in parts[:3]) or "Client"


# --- practice -------------------------------------------------------------------------------


async def get_practice(s: AsyncSession, now: datetime) -> Practice:
    """The single practice of this installation, created with the defaults on first use."""
    practice = await s.scalar(select(Practice).order_by(Practice.id).limit(1))
    if practice is None:
        practice = Practice(created_at=now, crisis_resources={})
        s.add(practice)
        await s.flush()
    return practice


# --- people ---------------------------------------------------------------------------------


async def add_therapist(
    s: AsyncSession, cipher: Cipher, *, name: str, timezone: str, now: datetime
) -> Therapist:
    practice = await get_practice(s, now)
    therapist = Therapist(
        practice_id=practice.id,
        name_enc=cipher.encrypt(name),
        timezone=timezone,
        language=practice.language,
        created_at=now,
    )
    s.add(therapist)
    await s.flush()
    return therapist


async def add_client(
    s: AsyncSession,
    cipher: Cipher,
    *,
    therapist_id: int,
    name: str,
    now: datetime,
    alias: str | None = None,
    timezone: str | None = None,
    cadence: str | None = None,
    language: str | None = None,
) -> Client:
    therapist = await s.get(Therapist, therapist_id)
    if therapist is None:
        raise LookupError(f"no therapist with id {therapist_id}")
    alias = alias or initials(name)
    taken = set(await s.scalars(select(Client.alias).where(Client.therapist_id == therapist_id)))
    base, n = alias, 2
    while alias in taken:
        alias, n = f"{base}{n}", n + 1
    client = Client(
        practice_id=therapist.practice_id,
        therapist_id=therapist_id,
        name_enc=cipher.encrypt(name),
        alias=alias,
        code=await _unique_code(s),
        timezone=timezone,
        cadence=cadence,
        language=language,
        created_at=now,
    )
    s.add(client)
    await s.flush()
    return client


async def _unique_code(s: AsyncSession) -> str:
    while True:
        code = "RC-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(4))
        if await s.scalar(select(Client.id).where(Client.code == code)) is None:
            return code


async def client_by_user(s: AsyncSession, telegram_user_id: int) -> Client | None:
    return await s.scalar(select(Client).where(Client.telegram_user_id == telegram_user_id))


async def therapist_by_user(s: AsyncSession, telegram_user_id: int) -> Therapist | None:
    return await s.scalar(select(Therapist).where(Therapist.telegram_user_id == telegram_user_id))


async def list_therapists(s: AsyncSession) -> Sequence[Therapist]:
    return (await s.scalars(select(Therapist).order_by(Therapist.id))).all()


async def list_clients(s: AsyncSession, therapist_id: int | None = None) -> Sequence[Client]:
    query = select(Client).order_by(Client.id)
    if therapist_id is not None:
        query = query.where(Client.therapist_id == therapist_id)
    return (await s.scalars(query)).all()


async def client_by_alias(s: AsyncSession, therapist_id: int, alias: str) -> Client | None:
    return await s.scalar(
        select(Client).where(
            Client.therapist_id == therapist_id, func.lower(Client.alias) == alias.lower()
        )
    )


# --- invites --------------------------------------------------------------------------------


async def create_invite(
    s: AsyncSession,
    *,
    now: datetime,
    client_id: int | None = None,
    therapist_id: int | None = None,
    ttl: timedelta = INVITE_TTL,
) -> str:
    """Create a single-use invite and return its token; only the hash is stored."""
    if (client_id is None) == (therapist_id is None):
        raise ValueError("an invite is for exactly one client or one therapist")
    token = new_token()
    s.add(
        Invite(
            token_hash=hash_token(token),
            client_id=client_id,
            therapist_id=therapist_id,
            expires_at=now + ttl,
            created_at=now,
        )
    )
    await s.flush()
    return token


@dataclass(frozen=True)
class Redemption:
    ok: bool
    reason: str  # "ok" | "invalid" | "used" | "expired" | "already_bound"
    client: Client | None = None
    therapist: Therapist | None = None


async def redeem_invite(
    s: AsyncSession, token: str, *, user_id: int, chat_id: int, now: datetime
) -> Redemption:
    """Bind a Telegram account through an invite. Nothing is written unless it succeeds."""
    invite = await s.scalar(select(Invite).where(Invite.token_hash == hash_token(token)))
    if invite is None:
        return Redemption(False, "invalid")
    if invite.used_at is not None:
        return Redemption(False, "used")
    if invite.expires_at <= now:
        return Redemption(False, "expired")
    if invite.client_id is not None:
        client = await s.get(Client, invite.client_id)
        if client is None:
            return Redemption(False, "invalid")
        other = await client_by_user(s, user_id)
        if other is not None and other.id != client.id:
            return Redemption(False, "already_bound")
        client.telegram_user_id, client.chat_id = user_id, chat_id
        client.status = "onboarding"
        invite.used_at = now
        return Redemption(True, "ok", client=client)
    therapist = await s.get(Therapist, invite.therapist_id)
    if therapist is None:
        return Redemption(False, "invalid")
    other_t = await therapist_by_user(s, user_id)
    if other_t is not None and other_t.id != therapist.id:
        return Redemption(False, "already_bound")
    therapist.telegram_user_id, therapist.chat_id = user_id, chat_id
    invite.used_at = now
    return Redemption(True, "ok", therapist=therapist)


# --- sessions (appointments) ------------------------------------------------------------------


async def add_session(
    s: AsyncSession,
    *,
    client_id: int,
    starts_at: datetime,
    minutes: int,
    now: datetime,
    source_uid: str | None = None,
) -> TherapySession:
    session = TherapySession(
        client_id=client_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        source_uid=source_uid,
        created_at=now,
    )
    s.add(session)
    await s.flush()
    return session


async def sessions_of(s: AsyncSession, client_id: int) -> Sequence[TherapySession]:
    return (
        await s.scalars(
            select(TherapySession)
            .where(TherapySession.client_id == client_id, TherapySession.cancelled.is_(False))
            .order_by(TherapySession.starts_at)
        )
    ).all()


async def next_session(s: AsyncSession, client_id: int, after: datetime) -> TherapySession | None:
    return await s.scalar(
        select(TherapySession)
        .where(
            TherapySession.client_id == client_id,
            TherapySession.cancelled.is_(False),
            TherapySession.starts_at > after,
        )
        .order_by(TherapySession.starts_at)
        .limit(1)
    )


# --- check-ins and answers --------------------------------------------------------------------


async def open_checkin(
    s: AsyncSession, *, client_id: int, instrument: str, now: datetime
) -> Checkin:
    checkin = Checkin(client_id=client_id, instrument=instrument, status="open", opened_at=now)
    s.add(checkin)
    await s.flush()
    return checkin


async def open_checkin_of(s: AsyncSession, client_id: int) -> Checkin | None:
    return await s.scalar(
        select(Checkin).where(Checkin.client_id == client_id, Checkin.status == "open")
    )


async def record_answer(
    s: AsyncSession,
    cipher: Cipher,
    *,
    checkin_id: int,
    item: str,
    value: int | None,
    at: datetime,
    text: str | None = None,
) -> bool:
    """Store one answer; an answer already stored for that item is kept (returns False)."""
    existing = await s.scalar(
        select(Answer.id).where(Answer.checkin_id == checkin_id, Answer.item == item)
    )
    if existing is not None:
        return False
    s.add(
        Answer(
            checkin_id=checkin_id,
            item=item,
            value=value,
            text_enc=cipher.encrypt(text) if text is not None else None,
            answered_at=at,
        )
    )
    await s.execute(
        update(Checkin)
        .where(Checkin.id == checkin_id, Checkin.first_answer_at.is_(None))
        .values(first_answer_at=at)
    )
    await s.flush()
    return True


async def answers_of(s: AsyncSession, checkin_id: int) -> Sequence[Answer]:
    return (
        await s.scalars(select(Answer).where(Answer.checkin_id == checkin_id).order_by(Answer.id))
    ).all()


async def checkins_of(s: AsyncSession, client_id: int) -> Sequence[Checkin]:
    return (
        await s.scalars(
            select(Checkin).where(Checkin.client_id == client_id).order_by(Checkin.opened_at)
        )
    ).all()


async def add_event(
    s: AsyncSession, *, client_id: int, kind: str, at: datetime, data: dict[str, Any] | None = None
) -> None:
    s.add(ClientEvent(client_id=client_id, kind=kind, at=at, data=data))


async def events_of(s: AsyncSession, client_id: int) -> Sequence[ClientEvent]:
    return (
        await s.scalars(
            select(ClientEvent).where(ClientEvent.client_id == client_id).order_by(ClientEvent.at)
        )
    ).all()


# --- duplicate updates ------------------------------------------------------------------------


async def mark_update_processed(s: AsyncSession, update_id: int, now: datetime) -> bool:
    """Record an update id; False if it was processed before (a duplicate delivery)."""
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


async def forget_sent_messages(s: AsyncSession, before: datetime) -> int:
    """Sent messages are kept only briefly: their bodies are client data."""
    result = await s.execute(
        delete(OutboxMessage).where(OutboxMessage.status == "sent", OutboxMessage.sent_at < before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def apply_retention(s: AsyncSession, before: datetime) -> dict[str, int]:
    """Delete check-ins (with their answers), events and sessions older than `before`."""
    old = select(Checkin.id).where(Checkin.opened_at < before)
    answers = await s.execute(delete(Answer).where(Answer.checkin_id.in_(old)))
    checkins = await s.execute(delete(Checkin).where(Checkin.opened_at < before))
    events = await s.execute(delete(ClientEvent).where(ClientEvent.at < before))
    sessions = await s.execute(delete(TherapySession).where(TherapySession.ends_at < before))
    return {
        name: int(result.rowcount or 0)  # type: ignore[attr-defined]
        for name, result in (
            ("answers", answers),
            ("checkins", checkins),
            ("events", events),
            ("sessions", sessions),
        )
    }


# --- outbox -----------------------------------------------------------------------------------


async def enqueue(
    s: AsyncSession,
    cipher: Cipher,
    *,
    chat_id: int,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    client_id: int | None = None,
    therapist_id: int | None = None,
    not_before: datetime | None = None,
) -> OutboxMessage:
    message = OutboxMessage(
        chat_id=chat_id,
        client_id=client_id,
        therapist_id=therapist_id,
        kind=kind,
        payload_enc=cipher.encrypt(json.dumps(payload, ensure_ascii=False)),
        status="pending",
        attempts=0,
        not_before=not_before or now,
        created_at=now,
    )
    s.add(message)
    await s.flush()
    return message


def outbox_payload(cipher: Cipher, message: OutboxMessage) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(cipher.decrypt(message.payload_enc))
    return payload


async def claim_outbox(
    s: AsyncSession, *, now: datetime, lease: timedelta, worker: str, limit: int
) -> list[OutboxMessage]:
    """Claim up to `limit` due messages for this worker; a claim older than `lease` is taken over.

    Only the head of each chat's queue is eligible, so a chat's messages keep their order.
    The claim is a conditional UPDATE per candidate, so two senders never get the same row on
    either backend (on PostgreSQL the candidates are also selected with SKIP LOCKED).
    """
    stale = now - lease
    earlier = aliased(OutboxMessage)
    query = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.not_before <= now,
            or_(OutboxMessage.claimed_at.is_(None), OutboxMessage.claimed_at < stale),
            ~exists().where(
                earlier.chat_id == OutboxMessage.chat_id,
                earlier.status == "pending",
                earlier.id < OutboxMessage.id,
            ),
        )
        .order_by(OutboxMessage.not_before, OutboxMessage.id)
        .limit(limit)
    )
    if s.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(await s.scalars(query))
    claimed: list[OutboxMessage] = []
    for message_id in ids:
        result = await s.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status == "pending",
                or_(OutboxMessage.claimed_at.is_(None), OutboxMessage.claimed_at < stale),
            )
            .values(claimed_at=now, claimed_by=worker)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            message = await s.get(OutboxMessage, message_id, populate_existing=True)
            if message is not None:
                claimed.append(message)
    return claimed


async def pending_outbox_count(s: AsyncSession) -> int:
    return int(
        await s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        )
        or 0
    )


# --- audit ------------------------------------------------------------------------------------


async def audit(
    s: AsyncSession,
    *,
    actor: str,
    action: str,
    now: datetime,
    client_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    s.add(AuditEvent(at=now, actor=actor, action=action, client_id=client_id, detail=detail))


async def audit_log(s: AsyncSession, client_id: int | None = None) -> Sequence[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if client_id is not None:
        query = query.where(AuditEvent.client_id == client_id)
    return (await s.scalars(query)).all()


# --- erasure ----------------------------------------------------------------------------------


async def erase_client(s: AsyncSession, client_id: int, now: datetime, actor: str) -> bool:
    """Hard-delete every row about the client; an audit row keeps only the bare id and the fact."""
    client = await s.get(Client, client_id)
    if client is None:
        return False
    checkin_ids = select(Checkin.id).where(Checkin.client_id == client_id)
    await s.execute(delete(Answer).where(Answer.checkin_id.in_(checkin_ids)))
    for model in (Checkin, ClientEvent, TherapySession, OutboxMessage, Invite):
        await s.execute(delete(model).where(model.client_id == client_id))
    await s.execute(delete(AuditEvent).where(AuditEvent.client_id == client_id))
    await s.delete(client)
    await s.flush()
    await audit(s, actor=actor, action="client_erased", now=now, client_id=client_id)
    return True
