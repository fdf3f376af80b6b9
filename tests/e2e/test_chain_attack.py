"""Rows an update's transaction hands to the sender as one chain (`OutboxJob.then`), and the
conversation state written with the last message's INSERT, under attack: failures on a chain's
rows, an erasure while a chain is in hand, and the client's own columns written beside messages.
Each test runs on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
from sqlalchemy import select

from app import admin, erasure
from app.clock import ManualClock
from app.runtime import OutboxJob
from storage import outbox
from storage.models import Client, OutboxMessage, Therapist
from tests.conftest import START, TEST_KEY
from tests.e2e.harness import (
    World,
    button_data,
    join_client,
    next_with_buttons,
    open_checkin_now,
)
from tests.e2e.test_answer_attack import (
    THERAPIST,
    asks,
    items_of,
    live_checkin_messages,
    until_retry_written,
)


def spy_chains(world: World, monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[Any, ...]]]:
    handed: list[list[tuple[Any, ...]]] = []
    hand_over = world.rt.hand_over

    def spy(jobs: list[OutboxJob]) -> None:
        handed.append([tuple((r.chat_id, r.kind, r.priority) for r in j.rows()) for j in jobs])
        hand_over(jobs)

    monkeypatch.setattr(world.rt, "hand_over", spy)
    return handed


async def typed_answer_ready(world: World) -> tuple[Any, dict[str, Any], int]:
    """Alice with a check-in open and everything sent: her user, the question, the calls so far."""
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin_now(world, alice)
    await world.drain()
    return alice, question, len(world.sandbox.calls)


def sends(world: World, since: int, chat_id: int) -> list[str]:
    return [
        c.method
        for c in world.sandbox.calls[since:]
        if c.method != "getUpdates" and c.params.get("chat_id") in (chat_id, str(chat_id))
    ]


async def rows_of(world: World, chat_id: int) -> list[tuple[str, str]]:
    async with world.rt.sessions() as s:
        rows = await s.execute(
            select(OutboxMessage.kind, OutboxMessage.status)
            .where(OutboxMessage.chat_id == chat_id)
            .order_by(OutboxMessage.id)
        )
        return [(r.kind, r.status) for r in rows]


@pytest.mark.parametrize(
    ("method", "status", "description", "expected"),
    [
        ("sendMessage", 502, None, ["markup", "send", "send"]),
        ("sendMessage", 429, None, ["markup", "send", "send"]),
        ("editMessageReplyMarkup", 429, None, ["markup", "markup", "send"]),
        ("editMessageReplyMarkup", 502, None, ["markup", "markup", "send"]),
        (
            "editMessageReplyMarkup",
            400,
            "Bad Request: message to edit not found",
            ["markup", "send"],
        ),
        (
            "editMessageReplyMarkup",
            403,
            "Forbidden: bot was blocked by the user",
            ["markup", "send"],
        ),
    ],
)
async def test_a_failure_in_a_typed_answers_chain_sends_each_row_once_in_order(
    any_world: World, method: str, status: int, description: str | None, expected: list[str]
) -> None:
    """Telegram fails one row of the typed answer's chain (the old question's buttons,
    then the next question): each row still goes out once, the buttons' removal first, and the
    client sees the next question once."""
    world = any_world
    alice, _, since = await typed_answer_ready(world)
    seen = len(alice.user.inbox)
    world.sandbox.faults.fail_next(
        method, status, retry_after=1, description=description, chat_id=alice.user.chat_id
    )
    await alice.user.send("7")
    if status >= 500:
        await until_retry_written(world)
    await world.advance(minutes=1)
    await next_with_buttons(alice.user)
    await world.drain()
    short = {"editMessageReplyMarkup": "markup", "sendMessage": "send"}
    assert [short[m] for m in sends(world, since, alice.user.chat_id)] == expected
    assert [status for _, status in (await rows_of(world, alice.user.chat_id))[-2:]] == [
        "failed" if status in (400, 403) else "sent",
        "sent",
    ]
    assert len(alice.user.inbox) - seen == 1, [m["text"][:30] for m in alice.user.inbox[seen:]]


async def until(predicate: Any, timeout: float = 5.0) -> bool:
    """Poll `predicate` on the event loop until it holds (True) or `timeout` passes (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def handled(world: World, chat: int, action: Awaitable[Any]) -> None:
    """Do `action` (a client's update) and wait until its transaction has queued a message in
    the chat: the update was handled, whatever its messages' sending waits for."""
    queued = len(await rows_of(world, chat))
    await action
    for _ in range(500):
        if len(await rows_of(world, chat)) > queued:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the update was not handled")


async def typed_with_head_held(world: World, user: Any) -> Any:
    """The user types "7"; the chain's head (the old question's buttons going) is held on the
    wire until the returned hold is released."""
    hold = world.sandbox.faults.hold("editMessageReplyMarkup", chat_id=user.chat_id)
    await user.send("7")
    assert await until(lambda: hold.parked == 1)
    return hold


async def test_an_erasure_while_a_chains_head_is_on_the_wire_sends_nothing_behind_it(
    any_world: World,
) -> None:
    """The bug this guards against (it showed on PostgreSQL): Alice types an answer, and the
    removal of the old question's buttons (the chain's head) is on the wire when her erasure
    runs. `Handoff.drop` promises that erased rows handed over are forgotten and those being sent
    do not go out. The next question, behind the head in the same chain, was neither in the
    handed queue nor being sent, so only the database was asked, where the erasure had not
    committed yet: it went out to the erased client's chat."""
    world = any_world
    alice, _, since = await typed_answer_ready(world)
    chat = alice.user.chat_id
    hold = await typed_with_head_held(world, alice.user)
    async with world.rt.sessions() as s, s.begin():
        assert await erasure.erase_client(s, world.rt, alice.id, world.clock.now(), "test")
        hold.release()
        await until(lambda: "sendMessage" in sends(world, since, chat), timeout=2.0)
    await world.drain()
    assert sends(world, since, chat) == ["editMessageReplyMarkup"]


async def test_a_question_answered_while_its_chain_waits_goes_out_without_its_buttons(
    any_world: World,
) -> None:
    """The bug this guards against: Alice types an answer; the old question's buttons are to
    go, then the next question comes, both handed to the sender as one chain. The buttons'
    removal is slow on the wire, and meanwhile Alice types her answer to the next question too.
    Her answer's transaction takes the buttons off the next question's stored row, still pending
    (`outbox.drop_buttons`); the sender sent the copy it was handed, buttons and all, and an
    answered question kept live buttons above the question after it."""
    world = any_world
    alice, _, _ = await typed_answer_ready(world)
    chat = alice.user.chat_id
    await typed_with_head_held(world, alice.user)
    await handled(world, chat, alice.user.send("7"))
    world.sandbox.faults.lift_holds()
    await world.drain()
    await next_with_buttons(alice.user)
    await world.drain()
    assert len(await items_of(world, alice.id)) == 2  # both answers stored
    async with world.rt.sessions() as s:
        rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == chat))).all()
    payloads = [outbox.payload_of(world.rt.cipher, row) for row in rows]
    second = [p for p in payloads if "2/7." in p.get("text", "")]
    assert second and "buttons" not in second[-1]  # the stored row lost them, as it should
    live = live_checkin_messages(alice.user)
    assert len(live) == 1, [m["text"][:40] for m in live]


