"""SIGKILL with an urgent alert on the wire: Telegram delivers it though its sender is dead, the
new process sends it again after the lease, and the therapist's tap on either copy acknowledges
the one alert, once, and takes the buttons off both.

The kill is timed by the sandbox: the alert's send to the therapist is parked, received whole
but unanswered, and the bot is killed while it waits, so the alert was raised and committed but
its sending never written down (the copy the therapist taps first has a message id the database
never learnt)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from flows.i18n import t
from storage.models import Alert, AuditEvent
from tests.e2e.harness import button_labels
from tests.faults.seed import add_clients, add_therapist
from tests.faults.stage import Stage
from tests.faults.traffic import GUARD

pytestmark = pytest.mark.slow

SEEN = t("en", "alert.button_seen")


async def test_sigkill_with_the_alert_on_the_wire_acknowledged_once_on_either_copy(
    stage: Stage, record_property: Any
) -> None:
    now = stage.now()
    dana = await add_therapist(stage.sessions, stage.cipher, stage.sandbox, now)
    (alice,) = await add_clients(stage.sessions, stage.cipher, stage.sandbox, dana, 1, now)
    hold = stage.sandbox.faults.hold("sendMessage", times=1, chat_id=dana.user.chat_id)
    bot = stage.bot()
    await bot.start()

    await alice.user.send("I just want to kill myself")
    await alice.user.next_message(timeout=GUARD)  # the resources, at once
    await stage.sandbox.wait_until(lambda: hold.parked > 0, timeout=GUARD, what="the alert")
    await bot.kill()
    hold.lift()  # Telegram delivers it all the same
    await stage.sandbox.wait_until(
        lambda: len(dana.user.inbox) >= 1, timeout=GUARD, what="the first copy"
    )
    stage.outage_past_lease()
    await bot.start()
    await stage.until_outbox_settled()

    copies = [m for m in dana.user.inbox if alice.alias in (m.get("text") or "")]
    record_property("alert_copies_after_kill", len(copies))
    print(f"\nalert copies after the kill: {len(copies)}")
    assert 1 <= len(copies) <= 2, "at most the one message on the wire, once more"
    assert all(button_labels(m) for m in copies)

    query = await dana.user.tap(copies[0], button_text=SEEN)
    answer = await dana.user.answer_to(query, timeout=GUARD)
    assert answer["text"] == t("en", "alert.ack_done")
    await stage.until_outbox_settled()

    for copy in copies:
        shown = next(m for m in dana.user.inbox if m["message_id"] == copy["message_id"])
        assert not button_labels(shown), "a copy still offers the buttons"
        assert "Acknowledged by Dana Lee" in shown["text"]
    async with stage.sessions() as s:
        (alert,) = (await s.scalars(select(Alert))).all()
        assert alert.ack_choice == "seen" and alert.ack_by == dana.id
        acks = (await s.scalars(select(AuditEvent).where(AuditEvent.action.like("alert_%")))).all()
        assert len(acks) == 1
    if len(copies) == 2:
        again = await dana.user.tap(copies[1], data=f"al:{alert.id}:c", forge=True)
        late = await dana.user.answer_to(again, timeout=GUARD)
        assert "Acknowledged by Dana Lee" in late["text"]
