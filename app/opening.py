"""Opening due check-ins a batch at a time: the heartbeat's busiest job.

A batch is one transaction: claim up to `BATCH` due clients (`storage.due.claim_due_clients`, a
compare-and-set that a rollback or a crash undoes), load what their check-ins need with one query
per kind (open check-ins, last opening, sessions, therapists), run each client's flow, and write the
check-ins, outbox rows and client rows with a statement per kind. What a client gets is exactly
what opening them one by one gave: the same rows, the same messages in the same order, the same
next check-in. A flow outcome this fast path does not know is carried out by `app.effects`, as for
any other event.

Batches stay small so a SQLite write lock is never held for long (updates from clients wait for
it); a pass runs batches until nothing is due or its time budget is spent, and the next pass goes on
where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app import effects
from app.planning import (
    cadence_of,
    client_quiet,
    deadlines_for,
    plan_next_checkin,
    replan_client,
    uses_sessions,
)
from app.quarantine import OPENING, is_transient
from app.runtime import Runtime
from flows import intents as I
from flows.conversation import ClientContext, Outcome, handle
from flows.events import OpenCheckin
from flows.timing import defer_out_of_quiet
from storage import due, repo
from storage.models import Checkin, Client, Practice

BATCH = 50
"""Clients claimed per transaction: about 25 ms of SQLite's write lock at a time."""

QUARANTINE_KIND = OPENING
"""How `app.quarantine` names the clients whose check-in failed to open."""

BUDGET_SECONDS = 5.0
"""Wall time after which a pass stops starting new batches (one heartbeat interval)."""

_MESSAGES = (I.Reply, I.Notice)
_CHECKIN_CHANGES = (I.FinishCheckin, I.DiscardCheckin)


@dataclass
class Opening:
    """What opening did in one pass."""

    opened: int = 0
    deferred: int = 0  # due at night: moved to the morning
    batches: int = 0
    backlog: bool = False  # the budget ran out with clients still due


async def open_due(
    rt: Runtime, now: datetime, *, batch: int = BATCH, budget: float = BUDGET_SECONDS
) -> Opening:
    """Open every check-in due at `now`, batch after batch, within `budget` seconds of wall time.

    A batch that fails is rolled back whole; its clients are then opened one per transaction,
    so the client whose data broke it is found and set aside (`app.quarantine`) while everyone
    else gets their check-in in this pass."""
    began = time.monotonic()
    result = Opening()
    aliases: dict[int, str] = {}
    one_by_one = 0  # clients still to open one per transaction after a batch failed
    while True:
        size = 1 if one_by_one else batch
        rows: list[Row[Any]] = []
        try:
            async with rt.sessions() as s, s.begin():
                skip = rt.quarantine.held(QUARANTINE_KIND, now)
                rows = await due.claim_due_clients(s, now, size, skip)
                opened, deferred = await _open_batch(s, rt, rows, now, aliases)
        except Exception as exc:
            if not rows or is_transient(exc):
                raise
            if len(rows) > 1:
                one_by_one = len(rows)
                continue
            rt.quarantine.failed(QUARANTINE_KIND, rows[0].id, now, exc)
            opened = deferred = 0
        else:
            rt.quarantine.cleared(QUARANTINE_KIND, (row.id for row in rows))
        one_by_one = max(0, one_by_one - 1)
        result.batches += 1
        result.opened += opened
        result.deferred += deferred
        if opened:
            rt.wake_sender()  # these are committed: sending starts while the next batch runs
        if len(rows) < size:
            return result
        if time.monotonic() - began >= budget:
            result.backlog = True
            return result
        await asyncio.sleep(0)  # let updates and the sender have the loop between batches


@dataclass
class _Checkin:
    """What the batch knows of a check-in it may close or discard."""

    status: str
    first_answer_at: datetime | None
    closed_at: datetime | None = None
    changed: bool = False


@dataclass
class _Known:
    """What the batch loads for its clients, one query per kind."""

    sessions: dict[int, list[Row[Any]]]
    last_opened: dict[int, datetime]
    stale: dict[int, list[Row[Any]]]  # check-ins open before this batch opened new ones


@dataclass
class _Batch:
    """The rows one batch writes, gathered while its clients' flows run."""

    checkins: dict[int, _Checkin] = field(default_factory=dict)
    changes: list[I.FinishCheckin | I.DiscardCheckin] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    conversations: dict[int, dict[str, Any]] = field(default_factory=dict)
    opened: dict[int, int] = field(default_factory=dict)  # new check-in id -> client id
    kept: set[int] = field(default_factory=set)  # clients whose new check-in still stands
    slow: list[tuple[Row[Any], Outcome, OpenCheckin]] = field(default_factory=list)