async def test_a_bot_stopped_while_a_chains_head_is_on_the_wire_sends_each_row_once(
    any_world: World,
) -> None:
    """The bot is told to stop while the typed answer's chain is being sent (its head
    held on the wire); it stops once the head's answer comes, then a fresh bot starts: the
    buttons go once, the next question once, in that order, and every row ends sent."""
    world = any_world
    alice, _, since = await typed_answer_ready(world)
    seen = len(alice.user.inbox)
    chat = alice.user.chat_id
    hold = await typed_with_head_held(world, alice.user)
    stopping = asyncio.create_task(world.stop_bot())
    await asyncio.sleep(0)
    hold.release()
    await stopping
    await world.start_bot()
    await world.drain()
    await next_with_buttons(alice.user)
    assert sends(world, since, chat) == ["editMessageReplyMarkup", "sendMessage"]
    assert [status for _, status in await rows_of(world, chat)][-2:] == ["sent", "sent"]
    assert len(alice.user.inbox) - seen == 1


async def test_a_chain_given_back_by_a_failed_head_is_sent_in_order_after_a_restart(
    any_world: World,
) -> None:
    """The chain's head fails with a 5xx (retried later), the row behind it is given
    back unsent; the bot restarts before the retry: the buttons' removal still goes first and
    the next question once."""
    world = any_world
    alice, _, since = await typed_answer_ready(world)
    seen = len(alice.user.inbox)
    chat = alice.user.chat_id
    world.sandbox.faults.fail_next("editMessageReplyMarkup", 502, chat_id=chat)
    await alice.user.send("7")
    await until_retry_written(world)
    await world.restart()
    await world.advance(minutes=1)
    await next_with_buttons(alice.user)
    assert sends(world, since, chat) == [
        "editMessageReplyMarkup",
        "editMessageReplyMarkup",
        "sendMessage",
    ]
    assert len(alice.user.inbox) - seen == 1


