"""Repositories: the only place that speaks SQL. Each function works inside the caller's session so
that a handler can commit state, answers and outbox rows in one transaction.

Works the same on SQLite and PostgreSQL; the shared suite in `tests/storage` runs against both.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Integer,
    Row,
    SmallInteger,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from flows.lifecycle import CheckinStatus, ClientStatus
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
from storage.types import UTCDateTime

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
    engine = s.get_bind()
    known = _PRACTICE_IDS.get(engine)
    if known is not None:
        # By primary key: no SQL at all when the session holds it already (`client_by_user`).
        held = s.info.get(_PRACTICE_KEY)
        if held is not None and held.id == known and held in s:
            return held
        practice = await s.get(Practice, known)
        if practice is not None:
            return practice
    practice = await s.scalar(select(Practice).order_by(Practice.id).limit(1))
    if practice is None:
        practice = Practice(created_at=now, crisis_resources={})
        s.add(practice)
        await s.flush()
    _PRACTICE_IDS[engine] = practice.id
    return practice


# Per engine, the id `get_practice` found. Practices are never deleted and new ones get higher ids,
# so the first practice stays the first; should it vanish all the same, the query runs again.
_PRACTICE_IDS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_PRACTICE_KEY = "rapport.practice"


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
    if s.get_bind().dialect.name == "sqlite":
        client.id = await _unused_client_id(s)
    s.add(client)
    await s.flush()
    return client


async def _unused_client_id(s: AsyncSession) -> int:
    """A client id never given before. SQLite hands out one more than the highest id *now*, so
    the id of the last client erased would come back, and the audit trail (which keeps erased
    clients' bare ids) would pin their history on a stranger. PostgreSQL's sequence never
    goes back. Safe against a concurrent insert: SQLite runs one writer at a time."""
    highest = select(func.max(Client.id)).scalar_subquery()
    audited = select(func.max(AuditEvent.client_id)).scalar_subquery()
    row = (await s.execute(select(highest, audited))).one()
    return max(row[0] or 0, row[1] or 0) + 1


async def _unique_code(s: AsyncSession) -> str:
    while True:
        code = "RC-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(4))
        if await s.scalar(select(Client.id).where(Client.code == code)) is None:
            return code


# Built once: an ORM statement built per call spends more on building and cache keys than on SQL.
_CLIENT_BY_USER = (
    select(Client, Practice)
    .outerjoin(Client.therapist)
    .outerjoin(Practice, Practice.id == Client.practice_id)
    .options(contains_eager(Client.therapist))
    .where(Client.telegram_user_id == bindparam("user_id"))
)


_CLIENT_BY_USER_LOCKED = _CLIENT_BY_USER.with_for_update(of=Client)


async def client_by_user(s: AsyncSession, telegram_user_id: int) -> Client | None:
    """The client bound to a Telegram account. Their therapist and practice come in the same
    query, since handling the client's update needs both (`s.get`, `get_practice`).

    On PostgreSQL the client's row is locked until the transaction ends: an update handled for
    them reads and writes their conversation state while no heartbeat can change it in between
    (the heartbeat skips locked rows); SQLite's `BEGIN IMMEDIATE` already serialises the two."""
    row = (await s.execute(_CLIENT_BY_USER_LOCKED, {"user_id": telegram_user_id})).first()
    return _keep(s, row)


def _keep(s: AsyncSession, row: Row[Any] | None) -> Client | None:
    """The client of a `_CLIENT_BY_USER`-shaped row; its practice stays with the session."""
    if row is None:
        return None
    client, practice = row[-2], row[-1]
    if practice is not None:
        # The identity map holds objects weakly: keep the practice for this session's use.
        s.info[_PRACTICE_KEY] = practice
    return client


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
    """Create a single-use invite and return its token; only the hash is stored. Every older
    unused invite for the same person is revoked (expires now): one live link per person."""
    if (client_id is None) == (therapist_id is None):
        raise ValueError("an invite is for exactly one client or one therapist")
    await revoke_invites(s, now=now, client_id=client_id, therapist_id=therapist_id)
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


async def revoke_invites(
    s: AsyncSession, *, now: datetime, client_id: int | None = None, therapist_id: int | None = None
) -> int:
    """End every unused invite of one person; a revoked link reads as expired."""
    owner = Invite.client_id == client_id if client_id is not None else None
    if owner is None:
        owner = Invite.therapist_id == therapist_id
    result = await s.execute(
        update(Invite)
        .where(owner, Invite.used_at.is_(None), Invite.expires_at > now)
        .values(expires_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Redemption:
    ok: bool
    # "ok"; refused: "invalid" (no such link) | "used" | "expired" (or revoked) | "taken" (the
    # person is bound to another account) | "already_joined" (this account is that person) |
    # "already_bound" (this account is someone else of the same role) | "therapist_account" (a
    # client link opened by a therapist) | "client_account" (a therapist link opened by a client)
    reason: str
    client: Client | None = None
    therapist: Therapist | None = None


# A person may be bound through a link only while no account is bound to them; a client who
# stopped may rejoin through a new link from the same account.
_BIND_CLIENT = (
    update(Client)
    .where(
        Client.id == bindparam("person"),
        or_(
            Client.telegram_user_id.is_(None),
            and_(
                Client.telegram_user_id == bindparam("user_id"),
                Client.status == ClientStatus.STOPPED,
            ),
        ),
    )
    .values(
        telegram_user_id=bindparam("user_id"),
        chat_id=bindparam("chat_id"),
        status=ClientStatus.ONBOARDING,
    )
)
_BIND_THERAPIST = (
    update(Therapist)
    .where(Therapist.id == bindparam("person"), Therapist.telegram_user_id.is_(None))
    .values(telegram_user_id=bindparam("user_id"), chat_id=bindparam("chat_id"))
)


ACCOUNT_LOCK = 0x52415050  # PostgreSQL advisory-lock class of "one Telegram account" ("RAPP")


async def redeem_invite(
    s: AsyncSession, token: str, *, user_id: int, chat_id: int, now: datetime
) -> Redemption:
    """Bind a Telegram account through an invite. Nothing is written unless it succeeds.

    The reads only choose the refusal's wording; the decision is two conditional UPDATEs whose
    row counts are checked: claim the invite (unused and unexpired), then bind the person (no
    account bound). On PostgreSQL (READ COMMITTED) a second transaction's UPDATE waits for the
    first and re-checks its condition, and SQLite runs one writer at a time, so two accounts
    opening one link at once can never both win. One account opening two links at once (a
    therapist's and a client's, on two replicas) is serialised by a lock on the account, so the
    second sees what the first bound: an account is never bound twice, in either role."""
    if s.get_bind().dialect.name == "postgresql":
        account = sql_cast(literal(user_id % 2_147_483_647), Integer)
        await s.execute(
            select(func.pg_advisory_xact_lock(sql_cast(literal(ACCOUNT_LOCK), Integer), account))
        )
    invite = (
        await s.execute(
            select(
                Invite.id, Invite.client_id, Invite.therapist_id, Invite.used_at, Invite.expires_at
            ).where(Invite.token_hash == hash_token(token))
        )
    ).first()
    if invite is None:
        return Redemption(False, "invalid")
    is_client = invite.client_id is not None
    person: Row[Any] | None
    if is_client:
        person = (
            await s.execute(
                select(Client.telegram_user_id, Client.status).where(Client.id == invite.client_id)
            )
        ).first()
    else:
        person = (
            await s.execute(
                select(Therapist.telegram_user_id, null()).where(
                    Therapist.id == invite.therapist_id
                )
            )
        ).first()
    if person is None:
        return Redemption(False, "invalid")
    bound, status = person
    if bound == user_id:
        if status != ClientStatus.STOPPED or invite.used_at is not None:
            return Redemption(False, "already_joined")
    else:
        as_client = await s.scalar(select(Client.id).where(Client.telegram_user_id == user_id))
        as_therapist = await s.scalar(
            select(Therapist.id).where(Therapist.telegram_user_id == user_id)
        )
        if is_client and as_therapist is not None:
            return Redemption(False, "therapist_account")
        if not is_client and as_client is not None:
            return Redemption(False, "client_account")
        if (as_client if is_client else as_therapist) is not None:
            return Redemption(False, "already_bound")
    if invite.used_at is not None:
        return Redemption(False, "used")
    if invite.expires_at <= now:
        return Redemption(False, "expired")
    if bound is not None and bound != user_id:
        return Redemption(False, "taken")
    claimed = await s.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.used_at.is_(None), Invite.expires_at > now)
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return Redemption(False, "used")  # another account's claim committed first
    person_id = invite.client_id if is_client else invite.therapist_id
    binding = _BIND_CLIENT if is_client else _BIND_THERAPIST
    params = {"person": person_id, "user_id": user_id, "chat_id": chat_id}
    bound_now = await s.execute(binding, params)
    if bound_now.rowcount != 1:  # type: ignore[attr-defined]
        # Someone was bound through another link meanwhile: this link stays unspent.
        await s.execute(update(Invite).where(Invite.id == invite.id).values(used_at=None))
        return Redemption(False, "taken")
    if is_client:
        client = await s.get(Client, person_id, populate_existing=True)
        return Redemption(True, "ok", client=client)
    therapist = await s.get(Therapist, person_id, populate_existing=True)
    return Redemption(True, "ok", therapist=therapist)


async def unbind_client(s: AsyncSession, client: Client, *, now: datetime) -> int:
    """End the client's binding to their Telegram account, keeping their data and history: the
    next account starts from an invite (onboarding and consent again). An open check-in is voided
    if nothing was answered, else closed as partial; unused links are revoked; messages still
    waiting for the old chat are cancelled (their number is returned)."""
    old_chat = client.chat_id
    client.telegram_user_id = client.chat_id = None
    client.status, client.conversation = ClientStatus.INVITED, None
    client.next_checkin_at = client.paused_until = client.unreachable_at = None
    client.consent_at, client.consent_version = None, None
    await s.execute(
        delete(Checkin).where(
            Checkin.client_id == client.id,
            Checkin.status == CheckinStatus.OPEN,
            Checkin.first_answer_at.is_(None),
        )
    )
    await s.execute(
        update(Checkin)
        .where(Checkin.client_id == client.id, Checkin.status == CheckinStatus.OPEN)
        .values(status=CheckinStatus.PARTIAL, closed_at=now)
    )
    await revoke_invites(s, now=now, client_id=client.id)
    await s.flush()
    return await _cancel_pending(s, old_chat)


async def unbind_therapist(s: AsyncSession, therapist: Therapist, *, now: datetime) -> int:
    """`unbind_client` for a therapist: unused links revoked, the old chat's messages cancelled."""
    old_chat = therapist.chat_id
    therapist.telegram_user_id = therapist.chat_id = None
    await revoke_invites(s, now=now, therapist_id=therapist.id)
    await s.flush()
    return await _cancel_pending(s, old_chat)


MOVED_ERROR = "cancelled: the account was moved"


async def _cancel_pending(s: AsyncSession, chat_id: int | None) -> int:
    """Messages not yet sent to a chat that no longer belongs to anyone of ours: never sent."""
    if chat_id is None:
        return 0
    result = await s.execute(
        update(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == "pending")
        .values(status="failed", error=MOVED_ERROR, claimed_at=None, claimed_by=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def disown_messages(s: AsyncSession, client_id: int) -> None:
    """The client's queued messages go out as nobody's: nothing may stay tied to a client who
    declined (their chat is forgotten with them)."""
    await s.execute(
        update(OutboxMessage).where(OutboxMessage.client_id == client_id).values(client_id=None)
    )


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


async def live_session_at(
    s: AsyncSession, client_id: int, starts_at: datetime
) -> TherapySession | None:
    """The client's session (not cancelled) starting at that instant, if there is one."""
    return await s.scalar(
        select(TherapySession)
        .where(
            TherapySession.client_id == client_id,
            TherapySession.starts_at == starts_at,
            TherapySession.cancelled.is_(False),
        )
        .order_by(TherapySession.id)
        .limit(1)
    )


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
    checkin = Checkin(
        client_id=client_id, instrument=instrument, status=CheckinStatus.OPEN, opened_at=now
    )
    s.add(checkin)
    await s.flush()
    return checkin


async def open_checkin_of(s: AsyncSession, client_id: int) -> Checkin | None:
    return await s.scalar(
        select(Checkin).where(Checkin.client_id == client_id, Checkin.status == CheckinStatus.OPEN)
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


# One INSERT that skips a known id: no savepoint, and no error to recover from. On PostgreSQL a
# concurrent insert of the same id waits for the other transaction and then skips (or inserts,
# if that one rolled back), so a duplicate is still stored once. The same text runs on both
# backends; written as text because the dialects' ON CONFLICT constructs are never cached (each
# use would compile the statement anew).
_MARK_PROCESSED = text(
    "INSERT INTO processed_update (update_id, processed_at) VALUES (:update_id, :processed_at) "
    "ON CONFLICT DO NOTHING"
).bindparams(
    bindparam("update_id", type_=BigInteger()), bindparam("processed_at", type_=UTCDateTime())
)


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


async def forget_sent_messages(s: AsyncSession, before: datetime) -> int:
    """Sent messages are kept only briefly: their bodies are client data."""
    result = await s.execute(
        delete(OutboxMessage).where(OutboxMessage.status == "sent", OutboxMessage.sent_at < before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def apply_retention(s: AsyncSession, before: datetime) -> dict[str, int]:
    """Delete check-ins (with their answers), events, sessions, and messages that failed for
    good, older than `before`. Pending messages are never dropped; sent ones go sooner
    (`forget_sent_messages`)."""
    old = select(Checkin.id).where(Checkin.opened_at < before)
    answers = await s.execute(delete(Answer).where(Answer.checkin_id.in_(old)))
    checkins = await s.execute(delete(Checkin).where(Checkin.opened_at < before))
    events = await s.execute(delete(ClientEvent).where(ClientEvent.at < before))
    sessions = await s.execute(delete(TherapySession).where(TherapySession.ends_at < before))
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
            ("sessions", sessions),
            ("failed_messages", failed),
        )
    }


# --- outbox -----------------------------------------------------------------------------------

_OUTBOX = cast(Table, OutboxMessage.__table__)

URGENT = 0
"""Outbox priority of what must not wait (crisis alerts, crisis resources): sent before
everything else, ahead of rows queued earlier for the same chat."""
NORMAL = 1


def urgent(kind: str) -> int:
    """The priority a row of `kind` gets unless its caller says otherwise."""
    return URGENT if kind == "urgent" else NORMAL


def outbox_values(
    cipher: Cipher,
    *,
    chat_id: int,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    client_id: int | None,
    therapist_id: int | None,
    not_before: datetime | None = None,
    about_client_id: int | None = None,
    priority: int = NORMAL,
) -> dict[str, Any]:
    """The columns of a new outbox row: how every message is queued, one by one
    (`queue_message`) or many in one statement (`storage.due.insert_outbox`)."""
    return {
        "chat_id": chat_id,
        "client_id": client_id,
        "therapist_id": therapist_id,
        "about_client_id": about_client_id,
        "priority": priority,
        "kind": kind,
        "payload_enc": cipher.encrypt(json.dumps(payload, ensure_ascii=False)),
        "status": "pending",
        "attempts": 0,
        "not_before": not_before or now,
        "created_at": now,
    }


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
    about_client_id: int | None = None,
    priority: int | None = None,
) -> OutboxMessage:
    """`queue_message` for callers that go on to use the row (tests, the digest and staff
    replies, none of them on a hot path)."""
    message_id, _ = await queue_message(
        s,
        cipher,
        chat_id=chat_id,
        kind=kind,
        payload=payload,
        now=now,
        client_id=client_id,
        therapist_id=therapist_id,
        not_before=not_before,
        about_client_id=about_client_id,
        priority=priority,
    )
    message = await s.get(OutboxMessage, message_id)
    assert message is not None
    return message


QUEUED_KEY = "rapport.outbox_rows"
"""`session.info` key: how many outbox rows the session's transactions queued (`enqueue`,
`queue_message`), so a caller can tell whether all of them were handed to a sender."""


def _count_queued(s: AsyncSession) -> None:
    s.info[QUEUED_KEY] = s.info.get(QUEUED_KEY, 0) + 1


def _queue_statement() -> Any:
    """The INSERT of `queue_message`: the row claims itself for `claim_by` when it is the head
    of its chat's queue (no pending row ahead of it, see `_ahead`) and due, exactly as
    `claim_outbox_rows` would claim it, in the same transaction that creates it."""
    earlier = _OUTBOX.alias("earlier")
    chat_id: Any = bindparam("chat_id", type_=BigInteger())
    priority: Any = bindparam("priority", type_=SmallInteger())
    due = bindparam("due", type_=Boolean())
    # Every existing row of the chat has a smaller id than the new one.
    head = and_(
        due,
        ~exists().where(
            earlier.c.chat_id == chat_id,
            earlier.c.status == "pending",
            earlier.c.priority <= priority,
        ),
    )
    columns = (
        "client_id",
        "therapist_id",
        "about_client_id",
        "kind",
        "payload_enc",
        "status",
        "attempts",
    )
    return (
        insert(_OUTBOX)
        .values(
            chat_id=chat_id,
            priority=priority,
            not_before=bindparam("not_before"),
            created_at=bindparam("created_at"),
            claimed_at=case((head, bindparam("claim_at", type_=UTCDateTime())), else_=null()),
            claimed_by=case((head, bindparam("claim_by", type_=String())), else_=null()),
            **{name: bindparam(name) for name in columns},
        )
        .returning(_OUTBOX.c.id, _OUTBOX.c.claimed_by)
    )


_QUEUE = _queue_statement()


async def queue_message(
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
    claim_by: str | None = None,
    about_client_id: int | None = None,
    priority: int | None = None,
) -> tuple[int, bool]:
    """`enqueue` without an ORM object: one INSERT; the new row's id, and whether it is claimed
    for `claim_by` (given a worker, a due head of its chat's queue claims itself, so that
    worker can send it once this transaction commits without claiming it again).

    `client_id` is the client a message goes to; `about_client_id` the client a message to
    someone else (their therapist) is about or quotes. Erasing a client deletes both. Priority
    defaults by kind (`urgent`)."""
    values = outbox_values(
        cipher,
        chat_id=chat_id,
        kind=kind,
        payload=payload,
        now=now,
        client_id=client_id,
        therapist_id=therapist_id,
        not_before=not_before,
        about_client_id=about_client_id,
        priority=urgent(kind) if priority is None else priority,
    )
    values.update(due=claim_by is not None and values["not_before"] <= now)
    values.update(claim_at=now, claim_by=claim_by)
    row = (await s.execute(_QUEUE, values)).one()
    _count_queued(s)
    return int(row.id), row.claimed_by is not None and row.claimed_by == claim_by


def outbox_payload(cipher: Cipher, message: OutboxMessage | Row[Any]) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(cipher.decrypt(message.payload_enc))
    return payload


def _ahead(earlier: Any, row: Any) -> Any:
    """`earlier` comes before `row` in their chat's queue: a more urgent row, or one as urgent
    queued before it."""
    return or_(
        earlier.c.priority < row.c.priority,
        and_(earlier.c.priority == row.c.priority, earlier.c.id < row.c.id),
    )


def _claim_statement(skip_locked: bool) -> Any:
    """One UPDATE that claims the due heads of chat queues and returns what sending needs.

    Only the head of each chat's queue is eligible, so a chat's messages keep their order; a
    chat's queue runs by priority, then id (`_ahead`), so an urgent row overtakes the chat's
    non-urgent rows, and claims across chats go by priority, then due time. The UPDATE
    re-checks the claim condition on every row, so two senders never get the same row on
    either backend; on PostgreSQL the candidates are also locked with SKIP LOCKED, so replicas
    spread the work instead of waiting on each other.
    """
    candidate = _OUTBOX.alias("candidate")
    earlier = _OUTBOX.alias("earlier")
    now: Any = bindparam("claim_now")
    stale: Any = bindparam("claim_stale")
    candidates = (
        select(candidate.c.id)
        .where(
            candidate.c.status == "pending",
            candidate.c.priority <= bindparam("claim_priority"),
            candidate.c.not_before <= now,
            or_(candidate.c.claimed_at.is_(None), candidate.c.claimed_at < stale),
            ~exists().where(
                earlier.c.chat_id == candidate.c.chat_id,
                earlier.c.status == "pending",
                _ahead(earlier, candidate),
            ),
        )
        .order_by(candidate.c.priority, candidate.c.not_before, candidate.c.id)
        .limit(bindparam("claim_limit"))
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(_OUTBOX)
        .where(
            _OUTBOX.c.id.in_(candidates.scalar_subquery()),
            _OUTBOX.c.status == "pending",
            or_(_OUTBOX.c.claimed_at.is_(None), _OUTBOX.c.claimed_at < stale),
        )
        .values(claimed_at=bindparam("claim_at"), claimed_by=bindparam("claim_worker"))
        .returning(
            _OUTBOX.c.id,
            _OUTBOX.c.chat_id,
            _OUTBOX.c.client_id,
            _OUTBOX.c.kind,
            _OUTBOX.c.payload_enc,
            _OUTBOX.c.not_before,
            _OUTBOX.c.priority,
        )
    )


_CLAIM = {False: _claim_statement(False), True: _claim_statement(True)}


async def claim_outbox_rows(
    s: AsyncSession,
    *,
    now: datetime,
    lease: timedelta,
    worker: str,
    limit: int,
    urgent_only: bool = False,
) -> list[Row[Any]]:
    """Claim up to `limit` due messages for this worker; a claim older than `lease` is taken over.

    Rows (id, chat_id, client_id, kind, payload_enc, not_before, priority) in sending order:
    urgent first; `urgent_only`: only urgent rows. See `_claim_statement` for why a chat's
    order holds and no row is claimed twice.
    """
    statement = _CLAIM[s.get_bind().dialect.name == "postgresql"]
    params = {
        "claim_now": now,
        "claim_stale": now - lease,
        "claim_limit": limit,
        "claim_priority": URGENT if urgent_only else 32767,  # smallint: any priority
        "claim_at": now,
        "claim_worker": worker,
    }
    rows = list((await s.execute(statement, params)).all())
    rows.sort(key=lambda row: (row.priority, row.not_before, row.id))
    return rows


async def claim_outbox(
    s: AsyncSession, *, now: datetime, lease: timedelta, worker: str, limit: int
) -> list[OutboxMessage]:
    """`claim_outbox_rows`, as ORM objects of the session."""
    rows = await claim_outbox_rows(s, now=now, lease=lease, worker=worker, limit=limit)
    if not rows:
        return []
    order = {row.id: n for n, row in enumerate(rows)}
    claimed = await s.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(list(order)))
        .execution_options(populate_existing=True)
    )
    return sorted(claimed, key=lambda message: order[message.id])


_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("sent_id"))
    .values(
        status="sent",
        sent_at=bindparam("sent_at"),
        telegram_message_id=bindparam("sent_telegram_id"),
        attempts=_OUTBOX.c.attempts + 1,
    )
)


