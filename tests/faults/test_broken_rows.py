"""One broken row must not stop the practice. A client whose stored zone no longer exists, a
comment written under another key, an outbox row that cannot be read, an update whose handling
fails: each is set aside or answered on its own, and everyone else is served as usual.

Without the isolation, the broken item failed first in every heartbeat pass (so no other
check-in, nudge or digest ever went out), or failed the sender's pass (so the messages sent
beside it were sent again after their lease), or left the client with no answer at all.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from app import effects, heartbeat
from app.opening import QUARANTINE_KIND
from cli.main import commands
from flows.i18n import t
from storage import checkins, outbox
from storage.models import Answer, Checkin, Client, OutboxMessage
from tests.conftest import TEST_KEY
from tests.e2e.harness import World, next_with_buttons
from tests.faults.inprocess import settle, until_idle
from tests.faults.seed import Member, add_clients, add_sessions, add_therapist, make_digests_due
from tests.faults.traffic import GUARD, Traffic

Live = tuple[World, Traffic]
NOWHERE = "Mars/Olympus_Mons"  # no such zone: as if tzdata dropped one, or a bad manual edit


async def practice(world: World, clients: int) -> tuple[Member, list[Member]]:
    now = world.clock.now()
    therapist = await add_therapist(world.rt.sessions, world.rt.cipher, world.sandbox, now)
    members = await add_clients(
        world.rt.sessions, world.rt.cipher, world.sandbox, therapist, clients, now, due=now
    )
    return therapist, members


async def set_zone(world: World, client: Member, zone: str) -> None:
    async with world.rt.sessions() as s, s.begin():
        await s.execute(update(Client).where(Client.id == client.id).values(timezone=zone))


async def open_checkins(world: World, client: Member) -> int:
    async with world.rt.sessions() as s:
        count = await s.scalar(
            select(func.count()).where(Checkin.client_id == client.id, Checkin.status == "open")
        )
    return int(count or 0)


def failures(caplog: pytest.LogCaptureFixture, kind: str) -> list[str]:
    """The quarantine's error lines about items of `kind`."""
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    return [line for line in lines if line.startswith(f"heartbeat: {kind} ")]


async def test_a_client_with_a_broken_zone_is_set_aside_and_the_rest_get_their_checkins(
    live_any: Live, caplog: pytest.LogCaptureFixture
) -> None:
    world, _ = live_any
    caplog.set_level(logging.INFO, logger="app.quarantine")
    _, members = await practice(world, 5)
    broken = members[2]
    await set_zone(world, broken, NOWHERE)

    first = await heartbeat.run_pass(world.rt)

    assert first.opened == 4
    for member in members:
        if member is not broken:
            await next_with_buttons(member.user, timeout=GUARD)
            assert await open_checkins(world, member) == 1
    assert await open_checkins(world, broken) == 0
    async with world.rt.sessions() as s:
        still_due = await s.scalar(select(Client.next_checkin_at).where(Client.id == broken.id))
    assert still_due is not None, "the failed client stays due, to be opened once repaired"
    (logged,) = failures(caplog, QUARANTINE_KIND)
    assert f"opening {broken.id} failed (ValueError at timing.py:" in logged
    assert "Mars" not in caplog.text, "the log names the kind of failure, not the stored data"

    # Set aside: the next passes do not try it again until its retry time.
    world.clock.advance(timedelta(seconds=30))
    await heartbeat.run_pass(world.rt)
    assert len(failures(caplog, QUARANTINE_KIND)) == 1
    world.clock.advance(timedelta(seconds=31))
    await heartbeat.run_pass(world.rt)
    assert len(failures(caplog, QUARANTINE_KIND)) == 2, "retried after a minute"
    assert "failure 2; set aside for 2 min" in failures(caplog, QUARANTINE_KIND)[1]

    # Repaired, it is opened at its next try, and forgotten by the quarantine.
    await set_zone(world, broken, "Europe/Berlin")
    world.clock.advance(timedelta(minutes=2))
    assert (await heartbeat.run_pass(world.rt)).opened == 1
    await next_with_buttons(broken.user, timeout=GUARD)
    assert await open_checkins(world, broken) == 1
    assert world.rt.quarantine.count() == 0
    assert f"opening {broken.id} handled after earlier failures" in caplog.text


async def test_a_broken_nudge_does_not_hold_up_the_others(
    live_any: Live, caplog: pytest.LogCaptureFixture
) -> None:
    world, _ = live_any
    caplog.set_level(logging.INFO, logger="app.quarantine")
    _, (alice, bob) = await practice(world, 2)
    await heartbeat.run_pass(world.rt)
    for member in (alice, bob):
        await next_with_buttons(member.user, timeout=GUARD)
    await set_zone(world, alice, NOWHERE)  # broken after her check-in opened
    async with world.rt.sessions() as s:
        nudge_at = await s.scalar(select(func.max(Checkin.nudge_at)))
    assert nudge_at is not None
    world.clock.set(nudge_at)
    bob_before = len(bob.user.inbox)

    result = await heartbeat.run_pass(world.rt)
    await settle(world)

    assert result.nudged == 1
    reminder = t("en", "checkin.nudge")
    assert bob.user.inbox[bob_before]["text"] == reminder, "Bob was reminded"
    assert not any(m["text"] == reminder for m in alice.user.inbox)
    (logged,) = failures(caplog, "nudge")
    assert "ValueError at timing.py:" in logged
    async with world.rt.sessions() as s:
        nudged = await s.scalar(select(Checkin.nudged_at).where(Checkin.client_id == alice.id))
    assert nudged is None, "her nudge was rolled back whole, to be tried again"


