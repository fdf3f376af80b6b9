"""An urgent alert nobody acknowledges within the practice's wait goes once to the safety contact,
quiet hours or not; one acknowledged in time, or with nobody else to tell, goes nowhere more."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app import admin, heartbeat
from app.admin import AdminError
from app.clock import ManualClock
from app.reports import digest_now
from app.runtime import Runtime
from cli.main import commands
from flows.i18n import t
from storage.models import Alert
from tests.conftest import TEST_KEY
from tests.e2e.harness import Person, World, button_labels, join_client
from tests.e2e.test_acknowledgement import CONTACTED, SEEN, crisis_alert, current, tap

STEP = timedelta(minutes=5)


async def practice_with_contact(world: World, wait: str = "30m") -> tuple[Person, Person, Person]:
    dana = await world.join_therapist("Dana Lee", timezone="Europe/Berlin")
    sam = await world.join_therapist("Sam Reyes", timezone="Europe/Berlin")
    await admin.practice_set(world.rt, safety_contact=str(sam.id), alert_escalation=wait)
    alice = await join_client(world, dana, "Alice Smith")
    return dana, sam, alice


async def the_alert(world: World) -> Alert:
    async with world.rt.sessions() as s:
        [alert] = (await s.scalars(select(Alert))).all()
        return alert


async def test_an_unacknowledged_alert_escalates_once_to_the_safety_contact(world: World) -> None:
    dana, sam, alice = await practice_with_contact(world)
    alert = await crisis_alert(world, alice, dana)
    heard = len(sam.user.inbox)

    await world.advance(step=STEP, minutes=25)
    assert len(sam.user.inbox) == heard  # not yet
    await world.advance(step=STEP, minutes=5)

    escalated = sam.user.inbox[heard:]
    assert len(escalated) == 1
    text = escalated[0]["text"]
    assert "A.S." in text and "Dana Lee" in text and "Alice" not in text
    assert t("en", "alert.why_unacknowledged", wait="30m") in text
    assert button_labels(escalated[0]) == [SEEN, CONTACTED]
    assert (await the_alert(world)).escalated_at == world.clock.now()

    await world.advance(hours=6)  # once only
    assert len(sam.user.inbox) == heard + 1

    # The safety contact acknowledges: both copies say so, and the therapist's tap is too late.
    assert await tap(sam.user, escalated[0], button_text=CONTACTED) == t("en", "alert.ack_done")
    await world.drain()
    for person, message in ((sam, escalated[0]), (dana, alert)):
        shown = current(person.user, message)
        assert not button_labels(shown) and "Acknowledged by Sam Reyes" in shown["text"]
    late = await tap(dana.user, alert, data=f"al:{(await the_alert(world)).id}:s", forge=True)
    assert "Acknowledged by Sam Reyes" in late
    assert (await the_alert(world)).ack_by == sam.id


async def test_an_alert_acknowledged_in_time_does_not_escalate(world: World) -> None:
    dana, sam, alice = await practice_with_contact(world)
    alert = await crisis_alert(world, alice, dana)
    heard = len(sam.user.inbox)
    await world.advance(step=STEP, minutes=20)
    await tap(dana.user, alert, button_text=SEEN)
    await world.advance(hours=3)
    assert len(sam.user.inbox) == heard
    assert (await the_alert(world)).escalated_at is None


async def test_nobody_else_to_tell_nothing_more_is_sent(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await crisis_alert(world, alice, dana)
    heard = len(dana.user.inbox)
    await world.advance(hours=3)  # no safety contact
    await admin.practice_set(world.rt, safety_contact=str(dana.id))
    await crisis_alert(world, alice, dana)
    await world.advance(hours=3)  # the safety contact is the therapist: never told twice
    assert len(dana.user.inbox) == heard + 1


async def test_quiet_hours_never_delay_an_urgent_alert(world: World) -> None:
    await admin.practice_set(world.rt, quiet_hours="21:00-09:00")
    berlin = ZoneInfo("Europe/Berlin")
    now = world.clock.now().astimezone(berlin)
    evening = datetime(now.year, now.month, now.day, 20, 50, tzinfo=berlin) + timedelta(days=1)
    world.clock.advance(evening - world.clock.now())
    dana, sam, alice = await practice_with_contact(world)
    await crisis_alert(world, alice, dana)  # about 20:50: the escalation falls at night
    heard = len(sam.user.inbox)
    await world.advance(step=STEP, minutes=35)
    assert len(sam.user.inbox) == heard + 1
    sent = (await the_alert(world)).escalated_at
    assert sent is not None and sent.astimezone(berlin).hour in (21, 22)


async def test_two_passes_at_once_escalate_once(world: World) -> None:
    dana, sam, alice = await practice_with_contact(world)
    await crisis_alert(world, alice, dana)
    heard = len(sam.user.inbox)
    world.clock.advance(timedelta(minutes=31))
    await asyncio.gather(heartbeat.run_pass(world.rt), heartbeat.run_pass(world.rt))
    await world.drain()
    assert len(sam.user.inbox) == heard + 1


@pytest.mark.parametrize("wait", ["1m", "2d", "soon", "90s"])
async def test_the_wait_is_checked_in_one_line(world: World, wait: str) -> None:
    with pytest.raises(AdminError, match=r"^--alert-escalation: "):
        await admin.practice_set(world.rt, alert_escalation=wait)


async def test_the_cli_sets_the_wait(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RAPPORT_ENCRYPTION_KEY", TEST_KEY)
    runner: Any = CliRunner()
    ok = await asyncio.to_thread(
        runner.invoke, commands, ["practice", "set", "--alert-escalation", "45m", "--json"]
    )
    assert ok.exit_code == 0, ok.output
    assert '"alert_escalation_minutes": 45' in ok.output
    bad = await asyncio.to_thread(
        runner.invoke, commands, ["practice", "set", "--alert-escalation", "3d"]
    )
    assert bad.exit_code != 0
    assert len(bad.output.strip().splitlines()) == 1 and "--alert-escalation" in bad.output


BLOCKED = "Forbidden: bot was blocked by the user"


async def test_a_therapist_who_blocked_the_bot_unnoticed_the_safety_contact_gets_it(
    world: World,
) -> None:
    dana, sam, alice = await practice_with_contact(world)
    heard = len(sam.user.inbox)
    world.sandbox.faults.fail_next(
        "sendMessage", 403, description=BLOCKED, chat_id=dana.user.chat_id
    )
    alice.user.skip_to_end()

    await alice.user.send("I just want to kill myself")
    first = await alice.next_message()
    correction = await alice.next_message()
    await world.drain()

    assert "Dana Lee" in first["text"]  # what was true when it was said ...
    default = t("en", "crisis.default_resources")
    assert correction["text"] == t("en", "crisis.correction_practice", resources=default)
    [redirected] = sam.user.inbox[heard:]
    assert t("en", "alert.why_blocked") in redirected["text"] and "A.S." in redirected["text"]
    assert button_labels(redirected) == [SEEN, CONTACTED]
    assert (await the_alert(world)).escalated_at is not None
    await world.advance(hours=3)  # ... and no escalation on top
    assert len(sam.user.inbox) == heard + 1
    report = await digest_now(world.rt, alice.id)  # and the digest says who was told in the end
    assert report.as_json["risks"][0]["alerted"] == "safety_contact"


async def test_with_nobody_else_the_client_is_told_nobody_was_reached(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    world.sandbox.faults.fail_next(
        "sendMessage", 403, description=BLOCKED, chat_id=dana.user.chat_id
    )
    alice.user.skip_to_end()
    await alice.user.send("I just want to kill myself")
    await alice.next_message()
    correction = await alice.next_message()
    default = t("en", "crisis.default_resources")
    assert correction["text"] == t("en", "crisis.correction_nobody", resources=default)


@pytest.mark.postgres
async def test_two_replicas_on_postgres_escalate_once(
    postgres_url: str, clock: ManualClock
) -> None:
    world = await World.start(postgres_url, clock, TEST_KEY)
    other = Runtime.create(world.rt.settings, clock=clock, cipher=world.rt.cipher)
    try:
        dana, sam, alice = await practice_with_contact(world)
        alert = await crisis_alert(world, alice, dana)
        heard = len(sam.user.inbox)
        clock.advance(timedelta(minutes=31))
        passes = await asyncio.gather(heartbeat.run_pass(world.rt), heartbeat.run_pass(other))
        assert sum(p.escalated for p in passes) == 1
        await world.drain()
        assert len(sam.user.inbox) == heard + 1
        assert await tap(dana.user, alert, button_text=SEEN) == t("en", "alert.ack_done")
        assert "Acknowledged by Dana Lee" in await tap(
            sam.user, sam.user.inbox[-1], button_text=SEEN
        )
    finally:
        await other.close()
        await world.stop()
