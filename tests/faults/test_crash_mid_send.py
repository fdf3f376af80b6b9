"""SIGKILL while the outbox sender is half-way through 400 messages, with a batch on the wire:
after the restart every check-in message is delivered, and exactly that batch arrives twice.

The kill is placed by the sandbox, not by the clock. It holds every send parked (received whole,
unanswered), so the test lets the sender's requests through as it chooses and knows at each step
what the bot has marked sent and what is on the wire. Once a quarter of the messages are out and
marked, the next batch is let through up to its last requests: all of it has reached Telegram,
some answered but not yet marked sent, the rest parked. The bot is killed there. Telegram then
processes the parked requests as well, since it received them whole, and after the dead sender's
lease the new process sends the whole batch again.

The at-least-once window is therefore one batch of the sender: every message of it arrives twice,
nothing else does, and it is never more than `bot.outbox.BATCH` (60) messages. Measured and
recorded as `at_least_once_duplicates` (a full batch, 60, in this scenario).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bot.outbox import BATCH
from devtools.sandbox import Hold
from storage.models import Checkin, OutboxMessage
from tests.e2e.harness import has_buttons
from tests.faults.seed import add_clients, add_therapist
from tests.faults.stage import Stage
from tests.faults.traffic import GUARD, delivered, duplicates

pytestmark = pytest.mark.slow

CLIENTS = 200  # each due check-in is two messages: the intro and the first question
MESSAGES = 2 * CLIENTS


def intro_and_question(inbox: list[dict[str, Any]]) -> tuple[int, int]:
    return sum(not has_buttons(m) for m in inbox), sum(has_buttons(m) for m in inbox)


async def outbox_state(stage: Stage) -> tuple[int, int]:
    """(rows marked sent, rows claimed by a sender and not yet marked)."""
    async with stage.sessions() as s:
        sent = await s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
        )
        claimed = await s.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.claimed_at.is_not(None))
        )
    return int(sent or 0), int(claimed or 0)


async def batch_on_the_wire(stage: Stage, hold: Hold) -> tuple[int, int]:
    """Wait for a request of the sender's current batch; (rows marked sent, batch size).

    The sender claims a batch in one commit (marking the previous one in the same or an earlier
    commit) before it sends any of it, and claims no more until the whole batch is answered:
    once one of its requests is parked, the rows claimed and not marked are exactly that batch.
    """
    await stage.sandbox.wait_until(lambda: hold.parked > 0, timeout=GUARD, what="a send")
    return await outbox_state(stage)


def answered_sends(stage: Stage) -> int:
    return sum(1 for call in stage.sandbox.calls_to("sendMessage") if call.ok)


async def test_sigkill_mid_send_loses_nothing_and_repeats_exactly_the_batch_on_the_wire(
    stage: Stage, record_property: Any
) -> None:
    now = stage.now()
    therapist = await add_therapist(stage.sessions, stage.cipher, stage.sandbox, now)
    clients = await add_clients(
        stage.sessions, stage.cipher, stage.sandbox, therapist, CLIENTS, now, due=now
    )
    hold = stage.sandbox.faults.hold("sendMessage", times=None)
    bot = stage.bot()
    await bot.start()

    # Everything goes through as it comes until a quarter of the messages are marked sent.
    sent, batch = await batch_on_the_wire(stage, hold)
    while sent < MESSAGES // 4:
        hold.release()
        sent, batch = await batch_on_the_wire(stage, hold)
    assert 0 < batch <= BATCH
    assert answered_sends(stage) == sent, "every send answered so far was marked"

    # The next batch: requests are let through one at a time until all of it has reached
    # Telegram (the sender may keep only some on the wire at once); the last stay parked.
    def reached() -> int:  # requests of this batch that reached Telegram
        return hold.caught - sent

    async def one_more_reaches() -> None:
        expected = reached() + 1
        hold.release(1)  # the sender learns the answer and sends the next one of the batch
        await stage.sandbox.wait_until(
            lambda: reached() >= expected, timeout=GUARD, what="the batch's next request"
        )

    while reached() < batch:
        await one_more_reaches()
    if hold.parked == batch:  # all of it was on the wire at once: answer half of it
        hold.release(batch // 2)
    answered = batch - hold.parked
    await stage.sandbox.wait_until(
        lambda: answered_sends(stage) == sent + answered, timeout=GUARD, what="answers"
    )
    await bot.kill()
    assert await outbox_state(stage) == (sent, batch), "what the dead sender had committed"
    left_parked = hold.parked
    assert answered > 0 and left_parked > 0
    hold.lift()  # Telegram processes the parked requests, though their sender is gone
    await stage.sandbox.wait_until(
        lambda: answered_sends(stage) == sent + batch, timeout=GUARD, what="the parked sends"
    )

    stage.outage_past_lease()
    await bot.start()

    def everyone_asked() -> bool:
        return all(min(intro_and_question(c.user.inbox)) >= 1 for c in clients)

    await stage.sandbox.wait_until(everyone_asked, timeout=GUARD, what="every check-in delivered")
    await stage.until_outbox_settled()

    counts = delivered(stage.sandbox)
    doubled = duplicates(counts)
    record_property("at_least_once_duplicates", doubled)
    record_property("answered_but_not_marked_at_kill", answered)
    record_property("parked_at_kill", left_parked)
    print(
        f"\nat-least-once duplicates: {doubled} of {MESSAGES} (batch on the wire: {batch}, "
        f"answered but not marked: {answered}, completed after the kill: {left_parked})"
    )
    assert doubled == batch, "exactly the batch on the wire at the kill, each message once more"
    assert max(counts.values()) == 2
    assert sum(counts.values()) == MESSAGES + batch
    for client in clients:
        inbox = client.user.inbox
        intros, questions = intro_and_question(inbox)
        assert intros >= 1 and questions >= 1
        assert not has_buttons(inbox[0]), "a chat's messages keep their order"

    async with stage.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Checkin)) == CLIENTS
    assert await stage.outbox() == {"sent": MESSAGES}
    assert bot.error_lines() == [], bot.log_tail()
