"""Opening due check-ins in batches (`app.opening`) against the one-client-per-transaction way it
replaced, kept below as the reference: on the same practice both must leave the same rows behind
(check-ins and their deadlines, outbox messages and their order, conversation states, next
check-ins). The practice mixes what can happen to a due client: a check-in still open, answered
or not, a conversation that lost its check-in, a blocked bot, night in the client's zone, sessions
that end a check-in early or drive the cadence, no stored state, other languages.

Runs once per backend (`db_url`); PostgreSQL also shows that concurrent claims never overlap and
that a claim rolled back leaves its clients due.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from app import effects, opening
from app.clock import ManualClock
from app.config import load_settings
from app.heartbeat import _morning, run_pass
from app.planning import replan_client
from app.runtime import Runtime
from flows import intents as I
from flows.conversation import ClientContext, Outcome, handle
from flows.events import OpenCheckin, Text
from flows.state import new_state
from storage import checkins, due, people
from storage.crypto import Cipher
from storage.models import Checkin, Client, OutboxMessage
from tests.conftest import START, TABLES, TEST_KEY

Fresh = Callable[[], Awaitable[Runtime]]


@pytest.fixture
async def fresh(
    request: pytest.FixtureRequest, db_url: str, sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[Fresh]:
    """Runtimes on empty databases of the test's backend, one after the other."""
    made: list[Runtime] = []

    async def make() -> Runtime:
        if db_url.startswith("sqlite"):
            path = tmp_path / f"copy{len(made)}.db"
            shutil.copy(sqlite_template, path)
            url = f"sqlite+aiosqlite:///{path}"
        else:
            url = db_url
            for rt in made:
                await rt.close()
            made.clear()
        settings = load_settings(database_url=url, encryption_key=TEST_KEY, telegram_token=None)
        rt = Runtime.create(settings, clock=ManualClock(START), cipher=Cipher(TEST_KEY))
        if not url.startswith("sqlite"):
            async with rt.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        made.append(rt)
        return rt

    yield make
    for rt in made:
        await rt.close()


# --- the reference: one transaction per client, as the heartbeat opened check-ins before ---------


async def reference_open_due(rt: Runtime, now: datetime) -> int:
    async with rt.sessions() as s:
        ids = list(
            await s.scalars(
                select(Client.id)
                .where(Client.next_checkin_at <= now, Client.status == "active")
                .order_by(Client.next_checkin_at)
            )
        )
    done = 0
    for client_id in ids:
        async with rt.sessions() as s, s.begin():
            client = await s.get(Client, client_id)
            assert client is not None and client.next_checkin_at is not None
            seen = client.next_checkin_at
            practice = await people.get_practice(s, now)
            morning = _morning(client, practice, now)
            await s.execute(
                update(Client)
                .where(Client.id == client_id, Client.next_checkin_at == seen)
                .values(next_checkin_at=morning if morning > now else None)
                .execution_options(synchronize_session=False)
            )
            if morning > now:
                continue
            if client.unreachable_at is None:
                stale = await checkins.open_checkin_of(s, client_id)
                await effects.open_checkin(s, rt, client, practice, now)
                if stale is not None:
                    await s.refresh(stale)
                    if stale.status == "open":
                        stale.status = "partial" if stale.first_answer_at else "missed"
                        stale.closed_at = now
                done += 1
            await replan_client(s, client, practice, now)
    return done


# --- the practice ------------------------------------------------------------------------------


@dataclass
class Spec:
    """One client of the practice; `due` minutes before now (distinct: the order is defined)."""

    name: str
    due: int
    timezone: str | None = "Europe/Berlin"
    language: str | None = "en"
    cadence: str | None = None
    quiet_hours: str | None = None
    state: str = "idle"  # idle | open | answered | lost | lost_answered | none | onboarding
    unreachable: bool = False
    sessions: list[tuple[float, int]] = field(default_factory=list)  # (days from now, minutes)
    anchored: bool = True
    therapist: int = 0


