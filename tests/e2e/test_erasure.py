"""Erasure erases: what was queued, claimed or handed to the sender about a client never reaches
anyone once the client is erased (from the CLI or by their own /delete), nothing of theirs stays
in any table, and the audit trail keeps that their data was read, without the data."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app import heartbeat
from app.digests import enqueue_digest
from bot import outbox
from bot.outbox import SEND_CONCURRENCY
from flows.i18n import t
from storage import outbox as stored_outbox
from storage import people
from storage.models import Answer, Client, OutboxMessage, Therapist
from tests.e2e.harness import World, join_client, next_with_buttons
from tests.e2e.test_privacy import COMMENT, answer_checkin, cli
from tests.storage.leftovers import bare_audit, leftovers

SECRETS = [COMMENT, "Konstantin", "Smithereens"]


async def nothing_left(world: World, client_id: int) -> None:
    async with world.rt.sessions() as s:
        assert await leftovers(s, world.rt.cipher, client_id, SECRETS) == []


def sent_to(world: World, chat_id: int, since: int) -> list[dict[str, Any]]:
    """The successful sends to `chat_id` among the sandbox's calls from index `since`."""
    return [
        call.params
        for call in world.sandbox.calls[since:]
        if call.ok
        and call.method.lower() in ("sendmessage", "sendphoto")
        and int(call.params.get("chat_id", 0)) == chat_id
    ]


async def queued_for(world: World, chat_id: int) -> int:
    async with world.rt.sessions() as s:
        query = select(func.count()).where(
            OutboxMessage.chat_id == chat_id, OutboxMessage.status == "pending"
        )
        return int(await s.scalar(query) or 0)


async def wait_until_queued(world: World, chat_id: int) -> None:
    for _ in range(500):
        if await queued_for(world, chat_id):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("nothing was queued")


async def strangers(world: World, count: int) -> list[Any]:
    """Sandbox users who have written to the bot (their chats exist), their reply read."""
    users = [world.sandbox.user(f"Filler{i}") for i in range(count)]
    for user in users:
        await user.send("hello")
        await user.next_message()
    return users


