"""An update whose handling died half-way (a crash, a failed query) is handled in full when it
is delivered again: the "already processed" mark must commit with the update's effects, never
before them, or the redelivered update would be dropped as a duplicate and the answer lost. And
it is delivered again only if it was not confirmed to Telegram before its commit: a real bot
process killed between receiving an update and committing it leaves it to the next process."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from telegram import Update

from app import effects, heartbeat
from bot import dispatch
from flows.i18n import t
from storage.models import Answer, ProcessedUpdate
from tests.e2e.harness import World, next_with_buttons
from tests.faults.answers import Ledger, button
from tests.faults.seed import add_clients, add_therapist
from tests.faults.sqlite_lock import WriteLock
from tests.faults.stage import Stage
from tests.faults.traffic import GUARD, Traffic


class Crash(Exception):
    """Stands in for the process dying between the mark and the commit."""


async def test_an_update_that_failed_half_way_is_handled_when_redelivered(
    live_any: tuple[World, Traffic], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, _ = live_any
    now = world.clock.now()
    therapist = await add_therapist(world.rt.sessions, world.rt.cipher, world.sandbox, now)
    (alice,) = await add_clients(
        world.rt.sessions, world.rt.cipher, world.sandbox, therapist, 1, now, due=now
    )
    await heartbeat.run_pass(world.rt)
    question = await next_with_buttons(alice.user, timeout=GUARD)
    data = button(question, "7")
    update = tap_update(world, 990_001, alice.user.json, question, data)

    async def crash(*_args: Any, **_kwargs: Any) -> None:
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(effects, "update_event", crash)
        with pytest.raises(Crash):
            await dispatch.handle(world.telegram, update)
    async with world.rt.sessions() as s:
        assert await s.get(ProcessedUpdate, 990_001) is None, "marked without its effects"

    await dispatch.handle(world.telegram, update)  # Telegram delivers it again
    ledger = Ledger()
    ledger.tapped(data)
    await ledger.assert_stored(world.rt.sessions, world.rt.cipher)
    await dispatch.handle(world.telegram, update)  # and once more: now a true duplicate
    async with world.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Answer)) == 1


def tap_update(
    world: World, update_id: int, sender: dict[str, Any], message: dict[str, Any], data: str
) -> Update:
    """The callback_query update Telegram sends for a tap on `message`."""
    raw = {
        "update_id": update_id,
        "callback_query": {
            "id": f"{update_id}01",
            "from": sender,
            "chat_instance": "1",
            "data": data,
            "message": message,
        },
    }
    update = Update.de_json(raw, world.service.app.bot)
    assert update is not None
    return update


async def test_an_update_received_but_not_committed_when_killed_is_handled_after_restart(
    stage: Stage, sqlite_url: str
) -> None:
    """A real bot process receives a tap, cannot commit it (another program holds SQLite's
    write lock) and is SIGKILLed after its next getUpdates: that call must not have confirmed
    the tap, so Telegram still holds it and the next process stores it."""
    now = stage.now()
    therapist = await add_therapist(stage.sessions, stage.cipher, stage.sandbox, now)
    (alice,) = await add_clients(
        stage.sessions, stage.cipher, stage.sandbox, therapist, 1, now, due=now
    )
    bot = stage.bot()
    await bot.start()
    question = await next_with_buttons(alice.user, timeout=GUARD)
    await stage.until_outbox_settled()
    queue = stage.sandbox.default_bot

    lock = WriteLock(sqlite_url)
    await lock.acquire()
    try:
        polls = stage.traffic.arrived("getUpdates")
        received = len(queue.updates.delivered_ids)
        query = await alice.user.tap(question, button(question, "7"))
        ledger = Ledger()
        ledger.tapped(button(question, "7"))
        await stage.traffic.until(
            lambda: (
                len(queue.updates.delivered_ids) > received
                and stage.traffic.arrived("getUpdates") >= polls + 1
            ),
            timeout=GUARD,
            what="the tap received and getUpdates called again",
        )
        await bot.kill()
        assert lock.count("answer") == 0, "nothing was committed"
        assert queue.pending_update_count == 1, "the tap was confirmed before it was committed"
    finally:
        lock.release()
        lock.close()

    stage.outage_past_lease()
    await bot.start()
    assert (await alice.user.answer_to(query, timeout=GUARD))["text"] != t("en", "chat.error")
    await next_with_buttons(alice.user, timeout=GUARD)
    await stage.until_outbox_settled()
    await ledger.assert_stored(stage.sessions, stage.cipher)
    assert bot.error_lines() == [], bot.log_tail()
