"""The outbox: every message the bot will send, queued in the transaction that decided it, and
claimed, marked and retried by the sender (`bot.outbox`). A chat's messages go out in order;
urgent ones first."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Required, TypedDict, Unpack, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from flows.statuses import CheckinStatus
from storage.along import Write, carried, params_of, rides, run_alone
from storage.crypto import Cipher
from storage.models import Checkin, OutboxMessage
from storage.types import UTCDateTime

_OUTBOX = cast(Table, OutboxMessage.__table__)

URGENT = 0
"""Outbox priority of what must not wait (crisis alerts, crisis resources): sent before
everything else, ahead of rows queued earlier for the same chat."""
NORMAL = 1


def urgent(kind: str) -> int:
    """The priority a row of `kind` gets unless its caller says otherwise."""
    return URGENT if kind == "urgent" else NORMAL


class Queued(TypedDict, total=False):
    """A message to queue, as `enqueue`, `queue_message` and `outbox_values` take it.

    `client_id` is the client a message goes to; `about_client_id` the client a message to
    someone else (their therapist) is about or quotes. Erasing a client deletes both. Priority
    defaults by kind (`urgent`); `not_before`, to now."""

    chat_id: Required[int]
    kind: Required[str]
    payload: Required[dict[str, Any]]
    now: Required[datetime]
    client_id: int | None
    therapist_id: int | None
    not_before: datetime | None
    about_client_id: int | None
    priority: int | None


def outbox_values(cipher: Cipher, **message: Unpack[Queued]) -> dict[str, Any]:
    """The columns of a new outbox row: how every message is queued, one by one
    (`queue_message`) or many in one statement (`storage.due.insert_outbox`)."""
    now, kind, priority = message["now"], message["kind"], message.get("priority")
    return {
        "chat_id": message["chat_id"],
        "client_id": message.get("client_id"),
        "therapist_id": message.get("therapist_id"),
        "about_client_id": message.get("about_client_id"),
        "priority": urgent(kind) if priority is None else priority,
        "kind": kind,
        "payload_enc": cipher.encrypt(json.dumps(message["payload"], ensure_ascii=False)),
        "status": "pending",
        "attempts": 0,
        "not_before": message.get("not_before") or now,
        "created_at": now,
    }


async def enqueue(s: AsyncSession, cipher: Cipher, **message: Unpack[Queued]) -> OutboxMessage:
    """`queue_message` for callers that go on to use the row (tests, the digest and staff
    replies, none of them on a hot path)."""
    message_id, _ = await queue_message(s, cipher, **message)
    row = await s.get(OutboxMessage, message_id)
    assert row is not None
    return row


QUEUED_KEY = "rapport.outbox_rows"
"""`session.info` key: how many outbox rows the session's transactions queued (`enqueue`,
`queue_message`), so a caller can tell whether all of them were handed to a sender."""


def _count_queued(s: AsyncSession) -> None:
    s.info[QUEUED_KEY] = s.info.get(QUEUED_KEY, 0) + 1


def _queue_statement() -> Any:
    """The INSERT of `queue_message`: the row claims itself for `claim_by` when it is the head
    of its chat's queue (no pending row ahead of it, see `_ahead`) and due, exactly as
    `claim_rows` would claim it, in the same transaction that creates it.

    The columns' parameters are named `q_<column>` (`queue_message`): a statement that carries
    another write in its WITH clause (`storage.along`) would otherwise have SQLAlchemy set that
    write's columns of the same name from them."""
    earlier = _OUTBOX.alias("earlier")
    chat_id: Any = bindparam("q_chat_id", type_=BigInteger())
    priority: Any = bindparam("q_priority", type_=SmallInteger())
    due = bindparam("due", type_=Boolean())
    # Every existing row of the chat has a smaller id than the new one. Rows this transaction
    # claimed for the same worker at the same priority (`behind`) are sent before it, in order.
    ours = and_(
        earlier.c.id.between(bindparam("own_from"), bindparam("own_to")),
        earlier.c.priority == priority,
        earlier.c.claimed_by.is_not_distinct_from(bindparam("claim_by", type_=String())),
    )
    head = and_(
        due,
        ~exists().where(
            earlier.c.chat_id == chat_id,
            earlier.c.status == "pending",
            earlier.c.priority <= priority,
            ~ours,
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
            not_before=bindparam("q_not_before"),
            created_at=bindparam("q_created_at"),
            claimed_at=case((head, bindparam("claim_at", type_=UTCDateTime())), else_=null()),
            claimed_by=case((head, bindparam("claim_by", type_=String())), else_=null()),
            **{name: bindparam(f"q_{name}") for name in columns},
        )
        .returning(_OUTBOX.c.id, _OUTBOX.c.claimed_by)
    )


_QUEUE = _queue_statement()


