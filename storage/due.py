"""The heartbeat's SQL: what is due (check-ins to open, nudges, expiries, digests, pauses that
ran out), the compare-and-set claims that make each happen once, and the set-at-a-time writes of a
batch of openings (a few statements per batch instead of a dozen per client).

Everything here runs inside the caller's transaction and speaks to the tables directly (SQLAlchemy
Core): the rows are read and written once, so the ORM's identity map and per-object flushes would
only add cost. Works the same on SQLite (>= 3.35, for RETURNING) and PostgreSQL.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import (
    Row,
    Table,
    and_,
    bindparam,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from flows.statuses import CheckinStatus, ClientStatus
from storage.along import Write
from storage.models import Base, Client

_client: Table = Base.metadata.tables["client"]
_checkin: Table = Base.metadata.tables["checkin"]
_session: Table = Base.metadata.tables["therapy_session"]
_therapist: Table = Base.metadata.tables["therapist"]
_outbox: Table = Base.metadata.tables["outbox"]
_OPEN_CHECKIN = _checkin.c.status == CheckinStatus.OPEN

DUE_CLIENT_COLUMNS = (
    "id",
    "therapist_id",
    "status",
    "timezone",
    "language",
    "cadence",
    "quiet_hours",
    "outcomes",
    "chat_id",
    "conversation",
    "paused_until",
    "cadence_anchor",
    "unreachable_at",
    "joined_at",
    "next_checkin_at",
)

Claimed: TypeAlias = Row[Any]
"""A claimed row as the due-work queries return it (columns by name)."""


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
    due = and_(_client.c.next_checkin_at <= now, _client.c.status == ClientStatus.ACTIVE)
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


async def insert_outbox(s: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Queue messages (one statement). Ids follow the order of `rows`: a chat's messages keep
    their order because the sender sends each chat's rows by id."""
    if rows:
        await s.execute(insert(_outbox), list(rows))


async def update_clients(s: AsyncSession, columns: Mapping[int, Mapping[str, Any]]) -> None:
    """Store the given columns of each client (client id -> {column: value}): one statement per
    set of columns, however many clients."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for client_id, values in columns.items():
        groups[tuple(sorted(values))].append(client_params(client_id, values))
    for names, params in groups.items():
        await s.execute(client_update(names), params[0] if len(params) == 1 else params)


def client_write(client_id: int, values: Mapping[str, Any]) -> Write:
    """One client's columns to store, as a write that can ride along (`storage.along`)."""
    return Write(client_update(tuple(sorted(values))), client_params(client_id, values))


def client_params(client_id: int, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of `client_update` for one client."""
    return {"b_id": client_id, **{f"b_{name}": value for name, value in values.items()}}


@functools.lru_cache(maxsize=32)
def client_update(names: tuple[str, ...]) -> Any:
    """The UPDATE of these columns of one client (parameters: `client_params`). Built once per
    set of columns: building it per call cost more than running it."""
    return (
        update(_client)
        .where(_client.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}", type_=_client.c[name].type) for name in names})
    )


def set_as_loaded(client: Client, column: str, value: Any) -> None:
    """Set a column of a loaded client as if it had been loaded with `value`: the ORM's flush
    leaves it alone, for the caller writes it with `update_clients` (one statement, where the
    ORM's unit of work is a flush of its own). The column must then not be set the ORM's way in
    the same transaction before that statement runs."""
    set_committed_value(client, column, value)


# --- one item at a time: nudges, expiries, digests, pauses that ran out -----------------------


async def _ids(s: AsyncSession, query: Any, skip: Collection[int], limit: int) -> list[int]:
    if skip:
        query = query.where(query.selected_columns[0].notin_(list(skip)))
    return list(await s.scalars(query.limit(limit)))


async def due_nudges(
    s: AsyncSession, now: datetime, skip: Collection[int], limit: int
) -> list[int]:
    """Open check-ins whose one nudge is due."""
    query = select(_checkin.c.id).where(
        _checkin.c.nudge_at <= now, _checkin.c.nudged_at.is_(None), _OPEN_CHECKIN
    )
    return await _ids(s, query, skip, limit)


async def move_nudge(s: AsyncSession, checkin_id: int, seen: datetime, to: datetime | None) -> None:
    """Move a nudge not sent yet from `seen` to `to` (None: no nudge); a nudge moved or sent
    meanwhile stays as it is."""
    await s.execute(
        update(_checkin)
        .where(
            _checkin.c.id == checkin_id,
            _checkin.c.nudged_at.is_(None),
            _checkin.c.nudge_at == seen,
        )
        .values(nudge_at=to)
    )


async def claim_nudge(s: AsyncSession, checkin_id: int, now: datetime) -> bool:
    """Mark the open check-in nudged; False if it was nudged or closed meanwhile."""
    claimed = await s.execute(
        update(_checkin)
        .where(_checkin.c.id == checkin_id, _checkin.c.nudged_at.is_(None), _OPEN_CHECKIN)
        .values(nudged_at=now)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


async def due_expiries(
    s: AsyncSession, now: datetime, skip: Collection[int], limit: int
) -> list[int]:
    """Open check-ins whose time ran out."""
    query = select(_checkin.c.id).where(_checkin.c.expires_at <= now, _OPEN_CHECKIN)
    return await _ids(s, query, skip, limit)


async def due_digests(
    s: AsyncSession, now: datetime, skip: Collection[int], limit: int
) -> list[int]:
    """Sessions whose digest is due and not sent."""
    query = select(_session.c.id).where(
        _session.c.digest_at <= now,
        _session.c.digest_sent_at.is_(None),
        _session.c.cancelled.is_(False),
    )
    return await _ids(s, query, skip, limit)


async def claim_digest(s: AsyncSession, session_id: int, now: datetime) -> bool:
    """Mark the session's digest sent; False if another pass did."""
    claimed = await s.execute(
        update(_session)
        .where(_session.c.id == session_id, _session.c.digest_sent_at.is_(None))
        .values(digest_sent_at=now)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


async def due_resumptions(
    s: AsyncSession, now: datetime, skip: Collection[int], limit: int
) -> list[int]:
    """Paused clients whose pause has run out."""
    query = select(_client.c.id).where(
        _client.c.status == ClientStatus.PAUSED, _client.c.paused_until <= now
    )
    return await _ids(s, query, skip, limit)


async def claim_resumption(s: AsyncSession, client_id: int, now: datetime) -> bool:
    """Take the end of the client's pause (its date is cleared; the status stays for the
    executor to change); False if they were resumed meanwhile."""
    claimed = await s.execute(
        update(_client)
        .where(
            _client.c.id == client_id,
            _client.c.status == ClientStatus.PAUSED,
            _client.c.paused_until <= now,
        )
        .values(paused_until=None)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]