async def _open_batch(
    s: AsyncSession, rt: Runtime, rows: Sequence[Row[Any]], now: datetime, aliases: dict[int, str]
) -> tuple[int, int]:
    """(opened, deferred) for the claimed clients, inside the caller's transaction."""
    if not rows:
        return 0, 0
    practice = await repo.get_practice(s, now)
    planned: list[Row[Any]] = []
    deferred: list[tuple[int, datetime | None]] = []
    for row in rows:
        morning = defer_out_of_quiet(now, row.timezone or "UTC", client_quiet(row, practice))
        if morning > now:  # due at night: it waits for the morning
            deferred.append((row.id, morning))
        else:
            planned.append(row)
    await due.set_next_checkins(s, deferred)
    reachable = [row for row in planned if row.unreachable_at is None]
    if planned:
        known = await _load(s, rt, planned, reachable, practice, now, aliases)
        work = await _open(s, rt, reachable, known, practice, now, aliases)
        await _write(s, rt, planned, known, work, practice, now)
    return len(reachable), len(deferred)


async def _load(
    s: AsyncSession,
    rt: Runtime,
    planned: Sequence[Row[Any]],
    reachable: Sequence[Row[Any]],
    practice: Practice,
    now: datetime,
    aliases: dict[int, str],
) -> _Known:
    """Sessions and last opening of every client to plan, open check-ins of those to open, and
    the names of therapists not met yet in this pass."""
    planned_ids = [row.id for row in planned]
    history = [
        row.id
        for row in planned
        if row.timezone is not None and uses_sessions(cadence_of(row.cadence or practice.cadence))
    ]
    known = _Known(
        sessions=await due.sessions_of(s, planned_ids, history, now),
        last_opened=await due.last_opened(s, planned_ids),
        stale=await due.open_checkins_of(s, [row.id for row in reachable]),
    )
    missing = {row.therapist_id for row in reachable} - aliases.keys()
    for therapist_id, name_enc in (await due.therapist_names(s, missing)).items():
        aliases[therapist_id] = rt.cipher.decrypt_name(name_enc)
    return known


async def _open(
    s: AsyncSession,
    rt: Runtime,
    reachable: Sequence[Row[Any]],
    known: _Known,
    practice: Practice,
    now: datetime,
    aliases: dict[int, str],
) -> _Batch:
    """Insert the new check-ins and run each client's flow on its OpenCheckin."""
    checkin_ids = await due.insert_checkins(
        s, [_checkin_row(row, practice, known.sessions.get(row.id, ()), now) for row in reachable]
    )
    work = _Batch()
    for row in reachable:
        checkin_id = checkin_ids[row.id]
        event = OpenCheckin(at=now, checkin_id=checkin_id)
        outcome = handle(row.conversation, event, _context(row, practice, aliases))
        if not _plain(row, outcome):
            work.slow.append((row, outcome, event))
            continue
        work.checkins[checkin_id] = _Checkin("open", None)
        work.opened[checkin_id] = row.id
        work.kept.add(row.id)
        for old in known.stale.get(row.id, ()):
            work.checkins[old.id] = _Checkin("open", old.first_answer_at)
        _gather(rt, row, outcome, now, work)
    return work


async def _write(
    s: AsyncSession,
    rt: Runtime,
    planned: Sequence[Row[Any]],
    known: _Known,
    work: _Batch,
    practice: Practice,
    now: datetime,
) -> None:
    """Check-ins closed or discarded, messages, conversations and next check-ins; then the
    clients whose outcome `effects` carries out."""
    slow = {row.id for row, _, _ in work.slow}
    fast_stale = [old for cid, rows in known.stale.items() if cid not in slow for old in rows]
    await _change_checkins(s, work, fast_stale, now)
    await due.insert_outbox(s, work.outbox)
    plans = {
        row.id: _next_checkin(
            row, practice, known.sessions.get(row.id, ()), known.last_opened.get(row.id), now, work
        )
        for row in planned
        if row.id not in slow
    }
    await due.set_conversations(
        s, [(cid, state, plans[cid]) for cid, state in work.conversations.items()]
    )
    await due.set_next_checkins(
        s, [(cid, at) for cid, at in plans.items() if cid not in work.conversations]
    )
    for row, outcome, event in work.slow:
        await _apply_slowly(s, rt, row, outcome, event, known.stale.get(row.id, ()), practice, now)


def _checkin_row(
    row: Row[Any], practice: Practice, sessions: Sequence[Row[Any]], now: datetime
) -> dict[str, Any]:
    upcoming = next((x.starts_at for x in sessions if x.starts_at > now), None)
    deadlines = deadlines_for(
        now,
        tz=row.timezone or "UTC",
        quiet=client_quiet(row, practice),
        next_session_start=upcoming,
        practice=practice,
    )
    return {
        "client_id": row.id,
        "instrument": practice.instrument,
        "status": "open",
        "opened_at": now,
        "nudge_at": deadlines.nudge_at,
        "expires_at": deadlines.expires_at,
    }


