"""The database misbehaving under the running bot: SQLite locked by another writer until the
bot's writers are seen waiting for it, PostgreSQL connections killed by the server, and a
PostgreSQL server stopped and started again. Updates wait or reconnect; none is lost, and what
the clients gave is what the database holds."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import heartbeat
from app.clock import ManualClock
from app.quarantine import is_transient
from flows.i18n import t
from storage.db import create_engine, upgrade_async
from tests.conftest import TEST_KEY
from tests.e2e.harness import World, next_with_buttons
from tests.faults.answers import Ledger, answer, button
from tests.faults.inprocess import running_world, settle
from tests.faults.pg_cluster import Cluster
from tests.faults.seed import Member, add_clients, add_therapist, make_due
from tests.faults.sqlite_lock import TransactionsUnderway, WriteLock
from tests.faults.traffic import GUARD, Traffic

Live = tuple[World, Traffic]


async def practice(world: World, clients: int) -> list[Member]:
    now = world.clock.now()
    therapist = await add_therapist(world.rt.sessions, world.rt.cipher, world.sandbox, now)
    return await add_clients(
        world.rt.sessions, world.rt.cipher, world.sandbox, therapist, clients, now, due=now
    )


async def asked_twice(world: World, ledger: Ledger) -> list[tuple[Member, dict[str, Any]]]:
    """Alice and Bob with their check-ins open; Alice has answered the first question. Each with
    the question now before them."""
    alice, bob = await practice(world, 2)
    await heartbeat.run_pass(world.rt)
    qa = await next_with_buttons(alice.user, timeout=GUARD)
    qb = await next_with_buttons(bob.user, timeout=GUARD)
    qa = await answer(alice.user, qa, "8", ledger)
    return [(alice, qa), (bob, qb)]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_sqlite_write_lock_delays_updates_but_loses_none(
    live: Live, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    world, _ = live
    alice, bob, carol = await practice(world, 3)
    await make_due(world.rt.sessions, [carol.id], None)
    await heartbeat.run_pass(world.rt)
    ledger = Ledger()
    qa = await next_with_buttons(alice.user, timeout=GUARD)
    qb = await next_with_buttons(bob.user, timeout=GUARD)
    qa = await answer(alice.user, qa, "8", ledger)
    await make_due(world.rt.sessions, [carol.id], world.clock.now())

    lock = WriteLock(sqlite_url)
    underway = TransactionsUnderway(world.rt.engine, world.sandbox.world.notify)
    await lock.acquire()
    try:
        bot = world.sandbox.default_bot
        delivered_before = len(bot.updates.delivered_ids)
        for user, question, value in ((alice.user, qa, "6"), (bob.user, qb, "2")):
            user.skip_to_end()
            await user.tap(question, button(question, value))
            ledger.tapped(button(question, value))
        await world.sandbox.wait_until(
            lambda: len(bot.updates.delivered_ids) >= delivered_before + 2,
            timeout=GUARD,
            what="the taps handed to the bot",
        )
        # Carol's check-in is due: the heartbeat waits for the lock as well.
        beat = asyncio.create_task(heartbeat.run_pass(world.rt))
        # The outage itself: another program keeps the database locked until the bot's
        # transactions are seen waiting for it (the two taps and the heartbeat at least).
        await world.sandbox.wait_until(
            lambda: underway.count >= 3 or beat.done(), timeout=GUARD, what="writers waiting"
        )
        assert lock.count("answer") == 1, "nothing can be written while locked"
        assert bot.pending_update_count == 2, "the taps are not confirmed before their commit"
        assert not beat.done(), "the heartbeat waits for the lock"
        assert alice.user.inbox[-1]["message_id"] == qa["message_id"], "nothing sent meanwhile"
    finally:
        lock.release()
        lock.close()
        underway.close()

    assert (await beat).opened == 1
    await next_with_buttons(alice.user, timeout=GUARD)
    await next_with_buttons(bob.user, timeout=GUARD)
    await next_with_buttons(carol.user, timeout=GUARD)
    await settle(world)
    await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
    assert errors(caplog) == []


@pytest.mark.postgres
async def test_killed_postgres_connections_are_replaced_and_nothing_is_lost(
    live_pg: Live, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    world, _ = live_pg
    ledger = Ledger()
    (alice, qa), (bob, qb) = await asked_twice(world, ledger)
    qb = await answer(bob.user, qb, "3", ledger)
    await settle(world)

    killed = await terminate_backends(postgres_url)
    assert killed >= 1, "the bot's pooled connections were there to kill"

    qa = await answer(alice.user, qa, "7", ledger)
    qb = await answer(bob.user, qb, "4", ledger)
    await heartbeat.run_pass(world.rt)  # the scheduler reconnects too
    await terminate_backends(postgres_url)
    qa = await answer(alice.user, qa, "6", ledger)
    await settle(world)
    await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
    assert errors(caplog) == []


async def terminate_backends(url: str) -> int:
    """Kill every server connection to the bot's database except this one."""
    database = make_url(url).database
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def test_a_postgres_restart_under_the_running_bot(
    restartable_pg: Cluster, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The server stops (a fast shutdown: connections terminated, new ones refused) and starts
    again. While it is down a tap cannot be stored: it stays unconfirmed at Telegram's side (and
    unanswered: no apology, it is not lost); the heartbeat's pass ends without setting anything
    aside. Once it is back, the bot reconnects on its own, the waiting tap is stored without
    the client tapping again, and so is everything the clients gave next."""
    await upgrade_async(restartable_pg.url)
    async with running_world(restartable_pg.url, clock) as (world, traffic):
        ledger = Ledger()
        (alice, qa), (bob, qb) = await asked_twice(world, ledger)
        await settle(world)
        queue = world.sandbox.default_bot

        await restartable_pg.stop()
        polls = traffic.arrived("getUpdates")
        received = len(queue.updates.delivered_ids)
        bob.user.skip_to_end()
        query = await bob.user.tap(qb, button(qb, "3"))
        ledger.tapped(button(qb, "3"))
        await world.sandbox.wait_until(
            lambda: (
                len(queue.updates.delivered_ids) > received
                and traffic.arrived("getUpdates") >= polls + 1
            ),
            timeout=GUARD,
            what="the tap received, and getUpdates called again since",
        )
        assert queue.pending_update_count == 1, "confirmed while the database was down"
        with pytest.raises(Exception) as down:
            await heartbeat.run_pass(world.rt)
        assert is_transient(down.value), repr(down.value)
        assert world.rt.quarantine.count() == 0, "nothing is set aside for an outage"
        assert queue.pending_update_count == 1, "confirmed while the database was down"

        await restartable_pg.start()
        errors_before = len(errors(caplog))
        assert (await bob.user.answer_to(query, timeout=GUARD))["text"] != t("en", "chat.error")
        qb = await next_with_buttons(bob.user, timeout=GUARD)  # his tap counted
        qa = await answer(alice.user, qa, "7", ledger)
        qb = await answer(bob.user, qb, "n", ledger)
        await heartbeat.run_pass(world.rt)
        await settle(world)
        await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
        assert errors(caplog)[errors_before:] == []


async def test_a_webhook_update_is_refused_while_postgres_is_down_and_redelivered(
    restartable_pg: Cluster, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Webhook mode: while the server is down the receiver answers 503, so Telegram keeps the
    tap and delivers it again; once the server is back it is stored."""
    await upgrade_async(restartable_pg.url)
    world = await World.start(restartable_pg.url, clock, TEST_KEY, webhook=True)
    try:
        ledger = Ledger()
        (_alice, _qa), (bob, qb) = await asked_twice(world, ledger)
        await settle(world)
        queue = world.sandbox.default_bot
        stats = world.sandbox.world.stats
        failures = stats.webhook_failures

        await restartable_pg.stop()
        bob.user.skip_to_end()
        await bob.user.tap(qb, button(qb, "3"))
        ledger.tapped(button(qb, "3"))
        await world.sandbox.wait_until(
            lambda: stats.webhook_failures >= failures + 2, timeout=GUARD, what="two refusals"
        )
        assert queue.pending_update_count == 1
        assert queue.webhook is not None and "503" in (queue.webhook.last_error_message or "")

        await restartable_pg.start()
        await next_with_buttons(bob.user, timeout=GUARD)
        await settle(world)
        await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
        assert queue.pending_update_count == 0
    finally:
        await world.stop()
