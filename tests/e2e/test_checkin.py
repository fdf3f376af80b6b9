"""A client's life with Rapport, end to end: onboarding, a check-in, and its stored answers."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from app import conversation
from app.conversation import FromPerson
from bot import staff
from flows.events import Tap
from flows.i18n import t
from storage.models import Answer, Checkin, Client, OutboxMessage
from tests.e2e.harness import (
    World,
    button_data,
    data_for,
    following,
    join_client,
    next_with_buttons,
    open_checkin_now,
)
from tests.storage.sqlite_tools import count_trips


async def test_onboarding_activates_the_client_with_consent_and_zone(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None
        assert client.status == "active"
        assert client.timezone == "Europe/Berlin"
        assert client.language == "en"
        assert client.consent_version and client.consent_at == world.clock.now()
        assert client.next_checkin_at is not None and client.next_checkin_at > world.clock.now()
    joined = t("en", "therapist.client_joined", client="A.S.")
    assert [m["text"] for m in therapist.user.inbox][-1] == joined


async def test_a_full_checkin_is_stored_with_times(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None and client.next_checkin_at is not None
        due = client.next_checkin_at
    await world.advance(seconds=(due - world.clock.now()).total_seconds() + 60)
    question = await next_with_buttons(alice.user)
    taps = 0
    while True:
        data = button_data(question)
        choice = next((d for d in data if d.endswith(":8")), None) or next(
            (d for d in data if d.endswith(":n") and "prefer" not in d), data[0]
        )
        world.clock.advance(timedelta(minutes=2))
        await alice.user.tap(question, choice)
        taps += 1
        try:
            question = await next_with_buttons(alice.user, timeout=3)
        except TimeoutError:
            break
        if any(d.endswith(":s") for d in button_data(question)):  # the comment step
            await alice.user.send("the last session felt rushed")
            break
    thanks = await alice.user.next_message(
        predicate=lambda m: m["text"].startswith(t("en", "checkin.thanks")[:10])
    )
    assert thanks
    await world.drain()
    async with world.rt.sessions() as s:
        checkin = (await s.scalars(select(Checkin))).one()
        assert checkin.status == "answered"
        assert checkin.first_answer_at is not None and checkin.first_answer_at > checkin.opened_at
        answers = {a.item: a for a in await s.scalars(select(Answer))}
    assert {"heard", "goals", "approach", "overall", "wellbeing"} <= set(answers)
    assert answers["heard"].value == 8
    comment = answers["comment"]
    assert comment.text_enc is not None and b"rushed" not in comment.text_enc
    assert world.rt.cipher.decrypt(comment.text_enc) == "the last session felt rushed"


async def test_a_silent_client_is_asked_on_cadence_and_each_unanswered_checkin_is_missed(
    world: World,
) -> None:
    from app import admin

    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    await admin.client_set(world.rt, alice.id, cadence="every day at 18:00")
    await world.advance(days=3, step=timedelta(hours=3))
    intros = [m for m in alice.user.inbox if m["text"].startswith(t("en", "checkin.intro")[:12])]
    assert len(intros) == 3
    async with world.rt.sessions() as s:
        statuses = [c.status for c in await s.scalars(select(Checkin).order_by(Checkin.id))]
    assert statuses == ["missed", "missed", "open"]


def calls_to(world: World, chat_id: int, since: int) -> Counter[str]:
    """Bot API calls made for one chat since call number `since`, by method (a callback answer
    names no chat: every one counts, only one client taps here)."""
    counted: Counter[str] = Counter()
    for call in world.sandbox.calls[since:]:
        if call.method == "answerCallbackQuery" or str(call.params.get("chat_id")) == str(chat_id):
            counted[call.method] += 1
    return counted


async def test_a_tapped_checkin_costs_two_calls_a_tap(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    chat = alice.user.chat_id
    since = len(world.sandbox.calls)
    question = await open_checkin_now(world, alice)
    await world.drain()
    assert calls_to(world, chat, since) == {"sendMessage": 2}  # the intro and the question
    since = len(world.sandbox.calls)
    taps = 0
    while any(d.startswith("c:") for d in button_data(question)):
        value = "s" if any(d.endswith(":s") for d in button_data(question)) else "0"
        await alice.user.tap(question, data_for(question, value))
        taps += 1
        question = await following(alice.user, question)
    assert question["text"] == t("en", "checkin.thanks", therapist="Dana Lee")
    assert button_data(question) == ["d:talk:ask"]  # the thanks offers /talk, in the same edit
    await world.drain()
    # Each tap: the callback answer and one edit, the next question in place of the answered one.
    assert taps == 7 and calls_to(world, chat, since) == {
        "answerCallbackQuery": taps,
        "editMessageText": taps,
    }


async def test_a_tap_costs_six_statements(world: World) -> None:
    """The statements one tap's transaction runs (`app.conversation.handle`, the bot stopped so
    that nothing else runs any): the update's mark, the client with therapist and practice, the
    chat's recent messages, the answer (and the check-in's first answer time, once), the next
    question's edit, the conversation state. The figure goes down only when a statement goes."""
    counted = await taps_counted(world, await count_trips(world.rt.engine))
    assert [len(run) for run, _ in counted] == [7, 6], counted
    for run, made_trips in counted:
        assert run.count("SELECT") == 2  # the client, the chat
        # A short transaction: not one statement crossed to aiosqlite's thread.
        assert made_trips == 0