async def mark_outbox_sent(
    s: AsyncSession, sent: Sequence[tuple[int, int | None]], now: datetime
) -> None:
    """Mark (id, Telegram message id) pairs sent, in one statement; erased rows are skipped."""
    if sent:
        await s.execute(
            _MARK_SENT,
            [{"sent_id": i, "sent_at": now, "sent_telegram_id": tg} for i, tg in sent],
        )


async def release_outbox_claims(s: AsyncSession, ids: Sequence[int]) -> None:
    """Give claimed rows back untouched (sending paused by a 429): due again at once."""
    if ids:
        await s.execute(update(_OUTBOX).where(_OUTBOX.c.id.in_(list(ids))).values(claimed_at=None))


async def outbox_still_pending(s: AsyncSession, ids: Sequence[int]) -> set[int]:
    """Which of these rows are still there and pending: the sender asks just before sending,
    since a row erased (or sent by another replica) after it was claimed must not go out."""
    if not ids:
        return set()
    return set(
        await s.scalars(
            select(_OUTBOX.c.id).where(_OUTBOX.c.id.in_(list(ids)), _OUTBOX.c.status == "pending")
        )
    )


async def pending_outbox_count(s: AsyncSession) -> int:
    return int(
        await s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        )
        or 0
    )


# --- audit ---------------------------------------------------------------------------------


