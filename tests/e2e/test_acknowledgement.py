"""An urgent alert carries acknowledgement buttons; the answer is stored once, audited, and shown
in place of the buttons. A second tap, someone else's tap and forged data change nothing, and
`/alerts` lists what is still open."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from app import admin, alerts
from flows.i18n import t
from storage.models import Alert, AlertMessage, AuditEvent, OutboxMessage
from tests.e2e.harness import Person, World, button_data, button_labels, join_client

CRISIS_WORDS = "I just want to kill myself"
SEEN, CONTACTED = t("en", "alert.button_seen"), t("en", "alert.button_contacted")


async def crisis_alert(world: World, client: Person, therapist: Person) -> dict[str, Any]:
    """The client writes crisis words; the alert their therapist got."""
    heard = len(therapist.user.inbox)
    await client.user.send(CRISIS_WORDS)
    await client.next_message()
    await world.drain()
    alerts_got = therapist.user.inbox[heard:]
    assert len(alerts_got) == 1
    return alerts_got[0]


async def stored_alerts(world: World) -> list[Alert]:
    async with world.rt.sessions() as s:
        return list((await s.scalars(select(Alert).order_by(Alert.id))).all())


async def audited(world: World) -> list[tuple[str, str, int | None]]:
    async with world.rt.sessions() as s:
        rows = await s.scalars(select(AuditEvent).where(AuditEvent.action.like("alert_%")))
        return [(r.actor, r.action, r.client_id) for r in rows]


async def tap(user: Any, message: dict[str, Any], **how: Any) -> str:
    query = await user.tap(message, **how)
    answer = await user.answer_to(query)
    return str(answer.get("text"))


def current(user: Any, message: dict[str, Any]) -> dict[str, Any]:
    """The message as the person sees it now (edits applied)."""
    return next(m for m in user.inbox if m["message_id"] == message["message_id"])


async def test_the_therapist_acknowledges_once_and_the_buttons_go(world: World) -> None:
    dana = await world.join_therapist("Dana Lee", timezone="Europe/Berlin")
    alice = await join_client(world, dana, "Alice Smith")
    alert = await crisis_alert(world, alice, dana)
    assert button_labels(alert) == [SEEN, CONTACTED]  # no "not a concern" for crisis words
    [stored] = await stored_alerts(world)
    assert (stored.kind, stored.urgent, stored.client_id) == ("crisis", True, alice.id)
    assert stored.ack_at is None and stored.escalate_at is not None

    answer = await tap(dana.user, alert, button_text=CONTACTED)
    await world.drain()

    assert answer == t("en", "alert.ack_done")
    [stored] = await stored_alerts(world)
    assert (stored.ack_choice, stored.ack_by) == ("contacted", dana.id)
    assert stored.ack_at == world.clock.now() and stored.escalate_at is None
    shown = current(dana.user, alert)
    assert not button_labels(shown)
    assert shown["text"].startswith(alert["text"])
    assert "Acknowledged by Dana Lee" in shown["text"] and CONTACTED in shown["text"]
    assert await audited(world) == [(f"therapist:{dana.id}", "alert_contacted", alice.id)]

    # A second tap (a stale copy of the buttons) is answered and changes nothing.
    world.clock.advance(timedelta(minutes=5))
    again = await tap(dana.user, alert, data=button_data(alert)[0], forge=True)
    assert "Acknowledged by Dana Lee" in again
    assert [(a.ack_choice, a.ack_at) for a in await stored_alerts(world)] == [
        ("contacted", stored.ack_at)
    ]
    assert len(await audited(world)) == 1


async def test_someone_else_or_forged_data_is_refused_and_changes_nothing(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    sam = await world.join_therapist("Sam Reyes")
    alice = await join_client(world, dana, "Alice Smith")
    alert = await crisis_alert(world, alice, dana)
    [stored] = await stored_alerts(world)
    refused = t("en", "alert.ack_refused")
    own = sam.user.inbox[-1]  # any message in Sam's own chat carries the forged tap

    # Another therapist, with the right alert id: not shown to him.
    for choice in ("s", "c", "n"):
        assert await tap(sam.user, own, data=f"al:{stored.id}:{choice}", forge=True) == refused
    # Forged data on the alert itself: a choice crisis alerts do not offer, unknown ids, junk.
    for data in (f"al:{stored.id}:n", "al:999999:c", "al:-1:c", "al:1e3:c", "al::c", "al:1:x"):
        answer = await tap(dana.user, alert, data=data, forge=True)
        assert answer in (refused, t("en", "chat.button_inactive")), data
    # The client taps with an alert's data: the client's flow knows no such button.
    client_message = alice.user.inbox[-1]
    answer = await tap(alice.user, client_message, data=f"al:{stored.id}:c", forge=True)
    assert answer == t("en", "chat.button_inactive")

    await world.drain()
    [after] = await stored_alerts(world)
    assert (after.ack_choice, after.ack_by, after.ack_at) == (None, None, None)
    assert await audited(world) == []
    assert button_labels(current(dana.user, alert)) == [SEEN, CONTACTED]


async def test_alerts_lists_what_is_open_with_the_buttons(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    bob = await join_client(world, dana, "Bob Jones")
    first = await crisis_alert(world, alice, dana)
    await crisis_alert(world, bob, dana)
    await tap(dana.user, first, button_text=SEEN)
    await world.drain()

    heard = len(dana.user.inbox)
    dana.user.skip_to_end()
    await dana.user.send("/alerts")
    await dana.next_message()
    await world.drain()
    listed = dana.user.inbox[heard:]
    assert listed[0]["text"] == t("en", "alert.open_title", count=1)
    assert len(listed) == 2 and listed[1]["text"].startswith("B.J. ")
    assert button_labels(listed[1]) == [SEEN, CONTACTED]

    # Acknowledged from the list: the list line and the alert itself both lose their buttons.
    assert await tap(dana.user, listed[1], button_text=CONTACTED) == t("en", "alert.ack_done")
    await world.drain()
    assert not any(button_labels(m) for m in dana.user.inbox)
    dana.user.skip_to_end()
    await dana.user.send("/alerts")
    reply = await dana.next_message()
    assert reply["text"] == t("en", "alert.none_open")


async def test_the_practice_list_and_the_console_functions(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await admin.practice_set(world.rt, digest_comments=False)
    await crisis_alert(world, alice, dana)
    async with world.rt.sessions() as s:
        views = await alerts.open_for_practice(s, world.rt)
    assert [(v.alias, v.kind, v.urgent, v.ack_by) for v in views] == [
        ("A.S.", "crisis", True, None)
    ]
    assert not hasattr(views[0], "text")  # never the client's words


async def test_a_tap_before_the_send_was_written_down_keeps_the_alert_text(world: World) -> None:
    """The therapist can tap within moments of the alert arriving, before its sending is
    written down: the message they tapped is edited all the same, keeping what it said."""
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    alert = await crisis_alert(world, alice, dana)
    async with world.rt.sessions() as s, s.begin():
        await s.execute(update(AlertMessage).values(telegram_message_id=None))
        await s.execute(delete(OutboxMessage).where(OutboxMessage.kind == "urgent"))

    await tap(dana.user, alert, button_text=SEEN)
    await world.drain()

    shown = current(dana.user, alert)
    assert not button_labels(shown)
    assert shown["text"].startswith(alert["text"] + "\n\n✅ Acknowledged by Dana Lee")
