"""Bulk population of a database with active clients, for the scheduler and fan-out benchmarks.

Going through `app.admin` costs one transaction per client (minutes for 100,000); here therapists
and clients are inserted in large batches in the state onboarding leaves them in: active, consent
recorded, a time zone, an idle conversation and a `next_checkin_at`. Encrypted names are one
ciphertext per role, reused: the rows are realistic in size and decrypt correctly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text, update

from app.runtime import Runtime
from bench.common import TIMEZONE
from flows.onboarding import CONSENT_VERSION
from flows.state import new_state
from storage import people
from storage.models import Answer, Checkin, Client, Therapist

CLIENTS_PER_THERAPIST = 100
INSERT_BATCH = 5_000
# Telegram ids for clients that are never messaged: far from the sandbox's own id range.
SILENT_USER_IDS = 900_000_000


@dataclass(frozen=True)
class Populated:
    clients: int
    therapists: int
    due: int


async def populate(
    rt: Runtime,
    count: int,
    *,
    now: datetime,
    due: int = 0,
    chat_ids: Sequence[int] | None = None,
    horizon: timedelta = timedelta(days=7),
    seed: int = 7,
) -> Populated:
    """Insert `count` active clients; the first `due` are due now, the rest within `horizon`.

    `chat_ids[i]` (a sandbox user) is the Telegram id of client i when given; otherwise ids
    from a range nobody answers in.
    """
    if chat_ids is not None and len(chat_ids) < count:
        raise ValueError("need one chat id per client")
    rng = random.Random(seed)
    async with rt.sessions() as s, s.begin():
        practice = await people.get_practice(s, now)
        practice_id = practice.id
    therapist_ids = await _therapists(rt, practice_id, -(-count // CLIENTS_PER_THERAPIST), now)
    name_enc = rt.cipher.encrypt("Bench Client")
    conversation = new_state("idle", "idle")

    def row(i: int) -> dict[str, Any]:
        user_id = chat_ids[i] if chat_ids is not None else SILENT_USER_IDS + i
        if i < due:
            next_at = now - timedelta(seconds=60 + i % 600)
        else:
            next_at = now + timedelta(seconds=rng.uniform(3600, horizon.total_seconds()))
        return {
            "practice_id": practice_id,
            "therapist_id": therapist_ids[i // CLIENTS_PER_THERAPIST],
            "name_enc": name_enc,
            "alias": f"B{i % CLIENTS_PER_THERAPIST}",
            "code": f"BN-{i:08d}",
            "status": "active",
            "timezone": TIMEZONE,
            "language": "en",
            "telegram_user_id": user_id,
            "chat_id": user_id,
            "conversation": conversation,
            "next_checkin_at": next_at,
            "cadence_anchor": now - timedelta(days=7),
            "consent_version": CONSENT_VERSION,
            "consent_at": now - timedelta(days=7),
            "joined_at": now - timedelta(days=7),
            "created_at": now - timedelta(days=7),
        }

    await _insert_batches(rt, Client, count, row)
    await analyze(rt)
    return Populated(clients=count, therapists=len(therapist_ids), due=due)


async def analyze(rt: Runtime) -> None:
    """Refresh the planner's statistics, as autovacuum would soon after a bulk load: the
    benchmark measures a database in its steady state, not one minute after an import."""
    async with rt.sessions() as s, s.begin():
        if rt.engine.dialect.name == "postgresql":
            await s.execute(text("ANALYZE client"))
            await s.execute(text("ANALYZE therapist"))
        else:
            await s.execute(text("ANALYZE"))


async def _therapists(rt: Runtime, practice_id: int, count: int, now: datetime) -> list[int]:
    name_enc = rt.cipher.encrypt("Bench Therapist")

    def row(_i: int) -> dict[str, Any]:
        return {
            "practice_id": practice_id,
            "name_enc": name_enc,
            "timezone": TIMEZONE,
            "language": "en",
            "created_at": now,
        }

    async with rt.sessions() as s:
        before = int(await s.scalar(select(func.coalesce(func.max(Therapist.id), 0))) or 0)
    await _insert_batches(rt, Therapist, count, row)
    async with rt.sessions() as s:
        query = select(Therapist.id).where(Therapist.id > before).order_by(Therapist.id)
        return list(await s.scalars(query))


async def _insert_batches(
    rt: Runtime, model: type[Any], count: int, row: Callable[[int], dict[str, Any]]
) -> None:
    for first in range(0, count, INSERT_BATCH):
        rows = [row(i) for i in range(first, min(count, first + INSERT_BATCH))]
        async with rt.sessions() as s, s.begin():
            await s.execute(insert(model), rows)


ITEMS = ("heard", "goals", "approach", "overall", "wellbeing")


async def add_checkins(
    rt: Runtime, client_ids: Sequence[int], now: datetime, *, weeks: int = 8, seed: int = 7
) -> int:
    """Give each client a weekly history: answered check-ins (scores drifting per client, some
    falling), a missed one now and then; returns how many check-ins were written."""
    rng = random.Random(seed)
    written = 0
    for first in range(0, len(client_ids), 500):
        batch = client_ids[first : first + 500]
        checkin_rows: list[dict[str, Any]] = []
        plans: list[list[int] | None] = []
        for client_id in batch:
            level, drift = rng.randint(5, 10), rng.choice((0, 0, 0, -1))
            for week in range(weeks):
                opened = now - timedelta(days=7 * (weeks - week), hours=-2)
                missed = rng.random() < 0.12
                checkin_rows.append(
                    {
                        "client_id": client_id,
                        "instrument": "rapport-brief",
                        "status": "missed" if missed else "answered",
                        "opened_at": opened,
                        "first_answer_at": None if missed else opened + timedelta(hours=1),
                        "closed_at": opened + timedelta(days=4 if missed else 0, hours=1),
                    }
                )
                value = max(0, min(10, level + drift * week // 2))
                plans.append(
                    None if missed else [max(0, min(10, value + rng.randint(-1, 1))) for _ in ITEMS]
                )
        async with rt.sessions() as s, s.begin():
            ids = (await s.scalars(insert(Checkin).returning(Checkin.id), checkin_rows)).all()
            answers = [
                {
                    "checkin_id": checkin_id,
                    "item": item,
                    "value": value,
                    "answered_at": row["first_answer_at"],
                }
                for checkin_id, row, values in zip(ids, checkin_rows, plans, strict=True)
                if values is not None
                for item, value in zip(ITEMS, values, strict=True)
            ]
            if answers:
                await s.execute(insert(Answer), answers)
        written += len(checkin_rows)
    return written


async def make_due(rt: Runtime, client_ids: Sequence[int], now: datetime) -> None:
    """Move these clients' next check-in to a minute ago."""
    async with rt.sessions() as s, s.begin():
        for first in range(0, len(client_ids), 1_000):
            chunk = list(client_ids[first : first + 1_000])
            await s.execute(
                update(Client)
                .where(Client.id.in_(chunk))
                .values(next_checkin_at=now - timedelta(minutes=1))
            )


async def due_count(rt: Runtime, now: datetime) -> int:
    async with rt.sessions() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(Client)
                .where(Client.next_checkin_at <= now, Client.status == "active")
            )
            or 0
        )