async def audit(
    s: AsyncSession,
    *,
    actor: str,
    action: str,
    now: datetime,
    client_id: int | None = None,
) -> None:
    """Record who did what to whose data, and when. Only the bare client id is kept, never
    their name, alias or words, so the row can outlive the client's erasure. (`detail` stays
    in the schema, unused: nothing in it could be trusted to be free of client data.)"""
    s.add(AuditEvent(at=now, actor=actor, action=action, client_id=client_id, detail=None))


async def audit_log(s: AsyncSession, client_id: int | None = None) -> Sequence[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if client_id is not None:
        query = query.where(AuditEvent.client_id == client_id)
    return (await s.scalars(query)).all()


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
    events, sessions, invites, and every outbox row to them or about them (pending, failed or
    sent: undelivered digests and alerts are cancelled). The audit trail stays, reduced to
    actor, action, time and the bare id, and records the erasure itself. None if no such
    client."""
    client = await s.get(Client, client_id)
    if client is None:
        return None
    checkin_ids = tuple(await s.scalars(select(Checkin.id).where(Checkin.client_id == client_id)))
    session_ids = tuple(
        await s.scalars(select(TherapySession.id).where(TherapySession.client_id == client_id))
    )
    theirs = or_(OutboxMessage.client_id == client_id, OutboxMessage.about_client_id == client_id)
    outbox_ids = tuple(await s.scalars(select(OutboxMessage.id).where(theirs)))
    await s.execute(
        delete(Answer).where(
            Answer.checkin_id.in_(select(Checkin.id).where(Checkin.client_id == client_id))
        )
    )
    for model in (Checkin, ClientEvent, TherapySession, Invite):
        await s.execute(delete(model).where(model.client_id == client_id))
    await s.execute(delete(OutboxMessage).where(theirs))
    # Audit rows hold no client data by construction (`audit`); clear any older detail anyway.
    await s.execute(update(AuditEvent).where(AuditEvent.client_id == client_id).values(detail=None))
    await s.delete(client)
    await s.flush()
    await audit(s, actor=actor, action="client_erased", now=now, client_id=client_id)
    return Erased(client_id, checkin_ids, session_ids, outbox_ids)