async def test_a_digest_that_cannot_be_written_does_not_stop_the_others(
    live_any: Live, caplog: pytest.LogCaptureFixture
) -> None:
    world, _ = live_any
    caplog.set_level(logging.INFO, logger="app.quarantine")
    therapist, (alice, bob) = await practice(world, 2)
    now = world.clock.now()
    await heartbeat.run_pass(world.rt)
    for member in (alice, bob):
        await next_with_buttons(member.user, timeout=GUARD)
    async with world.rt.sessions() as s, s.begin():
        for member in (alice, bob):
            checkin = await checkins.open_checkin_of(s, member.id)
            assert checkin is not None
            await checkins.record_answer(
                s, world.rt.cipher, checkin_id=checkin.id, item="comment", value=None, at=now,
                text="It was a good week.",
            )  # fmt: skip
        # Alice's comment as if written under a key the practice no longer has.
        await s.execute(
            update(Answer)
            .where(Answer.checkin_id.in_(select(Checkin.id).where(Checkin.client_id == alice.id)))
            .values(text_enc=b"gAAAAAB-not-a-token")
        )
    sessions = await add_sessions(world.rt.sessions, [alice, bob], now, digest_at=None)
    await make_digests_due(world.rt.sessions, sessions, now + timedelta(minutes=1))
    world.clock.advance(timedelta(minutes=2))
    before = len(therapist.user.inbox)

    result = await heartbeat.run_pass(world.rt)
    await settle(world)

    assert result.digests == 1, "Bob's digest went"
    digest = therapist.user.inbox[before:]
    assert any("K001" in (m.get("text") or m.get("caption") or "") for m in digest)
    assert not any("K000" in (m.get("text") or m.get("caption") or "") for m in digest)
    (logged,) = failures(caplog, "digest")
    assert f"digest {sessions[0]} failed (ValueError at crypto.py:" in logged


async def test_an_unreadable_outbox_row_fails_alone_and_nothing_is_sent_twice(
    live_any: Live, caplog: pytest.LogCaptureFixture
) -> None:
    world, _ = live_any
    _, (alice, bob) = await practice(world, 2)
    now = world.clock.now()
    async with world.rt.sessions() as s, s.begin():
        for n in range(3):
            await outbox.enqueue(
                s, world.rt.cipher, chat_id=bob.user.chat_id, kind="text",
                payload={"text": f"for Bob {n}"}, now=now, client_id=bob.id,
            )  # fmt: skip
        broken = await outbox.enqueue(
            s, world.rt.cipher, chat_id=alice.user.chat_id, kind="text",
            payload={"text": "never readable"}, now=now, client_id=alice.id,
        )  # fmt: skip
        broken.payload_enc = b"gAAAAAB-damaged"
        await outbox.enqueue(
            s, world.rt.cipher, chat_id=alice.user.chat_id, kind="text",
            payload={"text": "after the damaged one"}, now=now, client_id=alice.id,
        )  # fmt: skip

    world.rt.wake_sender()
    await settle(world)

    assert [m["text"] for m in bob.user.inbox] == [f"for Bob {n}" for n in range(3)]
    assert [m["text"] for m in alice.user.inbox] == ["after the damaged one"]
    async with world.rt.sessions() as s:
        row = await s.get(OutboxMessage, broken.id)
    assert row is not None and (row.status, row.error) == ("failed", "unreadable: ValueError")
    assert "outbox pass failed" not in caplog.text


class Broken(Exception):
    """Stands in for any failure while an update is handled (a bug, a broken row)."""


async def test_a_failed_update_gets_an_apology_and_crisis_words_still_get_help(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, _ = live
    _, (alice,) = await practice(world, 1)

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise Broken

    monkeypatch.setattr(effects, "update_event", broken)
    await alice.user.send("Things are fine, thanks.")
    await until_idle(world)
    await alice.user.send("I want to kill myself")
    await until_idle(world)

    sorry, with_help = (m["text"] for m in alice.user.inbox)
    assert sorry == t("en", "chat.error")
    assert with_help.startswith(t("en", "chat.error"))
    assert t("en", "crisis.default_resources") in with_help
    async with world.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 0

    await heartbeat.run_pass(world.rt)  # a check-in question to tap on
    question = await next_with_buttons(alice.user, timeout=GUARD)
    query = await alice.user.tap(question, button_text="7")
    assert (await alice.user.answer_to(query))["text"] == t("en", "chat.error")


async def test_rapport_health_says_how_many_items_are_set_aside(
    live: Live, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Still healthy (exit 0: the bot serves everyone else), with a word for the admin."""
    world, _ = live
    _, (broken, _other) = await practice(world, 2)
    await set_zone(world, broken, NOWHERE)
    await world.restart()  # a start runs a heartbeat pass at once
    monkeypatch.setenv("RAPPORT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RAPPORT_ENCRYPTION_KEY", TEST_KEY)

    result = await asyncio.to_thread(CliRunner().invoke, commands, ["health"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok; 1 item(s) set aside after failures"), result.output
    await set_zone(world, broken, "Europe/Berlin")  # repaired; tried again after its minute
    world.clock.advance(timedelta(minutes=2))
    await world.restart()
    result = await asyncio.to_thread(CliRunner().invoke, commands, ["health"])
    assert (result.exit_code, result.output.splitlines()[0]) == (0, "ok")
    assert await open_checkins(world, broken) == 1
