"""People and their appointments: the practice, therapists, clients, invites (binding a Telegram
account to a person), and therapy sessions. Each function works inside the caller's session."""

from __future__ import annotations

import hashlib
import secrets
import weakref
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Row,
    and_,
    bindparam,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from flows.statuses import CheckinStatus, ClientStatus
from storage import outbox, retention
from storage.crypto import Cipher
from storage.models import (
    AuditEvent,
    Base,
    Checkin,
    Client,
    Invite,
    Practice,
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
    engine = s.get_bind()
    known = _PRACTICE_IDS.get(engine)
    if known is not None:
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


# --- people ---------------------------------------------------------------------------------


async def client_by_id(s: AsyncSession, client_id: int) -> Client | None:
    return await s.get(Client, client_id)


async def therapist_by_id(s: AsyncSession, therapist_id: int) -> Therapist | None:
    return await s.get(Therapist, therapist_id)


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


_client = Base.metadata.tables["client"]
_therapist = Base.metadata.tables["therapist"]
_practice = Base.metadata.tables["practice"]


@dataclass(frozen=True, slots=True)
class PracticeSettings:
    """What handling a client's update reads of their practice, without the ORM object: loading
    one cost more than the rest of the client's query. What takes a `Practice` loads it."""

    id: int
    language: str
    instrument: str
    safety_item: bool
    crisis_resources: dict[str, Any]
    safety_contact_id: int | None
    digest_comments: bool


_SETTINGS = tuple(f.name for f in fields(PracticeSettings) if f.name != "id")  # id: the client's


@dataclass(frozen=True, slots=True)
class FoundClient:
    """A client as their update finds them (`mark_and_find_client`): the client's columns as a
    row (the heartbeat's kind, `storage.due.Claimed`), their therapist's encrypted name and their
    practice's settings."""

    client: Row[Any]
    therapist_name_enc: bytes
    practice: PracticeSettings


def _client_query(client: Any, source: Any) -> Any:
    """The columns of a `FoundClient` from `client` (the table, or a CTE of its rows), which
    `source` holds."""
    joined = source.outerjoin(_therapist, _therapist.c.id == client.c.therapist_id).outerjoin(
        _practice, _practice.c.id == client.c.practice_id
    )
    therapist_name = _therapist.c.name_enc.label("therapist_name_enc")
    settings = (_practice.c[name].label(f"practice__{name}") for name in _SETTINGS)
    return select(*client.c, therapist_name, *settings).select_from(joined)


# Built once: a statement built per call spends more on building and cache keys than on SQL.
_CLIENT_BY_USER = (
    _client_query(_client, _client)
    .where(_client.c.telegram_user_id == bindparam("user_id"))
    .with_for_update(of=_client)
)


def _marking_client_by_user() -> Any:
    """`_CLIENT_BY_USER` with the update's mark (`retention.MARKED`) in front, on PostgreSQL:
    one row always, the mark's outcome and the client if there is one."""
    locked = (
        select(_client)
        .where(_client.c.telegram_user_id == bindparam("user_id"))
        .with_for_update()
        .cte("locked")
    )
    marked = select(retention.MARKED.label("fresh")).cte("marked")
    source = marked.outerjoin(locked, true())
    return _client_query(locked, source).add_columns(marked.c.fresh)


_MARKING_CLIENT_BY_USER = _marking_client_by_user()


async def client_by_user(s: AsyncSession, telegram_user_id: int) -> FoundClient | None:
    """The client bound to a Telegram account, with what handling their update needs.

    On PostgreSQL the client's row is locked until the transaction ends: an update handled for
    them reads and writes their conversation state while no heartbeat can change it in between
    (the heartbeat skips locked rows); SQLite's `BEGIN IMMEDIATE` already serialises the two."""
    row = (await s.execute(_CLIENT_BY_USER, {"user_id": telegram_user_id})).first()
    return _found(row)


async def mark_and_find_client(
    s: AsyncSession, update_id: int, now: datetime, telegram_user_id: int
) -> tuple[bool, FoundClient | None]:
    """Mark the update processed (`retention.mark_update_processed`) and find its sender's client
    as `client_by_user` does: whether the update is new, and the client (None for a duplicate).
    On PostgreSQL both in one statement, one round trip fewer for every update a person sends."""
    if s.get_bind().dialect.name != "postgresql":
        if not await retention.mark_update_processed(s, update_id, now):
            return False, None
        return True, await client_by_user(s, telegram_user_id)
    params = {"update_id": update_id, "processed_at": now, "user_id": telegram_user_id}
    row = (await s.execute(_MARKING_CLIENT_BY_USER, params)).one()
    if row.fresh != 1:
        return False, None
    return True, _found(row)


def _found(row: Row[Any] | None) -> FoundClient | None:
    if row is None or row.id is None:
        return None
    settings = PracticeSettings(
        row.practice_id, *(getattr(row, f"practice__{name}") for name in _SETTINGS)
    )
    return FoundClient(row, row.therapist_name_enc, settings)


async def mark_unreachable(s: AsyncSession, client_id: int, now: datetime) -> bool:
    """The client blocked the bot, as a send to them found: True if that is news."""
    result = await s.execute(
        update(Client)
        .where(Client.id == client_id, Client.unreachable_at.is_(None))
        .values(unreachable_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def mark_therapist_unreachable(s: AsyncSession, therapist_id: int, now: datetime) -> bool:
    """The therapist blocked the bot, as a send to them found: True if that is news."""
    result = await s.execute(
        update(Therapist)
        .where(Therapist.id == therapist_id, Therapist.unreachable_at.is_(None))
        .values(unreachable_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def therapist_by_user(s: AsyncSession, telegram_user_id: int) -> Therapist | None:
    return await s.scalar(select(Therapist).where(Therapist.telegram_user_id == telegram_user_id))


async def list_therapists(s: AsyncSession) -> Sequence[Therapist]:
    return (await s.scalars(select(Therapist).order_by(Therapist.id))).all()


async def clients_of(s: AsyncSession, therapist_ids: Collection[int] | None) -> Sequence[Client]:
    """The clients of these therapists (None: every client), by id."""
    query = select(Client).order_by(Client.id)
    if therapist_ids is not None:
        query = query.where(Client.therapist_id.in_(therapist_ids))
    return (await s.scalars(query)).all()


async def client_by_code(s: AsyncSession, code: str) -> Client | None:
    return await s.scalar(select(Client).where(Client.code == code))


async def list_clients(s: AsyncSession, therapist_id: int | None = None) -> Sequence[Client]:
    query = select(Client).order_by(Client.id)
    if therapist_id is not None:
        query = query.where(Client.therapist_id == therapist_id)
    return (await s.scalars(query)).all()


async def active_clients(s: AsyncSession, practice_id: int) -> Sequence[Client]:
    return (
        await s.scalars(
            select(Client).where(
                Client.practice_id == practice_id, Client.status == ClientStatus.ACTIVE
            )
        )
    ).all()


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
    return await outbox.cancel_pending(s, old_chat)


async def unbind_therapist(s: AsyncSession, therapist: Therapist, *, now: datetime) -> int:
    """`unbind_client` for a therapist: unused links revoked, the old chat's messages cancelled."""
    old_chat = therapist.chat_id
    therapist.telegram_user_id = therapist.chat_id = therapist.unreachable_at = None
    await revoke_invites(s, now=now, therapist_id=therapist.id)
    await s.flush()
    return await outbox.cancel_pending(s, old_chat)


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


async def sessions_of_clients(
    s: AsyncSession, client_ids: Collection[int]
) -> dict[int, list[TherapySession]]:
    """`sessions_of` for many clients at once, by client."""
    found: dict[int, list[TherapySession]] = {}
    if client_ids:
        query = select(TherapySession).where(
            TherapySession.client_id.in_(client_ids), TherapySession.cancelled.is_(False)
        )
        for x in await s.scalars(query.order_by(TherapySession.starts_at)):
            found.setdefault(x.client_id, []).append(x)
    return found


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


async def session_by_id(s: AsyncSession, session_id: int) -> TherapySession | None:
    return await s.get(TherapySession, session_id)


async def list_sessions(s: AsyncSession, client_id: int | None = None) -> Sequence[TherapySession]:
    """Every session (cancelled ones too), of one client or all, by start."""
    query = select(TherapySession).order_by(TherapySession.starts_at)
    if client_id is not None:
        query = query.where(TherapySession.client_id == client_id)
    return (await s.scalars(query)).all()


async def imported_sessions(s: AsyncSession, client_ids: Iterable[int]) -> Sequence[TherapySession]:
    """The sessions of these clients that came from a calendar (with a `source_uid`), by id."""
    return (
        await s.scalars(
            select(TherapySession)
            .where(
                TherapySession.client_id.in_(list(client_ids)),
                TherapySession.source_uid.is_not(None),
            )
            .order_by(TherapySession.id)
        )
    ).all()


async def undigested_sessions(
    s: AsyncSession, practice_id: int, now: datetime
) -> Sequence[tuple[TherapySession, Therapist]]:
    """The practice's sessions still to come whose digest has not gone out (not cancelled),
    each with its client's therapist."""
    rows = await s.execute(
        select(TherapySession, Therapist)
        .join(Client, Client.id == TherapySession.client_id)
        .join(Therapist, Therapist.id == Client.therapist_id)
        .where(
            Client.practice_id == practice_id,
            TherapySession.digest_sent_at.is_(None),
            TherapySession.cancelled.is_(False),
            TherapySession.starts_at > now,
        )
        .order_by(TherapySession.starts_at, TherapySession.id)
    )
    return list(rows.tuples())
