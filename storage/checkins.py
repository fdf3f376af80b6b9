"""Check-ins, their answers and the client's life events. One at a time (the ORM, for a client's
own update) and set-at-a-time for the heartbeat's batches: open check-ins for many clients in one
statement, read their states, close or void them with one statement per kind.

Everything here runs inside the caller's transaction and speaks to the table directly (SQLAlchemy
Core): an ORM object of a row changed here is stale until refreshed. Closing and voiding are
compare-and-set on `status = 'open'`, so a check-in closed meanwhile stays as it was.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    LargeBinary,
    Row,
    String,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from flows.statuses import CheckinStatus
from storage.along import Write, run_alone
from storage.crypto import Cipher
from storage.models import Answer, Base, Checkin, ClientEvent, ClientNote, TherapySession
from storage.types import UTCDateTime

_checkin: Table = Base.metadata.tables["checkin"]
_OPEN = _checkin.c.status == CheckinStatus.OPEN


async def open_of(s: AsyncSession, client_ids: Collection[int]) -> dict[int, list[Row[Any]]]:
    """The open check-ins (id, first_answer_at) of each client, oldest first."""
    if not client_ids:
        return {}
    rows = await s.execute(
        select(_checkin.c.client_id, _checkin.c.id, _checkin.c.first_answer_at)
        .where(_checkin.c.client_id.in_(list(client_ids)), _OPEN)
        .order_by(_checkin.c.id)
    )
    found: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        found[row.client_id].append(row)
    return found


async def states(s: AsyncSession, checkin_ids: Collection[int]) -> dict[int, Row[Any]]:
    """Status and first answer of the given check-ins (those that exist)."""
    if not checkin_ids:
        return {}
    rows = await s.execute(
        select(_checkin.c.id, _checkin.c.status, _checkin.c.first_answer_at).where(
            _checkin.c.id.in_(list(checkin_ids))
        )
    )
    return {row.id: row for row in rows}


async def statuses_of(s: AsyncSession, client_id: int) -> list[Row[Any]]:
    """Status and first answer of each of the client's check-ins, oldest first, as stored now
    (read past the session's objects, which a set-at-a-time close leaves stale)."""
    rows = await s.execute(
        select(_checkin.c.id, _checkin.c.status, _checkin.c.first_answer_at)
        .where(_checkin.c.client_id == client_id)
        .order_by(_checkin.c.opened_at, _checkin.c.id)
    )
    return list(rows)


async def last_opened(s: AsyncSession, client_ids: Collection[int]) -> dict[int, datetime]:
    """When each client's latest check-in opened (clients without any are absent)."""
    if not client_ids:
        return {}
    rows = await s.execute(
        select(_checkin.c.client_id, func.max(_checkin.c.opened_at))
        .where(_checkin.c.client_id.in_(list(client_ids)))
        .group_by(_checkin.c.client_id)
    )
    result: dict[int, datetime] = {}
    for client_id, opened in rows:
        if opened is not None:
            result[client_id] = opened
    return result


async def insert_open(s: AsyncSession, rows: Sequence[dict[str, Any]]) -> dict[int, int]:
    """Insert open check-ins, at most one per client (one statement); client id -> check-in id.

    Matching by client rather than by position lets SQLite return the ids of a multi-row INSERT
    in any order (asking SQLAlchemy to keep the order makes it insert row by row there).
    """
    if not rows:
        return {}
    result = await s.execute(
        insert(_checkin).returning(_checkin.c.client_id, _checkin.c.id),
        [{**row, "status": CheckinStatus.OPEN} for row in rows],
    )
    ids = {int(row.client_id): int(row.id) for row in result}
    if len(ids) != len(rows):
        raise ValueError("one new check-in per client and batch")
    return ids


async def close(s: AsyncSession, closing: Iterable[tuple[int, CheckinStatus, datetime]]) -> None:
    """Close each (id, status, at) that is still open."""
    params = [{"b_id": cid, "b_status": status, "b_at": at} for cid, status, at in closing]
    if not params:
        return
    await s.execute(
        update(_checkin)
        .where(_checkin.c.id == bindparam("b_id"), _OPEN)
        .values(
            status=bindparam("b_status", type_=_checkin.c.status.type),
            closed_at=bindparam("b_at", type_=_checkin.c.closed_at.type),
        ),
        params,
    )


async def discard(s: AsyncSession, checkin_ids: Collection[int]) -> None:
    """Delete check-ins that are still open (opened for a conversation that cannot take one)."""
    if checkin_ids:
        await s.execute(delete(_checkin).where(_checkin.c.id.in_(list(checkin_ids)), _OPEN))


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


# An answer's INSERT, keeping an answer already stored for the item (ON CONFLICT, which both
# backends have). Text, as `storage.retention` writes its own: SQLAlchemy caches no compiled form
# of PostgreSQL's own INSERT construct, so each use would compile it anew. Parameters named `a_*`:
# it rides along.
_INSERT_ANSWER = sql_text(
    "INSERT INTO answer (checkin_id, item, value, text_enc, answered_at) "
    "VALUES (:a_checkin_id, :a_item, :a_value, :a_text_enc, :a_answered_at) "
    "ON CONFLICT DO NOTHING"
).bindparams(
    bindparam("a_checkin_id", type_=Integer()),
    bindparam("a_item", type_=String()),
    bindparam("a_value", type_=Integer()),
    bindparam("a_text_enc", type_=LargeBinary()),
    bindparam("a_answered_at", type_=UTCDateTime()),
)
# The check-in's first answer time is set only when the caller cannot rule it out: a tap is the
# most frequent update there is. Parameters named `f_*`, as it rides too.
_FIRST_ANSWER = (
    update(_checkin)
    .where(_checkin.c.id == bindparam("f_id"), _checkin.c.first_answer_at.is_(None))
    .values(first_answer_at=bindparam("f_at", type_=_checkin.c.first_answer_at.type))
)


@dataclass(frozen=True, slots=True)
class NewAnswer:
    """An answer to store. `maybe_first` False: the check-in is known to have one already."""

    checkin_id: int
    item: str
    value: int | None
    at: datetime
    text: str | None = None
    maybe_first: bool = True


def answer_writes(cipher: Cipher, answer: NewAnswer) -> list[Write]:
    """The writes that store `answer` (`storage.along`): its row, unless the item has one, and
    the check-in's first answer time, unless it has one. Each is the same whether the other
    happened: an item answered already means the check-in has its first answer time."""
    params = {
        "a_checkin_id": answer.checkin_id,
        "a_item": answer.item,
        "a_value": answer.value,
        "a_text_enc": cipher.encrypt(answer.text) if answer.text is not None else None,
        "a_answered_at": answer.at,
    }
    writes = [Write(_INSERT_ANSWER, params)]
    if answer.maybe_first:
        writes.append(Write(_FIRST_ANSWER, {"f_id": answer.checkin_id, "f_at": answer.at}))
    return writes


async def record_answer(
    s: AsyncSession,
    cipher: Cipher,
    *,
    checkin_id: int,
    item: str,
    value: int | None,
    at: datetime,
    text: str | None = None,
    maybe_first: bool = True,
) -> bool:
    """Store one answer now; an answer already stored for that item is kept (returns False).
    `maybe_first` False: the caller knows the check-in has an answer already."""
    return await store_answer(s, cipher, NewAnswer(checkin_id, item, value, at, text, maybe_first))


async def store_answer(s: AsyncSession, cipher: Cipher, answer: NewAnswer) -> bool:
    """`record_answer` of a `NewAnswer`."""
    row, *first = answer_writes(cipher, answer)
    result = await s.execute(row.statement, dict(row.params))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await run_alone(s, first)
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


async def answers_of_client(s: AsyncSession, client_id: int) -> Sequence[Answer]:
    """Every answer of the client, in the order given."""
    return (
        await s.scalars(
            select(Answer).join(Checkin).where(Checkin.client_id == client_id).order_by(Answer.id)
        )
    ).all()


async def last_opened_of(s: AsyncSession, client_id: int) -> datetime | None:
    """When the client's latest check-in opened (None: never)."""
    return await s.scalar(select(func.max(Checkin.opened_at)).where(Checkin.client_id == client_id))


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


# --- what a check-in opening now should ask ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AskingFacts:
    """What `flows.moments.moment_for` needs about one client."""

    last_session_ended: datetime | None  # the latest session (not cancelled) that has ended
    has_upcoming_session: bool  # one (not cancelled) that has not ended yet
    last_rated: datetime | None  # when the latest check-in with a session rated in it opened


async def asking_facts(
    s: AsyncSession, client_ids: Collection[int], rating_items: Collection[str], now: datetime
) -> dict[int, AskingFacts]:
    """Sessions and the last session rating of each client (two statements for any number)."""
    if not client_ids:
        return {}
    ids = list(client_ids)
    ended = TherapySession.ends_at <= now
    sessions = await s.execute(
        select(
            TherapySession.client_id,
            func.max(case((ended, TherapySession.ends_at))),
            func.max(case((ended, 0), else_=1)),
        )
        .where(TherapySession.client_id.in_(ids), TherapySession.cancelled.is_(False))
        .group_by(TherapySession.client_id)
    )
    known: dict[int, tuple[datetime | None, bool]] = {
        client_id: (last, bool(upcoming)) for client_id, last, upcoming in sessions
    }
    rated: dict[int, datetime] = {}
    if rating_items:
        rows = await s.execute(
            select(Checkin.client_id, func.max(Checkin.opened_at))
            .join(Answer, Answer.checkin_id == Checkin.id)
            .where(Checkin.client_id.in_(ids), Answer.item.in_(list(rating_items)))
            .group_by(Checkin.client_id)
        )
        rated = {client_id: at for client_id, at in rows if at is not None}
    return {
        client_id: AskingFacts(*known.get(client_id, (None, False)), rated.get(client_id))
        for client_id in ids
    }


async def last_answered(
    s: AsyncSession, client_ids: Collection[int], items: Collection[str]
) -> dict[int, dict[str, datetime]]:
    """For each client and each of `items`: when the latest check-in with an answer to it opened
    ("prefer not to answer" counts: it was asked). One statement for any number of clients."""
    if not client_ids or not items:
        return {}
    rows = await s.execute(
        select(Checkin.client_id, Answer.item, func.max(Checkin.opened_at))
        .join(Answer, Answer.checkin_id == Checkin.id)
        .where(Checkin.client_id.in_(list(client_ids)), Answer.item.in_(list(items)))
        .group_by(Checkin.client_id, Answer.item)
    )
    found: dict[int, dict[str, datetime]] = defaultdict(dict)
    for client_id, item, at in rows:
        if at is not None:
            found[client_id][item] = at
    return dict(found)


# --- what a client asked to tell their therapist -----------------------------------------------


async def add_note(
    s: AsyncSession,
    cipher: Cipher,
    *,
    client_id: int,
    kind: str,
    at: datetime,
    reason: str | None = None,
    text: str | None = None,
) -> None:
    """Keep a client's note (`ClientNote`); the words encrypted."""
    text_enc = cipher.encrypt(text) if text else None
    s.add(ClientNote(client_id=client_id, kind=kind, at=at, reason=reason, text_enc=text_enc))
    await s.flush()


async def notes_of(
    s: AsyncSession, client_id: int, kind: str | None = None, *, unshown: bool = False
) -> Sequence[ClientNote]:
    """The client's notes (of one kind; `unshown`: that no digest has carried yet), oldest
    first."""
    query = select(ClientNote).where(ClientNote.client_id == client_id)
    if kind is not None:
        query = query.where(ClientNote.kind == kind)
    if unshown:
        query = query.where(ClientNote.shown_at.is_(None))
    return (await s.scalars(query.order_by(ClientNote.at, ClientNote.id))).all()


async def mark_notes_shown(s: AsyncSession, note_ids: Collection[int], at: datetime) -> None:
    if note_ids:
        await s.execute(
            update(ClientNote).where(ClientNote.id.in_(list(note_ids))).values(shown_at=at)
        )


_CHECKIN_COLUMNS = (
    Checkin.id,
    Checkin.client_id,
    Checkin.status,
    Checkin.opened_at,
    Checkin.first_answer_at,
    Checkin.closed_at,
)
_ANSWER_COLUMNS = (Checkin.client_id, Answer.checkin_id, Answer.item, Answer.value, Answer.text_enc)


class CheckinRow(NamedTuple):
    """A check-in as a caseload reads it. Plain tuples: a SQLAlchemy `Row` answers an attribute
    ten times slower than an index, and a caseload reads tens of thousands of them."""

    id: int
    client_id: int
    status: str
    opened_at: datetime
    first_answer_at: datetime | None
    closed_at: datetime | None


class AnswerRow(NamedTuple):
    client_id: int
    checkin_id: int
    item: str
    value: int | None
    text_enc: bytes | None


async def checkins_of_clients(
    s: AsyncSession, client_ids: Collection[int]
) -> dict[int, list[CheckinRow]]:
    """`checkins_of` for many clients at once, by client: rows with the columns a history
    reads (no ORM objects: a caseload holds thousands)."""
    found: dict[int, list[CheckinRow]] = {}
    if client_ids:
        query = select(*_CHECKIN_COLUMNS).where(Checkin.client_id.in_(client_ids))
        connection = await s.connection()  # Core rows: no ORM loading for thousands of them
        for row in (await connection.execute(query.order_by(Checkin.opened_at))).all():
            checkin = CheckinRow._make(row)
            found.setdefault(checkin.client_id, []).append(checkin)
    return found


async def answers_of_clients(
    s: AsyncSession, client_ids: Collection[int]
) -> dict[int, list[AnswerRow]]:
    """`answers_of_client` for many clients at once, by client, as rows (see above)."""
    found: dict[int, list[AnswerRow]] = {}
    if client_ids:
        query = (
            select(*_ANSWER_COLUMNS)
            .join(Checkin, Checkin.id == Answer.checkin_id)
            .where(Checkin.client_id.in_(client_ids))
            .order_by(Answer.id)
        )
        for row in (await (await s.connection()).execute(query)).all():
            answer = AnswerRow._make(row)
            found.setdefault(answer.client_id, []).append(answer)
    return found


async def events_of_clients(
    s: AsyncSession, client_ids: Collection[int]
) -> dict[int, list[ClientEvent]]:
    """`events_of` for many clients at once, by client."""
    found: dict[int, list[ClientEvent]] = {}
    if client_ids:
        query = select(ClientEvent).where(ClientEvent.client_id.in_(client_ids))
        for e in await s.scalars(query.order_by(ClientEvent.at)):
            found.setdefault(e.client_id, []).append(e)
    return found