async def queue_message(
    s: AsyncSession,
    cipher: Cipher,
    *,
    claim_by: str | None = None,
    behind: tuple[int, int] | None = None,
    along: Sequence[Write] = (),
    **message: Unpack[Queued],
) -> tuple[int, bool]:
    """`enqueue` without an ORM object: one INSERT; the new row's id, and whether it is claimed
    for `claim_by` (given a worker, a due head of its chat's queue claims itself, so that
    worker can send it once this transaction commits without claiming it again).

    `behind`: the first and last ids of rows this transaction queued for the same chat at the
    same priority and claimed for `claim_by`; the new row then claims itself behind them (the
    sender sends them in order, `OutboxJob.then`) instead of waiting for them to be marked sent.

    `along`: writes stored with the message (an update's answer and new conversation state
    beside its reply), in the same statement where writes ride (`storage.along`)."""
    values = outbox_values(cipher, **message)
    now = message["now"]
    params = {f"q_{name}": value for name, value in values.items()}
    params.update(due=claim_by is not None and values["not_before"] <= now)
    params.update(claim_at=now, claim_by=claim_by)
    own_from, own_to = behind or (0, -1)  # none: an empty range
    params.update(own_from=own_from, own_to=own_to)
    statement = _QUEUE
    if along and rides(s):
        statement = carried(_QUEUE, tuple(w.statement for w in along))
        params.update(params_of(along))
        along = ()
    row = (await s.execute(statement, params)).one()
    _count_queued(s)
    await run_alone(s, along)
    return int(row.id), row.claimed_by is not None and row.claimed_by == claim_by


async def pending_payloads(s: AsyncSession, ids: Sequence[int]) -> dict[int, bytes]:
    """The encrypted payloads of these rows that are still pending: a row handed to the sender
    behind another is sent as it is stored when its turn comes (`bot.outbox`)."""
    if not ids:
        return {}
    rows = await s.execute(
        select(_OUTBOX.c.id, _OUTBOX.c.payload_enc).where(
            _OUTBOX.c.id.in_(list(ids)), _OUTBOX.c.status == "pending"
        )
    )
    return {int(row.id): bytes(row.payload_enc) for row in rows}


def payload_of(cipher: Cipher, message: OutboxMessage | Row[Any]) -> dict[str, Any]:
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


async def claim_rows(
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


async def claim(
    s: AsyncSession, *, now: datetime, lease: timedelta, worker: str, limit: int
) -> list[OutboxMessage]:
    """`claim_rows`, as ORM objects of the session."""
    rows = await claim_rows(s, now=now, lease=lease, worker=worker, limit=limit)
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


async def mark_sent(s: AsyncSession, sent: Sequence[tuple[int, int | None]], now: datetime) -> None:
    """Mark (id, Telegram message id) pairs sent, in one statement; erased rows are skipped."""
    if sent:
        await s.execute(
            _MARK_SENT,
            [{"sent_id": i, "sent_at": now, "sent_telegram_id": tg} for i, tg in sent],
        )


async def release_claims(s: AsyncSession, ids: Sequence[int]) -> None:
    """Give claimed rows back untouched (sending paused by a 429): due again at once."""
    if ids:
        await s.execute(update(_OUTBOX).where(_OUTBOX.c.id.in_(list(ids))).values(claimed_at=None))


async def still_pending(s: AsyncSession, ids: Sequence[int]) -> set[int]:
    """Which of these rows are still there and pending: the sender asks just before sending,
    since a row erased (or sent by another replica) after it was claimed must not go out."""
    if not ids:
        return set()
    return set(
        await s.scalars(
            select(_OUTBOX.c.id).where(_OUTBOX.c.id.in_(list(ids)), _OUTBOX.c.status == "pending")
        )
    )


async def record_attempt(
    s: AsyncSession,
    message_id: int,
    error: str | None,
    retry_at: Callable[[int], datetime | None],
) -> OutboxMessage | None:
    """A send that did not succeed: the row is due again at `retry_at(attempts)` (attempts made
    so far, this one included), or failed for good when that is None. None if the row is gone
    (erased meanwhile)."""
    row = await s.get(OutboxMessage, message_id)
    if row is None:
        return None
    row.attempts += 1
    row.error = error
    when = retry_at(row.attempts)
    if when is None:
        row.status = "failed"
    else:
        row.claimed_at, row.not_before = None, when
    return row


async def pending_count(s: AsyncSession) -> int:
    return int(
        await s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        )
        or 0
    )


# --- what a client's chat shows ---------------------------------------------------------------

RECENT_SENT = 8
"""How many of a client's newest rows `recent_messages` reads (a question, its edits, a few
replies in between)."""