PRACTICE = [
    Spec("Plain Client", due=300),
    Spec("Open Unanswered", due=290, state="open"),
    Spec("Open Answered", due=280, state="answered", language="es"),
    Spec("Lost Checkin", due=270, state="lost"),
    Spec("Lost Answered", due=265, state="lost_answered", language="es"),
    Spec("Blocked Bot", due=260, unreachable=True),
    Spec("Night Owl", due=250, timezone="Pacific/Auckland"),
    Spec("Session Soon", due=240, sessions=[(-6.9, 50), (1.5, 50), (8.5, 50)], therapist=1),
    Spec(
        "After Session",
        due=230,
        cadence="after-session 24h + midway at 19:00",
        sessions=[(-13.9, 50), (-6.9, 50), (0.3, 60), (7.3, 60)],
        language="ru",
    ),
    Spec("Weekday Quiet", due=220, cadence="weekdays tue,fri at 08:30", quiet_hours="off"),
    Spec("No Anchor", due=210, anchored=False, timezone="Asia/Tokyo", therapist=1),
    Spec("No Zone", due=200, timezone=None, quiet_hours="off"),
    Spec("Open Blocked", due=190, state="open", unreachable=True),
    Spec("Onboarding State", due=20, state="onboarding"),
    Spec("Stateless", due=10, state="none", cadence="every day at 18:00"),
]


async def build(rt: Runtime, practice: list[Spec]) -> dict[str, int]:
    """The practice in a fresh database; client ids by name."""
    now = rt.clock.now()
    cipher, ids = rt.cipher, {}
    async with rt.sessions() as s, s.begin():
        settings = await people.get_practice(s, now)
        settings.crisis_resources = {"en": "Call 112."}
        therapists = []
        for n, name in enumerate(("Dana Lee", "Omar Ruiz")):
            therapist = await people.add_therapist(s, cipher, name=name, timezone="UTC", now=now)
            therapist.chat_id = therapist.telegram_user_id = 7000 + n
            therapists.append(therapist)
        for n, spec in enumerate(practice):
            client = await people.add_client(
                s,
                cipher,
                therapist_id=therapists[spec.therapist].id,
                name=spec.name,
                now=now - timedelta(days=30),
                timezone=spec.timezone,
                cadence=spec.cadence,
                language=spec.language,
            )
            client.status, client.quiet_hours = "active", spec.quiet_hours
            client.chat_id = client.telegram_user_id = 9000 + n
            client.joined_at = now - timedelta(days=30) if spec.anchored else None
            client.cadence_anchor = now - timedelta(days=20) if spec.anchored else None
            client.unreachable_at = now - timedelta(days=1) if spec.unreachable else None
            client.next_checkin_at = now - timedelta(minutes=spec.due)
            await s.flush()
            client.conversation = await _state(s, rt, client, spec, now)
            for days, minutes in spec.sessions:
                await people.add_session(
                    s,
                    client_id=client.id,
                    starts_at=now + timedelta(days=days),
                    minutes=minutes,
                    now=now - timedelta(days=30),
                )
            ids[spec.name] = client.id
    return ids


async def _state(
    s: Any, rt: Runtime, client: Client, spec: Spec, now: datetime
) -> dict[str, Any] | None:
    if spec.state == "none":
        return None
    if spec.state == "onboarding":
        return new_state("onboarding", "consent")
    idle = new_state("idle", "idle")
    if spec.state == "idle":
        return idle
    opened = now - timedelta(days=3)
    checkin = await checkins.open_checkin(
        s, client_id=client.id, instrument="rapport-brief", now=opened
    )
    checkin.expires_at = now + timedelta(hours=5)
    if spec.state.startswith("lost"):  # the stored conversation no longer knows the check-in
        if spec.state == "lost_answered":
            await checkins.record_answer(
                s, rt.cipher, checkin_id=checkin.id, item="heard", value=4, at=opened
            )
        return idle
    ctx = ClientContext(language=spec.language or "en", timezone=spec.timezone)
    state = handle(idle, OpenCheckin(at=opened, checkin_id=checkin.id), ctx).state
    if spec.state == "answered":
        answered_at = opened + timedelta(hours=1)
        state = handle(state, Text(at=answered_at, text="7"), ctx).state
        await checkins.record_answer(
            s, rt.cipher, checkin_id=checkin.id, item="heard", value=7, at=answered_at
        )
    return state