async def test_cli_erase_stops_a_digest_claimed_and_a_reply_handed_to_the_sender(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reply handed over by the process's own commit goes out unasked for `FRESH_SECONDS` (an
    # erasure by another process inside that window misses it); this reply waits longer.
    monkeypatch.setattr(outbox, "FRESH_SECONDS", 0.0)
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smithereens")
    await answer_checkin(world, alice, COMMENT)
    fillers = await strangers(world, SEND_CONCURRENCY)
    # While the bot is down: messages for every connection the sender has, then the digest.
    await world.stop_bot()
    async with world.rt.sessions() as s, s.begin():
        for user in fillers:
            await stored_outbox.enqueue(
                s, world.rt.cipher, chat_id=user.chat_id, kind="text",
                payload={"text": "queued earlier"}, now=world.clock.now(),
            )  # fmt: skip
        client, therapist = await s.get(Client, alice.id), await s.get(Therapist, dana.id)
        assert client is not None and therapist is not None
        await enqueue_digest(s, world.rt, client, therapist, world.clock.now(), None, "heartbeat")
    since = len(world.sandbox.calls)
    hold = world.sandbox.faults.hold("sendMessage", times=None)
    await world.start_bot()
    # The fillers are on the wire; the digest's chart is claimed, waiting for a connection.
    await world.sandbox.wait_until(lambda: hold.parked == SEND_CONCURRENCY)
    # A reply to the client is handed to the busy sender in memory.
    await alice.user.send("/help")
    await wait_until_queued(world, alice.user.chat_id)

    code, out = await asyncio.to_thread(cli, sqlite_url, "client", "erase", str(alice.id), "--yes")
    assert code == 0, out
    hold.lift()
    for user in fillers:  # the sender went on with everything else
        assert (await user.next_message())["text"] == "queued earlier"
    await world.drain()
    await world.advance(minutes=5)
    assert sent_to(world, dana.user.chat_id, since) == []
    assert sent_to(world, alice.user.chat_id, since) == []
    await nothing_left(world, alice.id)


async def test_delete_cancels_the_digest_but_not_the_urgent_alert_queued_about_the_client(
    world: World,
) -> None:
    """The client was told their therapist knows: the alert still reaches them, as nobody's
    message; the digest, which can wait, is cancelled."""
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smithereens")
    await answer_checkin(world, alice, COMMENT)
    since = len(world.sandbox.calls)
    # Telegram fails the digest's first message and the alert once: both wait to be retried.
    world.sandbox.faults.fail_next(None, 502, times=2, chat_id=dana.user.chat_id)
    await dana.user.send("/digest A.S.")
    await world.sandbox.wait_for_call("sendPhoto", after=since, predicate=lambda c: not c.ok)
    alice.user.skip_to_end()
    await alice.user.send("I want to kill myself")
    await alice.user.next_message()  # the crisis resources
    for _ in range(500):  # chart, text and alert wait in the therapist's queue
        if await queued_for(world, dana.user.chat_id) >= 3:
            break
        await asyncio.sleep(0.01)
    assert await queued_for(world, dana.user.chat_id) >= 3  # chart, text, alert

    await alice.user.send("/delete")
    confirm = await next_with_buttons(alice.user)
    await alice.user.tap(confirm, button_text=t("en", "button.yes_delete"))
    await alice.user.next_message(predicate=lambda m: m["text"] == t("en", "command.deleted"))
    await world.advance(minutes=10)  # the retries would be due by now
    told = [
        m.get("text") or m.get("caption") or "" for m in sent_to(world, dana.user.chat_id, since)
    ]
    assert len(told) == 2 and t("en", "therapist.client_deleted", client="A.S.") in told
    (alert,) = [x for x in told if x != t("en", "therapist.client_deleted", client="A.S.")]
    assert "A.S." in alert and "Smithereens" not in alert
    assert not any(COMMENT in x for x in told)  # the digest with the client's words never went
    await nothing_left(world, alice.id)


async def test_a_digest_read_stays_on_record_without_the_client_data(
    world: World, sqlite_url: str
) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smithereens")
    await answer_checkin(world, alice, COMMENT)
    await dana.user.send("/digest A.S.")
    digest = await dana.user.next_message(predicate=lambda m: COMMENT in (m.get("text") or ""))
    assert digest
    code, out = await asyncio.to_thread(cli, sqlite_url, "client", "erase", str(alice.id), "--yes")
    assert code == 0, out

    code, out = await asyncio.to_thread(
        cli, sqlite_url, "audit", "--client", str(alice.id), "--json"
    )
    assert code == 0, out
    entries = json.loads(out)
    assert [(e["actor"], e["action"]) for e in entries] == [
        (f"therapist:{dana.id}", "digest"),
        ("cli", "client_erased"),
    ]
    assert all(set(e) == {"at", "actor", "action", "client"} for e in entries)
    assert not any(secret in out for secret in [*SECRETS, "A.S."])
    async with world.rt.sessions() as s:
        assert [a for _, a in await bare_audit(s, alice.id)] == ["digest", "client_erased"]
    await nothing_left(world, alice.id)


async def test_housekeeping_removes_a_failed_message_older_than_retention(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    async with world.rt.sessions() as s, s.begin():
        practice = await people.get_practice(s, world.clock.now())
        practice.retention_days = 30
    world.sandbox.faults.fail_next(
        "sendMessage", 403, description="Forbidden: bot was blocked by the user",
        chat_id=dana.user.chat_id,
    )  # fmt: skip
    await dana.user.send("/help")
    failed = select(func.count()).where(OutboxMessage.status == "failed")
    for _ in range(500):
        async with world.rt.sessions() as s:
            if await s.scalar(failed) == 1:
                break
        await asyncio.sleep(0.01)
    else:
        raise TimeoutError("the message did not fail")
    world.clock.advance(timedelta(days=31))
    removed = await heartbeat.housekeeping(world.rt)
    assert removed["failed_messages"] == 1
    async with world.rt.sessions() as s:
        assert await s.scalar(failed) == 0


async def test_a_retention_of_zero_days_stored_by_an_old_version_deletes_nothing(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """`--retention 1h` was once stored as 0 days, and housekeeping then deleted every answer,
    check-in and event within the minute. Such a value now deletes nothing, and says so."""
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await answer_checkin(world, alice, COMMENT)
    async with world.rt.sessions() as s, s.begin():
        practice = await people.get_practice(s, world.clock.now())
        practice.retention_days = 0
    world.clock.advance(timedelta(hours=1))
    removed = await heartbeat.housekeeping(world.rt)
    assert "answers" not in removed
    async with world.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Answer)) > 0
    assert any("retention of 0 days" in r.getMessage() for r in caplog.records)
