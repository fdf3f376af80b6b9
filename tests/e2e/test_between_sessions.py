"""A client withdrawing between sessions reaches the therapist the day it shows, booked session
or not: two check-ins missed in a row after having answered, or the bot blocked. Once per
episode; a new one starts only when the client answers again or unblocks the bot."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from app import admin
from flows.i18n import t
from storage.models import Alert, Client, TherapySession
from tests.e2e.harness import Person, World, button_labels, join_client
from tests.e2e.test_acknowledgement import current, tap
from tests.e2e.test_privacy import answer_checkin

MISSED = t("en", "alert.withdrawal", client="A.S.", what=t("en", "alert.withdrawal_missed"))
BLOCKED = t("en", "alert.withdrawal", client="A.S.", what=t("en", "alert.withdrawal_blocked"))
BUTTONS = [t("en", f"alert.button_{c}") for c in ("seen", "contacted", "not_concern")]


async def quiet_client(world: World, dana: Person) -> Person:
    """A client asked only when the test says so (cadence off), with no session booked."""
    alice = await join_client(world, dana, "Alice Smith")
    await admin.client_set(world.rt, alice.id, cadence="off")
    return alice


async def miss_checkin(world: World, person: Person) -> None:
    """Open a check-in now and let it expire unanswered (four days)."""
    async with world.rt.sessions() as s, s.begin():
        client = await s.get(Client, person.id)
        assert client is not None
        client.next_checkin_at = world.clock.now()
    await world.advance(hours=5 * 24)


async def withdrawal_alerts(world: World, dana: Person, since: int = 0) -> list[str]:
    """The withdrawal alerts the therapist got, without what an acknowledgement added."""
    texts = [m["text"] for m in dana.user.inbox[since:]]
    return [x.split("\n\n")[0] for x in texts if x.startswith("Between sessions")]


async def test_two_missed_in_a_row_after_answering_alert_once_per_episode(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await quiet_client(world, dana)
    await answer_checkin(world, alice, "fine")

    await miss_checkin(world, alice)
    assert await withdrawal_alerts(world, dana) == []  # one missed is not yet a pattern
    await miss_checkin(world, alice)
    assert await withdrawal_alerts(world, dana) == [MISSED]
    alert = next(m for m in dana.user.inbox if m["text"] == MISSED)
    assert button_labels(alert) == BUTTONS  # a flag may be "not a concern"
    async with world.rt.sessions() as s:
        assert (await s.scalars(select(TherapySession))).all() == []  # nothing booked

    await miss_checkin(world, alice)  # the same episode: no second alert
    assert await withdrawal_alerts(world, dana) == [MISSED]

    # The therapist judges it: not a concern. The choice is kept, the buttons go.
    assert await tap(dana.user, alert, button_text=BUTTONS[2]) == t("en", "alert.ack_done")
    await world.drain()
    assert not button_labels(current(dana.user, alert))
    async with world.rt.sessions() as s:
        [stored] = (await s.scalars(select(Alert))).all()
        assert (stored.kind, stored.cause, stored.urgent) == ("withdrawal", "missed", False)
        assert stored.ack_choice == "not_concern" and stored.escalate_at is None

    # The client answers again: a new episode, alerted once more after two misses.
    await answer_checkin(world, alice, "back")
    await miss_checkin(world, alice)
    await miss_checkin(world, alice)
    assert await withdrawal_alerts(world, dana) == [MISSED, MISSED]


async def test_a_client_who_never_answered_is_not_a_withdrawal(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await quiet_client(world, dana)
    for _ in range(3):
        await miss_checkin(world, alice)
    assert await withdrawal_alerts(world, dana) == []


async def test_blocking_the_bot_alerts_at_once_and_again_after_unblocking(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await quiet_client(world, dana)
    heard = len(dana.user.inbox)

    await alice.user.block()
    await wait_blocked(world, alice)
    await world.drain()
    assert await withdrawal_alerts(world, dana, heard) == [BLOCKED]
    assert button_labels(dana.user.inbox[-1]) == BUTTONS

    world.clock.advance(timedelta(days=1))
    await alice.user.unblock()
    await wait_blocked(world, alice, False)
    world.clock.advance(timedelta(days=1))
    await alice.user.block()
    await wait_blocked(world, alice)
    await world.drain()
    assert await withdrawal_alerts(world, dana, heard) == [BLOCKED, BLOCKED]


async def test_a_block_found_by_a_failed_send_alerts_too(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await quiet_client(world, dana)
    heard = len(dana.user.inbox)
    world.sandbox.faults.fail_next(
        "sendMessage", 403, description="Forbidden: bot was blocked by the user",
        chat_id=alice.user.chat_id,
    )  # fmt: skip
    await alice.user.send("/help")
    await wait_blocked(world, alice)
    await world.drain()
    assert await withdrawal_alerts(world, dana, heard) == [BLOCKED]


async def test_stop_is_an_alert_with_the_buttons(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await quiet_client(world, dana)
    heard = len(dana.user.inbox)
    await alice.user.send("/stop")
    confirm = await alice.user.next_message(predicate=lambda m: bool(button_labels(m)))
    await alice.user.tap(confirm, button_text=t("en", "button.yes_stop"))
    await alice.user.next_message()
    await world.drain()
    [note] = dana.user.inbox[heard:]
    assert note["text"] == t("en", "therapist.client_stopped", client="A.S.")
    assert button_labels(note) == BUTTONS
    dana.user.skip_to_end()
    await dana.user.send("/alerts")
    await dana.next_message()  # the title
    listed = (await dana.next_message())["text"]
    assert listed.startswith("A.S. " + t("en", "alert.withdrawal_stopped"))


async def wait_blocked(world: World, person: Person, blocked: bool = True) -> None:
    for _ in range(500):
        async with world.rt.sessions() as s:
            client = await s.get(Client, person.id)
            assert client is not None
            if (client.unreachable_at is not None) is blocked:
                return
        await asyncio.sleep(0.01)
    raise TimeoutError("the block was not stored")
