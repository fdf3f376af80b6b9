"""Opening due check-ins a batch at a time: the heartbeat's busiest job.

A batch is one transaction: claim up to `BATCH` due clients (`storage.due.claim_due_clients`, a
compare-and-set that a rollback or a crash undoes), load what their check-ins need with one query
per kind (open check-ins, last opening, sessions, therapists), insert their check-ins in one
statement, and feed each client's flow its `OpenCheckin` through one executor (`app.effects`),
which writes the outbox rows, closed check-ins and client rows of the whole batch with a statement
per kind. What a client gets is exactly what opening them one by one gives: the same rows, the same
messages in the same order, the same next check-in.

Batches stay small so a SQLite write lock is never held for long (updates from clients wait for
it); a pass runs batches until nothing is due or its time budget is spent, and the next pass goes on
where it stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.asking import measures_of, moments_of
from app.effects import Executor, instrument
from app.planning import (
    cadence_of,
    client_quiet,
    deadlines_for,
    plan_next_checkin,
    replan_client,
    uses_sessions,
)
from app.quarantine import OPENING, is_transient
from app.runtime import Runtime, Session
from flows.events import OpenCheckin
from flows.timing import defer_out_of_quiet
from storage import checkins, due, people
from storage.due import Claimed
from storage.models import Practice

BATCH = 50
"""Clients claimed per transaction: about 25 ms of SQLite's write lock at a time."""

QUARANTINE_KIND = OPENING
"""How `app.quarantine` names the clients whose check-in failed to open."""

BUDGET_SECONDS = 5.0
"""Wall time after which a pass stops starting new batches (one heartbeat interval)."""


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
        rows: list[Claimed] = []
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
class _Known:
    """What the batch loads for its clients, one query per kind."""

    sessions: dict[int, list[Claimed]]
    last_opened: dict[int, datetime]
    stale: dict[int, list[Claimed]]  # check-ins open before this batch opened new ones


async def _open_batch(
    s: Session, rt: Runtime, rows: Sequence[Claimed], now: datetime, aliases: dict[int, str]
) -> tuple[int, int]:
    """(opened, deferred) for the claimed clients, inside the caller's transaction."""
    if not rows:
        return 0, 0
    practice = await people.get_practice(s, now)
    ex = Executor(s, rt, practice, now, aliases=aliases)
    planned: list[Claimed] = []
    for row in rows:
        morning = defer_out_of_quiet(now, row.timezone or "UTC", client_quiet(row, practice))
        if morning > now:  # due at night: it waits for the morning
            ex.set_next_checkin(row, morning)
        else:
            planned.append(row)
    reachable = [row for row in planned if row.unreachable_at is None]
    if planned:
        known = await _load(s, ex, planned, reachable, practice, now)
        opened = await checkins.insert_open(
            s,
            [_checkin_row(row, practice, known.sessions.get(row.id, ()), now) for row in reachable],
        )
        asks = instrument(practice.instrument)
        moments = await moments_of(s, asks, opened.keys(), now)
        measures = await measures_of(s, practice.outcomes, asks, reachable, now)
        for row in reachable:
            stale = known.stale.get(row.id, ())
            ex.know(opened[row.id], None)
            for old in stale:
                ex.know(old.id, old.first_answer_at)
            event = OpenCheckin(
                at=now,
                checkin_id=opened[row.id],
                moment=moments[row.id],
                measures=measures[row.id],
            )
            await ex.client_event(row, event)
            # What the flow did not close of the check-ins open before this one: missed, or
            # partial if answered.
            ex.close_left_open((old.id for old in stale), now)
        for row in planned:
            if row.id not in ex.clients:
                last = known.last_opened.get(row.id)
                if row.id in opened and not ex.voided(opened[row.id]):
                    last = now if last is None else max(last, now)  # the one opened just now
                sessions = known.sessions.get(row.id, ())
                plan = plan_next_checkin(
                    row, practice, now=now, sessions=sessions, last_opened=last
                )
                ex.set_next_checkin(row, plan)
    await ex.flush()
    for client in ex.clients.values():  # loaded whole by the executor: planned the usual way
        await replan_client(s, client, practice, now)
    return len(reachable), len(rows) - len(planned)


async def _load(
    s: Session,
    ex: Executor,
    planned: Sequence[Claimed],
    reachable: Sequence[Claimed],
    practice: Practice,
    now: datetime,
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
        last_opened=await checkins.last_opened(s, planned_ids),
        stale=await checkins.open_of(s, [row.id for row in reachable]),
    )
    missing = {row.therapist_id for row in reachable} - ex.aliases.keys()
    for therapist_id, name_enc in (await due.therapist_names(s, missing)).items():
        ex.aliases[therapist_id] = ex.rt.cipher.decrypt_name(name_enc)
    return known


def _checkin_row(
    row: Claimed, practice: Practice, sessions: Sequence[Claimed], now: datetime
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
        "opened_at": now,
        "nudge_at": deadlines.nudge_at,
        "expires_at": deadlines.expires_at,
    }