_COLUMNS = (
    "status", "timezone", "language", "cadence", "quiet_hours", "outcomes", "conversation",
    "paused_until", "next_checkin_at", "cadence_anchor", "unreachable_at", "consent_version",
    "consent_at", "joined_at", "created_at",
)  # fmt: skip


async def journey(url: str) -> list[tuple[str, Any]]:
    """Onboarding in Spanish, a check-in answered by typing, /pause 3, /resume, /pause 2 then
    /help: the client's columns after each step, as stored."""
    world = await World.start(url, ManualClock(START), TEST_KEY)
    seen: list[tuple[str, Any]] = []
    try:
        dana = await world.join_therapist(THERAPIST)
        alice = await join_client(world, dana, "Alice Smith", language="Español")

        async def snap(step: str) -> None:
            await world.drain()
            async with world.rt.sessions() as s:
                client = await s.get(Client, alice.id)
                assert client is not None
                seen.append((step, {c: getattr(client, c) for c in _COLUMNS}))

        await snap("joined")
        assert seen[-1][1]["language"] == "es"
        await open_checkin_now(world, alice)
        await snap("opened")
        await alice.user.send("7")
        await next_with_buttons(alice.user)
        await snap("typed")
        for command in ("/pause 3", "/resume", "/pause 2", "/help", "/language"):
            await alice.user.send(command)
            await alice.user.next_message()
            await snap(command)
    finally:
        await world.stop()
    return seen


@pytest.mark.postgres
async def test_the_clients_columns_are_the_same_on_both_backends_along_a_journey(
    sqlite_url: str, postgres_url: str
) -> None:
    """The same journey on SQLite (client columns written by their own UPDATE) and
    PostgreSQL (written in the WITH clause of the last message's INSERT): the client's stored
    columns agree after every step."""
    on_sqlite = await journey(sqlite_url)
    on_postgres = await journey(postgres_url)
    assert dict(on_sqlite)["/pause 3"]["paused_until"] is not None
    assert dict(on_sqlite)["/resume"]["paused_until"] is None
    assert dict(on_sqlite)["typed"]["conversation"] != dict(on_sqlite)["opened"]["conversation"]
    for (step, lite), (_, pg) in zip(on_sqlite, on_postgres, strict=True):
        assert lite == pg, step


async def test_a_client_and_a_therapist_blocking_and_unblocking_are_noted(
    any_world: World,
) -> None:
    """Membership changes are looked up with the update's mark (`mark_and_find_client`):
    a client's block and unblock reach their row, a therapist's theirs, a stranger's nobody's."""
    world = any_world
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    stranger = world.sandbox.user("Zed")

    async def unreachable() -> tuple[bool, bool]:
        async with world.rt.sessions() as s:
            client = await s.get(Client, alice.id)
            therapist = await s.get(Therapist, dana.id)
            assert client is not None and therapist is not None
            return client.unreachable_at is not None, therapist.unreachable_at is not None

    async def settled(expected: tuple[bool, bool]) -> bool:
        for _ in range(500):
            if await unreachable() == expected:
                return True
            await asyncio.sleep(0.01)
        return False

    await alice.user.block()
    assert await settled((True, False))
    await dana.user.block()
    await stranger.block()
    assert await settled((True, True))
    await alice.user.unblock()
    await stranger.unblock()
    assert await settled((False, True))
    await dana.user.unblock()
    assert await settled((False, False))


