"""The safety net against an unlucky practice and a hostile user: everyone who could be told has
blocked the bot, a client erased while their alert is open, crisis words hidden in a request to
talk or a reason for stopping, and the log while all of this happens."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, or_, select

from app import admin, alerts, health
from app.admin import AdminError
from app.clock import ManualClock
from app.reports import digest_now
from app.runtime import Runtime
from flows.i18n import t
from flows.settings_rules import MAX_CRISIS_RESOURCES
from storage.models import (
    Alert,
    AlertMessage,
    AuditEvent,
    ClientEvent,
    ClientNote,
    OutboxMessage,
    Practice,
    Therapist,
)
from tests.conftest import TEST_KEY
from tests.e2e.harness import Person, World, button_labels, join_client
from tests.e2e.test_acknowledgement import crisis_alert, tap
from tests.e2e.test_between_sessions import BLOCKED as WITHDRAWN
from tests.e2e.test_between_sessions import wait_blocked, withdrawal_alerts
from tests.e2e.test_escalation import BLOCKED, practice_with_contact
from tests.storage.leftovers import leftovers

DEFAULT = t("en", "crisis.default_resources")


async def test_both_therapist_and_safety_contact_blocked_the_client_hears_the_truth(
    world: World, process_log: io.StringIO
) -> None:
    """The therapist and the safety contact both blocked the bot, unnoticed. The client must
    not be left believing someone at the practice was told: the last word they get says nobody
    could be reached, with the resources."""
    dana, sam, alice = await practice_with_contact(world)
    for person in (dana, sam):
        world.sandbox.faults.fail_next(
            "sendMessage", 403, description=BLOCKED, chat_id=person.user.chat_id
        )
    alice.user.skip_to_end()
    await alice.user.send("I just want to kill myself")
    await alice.next_message()
    await alice.next_message()  # the correction
    await world.drain()
    await world.advance(hours=3)

    said = [m["text"] for m in alice.user.inbox]
    nobody = t("en", "crisis.correction_nobody", resources=DEFAULT)
    assert said[-1] == nobody, said[-2:]
    async with world.rt.sessions() as s:
        event = await s.scalar(select(ClientEvent).where(ClientEvent.kind == "crisis"))
        assert event is not None and (event.data or {}).get("alerted") == "nobody"
    logged = process_log.getvalue()
    assert "failed for good" in logged  # the capture works
    for secret in ("kill myself", "Alice", "Dana Lee", "Sam Reyes", "A.S."):
        assert secret not in logged, secret


async def test_a_safety_contact_who_blocked_the_bot_is_not_claimed_as_told(world: World) -> None:
    """The therapist has not joined, so the alert goes to the safety contact, who blocked the
    bot unnoticed: the client, first told someone at the practice knows, is corrected."""
    sam = await world.join_therapist("Sam Reyes")
    await admin.add_therapist(world.rt, "Dana Lee", "Europe/Berlin")  # never joins
    await admin.practice_set(world.rt, safety_contact=str(sam.id))
    dana_id = (await admin.list_therapists(world.rt))[-1]["id"]
    alice = await join_client(world, Person(dana_id, sam.user), "Alice Smith")
    world.sandbox.faults.fail_next(
        "sendMessage", 403, description=BLOCKED, chat_id=sam.user.chat_id
    )
    alice.user.skip_to_end()
    await alice.user.send("I just want to kill myself")
    first = await alice.next_message()
    correction = await alice.next_message()
    await world.drain()

    assert first["text"].startswith(t("en", "crisis.reply_practice", resources="").split("\n")[0])
    assert correction["text"] == t("en", "crisis.correction_nobody", resources=DEFAULT)
    await world.advance(hours=3)
    assert alice.user.inbox[-1]["text"] == correction["text"]  # nothing more, nothing contrary


async def test_an_erased_clients_alert_cannot_be_acknowledged_and_leaves_nothing(
    world: World,
) -> None:
    dana, sam, alice = await practice_with_contact(world)
    await admin.practice_set(world.rt, digest_comments=True)  # the alert quotes the words
    alert = await crisis_alert(world, alice, dana)
    await alice.user.send("/talk I can't stand the silence in sessions")
    await alice.user.next_message(predicate=lambda m: m["text"].startswith("Done"))
    await world.drain()
    async with world.rt.sessions() as s:
        alert_id = await s.scalar(select(Alert.id))
    await admin.erase_client(world.rt, alice.id)  # the CLI's erasure
    heard = len(sam.user.inbox)

    answer = await tap(dana.user, alert, data=f"al:{alert_id}:c", forge=True)
    await world.advance(hours=3)  # no escalation of an alert that is gone

    assert answer == t("en", "alert.ack_refused")
    assert len(sam.user.inbox) == heard
    async with world.rt.sessions() as s:
        for model in (Alert, AlertMessage, ClientNote):
            assert await s.scalar(select(func.count()).select_from(model)) == 0, model
        about = or_(OutboxMessage.client_id == alice.id, OutboxMessage.about_client_id == alice.id)
        assert await s.scalar(select(func.count()).select_from(OutboxMessage).where(about)) == 0
        words = ["kill myself", "silence in sessions", "Alice", "Smith"]
        assert await leftovers(s, world.rt.cipher, alice.id, words) == []


@pytest.mark.parametrize(
    "command",
    [
        "/talk I want to kill myself",
        "/talk@rapport_test_bot i want to end it all",
        "/talk \u202ei want to kill myself\u202c",
        "/talk i\u200b want\u200b to\u200b kill\u200b myself",
    ],
    ids=["plain", "with-bot-name", "rtl-override", "zero-width"],
)
async def test_crisis_words_in_a_request_to_talk_raise_the_alert(
    world: World, command: str
) -> None:
    dana, _, alice = await practice_with_contact(world)
    heard = len(dana.user.inbox)
    alice.user.skip_to_end()
    await alice.user.send(command)
    await alice.user.next_message(predicate=lambda m: DEFAULT in m["text"])
    await alice.user.next_message(predicate=lambda m: m["text"].startswith("Done"))
    await world.drain()
    async with world.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Alert)) == 1
    assert any("A.S." in m["text"] for m in dana.user.inbox[heard:]), [
        m["text"] for m in dana.user.inbox[heard:]
    ]


async def test_a_talk_flood_is_one_request_and_the_log_holds_no_words(
    world: World, process_log: io.StringIO
) -> None:
    dana, _, alice = await practice_with_contact(world)
    for i in range(40):
        await alice.user.send(f"/talk secret words number {i} " + "\u202e" * 50)
    await alice.user.send("/talk " + "x" * 100_000)
    await alice.user.send("/talk " + "\u200b\u2060\ufeff" * 2000)
    for _ in range(42):
        await alice.user.next_message(predicate=lambda m: m["text"].startswith("Done"))
    await world.drain()
    text = process_log.getvalue()
    assert "secret" not in text and "Alice" not in text and "xxxxxxxx" not in text
    async with world.rt.sessions() as s:
        notes = (await s.scalars(select(ClientNote))).all()
    # Whatever is kept stays within the comment limit and readable.
    for note in notes:
        assert note.text_enc is None or len(note.text_enc) < 20_000
    talk_told = t("en", "therapist.client_talk_no_session", client="A.S.")
    told = [m for m in dana.user.inbox if m.get("text") == talk_told]
    assert len(told) == 1  # the therapist is not flooded by one client
    # A day later a new request is news again.
    await world.advance(hours=25)
    await alice.user.send("/talk again")
    await alice.user.next_message(predicate=lambda m: m["text"].startswith("Done"))
    await world.drain()
    assert sum(m.get("text") == talk_told for m in dana.user.inbox) == 2
    # The next digest stays one message, whatever the flood.
    report = await digest_now(world.rt, alice.id)
    assert len(report.chunks) == 1, [len(x) for x in report.chunks]


async def test_crisis_words_quoted_to_the_therapist_carry_no_invisible_characters(
    world: World,
) -> None:
    """Where the practice lets the client's words travel, the alert quotes them as a person sees
    them: no bidirectional override that reorders the line, no zero-width padding."""
    dana, _, alice = await practice_with_contact(world)
    await admin.practice_set(world.rt, digest_comments=True)
    heard = len(dana.user.inbox)
    await alice.user.send("i want to kill\u200b myself \u202etonight\u202c\u2066 \ufeffok")
    await alice.next_message()
    await world.drain()
    (alert,) = dana.user.inbox[heard:]
    assert "myself" in alert["text"]
    hidden = {"\u200b", "\u202e", "\u202c", "\u2066", "\ufeff"}
    assert not hidden & set(alert["text"]), [hex(ord(c)) for c in hidden & set(alert["text"])]


async def test_two_people_acknowledging_at_once_are_taken_once(
    db_url: str, clock: ManualClock
) -> None:
    """The therapist and the safety contact tap at the same moment, in two processes: one
    acknowledgement is stored and audited, the other is told who was first."""
    world = await World.start(db_url, clock, TEST_KEY)
    other = Runtime.create(world.rt.settings, clock=clock, cipher=world.rt.cipher)
    try:
        dana, sam, alice = await practice_with_contact(world)
        await crisis_alert(world, alice, dana)
        await world.advance(minutes=31)  # escalated: Sam has it too
        async with world.rt.sessions() as s:
            alert_id = await s.scalar(select(Alert.id))
            people_ = [await s.get(Therapist, x.id) for x in (dana, sam)]
        assert alert_id is not None and all(people_)

        async def ack(rt: Runtime, who: Therapist | None, choice: str) -> alerts.Ack:
            assert who is not None
            async with rt.sessions() as s, s.begin():
                done = await alerts.acknowledge(
                    s, rt, alert_id=alert_id, therapist=who, choice=choice, now=clock.now()
                )
            return done.result

        results = await asyncio.gather(
            ack(world.rt, people_[0], "seen"), ack(other, people_[1], "contacted")
        )
        assert sorted(results) == sorted([alerts.Ack.DONE, alerts.Ack.ALREADY])
        async with world.rt.sessions() as s:
            acks = (
                await s.scalars(select(AuditEvent).where(AuditEvent.action.like("alert_%")))
            ).all()
        assert len(acks) == 1
    finally:
        await other.close()
        await world.stop()


async def test_blocking_and_unblocking_again_and_again_is_not_an_alert_each_time(
    world: World,
) -> None:
    """A client toggles the block on the bot a dozen times in an hour: the therapist gets one
    withdrawal alert for it, not a dozen; a block on a later day is news again."""
    dana, _, alice = await practice_with_contact(world)
    heard = len(dana.user.inbox)
    for _ in range(12):
        await alice.user.block()
        await wait_blocked(world, alice)
        world.clock.advance(timedelta(minutes=2))
        await alice.user.unblock()
        await wait_blocked(world, alice, False)
        world.clock.advance(timedelta(minutes=2))
    await world.drain()
    assert await withdrawal_alerts(world, dana, heard) == [WITHDRAWN]

    world.clock.advance(timedelta(days=2))
    await alice.user.block()
    await wait_blocked(world, alice)
    await world.drain()
    assert await withdrawal_alerts(world, dana, heard) == [WITHDRAWN, WITHDRAWN]


async def test_long_crisis_resources_still_reach_the_client_and_the_therapist(
    world: World,
) -> None:
    """Crisis resources too long for one Telegram message (with the alert around them) are
    refused in one line: before, a client in crisis got no answer at all and the therapist no
    alert ("Message is too long"). At the longest allowed, with the longest words quoted, the
    client gets them, the therapist the alert, and acknowledging it takes the buttons off."""
    dana, _, alice = await practice_with_contact(world)
    lines = "; ".join(f"line {i}: 0800 {i:03d} 000" for i in range(180))
    with pytest.raises(AdminError, match=r"^--crisis-resources: at most 1500 characters"):
        await admin.practice_set(world.rt, crisis_resources=("en", lines))
    longest = ("Regional crisis lines: " + lines)[:MAX_CRISIS_RESOURCES]
    await admin.practice_set(world.rt, crisis_resources=("en", longest), digest_comments=True)
    heard = len(dana.user.inbox)
    alice.user.skip_to_end()
    await alice.user.send("i want to kill myself " + "please " * 600)
    reply = await alice.next_message()
    await world.drain()
    assert "Regional crisis lines" in reply["text"]
    alerts_got = dana.user.inbox[heard:]
    assert alerts_got and button_labels(alerts_got[0])
    answer = await tap(dana.user, alerts_got[0], button_text=t("en", "alert.button_seen"))
    await world.drain()
    assert answer == t("en", "alert.ack_done")
    shown = next(m for m in dana.user.inbox if m["message_id"] == alerts_got[0]["message_id"])
    assert not button_labels(shown) and "Acknowledged by" in shown["text"]


async def test_health_warns_of_crisis_resources_stored_too_long(world: World) -> None:
    """Stored before the limit existed: `rapport health` names the language and the fix."""
    async with world.rt.sessions() as s, s.begin():
        practice = await s.scalar(select(Practice))
        assert practice is not None
        practice.crisis_resources = {"es": "x" * (MAX_CRISIS_RESOURCES + 1), "en": "Call 112."}
    found = await health.warnings(world.rt)
    assert len([w for w in found if "crisis resources" in w]) == 1
    assert "'es'" in found[0] and "--crisis-resources es=TEXT" in found[0]
