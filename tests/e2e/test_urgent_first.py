"""A crisis alert is the next message out, whatever waits in the outbox: hundreds of queued
messages (a digest storm for the same therapist, messages for many other chats) do not delay it.
Measured by order through the sandbox, not by the wall clock."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.outbox import SEND_CONCURRENCY
from storage import outbox
from storage.models import OutboxMessage
from tests.e2e.harness import World, alerts_as_aliases, join_client
from tests.e2e.test_erasure import strangers

CHATS = 40
PER_CHAT = 15  # 600 messages for other chats
STORM = 30  # and 30 for the therapist, queued before the alert


async def test_a_crisis_alert_overtakes_hundreds_of_queued_messages(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    others = await strangers(world, CHATS)
    hold = world.sandbox.faults.hold("sendMessage", times=None)
    async with world.rt.sessions() as s, s.begin():
        now = world.clock.now()
        for n in range(PER_CHAT):
            for user in others:
                await outbox.enqueue(s, world.rt.cipher, chat_id=user.chat_id, kind="text",
                                   payload={"text": f"queued {n}"}, now=now)  # fmt: skip
        for n in range(STORM):
            await outbox.enqueue(s, world.rt.cipher, chat_id=dana.user.chat_id, kind="text",
                               payload={"text": f"digest part {n}"}, now=now,
                               therapist_id=dana.id)  # fmt: skip
    world.rt.wake_sender()
    # Every connection busy with an earlier message, the rest of a batch claimed behind them.
    await world.sandbox.wait_until(lambda: hold.parked == SEND_CONCURRENCY)
    since = len(world.sandbox.calls)

    await alice.user.send("I want to kill myself")
    # The crisis resources and the alert reach Telegram while everything else still waits.
    await world.sandbox.wait_until(lambda: hold.caught == SEND_CONCURRENCY + 2, timeout=10)
    hold.lift()
    await world.drain(timeout=60)

    sends = [c.params for c in world.sandbox.calls[since:] if c.method.lower() == "sendmessage"]
    assert len(sends) == CHATS * PER_CHAT + STORM + 2
    first = sends[: SEND_CONCURRENCY + 2]  # released together: the order among them is Telegram's
    alerts = [m for m in first if alerts_as_aliases([m["text"]]) == ["A.S."]]
    assert [int(m["chat_id"]) for m in alerts] == [dana.user.chat_id]
    assert any(int(m["chat_id"]) == alice.user.chat_id for m in first)  # the resources
    async with world.rt.sessions() as s:
        urgent = select(func.count()).where(OutboxMessage.priority == outbox.URGENT)
        assert await s.scalar(urgent) == 2