async def test_redelivered_updates_are_handled_once(any_world: World) -> None:
    """Telegram delivers every update twice (same update id): typed answers and a tap are
    stored once each, and each question is asked once."""
    world = any_world
    alice, question, _ = await typed_answer_ready(world)
    world.sandbox.faults.duplicate_updates()
    seen = len(alice.user.inbox)
    await alice.user.send("7")
    second = await next_with_buttons(alice.user)
    await alice.user.tap(second, button_data(second)[0])
    await world.drain()
    third = await next_with_buttons(alice.user)
    await world.drain()
    assert len(await items_of(world, alice.id)) == 2
    texts = [m["text"][:4] for m in alice.user.inbox[seen:]]
    assert len(texts) == len(set(texts)), texts
    assert question["message_id"] != third["message_id"]


async def test_an_account_moved_while_a_chains_head_is_on_the_wire_gets_nothing_behind_it(
    any_world: World,
) -> None:
    """The bug this guards against: Alice's account is moved to a new one (`rapport client
    move`) while her typed answer's chain is on its way, its head on the wire. Messages still
    waiting for the old chat are cancelled and must never go out; the next question, behind the
    head, went out all the same, for the sender trusted its freshly handed copy
    (`FRESH_SECONDS`) over the row, cancelled meanwhile."""
    world = any_world
    alice, _, since = await typed_answer_ready(world)
    chat = alice.user.chat_id
    hold = await typed_with_head_held(world, alice.user)
    await admin.move_client_account(world.rt, alice.id)
    assert [status for _, status in await rows_of(world, chat)][-1] == "failed"  # cancelled
    hold.release()
    await world.drain()
    await until(lambda: "sendMessage" in sends(world, since, chat), timeout=1.0)
    assert sends(world, since, chat) == ["editMessageReplyMarkup"]


async def test_a_question_answered_while_it_is_on_the_wire_loses_its_buttons_once_sent(
    any_world: World,
) -> None:
    """Alice types her answer, and the next question is on the wire (slow), claimed and being
    sent with its buttons, when she types her answer to it too: its stored copy loses its
    buttons, but the copy on the wire keeps them. Once it is sent, its buttons are taken off, so
    no answered question keeps live buttons."""
    world = any_world
    alice, _, _ = await typed_answer_ready(world)
    chat = alice.user.chat_id
    hold = world.sandbox.faults.hold("sendMessage", chat_id=chat)
    await alice.user.send("7")
    assert await until(lambda: hold.parked == 1)
    await handled(world, chat, alice.user.send("8"))
    world.sandbox.faults.lift_holds()
    await world.drain()
    await alice.user.next_message(predicate=lambda m: asks(m, 3))
    await world.drain()
    assert await items_of(world, alice.id) == [("heard", 7), ("goals", 8)]
    live = live_checkin_messages(alice.user)
    assert len(live) == 1 and asks(live[0], 3), [m["text"][:40] for m in live]


async def test_a_tap_on_a_question_sent_but_not_yet_marked_sent_is_answered_in_place(
    any_world: World,
) -> None:
    """A question that went out but is not yet marked sent (another replica sent it and marks
    it a moment later) reads as on its way, with no Telegram id. A tap on it names it by its
    buttons and gives its id: the next question comes in its place, as for any other, instead
    of below it as a new message."""
    world = any_world
    alice, _, _ = await typed_answer_ready(world)
    await alice.user.send("7")
    second = await next_with_buttons(alice.user)
    await world.drain()
    assert asks(second, 2)
    chat = alice.user.chat_id
    async with world.rt.sessions() as s, s.begin():
        row = (
            await s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.telegram_message_id == second["message_id"])
                .where(OutboxMessage.chat_id == chat)
            )
        ).one()
        row.status, row.telegram_message_id = "pending", None  # as sent by another, unmarked
        row.claimed_at, row.claimed_by = world.clock.now(), "another-replica"
    eight = next(d for d in button_data(second) if d.endswith(":8"))
    await handled(world, chat, alice.user.tap(second, eight))
    async with world.rt.sessions() as s, s.begin():  # the other replica marks it sent
        stored = await s.get(OutboxMessage, row.id)
        assert stored is not None
        stored.status, stored.telegram_message_id = "sent", second["message_id"]
    world.rt.wake_sender()
    third = await next_with_buttons(alice.user, after=second)
    await world.drain()
    assert asks(third, 3) and third["message_id"] == second["message_id"]
    assert await items_of(world, alice.id) == [("heard", 7), ("goals", 8)]
    live = live_checkin_messages(alice.user)
    assert len(live) == 1 and live[0]["message_id"] == second["message_id"]
