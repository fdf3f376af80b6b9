"""Set-at-a-time SQL for the heartbeat: claim a batch of due clients and write what opening their
check-ins produced with a few statements per batch instead of a dozen per client.

Everything here runs inside the caller's transaction and speaks to the tables directly (SQLAlchemy
Core): the rows are read and written once, so the ORM's identity map and per-object flushes would
only add cost. Works the same on SQLite (>= 3.35, for RETURNING) and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Row,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base

_client: Table = Base.metadata.tables["client"]
_checkin: Table = Base.metadata.tables["checkin"]
_session: Table = Base.metadata.tables["therapy_session"]
_therapist: Table = Base.metadata.tables["therapist"]
_outbox: Table = Base.metadata.tables["outbox"]

DUE_CLIENT_COLUMNS = (
    "id",
    "therapist_id",
    "status",
    "timezone",
    "language",
    "cadence",
    "quiet_hours",
    "chat_id",
    "conversation",
    "paused_until",
    "cadence_anchor",
    "unreachable_at",
    "joined_at",
    "next_checkin_at",
)


async def claim_due_clients(
    s: AsyncSession, now: datetime, limit: int, skip: Collection[int] = ()
) -> list[Row[Any]]:
    """Up to `limit` active clients whose check-in is due, earliest first, claimed for this
    transaction: their `next_checkin_at` is cleared with a compare-and-set, so a concurrent pass
    can no longer see them and a rollback (or a crash) leaves them due. Clients in `skip` are
    left alone (the heartbeat set them aside after a failure).

    On PostgreSQL the candidates are read `FOR UPDATE SKIP LOCKED`: replicas take disjoint
    batches instead of queueing on the same rows. SQLite transactions here begin IMMEDIATE, so
    the read and the claim already hold the only write lock.
    """
    due = and_(_client.c.next_checkin_at <= now, _client.c.status == "active")
    query = (
        select(*(_client.c[name] for name in DUE_CLIENT_COLUMNS))
        .where(due, _client.c.id.notin_(list(skip)) if skip else true())
        .order_by(_client.c.next_checkin_at, _client.c.id)
        .limit(limit)
    )
    if s.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = (await s.execute(query)).all()
    if not rows:
        return []
    claimed = set(
        await s.scalars(
            update(_client)
            .where(_client.c.id.in_([row.id for row in rows]), due)
            .values(next_checkin_at=None)
            .returning(_client.c.id)
        )
    )
    return [row for row in rows if row.id in claimed]


async def open_checkins_of(
    s: AsyncSession, client_ids: Collection[int]
) -> dict[int, list[Row[Any]]]:
    """The open check-ins (id, first_answer_at) of each client, oldest first."""
    if not client_ids:
        return {}
    rows = await s.execute(
        select(_checkin.c.client_id, _checkin.c.id, _checkin.c.first_answer_at)
        .where(_checkin.c.client_id.in_(list(client_ids)), _checkin.c.status == "open")
        .order_by(_checkin.c.id)
    )
    found: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        found[row.client_id].append(row)
    return found


async def checkin_states(s: AsyncSession, checkin_ids: Collection[int]) -> dict[int, Row[Any]]:
    """Status and first answer of the given check-ins (those that exist)."""
    if not checkin_ids:
        return {}
    rows = await s.execute(
        select(_checkin.c.id, _checkin.c.status, _checkin.c.first_answer_at).where(
            _checkin.c.id.in_(list(checkin_ids))
        )
    )
    return {row.id: row for row in rows}


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


async def sessions_of(
    s: AsyncSession, client_ids: Collection[int], history_of: Collection[int], after: datetime
) -> dict[int, list[Row[Any]]]:
    """Each client's sessions that are not cancelled, in order of start: all of them for the
    clients in `history_of` (their cadence is read from sessions), else those starting after
    `after` (enough for a check-in's expiry)."""
    if not client_ids:
        return {}
    which = _session.c.starts_at > after
    if history_of:
        which = or_(which, _session.c.client_id.in_(list(history_of)))
    rows = await s.execute(
        select(_session.c.client_id, _session.c.starts_at, _session.c.ends_at)
        .where(
            _session.c.client_id.in_(list(client_ids)),
            _session.c.cancelled.is_(False),
            which,
        )
        .order_by(_session.c.client_id, _session.c.starts_at)
    )
    found: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        found[row.client_id].append(row)
    return found


async def therapist_names(s: AsyncSession, therapist_ids: Collection[int]) -> dict[int, bytes]:
    """Encrypted names of the given therapists."""
    if not therapist_ids:
        return {}
    rows = await s.execute(
        select(_therapist.c.id, _therapist.c.name_enc).where(
            _therapist.c.id.in_(list(therapist_ids))
        )
    )
    return {row.id: bytes(row.name_enc) for row in rows}


async def insert_checkins(s: AsyncSession, rows: Sequence[dict[str, Any]]) -> dict[int, int]:
    """Insert open check-ins, at most one per client (one statement); client id -> check-in id.

    Matching by client rather than by position lets SQLite return the ids of a multi-row INSERT
    in any order (asking SQLAlchemy to keep the order makes it insert row by row there).
    """
    if not rows:
        return {}
    result = await s.execute(insert(_checkin).returning(_checkin.c.client_id, _checkin.c.id), rows)
    ids = {int(row.client_id): int(row.id) for row in result}
    if len(ids) != len(rows):
        raise ValueError("one new check-in per client and batch")
    return ids


async def close_checkins(s: AsyncSession, closing: Iterable[tuple[int, str, datetime]]) -> None:
    """Close each (id, status, at) that is still open."""
    params = [{"b_id": cid, "b_status": status, "b_at": at} for cid, status, at in closing]
    if not params:
        return
    await s.execute(
        update(_checkin)
        .where(_checkin.c.id == bindparam("b_id"), _checkin.c.status == "open")
        .values(
            status=bindparam("b_status", type_=_checkin.c.status.type),
            closed_at=bindparam("b_at", type_=_checkin.c.closed_at.type),
        ),
        params,
    )


async def discard_checkins(s: AsyncSession, checkin_ids: Collection[int]) -> None:
    """Delete check-ins that are still open (opened for a conversation that cannot take one)."""
    if checkin_ids:
        await s.execute(
            delete(_checkin).where(
                _checkin.c.id.in_(list(checkin_ids)), _checkin.c.status == "open"
            )
        )


async def insert_outbox(s: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Queue messages (one statement). Ids follow the order of `rows`: a chat's messages keep
    their order because the sender sends each chat's rows by id."""
    if rows:
        await s.execute(insert(_outbox), list(rows))


async def set_next_checkins(
    s: AsyncSession,
    planned: Iterable[tuple[int, datetime | None]],
) -> None:
    """Store each (client id, next check-in)."""
    params = [{"b_id": cid, "b_next": at} for cid, at in planned]
    if params:
        await s.execute(
            update(_client)
            .where(_client.c.id == bindparam("b_id"))
            .values(next_checkin_at=bindparam("b_next", type_=_client.c.next_checkin_at.type)),
            params,
        )


async def set_conversations(
    s: AsyncSession,
    planned: Iterable[tuple[int, dict[str, Any] | None, datetime | None]],
) -> None:
    """Store each (client id, conversation state, next check-in)."""
    params = [{"b_id": cid, "b_conv": state, "b_next": at} for cid, state, at in planned]
    if params:
        await s.execute(
            update(_client)
            .where(_client.c.id == bindparam("b_id"))
            .values(
                conversation=bindparam("b_conv", type_=_client.c.conversation.type),
                next_checkin_at=bindparam("b_next", type_=_client.c.next_checkin_at.type),
            ),
            params,
        )
