"""Held requests: parked once received whole, answered when released, processed even when the
sender has given up meanwhile (as Telegram processes a request it received)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import telegram

from devtools.sandbox import Sandbox, SandboxUser

GUARD = 10.0  # seconds; a failure guard only, every wait below is on a condition


async def started(sandbox: Sandbox, name: str) -> SandboxUser:
    user = sandbox.user(name)
    await user.send("/start")
    return user


async def test_a_held_send_waits_parked_until_released(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = await started(sandbox, "Alice")
    hold = sandbox.faults.hold("sendMessage")
    sending = asyncio.create_task(ptb_bot.send_message(alice.chat_id, "held"))
    await sandbox.wait_until(lambda: hold.parked == 1, timeout=GUARD)
    assert alice.inbox == [], "a parked request is not processed yet"
    assert sandbox.calls_to("sendMessage") == []
    assert not sending.done()

    assert hold.release() == 1
    sent = await asyncio.wait_for(sending, GUARD)
    assert sent.text == "held"
    assert [m["text"] for m in alice.inbox] == ["held"]
    assert (hold.caught, hold.parked, hold.active) == (1, 0, False)
    # `times=1` is used up: the next send goes straight through.
    await ptb_bot.send_message(alice.chat_id, "free")
    assert [m["text"] for m in alice.inbox] == ["held", "free"]


async def test_a_request_its_sender_abandoned_is_processed_on_release(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = await started(sandbox, "Alice")
    hold = sandbox.faults.hold("sendMessage")
    sending = asyncio.create_task(ptb_bot.send_message(alice.chat_id, "on the wire"))
    await sandbox.wait_until(lambda: hold.parked == 1, timeout=GUARD)
    sending.cancel()  # the sender gives up (a timeout, a crash): its connection is closed
    with contextlib.suppress(asyncio.CancelledError):
        await sending
    assert alice.inbox == []

    hold.release()
    await sandbox.wait_until(lambda: len(sandbox.calls_to("sendMessage")) == 1, timeout=GUARD)
    assert [m["text"] for m in alice.inbox] == ["on the wire"], "received whole, so delivered"
    assert sandbox.calls_to("sendMessage")[0].ok


async def test_release_frees_the_oldest_first_and_lift_frees_the_rest(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = await started(sandbox, "Alice")
    hold = sandbox.faults.hold("sendMessage", times=None)
    first = asyncio.create_task(ptb_bot.send_message(alice.chat_id, "1"))
    await sandbox.wait_until(lambda: hold.parked == 1, timeout=GUARD)
    rest = [asyncio.create_task(ptb_bot.send_message(alice.chat_id, text)) for text in ("2", "3")]
    await sandbox.wait_until(lambda: hold.parked == 3, timeout=GUARD)

    assert hold.release(1) == 1
    await asyncio.wait_for(first, GUARD)
    assert [m["text"] for m in alice.inbox] == ["1"]
    assert hold.parked == 2 and hold.active, "an open-ended hold keeps catching"

    hold.lift()
    await asyncio.wait_for(asyncio.gather(*rest), GUARD)
    assert sorted(m["text"] for m in alice.inbox) == ["1", "2", "3"]
    assert (hold.caught, hold.released, hold.active) == (3, 3, False)
    await ptb_bot.send_message(alice.chat_id, "4")  # a lifted hold catches nothing
    assert hold.caught == 3


async def test_a_hold_narrowed_to_a_chat_lets_other_chats_through(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice, bob = await started(sandbox, "Alice"), await started(sandbox, "Bob")
    hold = sandbox.faults.hold("sendMessage", times=None, chat_id=alice.chat_id)
    to_alice = asyncio.create_task(ptb_bot.send_message(alice.chat_id, "for Alice"))
    await sandbox.wait_until(lambda: hold.parked == 1, timeout=GUARD)
    await ptb_bot.send_message(bob.chat_id, "for Bob")
    await ptb_bot.get_me()  # other methods are not held either
    assert [m["text"] for m in bob.inbox] == ["for Bob"]
    assert alice.inbox == []

    sandbox.faults.clear()  # a healthy Telegram again: every hold is lifted
    await asyncio.wait_for(to_alice, GUARD)
    assert [m["text"] for m in alice.inbox] == ["for Alice"]
    assert sandbox.faults.parked == 0


async def test_a_held_long_poll_delivers_and_confirms_when_released(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    await started(sandbox, "Alice")  # its /start is the one pending update
    queue = sandbox.default_bot.updates
    assert len(queue) == 1
    first_id = queue.peek(1)[0]["update_id"]
    hold = sandbox.faults.hold("getUpdates")
    polling = asyncio.create_task(ptb_bot.get_updates(offset=first_id + 1, timeout=0))
    await sandbox.wait_until(lambda: hold.parked == 1, timeout=GUARD)
    assert len(queue) == 1, "the offset is not applied while the request is parked"
    hold.release()
    assert await asyncio.wait_for(polling, GUARD) == ()
    assert len(queue) == 0


async def test_stopping_the_sandbox_lets_parked_requests_go() -> None:
    box = Sandbox()
    await box.start()
    bot = box.add_bot()
    alice = await started(box, "Alice")
    hold = box.faults.hold("sendMessage")
    async with telegram.Bot(bot.token, base_url=box.api_url) as client:
        sending = asyncio.create_task(client.send_message(alice.chat_id, "late"))
        await box.wait_until(lambda: hold.parked == 1, timeout=GUARD)
        await asyncio.wait_for(box.stop(), GUARD)
        assert hold.parked == 0 and not hold.active
        await asyncio.wait_for(sending, GUARD)
    assert [m["text"] for m in alice.inbox] == ["late"]


def test_times_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Sandbox().faults.hold("sendMessage", times=0)
