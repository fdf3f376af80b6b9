"""Telegram having a bad day, with the bot in the test process: duplicate deliveries, 429 storms,
5xx answers, dropped connections, timeouts, and clients who block the bot. After each, what the
clients gave is compared with what the database holds."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import heartbeat
from devtools.sandbox import DISCONNECT
from storage.models import Checkin, Client, ClientEvent, OutboxMessage
from tests.e2e.harness import World, has_buttons, next_with_buttons
from tests.faults.answers import Ledger, answer, complete_checkin
from tests.faults.inprocess import settle, until_db, until_idle
from tests.faults.seed import Member, add_clients, add_therapist
from tests.faults.traffic import GUARD, Traffic, delivered

Live = tuple[World, Traffic]


async def practice(world: World, clients: int, *, due: bool = True) -> list[Member]:
    now = world.clock.now()
    therapist = await add_therapist(world.rt.sessions, world.rt.cipher, world.sandbox, now)
    return await add_clients(
        world.rt.sessions, world.rt.cipher, world.sandbox, therapist, clients, now,
        due=now if due else None,
    )  # fmt: skip


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def intro_and_question_once(member: Member) -> None:
    assert [has_buttons(m) for m in member.user.inbox] == [False, True], member.alias


async def test_duplicate_deliveries_store_each_answer_once(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    world, _ = live
    caplog.set_level(logging.INFO, logger="bot.dispatch")
    alice, bob = await practice(world, 2)
    world.sandbox.faults.duplicate_updates(True)
    await heartbeat.run_pass(world.rt)
    ledger = Ledger()
    qa = await next_with_buttons(alice.user, timeout=GUARD)
    qb = await next_with_buttons(bob.user, timeout=GUARD)
    # Interleaved: Alice taps, Bob taps, and so on; every update arrives twice.
    for value_a, value_b in [("8", "3"), ("7", "n"), ("9", "4"), ("6", "5"), ("5", "2")]:
        qa = await answer(alice.user, qa, value_a, ledger)
        qb = await answer(bob.user, qb, value_b, ledger)
    await complete_checkin(alice.user, qa, ["1", "1"], ledger, comment="we sorted it out")
    await complete_checkin(bob.user, qb, ["0"], ledger)
    await until_idle(world)  # both copies of every update handled, the last ones included
    await settle(world)

    await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
    delivered = Counter(world.sandbox.default_bot.updates.delivered_ids)
    assert len(delivered) == 5 + 5 + 3 + 2, "every tap and text of the two clients"
    # Each arrives twice in one batch: the intake handles the first copy and skips the second
    # (a copy arriving after a restart is dropped by the processed-update mark instead).
    assert all(n >= 2 for n in delivered.values()), "each delivered twice"
    for member, asked in ((alice, 8), (bob, 7)):
        # A question comes as a message or, in place of the one tapped, as an edit.
        questions = [
            c
            for c in world.sandbox.calls
            if c.ok
            and c.method in ("sendMessage", "editMessageText")
            and str(c.params.get("chat_id")) == str(member.user.chat_id)
            and c.params.get("reply_markup")
        ]
        texts = [m["text"] for m in member.user.inbox]
        assert len(texts) == len(set(texts)), "no reply was sent twice"
        assert len(questions) >= asked
    assert errors(caplog) == []


async def test_a_429_storm_pauses_all_sending_and_every_message_goes_once(
    live: Live, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, _ = live
    clients = await practice(world, 10)
    # When the sender learns of a 429, and when it hands each message to Telegram.
    sender = world.service.sender
    paused_at: list[float] = []
    dispatched: list[float] = []
    pause, call = sender.limiter.pause, sender._call

    def recording_pause(seconds: float) -> None:
        paused_at.append(time.monotonic())
        pause(seconds)

    async def recording_call(*args: Any) -> int | None:
        dispatched.append(time.monotonic())
        return await call(*args)

    monkeypatch.setattr(sender.limiter, "pause", recording_pause)
    monkeypatch.setattr(sender, "_call", recording_call)
    world.sandbox.faults.fail_next("sendMessage", status=429, retry_after=1, times=5)
    await heartbeat.run_pass(world.rt)
    await settle(world)

    for member in clients:
        intro_and_question_once(member)
    assert world.sandbox.stats.too_many_requests == 5
    assert sorted(delivered(world.sandbox).values()) == [1] * 20, "each message exactly once"
    first = min(paused_at)
    during = [d for d in dispatched if first < d < first + 0.95]
    assert during == [], "a 429 pauses every chat's sending for retry_after"
    assert any(d >= first + 0.95 for d in dispatched), "sending resumed after the pause"

    ledger = Ledger()
    for member, value in zip(clients, "0123456789", strict=True):
        question = next(m for m in member.user.inbox if has_buttons(m))
        await answer(member.user, question, value, ledger)
    await settle(world)
    await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
    assert errors(caplog) == []


async def test_5xx_and_dropped_connections_are_retried_with_backoff(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    world, _ = live
    clients = await practice(world, 6)
    faults = world.sandbox.faults
    faults.fail_next("sendMessage", status=500, times=2)
    faults.fail_next("sendMessage", status=502, times=2)
    faults.fail_next("sendMessage", status=DISCONNECT, times=2)
    started = world.clock.now()
    await heartbeat.run_pass(world.rt)
    await settle(world)

    for member in clients:
        intro_and_question_once(member)
    assert faults.pending_failures == 0
    assert world.sandbox.stats.errors_per_status[500] == 2
    assert world.sandbox.stats.errors_per_status[502] == 2
    async with world.rt.sessions() as s:
        rows = (await s.scalars(select(OutboxMessage))).all()
    assert {r.status for r in rows} == {"sent"}
    assert sum(r.attempts for r in rows) == len(rows) + 6, "one extra attempt per failure"
    for row in rows:
        waited = row.not_before - row.created_at
        if row.attempts == 1:
            assert waited == timedelta(0)
        else:  # 0.5 s x 2^attempts of simulated time, doubling with each failure
            assert waited >= timedelta(seconds=2 ** (row.attempts - 1) * 0.5)
    assert world.clock.now() > started, "retries waited for their back-off"

    ledger = Ledger()
    for member in clients:
        question = next(m for m in member.user.inbox if has_buttons(m))
        await answer(member.user, question, "7", ledger)
    await settle(world)
    await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
    assert errors(caplog) == []


async def test_a_send_that_times_out_is_retried_and_arrives(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    world, traffic = live
    (alice,) = await practice(world, 1)
    # Telegram sits on the first send longer than PTB's read timeout: the bot gives up on it.
    hold = world.sandbox.faults.hold("sendMessage")
    await heartbeat.run_pass(world.rt)

    async def timed_out(s: AsyncSession) -> bool:
        first = await s.scalar(select(OutboxMessage).order_by(OutboxMessage.id).limit(1))
        return first is not None and first.error == "TimedOut"

    await until_db(world, timed_out, what="the first send to time out")
    assert hold.parked == 1 and alice.user.inbox == []
    hold.release()  # ... and then delivers it all the same: it had the request whole
    await world.sandbox.wait_until(
        lambda: len(world.sandbox.calls_to("sendMessage")) == 1, timeout=GUARD, what="late copy"
    )
    await settle(world)
    await traffic.until(
        lambda: traffic.in_flight("sendMessage") == 0, timeout=GUARD, what="every send answered"
    )

    inbox = alice.user.inbox
    # The timed-out intro was delivered after all: the client sees it twice (at least once),
    # the late copy first, then the retry and the question behind it.
    assert [has_buttons(m) for m in inbox] == [False, False, True]
    assert inbox[0]["text"] == inbox[1]["text"]
    async with world.rt.sessions() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert [(r.status, r.attempts) for r in rows] == [("sent", 2), ("sent", 1)]

    ledger = Ledger()
    await answer(alice.user, inbox[2], "4", ledger)
    await settle(world)
    await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
    assert errors(caplog) == []


async def queued_for(world: World) -> Counter[int | None]:
    """Outbox rows per client."""
    async with world.rt.sessions() as s:
        return Counter((await s.scalars(select(OutboxMessage.client_id))).all())


async def test_blocking_clients_are_marked_unreachable_and_others_are_served(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    world, _ = live
    alice, bob, carol = await practice(world, 3)
    # Bob deleted his account: nothing tells the bot, its sends to him fail with 403.
    await bob.user.deactivate()
    await heartbeat.run_pass(world.rt)
    await settle(world)
    intro_and_question_once(alice)
    intro_and_question_once(carol)
    ledger = Ledger()
    question = next(m for m in alice.user.inbox if has_buttons(m))
    await answer(alice.user, question, "3", ledger)
    await settle(world)

    # Alice blocks the bot mid-check-in: Telegram tells the bot (my_chat_member) ...
    await alice.user.block()

    async def alice_unreachable(s: AsyncSession) -> bool:
        client = await s.get(Client, alice.id, populate_existing=True)
        return client is not None and client.unreachable_at is not None

    await until_db(world, alice_unreachable, what="Alice marked unreachable")
    # ... and two days later only Carol is reminded: the bot knows the other two cannot be reached.
    async with world.rt.sessions() as s:
        nudge_at = await s.scalar(select(Checkin.nudge_at).where(Checkin.client_id == carol.id))
    assert nudge_at is not None
    world.clock.set(nudge_at)
    queued_before = await queued_for(world)
    assert (await heartbeat.run_pass(world.rt)).nudged == 1
    queued = await queued_for(world)
    assert queued[alice.id] == queued_before[alice.id], "no reminder queued for Alice"
    assert queued[bob.id] == queued_before[bob.id], "no reminder queued for Bob"
    await settle(world)

    carol_messages = carol.user.inbox
    assert len(carol_messages) > 2, "Carol got her reminder"
    await answer(carol.user, carol_messages[-1], "9", ledger)
    await settle(world)
    await ledger.assert_stored(world.rt.sessions, world.rt.cipher)

    async with world.rt.sessions() as s:
        events = (await s.execute(select(ClientEvent.client_id, ClientEvent.kind))).all()
        blocked = sorted(c for c, kind in events if kind == "blocked")
        assert blocked == sorted([alice.id, bob.id]), "one blocked event each"
        for member in (alice, bob):
            client = await s.get(Client, member.id)
            assert client is not None and client.unreachable_at is not None
        rows = (await s.scalars(select(OutboxMessage))).all()
    refused = [r for r in rows if r.client_id in (alice.id, bob.id) and r.status != "sent"]
    assert refused, "sends to them were tried"
    assert all(r.status == "failed" and r.attempts == 1 for r in refused), "a 403 is final"
    assert all((r.error or "").startswith("forbidden") for r in refused)
    assert all(r.status == "sent" for r in rows if r.client_id == carol.id)
    sends = [int(c.params["chat_id"]) for c in world.sandbox.calls_to("sendMessage")]
    assert sends.count(bob.user.chat_id) == len([r for r in rows if r.client_id == bob.id])
    assert errors(caplog) == []