async def snapshot(rt: Runtime, *, by_chat: bool = False) -> dict[str, Any]:
    """Everything opening writes, in comparable form (outbox bodies decrypted)."""
    async with rt.sessions() as s:
        checkins = [
            (c.id, c.client_id, c.instrument, c.status, c.opened_at, c.nudge_at, c.nudged_at,
             c.expires_at, c.first_answer_at, c.closed_at)
            for c in await s.scalars(select(Checkin).order_by(Checkin.id))
        ]  # fmt: skip
        messages = [
            (m.chat_id, m.client_id, m.therapist_id, m.kind, m.status, m.attempts, m.not_before,
             m.created_at, json.loads(rt.cipher.decrypt(m.payload_enc)))
            for m in await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        ]  # fmt: skip
        clients = [
            (c.id, c.status, c.conversation, c.next_checkin_at, c.unreachable_at)
            for c in await s.scalars(select(Client).order_by(Client.id))
        ]
    if by_chat:  # each chat's messages in order; how chats interleave may differ
        messages.sort(key=lambda m: m[0])
    return {"checkins": checkins, "outbox": messages, "clients": clients}


# --- the same rows ----------------------------------------------------------------------------


async def test_batches_leave_the_rows_one_by_one_opening_left(fresh: Fresh) -> None:
    old = await fresh()
    await build(old, PRACTICE)
    opened_old = await reference_open_due(old, old.clock.now())
    expected = await snapshot(old)

    new = await fresh()
    ids = await build(new, PRACTICE)
    result = await opening.open_due(new, new.clock.now(), batch=4)
    got = await snapshot(new)

    assert result.opened == opened_old == 12  # all but the night owl and the two blocked
    assert (result.deferred, result.batches, result.backlog) == (1, 4, False)
    assert got == expected

    # What the reference stands for, spelled out for a few clients.
    checkins = {c[1]: c for c in got["checkins"] if c[4] == new.clock.now()}
    states = {c[0]: c for c in got["clients"]}
    assert ids["Blocked Bot"] not in checkins and ids["Night Owl"] not in checkins
    assert ids["Stateless"] not in checkins, "a check-in for no conversation is discarded"
    night = states[ids["Night Owl"]]
    assert (
        night[3] is not None
        and night[3] > new.clock.now()
        and night[2] == new_state("idle", "idle")
    )
    soon = checkins[ids["Session Soon"]]
    assert soon[7] == new.clock.now() + timedelta(days=1.5), "expires at the next session"
    closed = {c[0]: c[3] for c in got["checkins"] if c[4] < new.clock.now()}
    assert sorted(closed.values()) == ["missed", "missed", "open", "partial", "partial"]
    assert next(m[8]["text"] for m in got["outbox"] if m[1] == ids["Plain Client"]).strip()
    assert all(states[ids[name]][3] is not None for name in ("Plain Client", "Blocked Bot"))


async def test_an_outcome_the_batch_does_not_know_goes_through_effects(
    fresh: Fresh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow that also tells the therapist something on opening: the executor loads that client
    whole, and the result is still what one-by-one opening gives."""
    real = handle

    def telling(state: Any, event: Any, ctx: ClientContext) -> Outcome:
        outcome = real(state, event, ctx)
        if ctx.language == "es":
            outcome.intents.append(I.TellTherapist("paused_open"))
        return outcome

    monkeypatch.setattr(effects, "handle", telling)
    old = await fresh()
    await build(old, PRACTICE)
    await reference_open_due(old, old.clock.now())
    expected = await snapshot(old, by_chat=True)

    new = await fresh()
    await build(new, PRACTICE)
    await opening.open_due(new, new.clock.now(), batch=4)
    got = await snapshot(new, by_chat=True)
    assert got == expected
    assert any(m[2] is not None for m in got["outbox"]), "the therapist's note was queued"


async def test_a_spent_budget_leaves_the_rest_for_the_next_pass(fresh: Fresh) -> None:
    rt = await fresh()
    await build(rt, [Spec(f"Client {n}", due=100 - n) for n in range(7)])
    now = rt.clock.now()
    first = await opening.open_due(rt, now, batch=3, budget=0.0)
    assert (first.opened, first.batches, first.backlog) == (3, 1, True)
    async with rt.sessions() as s:
        left = await s.scalar(select(func.count()).where(Client.next_checkin_at <= now))
    assert left == 4
    second = await opening.open_due(rt, now, batch=3)
    assert (second.opened, second.batches, second.backlog) == (4, 2, False)


async def test_a_pass_opens_every_due_check_in(fresh: Fresh) -> None:
    """No cap per pass: more than a few batches' worth opens in one heartbeat pass."""
    rt = await fresh()
    count = opening.BATCH * 2 + 7
    await build(rt, [Spec(f"Client {n}", due=1000 - n) for n in range(count)])
    result = await run_pass(rt)
    assert (result.opened, result.open_batches, result.backlog) == (count, 3, False)
    async with rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Checkin)) == count
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 2 * count