# Built once, and without IN lists: an expanding IN is rendered anew on every execution, which
# cost this per-tap query more than SQLite's work.
_RECENT = (
    select(
        _OUTBOX.c.id,
        _OUTBOX.c.chat_id,
        _OUTBOX.c.kind,
        _OUTBOX.c.status,
        _OUTBOX.c.telegram_message_id,
        _OUTBOX.c.payload_enc,
        _OUTBOX.c.claimed_at,
    )
    .where(
        _OUTBOX.c.client_id == bindparam("client_id"),
        or_(_OUTBOX.c.status == "sent", _OUTBOX.c.status == "pending"),
        or_(_OUTBOX.c.kind == "text", _OUTBOX.c.kind == "edit", _OUTBOX.c.kind == "markup"),
    )
    .order_by(_OUTBOX.c.id.desc())
    .limit(RECENT_SENT)
)


@dataclass(frozen=True, slots=True)
class Shown:
    """One of a client's recent messages as its newest row (sent or on its way) leaves it."""

    row_id: int  # that newest row
    chat_id: int
    message_id: int | None  # Telegram's; None: a new message not sent yet
    kind: str  # of the newest row: "text", "edit" or "markup"
    sent: bool
    payload: dict[str, Any]
    data: tuple[str, ...]  # its buttons' data that start with the prefix asked for
    claimed: bool = False  # not sent as far as the row says, but claimed: maybe on the wire


async def recent_messages(
    s: AsyncSession, cipher: Cipher, client_id: int, prefix: str
) -> list[Shown]:
    """The client's newest messages, newest first, each as its newest row says it shows (an
    edit or a `markup` row replaces the buttons), sent or still on its way, as far as the rows
    kept tell (`forget_sent_messages`)."""
    rows = await s.execute(_RECENT, {"client_id": client_id})
    seen: set[int] = set()
    shown: list[Shown] = []
    for row_id, chat_id, kind, status, message_id, payload_enc, claimed_at in rows:
        payload: dict[str, Any] | None = None
        if message_id is None and kind != "text":  # an edit on its way: of which message
            payload = json.loads(cipher.decrypt(payload_enc))
            message_id = payload.get("message_id")
        if message_id is not None:
            if message_id in seen:
                continue  # an older row of a message already read
            seen.add(int(message_id))
        if payload is None:
            payload = json.loads(cipher.decrypt(payload_enc))
        data = tuple(
            str(b.get("data", ""))
            for line in payload.get("buttons") or ()
            for b in line
            if str(b.get("data", "")).startswith(prefix)
        )
        sent = status == "sent"
        claimed = not sent and claimed_at is not None
        shown.append(Shown(row_id, chat_id, message_id, kind, sent, payload, data, claimed))
    return shown


async def drop_buttons(s: AsyncSession, cipher: Cipher, shown: Shown) -> None:
    """A new message still on its way goes out without its buttons (it asks a question
    answered meanwhile); once sent it is as it is. One already claimed may be on the wire with
    them: the caller then also queues their removal (a `markup` row of `MARKUP_OF`)."""
    payload = {k: v for k, v in shown.payload.items() if k != "buttons"}
    await s.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == shown.row_id, _OUTBOX.c.status == "pending")
        .values(payload_enc=cipher.encrypt(json.dumps(payload, ensure_ascii=False)))
    )


MARKUP_OF = "of_row"
"""Payload key of a `markup` row that takes the buttons off the message another row sent, whose
Telegram id was not known when it was queued (`telegram_id_of`)."""


async def telegram_id_of(s: AsyncSession, row_id: int) -> int | None:
    """The Telegram id of the message a row sent; None if it was not sent (or is forgotten)."""
    found = await s.scalar(
        select(_OUTBOX.c.telegram_message_id).where(
            _OUTBOX.c.id == row_id, _OUTBOX.c.status == "sent"
        )
    )
    return None if found is None else int(found)


# --- cancelled and forgotten ---------------------------------------------------------------

MOVED_ERROR = "cancelled: the account was moved"


async def cancel_pending(s: AsyncSession, chat_id: int | None) -> int:
    """Messages not yet sent to a chat that no longer belongs to anyone of ours: never sent."""
    if chat_id is None:
        return 0
    result = await s.execute(
        update(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == "pending")
        .values(status="failed", error=MOVED_ERROR, claimed_at=None, claimed_by=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def forget_sent_messages(s: AsyncSession, before: datetime) -> int:
    """Sent messages are kept only briefly: their bodies are client data. A client's are kept
    while their check-in is open: they say which messages show its questions' buttons, which an
    answer takes away (`recent_messages`)."""
    checkin_open = exists().where(
        Checkin.client_id == OutboxMessage.client_id, Checkin.status == CheckinStatus.OPEN
    )
    result = await s.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status == "sent", OutboxMessage.sent_at < before, ~checkin_open
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def disown_messages(s: AsyncSession, client_id: int) -> None:
    """The client's queued messages go out as nobody's: nothing may stay tied to a client who
    declined (their chat is forgotten with them)."""
    await s.execute(
        update(OutboxMessage).where(OutboxMessage.client_id == client_id).values(client_id=None)
    )
