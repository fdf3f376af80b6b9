"""A crisis flood is gathered into one open alert per client: the client gets the crisis
resources every time, but while the urgent alert is unacknowledged a further crisis text raises
no new alert and no new escalation; its recipient hears of it in a short line at most every 15
minutes (at once for a graver kind), and the digest still lists every crisis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app import admin
from app.reports import digest_now
from flows.i18n import t
from storage.models import Alert
from tests.e2e.harness import Person, World, button_labels
from tests.e2e.test_acknowledgement import CONTACTED, SEEN, crisis_alert, tap
from tests.e2e.test_escalation import practice_with_contact
from tests.e2e.test_safety_contact import client_of_absent_therapist

WORDS = "I just want to kill myself"  # suicide
WISH = "I wish I was dead"  # death_wish: less grave
PLAN = "I have pills saved up to end it"  # plan: graver

AGAIN = "⚠️ Again: A.S. "


async def alerts_stored(world: World) -> list[Alert]:
    async with world.rt.sessions() as s:
        return list((await s.scalars(select(Alert).order_by(Alert.id))).all())


async def write(world: World, client: Person, text: str) -> dict[str, Any]:
    """The client writes; the reply they get (their crisis resources, and who knows)."""
    heard = len(client.user.inbox)
    await client.user.send(text)
    reply = await client.next_message()
    await world.drain()
    assert len(client.user.inbox) == heard + 1
    return reply


def follow_ups(person: Person, since: int = 0) -> list[dict[str, Any]]:
    return [m for m in person.user.inbox[since:] if m.get("text", "").startswith(AGAIN)]


async def test_twenty_crisis_texts_in_ten_minutes_make_one_alert(world: World) -> None:
    await admin.practice_set(world.rt, digest_comments=False)
    dana, sam, alice = await practice_with_contact(world)  # escalation after 30 minutes
    first = await crisis_alert(world, alice, dana)
    heard = len(dana.user.inbox)
    told = "I've let Dana Lee know as well."

    for _ in range(19):
        await world.advance(step=timedelta(seconds=30), seconds=30)
        reply = await write(world, alice, WORDS)
        assert told in reply["text"]  # the truth: their therapist knows
        assert t("en", "crisis.default_resources") in reply["text"]  # the resources, every time

    assert len(await alerts_stored(world)) == 1
    assert dana.user.inbox[heard:] == []  # within 15 minutes of the alert: nothing more
    report = await digest_now(world.rt, alice.id)
    risks = report.as_json["risks"]
    assert len(risks) == 20 and {r["kind"] for r in risks} == {"crisis"}
    assert "kill" not in "\n".join(report.chunks)

    contact_heard = len(sam.user.inbox)
    await world.advance(step=timedelta(minutes=5), minutes=60)
    assert len(sam.user.inbox) == contact_heard + 1  # one escalation, not twenty
    assert len(await alerts_stored(world)) == 1
    assert button_labels(first) == [SEEN, CONTACTED]


async def test_at_most_one_follow_up_every_fifteen_minutes(world: World) -> None:
    await admin.practice_set(world.rt, digest_comments=False)
    dana, _sam, alice = await practice_with_contact(world, wait="2h")
    await crisis_alert(world, alice, dana)
    heard = len(dana.user.inbox)
    start = world.clock.now()
    for _ in range(40):  # one a minute for 40 minutes
        await world.advance(step=timedelta(minutes=1), minutes=1)
        await write(world, alice, WORDS)
    lines = follow_ups(dana, heard)
    assert len(dana.user.inbox) - heard == len(lines) == 2  # at 15 and 30 minutes
    for line in lines:
        assert line["text"].startswith(AGAIN + "wrote about ending their life, at ")
        assert "kill" not in line["text"]
        assert button_labels(line) == [SEEN, CONTACTED]
    assert len(await alerts_stored(world)) == 1
    assert world.clock.now() - start == timedelta(minutes=40)


async def test_a_graver_kind_is_followed_up_at_once(world: World) -> None:
    dana, _sam, alice = await practice_with_contact(world)
    await admin.practice_set(world.rt, digest_comments=True)
    heard = len(dana.user.inbox)
    await write(world, alice, WISH)
    assert len(dana.user.inbox) == heard + 1  # the alert
    await world.advance(step=timedelta(minutes=1), minutes=1)
    await write(world, alice, WISH)
    assert len(dana.user.inbox) == heard + 1  # the same kind, a minute later: nothing
    await world.advance(step=timedelta(minutes=1), minutes=1)
    await write(world, alice, PLAN)
    [line] = follow_ups(dana, heard)
    assert "a plan or a means" in line["text"]
    assert PLAN in line["text"]  # the practice shows clients' words: the alert would too
    await world.advance(step=timedelta(minutes=1), minutes=1)
    await write(world, alice, WORDS)  # graver than a wish, not than a plan: nothing
    assert len(follow_ups(dana, heard)) == 1
    assert len(await alerts_stored(world)) == 1


async def test_once_acknowledged_the_next_text_raises_a_new_alert(world: World) -> None:
    dana, sam, alice = await practice_with_contact(world)
    alert = await crisis_alert(world, alice, dana)
    await world.advance(step=timedelta(minutes=1), minutes=2)
    await write(world, alice, WORDS)
    # The follow-up or the alert itself: acknowledging ends the gathering either way.
    await tap(dana.user, alert, button_text=SEEN)
    await world.drain()
    heard = len(dana.user.inbox)
    await world.advance(step=timedelta(minutes=1), minutes=1)
    await write(world, alice, WORDS)
    assert [a.ack_at is None for a in await alerts_stored(world)] == [False, True]
    new = dana.user.inbox[heard:]
    assert len(new) == 1 and new[0]["text"].startswith("⚠️ Urgent: A.S.")
    assert button_labels(new[0]) == [SEEN, CONTACTED]
    report = await digest_now(world.rt, alice.id)
    assert len(report.as_json["risks"]) == 3
    contact_heard = len(sam.user.inbox)
    await world.advance(step=timedelta(minutes=10), hours=1)
    assert len(sam.user.inbox) == contact_heard + 1  # the new alert's own escalation


async def test_an_open_alert_that_reached_nobody_does_not_hold_back_the_next(world: World) -> None:
    alice = await client_of_absent_therapist(world)  # and no safety contact yet
    reply = await write(world, alice, WORDS)
    assert "know as well" not in reply["text"]  # nobody was told, and the client is not misled
    sam = await world.join_therapist("Sam Reyes")
    await admin.practice_set(world.rt, safety_contact=str(sam.id))
    heard = len(sam.user.inbox)
    reply = await write(world, alice, WORDS)
    assert "I've let someone at your practice know as well." in reply["text"]
    [alert] = sam.user.inbox[heard:]
    assert alert["text"].startswith("⚠️ Urgent: A.S.")  # a new alert, not a follow-up
    assert [a.ack_at is None for a in await alerts_stored(world)] == [True, True]
    await world.advance(step=timedelta(minutes=1), minutes=1)
    await write(world, alice, WORDS)  # now gathered into the one that reached Sam
    assert len(await alerts_stored(world)) == 2 and len(sam.user.inbox) == heard + 1


async def test_after_the_escalation_a_new_crisis_raises_its_own_alert(world: World) -> None:
    """An alert nobody answered has gone to the safety contact: a crisis text after that is not
    a line to the therapist who has not answered, but a new alert that escalates in turn."""
    dana, sam, alice = await practice_with_contact(world)  # escalation after 30 minutes
    await crisis_alert(world, alice, dana)
    contact_heard = len(sam.user.inbox)
    await world.advance(step=timedelta(minutes=5), minutes=40)
    assert len(sam.user.inbox) == contact_heard + 1  # the first escalation

    heard = len(dana.user.inbox)
    await write(world, alice, WORDS)
    assert len(await alerts_stored(world)) == 2
    [alert] = dana.user.inbox[heard:]
    assert not alert["text"].startswith(AGAIN) and button_labels(alert) == [SEEN, CONTACTED]
    await world.advance(step=timedelta(minutes=5), minutes=40)
    assert len(sam.user.inbox) == contact_heard + 2  # the new alert escalated too