# --- nudges -----------------------------------------------------------------------------------


async def test_no_nudge_for_a_client_who_blocked_the_bot(fresh: Fresh) -> None:
    rt = await fresh()
    fortnightly = "every 14 days at 18:00"  # no new check-in before the nudges
    ids = await build(
        rt,
        [
            Spec("Reachable", due=20, cadence=fortnightly),
            Spec("Blocked Later", due=10, cadence=fortnightly),
        ],
    )
    await run_pass(rt)
    async with rt.sessions() as s, s.begin():
        nudge_at = await s.scalar(select(func.max(Checkin.nudge_at)))
        await s.execute(
            update(Client)
            .where(Client.id == ids["Blocked Later"])
            .values(unreachable_at=rt.clock.now())
        )
        sent = await s.scalar(select(func.count()).select_from(OutboxMessage))
    assert isinstance(rt.clock, ManualClock) and nudge_at is not None
    rt.clock.set(nudge_at)
    assert (await run_pass(rt)).nudged == 1
    async with rt.sessions() as s:
        owners = list(
            await s.scalars(select(OutboxMessage.client_id).where(OutboxMessage.id > (sent or 0)))
        )
        pending = await s.scalar(
            select(func.count()).where(
                Checkin.nudge_at <= rt.clock.now(), Checkin.nudged_at.is_(None)
            )
        )
    assert set(owners) == {ids["Reachable"]}
    assert pending == 0, "the blocked client's nudge is settled, not retried every pass"


# --- claims -------------------------------------------------------------------------------------


async def test_concurrent_claims_never_overlap_and_a_rollback_releases(fresh: Fresh) -> None:
    rt = await fresh()
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: a second claim waits for the first")
    await build(rt, [Spec(f"Client {n}", due=100 - n) for n in range(8)])
    now = rt.clock.now()
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> list[int]:
        async with rt.sessions() as s:
            rows = await due.claim_due_clients(s, now, 3)
            first_in.set()
            await release.wait()
            await s.rollback()  # as if the process died before committing
        return [row.id for row in rows]

    holder = asyncio.create_task(hold())
    await first_in.wait()
    async with rt.sessions() as s, s.begin():
        others = [row.id for row in await due.claim_due_clients(s, now, 10)]
    release.set()
    held = await holder
    assert len(held) == 3 and len(others) == 5 and not set(held) & set(others)
    async with rt.sessions() as s:
        still_due = set(await s.scalars(select(Client.id).where(Client.next_checkin_at <= now)))
    assert still_due == set(held)


async def test_only_due_active_clients_are_claimed(fresh: Fresh) -> None:
    rt = await fresh()
    ids = await build(rt, [Spec("Due", due=5), Spec("Later", due=-60), Spec("Paused", due=15)])
    async with rt.sessions() as s, s.begin():
        await s.execute(update(Client).where(Client.id == ids["Paused"]).values(status="paused"))
    async with rt.sessions() as s, s.begin():
        claimed = await due.claim_due_clients(s, rt.clock.now(), 10)
    assert [row.id for row in claimed] == [ids["Due"]]