def _context(row: Row[Any], practice: Practice, aliases: dict[int, str]) -> ClientContext:
    """What `effects.context_for` builds, from the batch's rows."""
    lang = row.language or practice.language
    return ClientContext(
        language=lang,
        timezone=row.timezone,
        instrument=effects.instrument(practice.instrument),
        safety_item=practice.safety_item,
        crisis_resources=practice.crisis_resources.get(lang) or "",
        therapist_alias=aliases[row.therapist_id],
        telegram_language=None,
    )


def _plain(row: Row[Any], outcome: Outcome) -> bool:
    """Whether the outcome is one this module carries out itself: messages to a bound chat and
    check-ins closed or discarded (all an opening produces today)."""
    for intent in outcome.intents:
        if isinstance(intent, _MESSAGES):
            if row.chat_id is None:
                return False
        elif not isinstance(intent, _CHECKIN_CHANGES):
            return False
    return True


def _gather(rt: Runtime, row: Row[Any], outcome: Outcome, now: datetime, work: _Batch) -> None:
    """The rows `effects.apply` would write for this outcome, added to the batch."""
    work.conversations[row.id] = outcome.state
    for intent in outcome.intents:
        if isinstance(intent, I.Reply):
            buttons = effects.buttons_payload(intent.buttons)
            work.outbox.append(_message(rt, row, intent.text, buttons, now))
        elif isinstance(intent, I.Notice):
            work.outbox.append(_message(rt, row, intent.text, [], now))
        elif isinstance(intent, _CHECKIN_CHANGES):
            work.changes.append(intent)


def _message(
    rt: Runtime, row: Row[Any], text: str, buttons: list[list[dict[str, str]]], now: datetime
) -> dict[str, Any]:
    """An outbox row as `repo.enqueue` writes it for `effects.send`."""
    payload: dict[str, Any] = {"text": text}
    if buttons:
        payload["buttons"] = buttons
    return {
        "chat_id": row.chat_id,
        "client_id": row.id,
        "therapist_id": None,
        "kind": "text",
        "payload_enc": rt.cipher.encrypt(json.dumps(payload, ensure_ascii=False)),
        "status": "pending",
        "attempts": 0,
        "not_before": now,
        "created_at": now,
    }


async def _change_checkins(
    s: AsyncSession, work: _Batch, stale: Sequence[Row[Any]], now: datetime
) -> None:
    """Carry out the flows' FinishCheckin and DiscardCheckin in order, then close what is still
    open of the check-ins that were open before this one (missed, or partial if answered)."""
    unknown = {c.checkin_id for c in work.changes} - work.checkins.keys()
    for checkin_id, found in (await due.checkin_states(s, unknown)).items():
        work.checkins[checkin_id] = _Checkin(found.status, found.first_answer_at)
    discarded: list[int] = []
    for change in work.changes:
        checkin = work.checkins.get(change.checkin_id)
        if checkin is None or checkin.status != "open":
            continue
        if isinstance(change, I.DiscardCheckin):
            checkin.status = "discarded"
            discarded.append(change.checkin_id)
            continue
        answered = change.answered > 0 or checkin.first_answer_at is not None
        partial_or_missed = "partial" if answered else "missed"
        checkin.status = "answered" if change.complete else partial_or_missed
        checkin.closed_at, checkin.changed = change.at, True
    for old in stale:
        checkin = work.checkins[old.id]
        if checkin.status == "open":
            checkin.status = "partial" if checkin.first_answer_at else "missed"
            checkin.closed_at, checkin.changed = now, True
    await due.close_checkins(
        s,
        [
            (cid, c.status, c.closed_at)
            for cid, c in work.checkins.items()
            if c.changed and c.closed_at is not None
        ],
    )
    await due.discard_checkins(s, discarded)
    work.kept.difference_update(work.opened[cid] for cid in discarded if cid in work.opened)


def _next_checkin(
    row: Row[Any],
    practice: Practice,
    sessions: Sequence[Row[Any]],
    last: datetime | None,
    now: datetime,
    work: _Batch,
) -> datetime | None:
    """What `replan_client` computes, from the batch's rows (the claim kept the status active)."""
    if row.id in work.kept:  # the check-in opened just now is the latest
        last = now if last is None else max(last, now)
    return plan_next_checkin(row, practice, now=now, sessions=sessions, last_opened=last)


async def _apply_slowly(
    s: AsyncSession,
    rt: Runtime,
    row: Row[Any],
    outcome: Outcome,
    event: OpenCheckin,
    stale: Sequence[Row[Any]],
    practice: Practice,
    now: datetime,
) -> None:
    """An outcome the batch does not handle: `effects.apply` carries it out, as for an update."""
    client = await s.get(Client, row.id)
    assert client is not None
    await effects.apply(s, rt, client, practice, outcome, event, now, None)
    await s.flush()
    for old in stale:
        checkin = await s.get(Checkin, old.id)
        if checkin is not None and checkin.status == "open":
            checkin.status = "partial" if checkin.first_answer_at else "missed"
            checkin.closed_at = now
    await replan_client(s, client, practice, now)
