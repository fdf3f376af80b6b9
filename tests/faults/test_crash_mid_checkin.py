"""SIGKILL in the middle of a client's check-in: at rest, with a tap waiting, and with the next
question on the wire. Nothing the client gave is lost or doubled, and the check-in carries on.

The third kill is timed by the sandbox, not by the clock: it holds the next question's send
parked, received whole but unanswered, and the bot is killed while it waits. The answer is then
committed and the question is on the wire, never marked sent: Telegram delivers it and, after
the dead process's lease, the new process sends it again. That one question, seen twice, is the
whole at-least-once window of this scenario (measured: `at_least_once_duplicates` = 1).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from flows.i18n import t
from storage.models import Answer, Checkin, Client, OutboxMessage
from tests.e2e.harness import button_data, next_with_buttons
from tests.faults.answers import Ledger, answer, button, is_thanks, item_of
from tests.faults.seed import add_clients, add_therapist
from tests.faults.stage import Stage
from tests.faults.traffic import GUARD, delivered, duplicates

pytestmark = pytest.mark.slow


async def test_a_checkin_survives_sigkill_at_three_moments(
    stage: Stage, record_property: Any
) -> None:
    now = stage.now()
    therapist = await add_therapist(stage.sessions, stage.cipher, stage.sandbox, now)
    alice, bob = await add_clients(
        stage.sessions, stage.cipher, stage.sandbox, therapist, 2, now, due=now
    )
    bot = stage.bot()
    await bot.start()
    ledger = Ledger()

    q1 = await next_with_buttons(alice.user, timeout=GUARD)
    assert item_of(q1) == "heard"
    q2 = await answer(alice.user, q1, "7", ledger)
    second_tap = button(q2, "9")  # the buttons go once answered; a fast thumb may still tap
    q3 = await answer(alice.user, q2, "3", ledger)
    assert item_of(q3) == "approach"
    await stage.until_outbox_settled()

    # 1. Killed at rest after two answers: they are kept, and the open question still counts.
    await bot.kill()
    await bot.start()
    stale = await alice.user.tap(q2, second_tap, forge=True)
    refused = await alice.user.answer_to(stale, timeout=GUARD)
    assert refused["text"] == t("en", "checkin.already_answered")
    q4 = await answer(alice.user, q3, "8", ledger)
    assert item_of(q4) == "overall"
    await stage.until_outbox_settled()

    # 2. Killed, and the client taps while the bot is down: the tap waits at Telegram's side.
    await bot.kill()
    await alice.user.tap(q4, button(q4, "6"))
    ledger.tapped(button(q4, "6"))
    await bot.start()
    q5 = await next_with_buttons(alice.user, timeout=GUARD)
    assert item_of(q5) == "wellbeing"
    await stage.until_outbox_settled()

    # 3. Killed while the next question is on the wire: the sandbox parks its edit (a tapped
    # question becomes the next one in place), so the answer is committed and the question is
    # received but unanswered when the process dies.
    hold = stage.sandbox.faults.hold("editMessageText", chat_id=alice.user.chat_id)
    await alice.user.tap(q5, button(q5, "5"))
    ledger.tapped(button(q5, "5"))
    await stage.sandbox.wait_until(
        lambda: hold.parked == 1, timeout=GUARD, what="the next question parked on the wire"
    )
    async with stage.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Answer)) == 5, "answer committed"
        on_the_wire = (
            await s.execute(
                select(OutboxMessage.status, OutboxMessage.claimed_at.is_not(None)).where(
                    OutboxMessage.status == "pending"
                )
            )
        ).all()
    assert on_the_wire == [("pending", True)], "only the question is out, claimed, unmarked"
    await bot.kill()
    hold.release()  # Telegram processes what it received whole, though the sender is gone
    q6 = await next_with_buttons(alice.user, timeout=GUARD)
    assert item_of(q6) == "tension"
    stage.outage_past_lease()
    await bot.start()
    await stage.until_outbox_settled()
    # The edit is made once more; Telegram finds nothing to change and no second copy appears.
    edits = stage.sandbox.calls_to("editMessageText")
    assert edits[-1].description is not None and "not modified" in edits[-1].description
    shown = next(m for m in alice.user.inbox if m["message_id"] == q6["message_id"])
    assert button_data(shown) == button_data(q6), "the same current item is still asked"

    talked = await answer(alice.user, q6, "1", ledger)
    assert item_of(talked) == "talked"
    comment = await answer(alice.user, talked, "0", ledger)
    assert item_of(comment) == "comment"
    # A tap on the tension question from a client that had not redrawn the message yet.
    late = await alice.user.tap(q6, button(q6, "0"), forge=True)
    refused = await alice.user.answer_to(late, timeout=GUARD)
    assert refused["text"] == t("en", "checkin.already_answered")
    await alice.user.send("it felt better after we talked")
    ledger.wrote(int(button(q6, "0").split(":")[1]), "it felt better after we talked")
    await alice.user.next_message(timeout=GUARD, predicate=is_thanks)
    await stage.until_outbox_settled()

    await ledger.assert_stored(stage.sessions, stage.cipher)
    async with stage.sessions() as s:
        statuses = dict((await s.execute(select(Checkin.client_id, Checkin.status))).tuples().all())
        assert statuses == {alice.id: "answered", bob.id: "open"}  # one check-in each
        client = await s.get(Client, alice.id)
        assert client is not None and client.conversation is not None
        assert client.conversation["machine"] == "idle"
    assert set(await stage.outbox()) == {"sent"}

    # Bob was never touched: three restarts opened his check-in once and asked him once.
    counts = delivered(stage.sandbox)
    bob_texts = [n for (chat, _), n in counts.items() if chat == bob.user.chat_id]
    assert bob_texts == [1, 1], "intro and first question, each exactly once"
    # The question on the wire was an edit, made again after the restart: nothing doubled.
    doubled = duplicates(counts) + duplicates(delivered(stage.sandbox, "editMessageText"))
    record_property("at_least_once_duplicates", doubled)
    assert doubled == 0
    assert bot.error_lines() == [], bot.log_tail()