@pytest.mark.postgres
async def test_a_tap_costs_three_round_trips_and_the_transactions_on_postgresql(
    pg_world: World,
) -> None:
    """On PostgreSQL each statement is a round trip: the update's mark rides in the client's
    query; the answer (with the check-in's first answer time, once) and the conversation state
    in the next question's INSERT. Left: the mark with the client, the chat, the edit with the
    rest. The answers and the first answer time are stored all the same."""
    counted = await taps_counted(pg_world, lambda: 0)
    assert [run for run, _ in counted] == [["WITH", "SELECT", "WITH"]] * 2, counted
    async with pg_world.rt.sessions() as s:
        checkin = (await s.scalars(select(Checkin))).one()
        answers = list(await s.scalars(select(Answer).order_by(Answer.id)))
    assert [a.value for a in answers] == [7, 7]
    assert checkin.first_answer_at == answers[0].answered_at


async def taps_counted(world: World, trips: Callable[[], int]) -> list[tuple[list[str], int]]:
    """Tap the open check-in's question 7 (a new client's first answer), then the next one,
    through `conversation.handle` with the bot stopped so that nothing else runs statements:
    each tap's statements (their first words), and the trips `trips` counted meanwhile."""
    therapist = await world.join_therapist()
    person = await join_client(world, therapist, "Alice Smith")
    question = await open_checkin_now(world, person)
    await world.drain()
    await world.stop_bot()
    run: list[str] = []

    def counted(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        run.append(statement.split(None, 1)[0].upper())

    engine = world.rt.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counted)
    found: list[tuple[list[str], int]] = []
    data = data_for(question, "7")
    update_id = 900_001
    try:
        for n in range(2):
            run.clear()
            trips_before = trips()
            tap = Tap(at=world.clock.now(), data=data, message_id=question["message_id"])
            sender = FromPerson(person.user.id, person.user.chat_id, "en", tap)
            after = await conversation.handle(
                world.rt, update_id + n, sender, world.clock.now(),
                staff=staff.therapist_event, callback_id=str(update_id + n),
            )  # fmt: skip
            assert after.enqueued
            found.append((list(run), trips() - trips_before))
            # The next question came in the tapped message's edit: its "7" is the next tap.
            async with world.rt.sessions() as s:
                newest = select(OutboxMessage.payload_enc).order_by(OutboxMessage.id.desc())
                edit = json.loads(world.rt.cipher.decrypt(await s.scalar(newest.limit(1))))
            assert edit["message_id"] == question["message_id"]
            data = next(
                b["data"] for line in edit["buttons"] for b in line if b["data"].endswith(":7")
            )
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return found


async def test_a_typed_checkin_costs_two_calls_an_answer(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    chat = alice.user.chat_id
    question = await open_checkin_now(world, alice)
    await world.drain()
    since = len(world.sandbox.calls)
    answers = 0
    while any(d.startswith("c:") for d in button_data(question)):
        data = button_data(question)
        comment, scale = (any(d.endswith(end) for d in data) for end in (":s", ":10"))
        await alice.user.send("a few words" if comment else "0" if scale else "no")
        answers += 1
        question = await alice.user.next_message()
        await world.drain()  # read before answering the next
    assert question["text"] == t("en", "checkin.thanks", therapist="Dana Lee")
    # Each answer: the answered question's buttons go, and the next question comes below.
    assert answers == 7 and calls_to(world, chat, since) == {
        "editMessageReplyMarkup": answers,
        "sendMessage": answers,
    }


async def test_a_question_that_cannot_be_edited_in_comes_as_a_new_message(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    question = await open_checkin_now(world, alice)
    world.sandbox.faults.fail_next(
        "editMessageText", 400, description="Bad Request: message to edit not found", chat_id=None
    )
    await alice.user.tap(question, data_for(question, "7"))
    following_question = await next_with_buttons(alice.user)
    assert following_question["message_id"] != question["message_id"]
    assert following_question["text"].startswith("2/")  # the next one, after the choice made
    assert following_question["acknowledged"].endswith("✓ 7")
    async with world.rt.sessions() as s:
        assert (await s.scalars(select(Answer.value))).all() == [7]
