"""An update's answer written late (with its reply's INSERT on PostgreSQL) and a client's update
handled with the client as a row, under attack: what is stored after taps, typed answers,
crisis words, the safety item, pauses and erasure in the middle of a check-in, duplicate taps,
and membership changes. Each test runs on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from app import admin
from flows.i18n import t
from storage.models import Answer, Checkin, Client, ClientEvent, Therapist
from tests.e2e.harness import (
    Person,
    World,
    button_data,
    data_for,
    join_client,
    next_with_buttons,
    open_checkin_now,
    stored,
)
from tests.e2e.test_answer_attack import CRISIS_WORDS, THERAPIST, tap_and_settle
from tests.e2e.test_between_sessions import wait_blocked
from tests.e2e.test_chain_attack import handled


async def opened(world: World) -> tuple[Person, Person, dict[str, Any]]:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin_now(world, alice)
    await world.drain()
    return dana, alice, question


async def events_of(world: World, client_id: int) -> list[str]:
    async with world.rt.sessions() as s:
        rows = await s.scalars(
            select(ClientEvent.kind).where(ClientEvent.client_id == client_id).order_by("id")
        )
        return list(rows)


async def to_comment_step(world: World, alice: Person, question: dict[str, Any]) -> None:
    """Tap 7 (or the first choice) on every question until the comment step is asked."""
    while not any(d.endswith(":s") for d in button_data(question)):
        data = button_data(question)
        choice = next((d for d in data if d.endswith(":7")), None) or next(
            (d for d in data if d.endswith(":n")), data[0]
        )
        world.clock.advance(timedelta(minutes=1))
        await tap_and_settle(world, alice.user, question, choice)
        question = await next_with_buttons(alice.user, after=question)


async def answered_then_confirmed(
    world: World, alice: Person, question: dict[str, Any], command: str, dialog: str
) -> None:
    """Tap 7 on the question, then send `/command` and confirm it with its dialog's yes."""
    world.clock.advance(timedelta(minutes=1))
    await tap_and_settle(world, alice.user, question, data_for(question, "7"))
    await alice.user.send(f"/{command}")
    confirm = await alice.user.next_message(
        predicate=lambda m: any(d.startswith(dialog) for d in button_data(m))
    )
    yes = next(d for d in button_data(confirm) if d.endswith(":y"))
    await tap_and_settle(world, alice.user, confirm, yes)


async def test_a_tapped_answer_keeps_its_value_and_times(any_world: World) -> None:
    """The riding answer: value, answered_at and first_answer_at each land in their column."""
    world = any_world
    _, alice, question = await opened(world)
    opened_at = world.clock.now()
    world.clock.advance(timedelta(minutes=3))
    first = world.clock.now()
    await tap_and_settle(world, alice.user, question, data_for(question, "7"))
    second_q = await next_with_buttons(alice.user, after=question)
    world.clock.advance(timedelta(minutes=5))
    await tap_and_settle(world, alice.user, second_q, data_for(second_q, "2"))
    seen = await stored(world, alice.id)
    items = seen.items()
    assert [(v, at) for v, at in items.values()] == [(7, first), (2, first + timedelta(minutes=5))]
    (_, status, first_answer_at, closed_at) = seen.checkins[-1]
    assert (status, first_answer_at, closed_at) == ("open", first, None)
    assert first_answer_at > opened_at
    assert set(seen.conversation["checkin"]["answers"]) == set(items)


async def test_a_second_tap_on_an_answered_question_keeps_the_first_answer(
    any_world: World,
) -> None:
    """A tap on the old question's copy after it was answered: no second row, no other value."""
    world = any_world
    _, alice, question = await opened(world)
    world.clock.advance(timedelta(minutes=1))
    await tap_and_settle(world, alice.user, question, data_for(question, "7"))
    world.clock.advance(timedelta(minutes=1))
    await tap_and_settle(world, alice.user, question, data_for(question, "1"), forge=True)
    seen = await stored(world, alice.id)
    values = [(a[1], a[2]) for a in seen.answers]
    assert values[0][1] == 7 and [item for item, _ in values].count(values[0][0]) == 1


async def test_a_typed_answer_is_stored(any_world: World) -> None:
    """A typed number: its reply is two messages (buttons away, next question); the answer
    rides in the last one's INSERT."""
    world = any_world
    _, alice, question = await opened(world)
    world.clock.advance(timedelta(minutes=2))
    await alice.user.send("6")
    await next_with_buttons(alice.user, after=question)
    await world.drain()
    seen = await stored(world, alice.id)
    assert [(v, at) for v, at in seen.items().values()] == [(6, world.clock.now())]
    assert seen.checkins[-1][2] == world.clock.now()


async def test_crisis_words_as_the_comment_keep_the_comment_and_close_the_checkin(
    any_world: World,
) -> None:
    """Crisis words at the comment step: the comment is stored before the alert reads
    anything, the check-in ends answered, the crisis is recorded."""
    world = any_world
    _, alice, question = await opened(world)
    await to_comment_step(world, alice, question)
    world.clock.advance(timedelta(minutes=1))
    await handled(world, alice.user.chat_id, alice.user.send(CRISIS_WORDS))
    await world.drain()
    seen = await stored(world, alice.id)
    items = {a[1]: a[3] for a in seen.answers}
    assert items.get("comment") == CRISIS_WORDS
    assert seen.checkins[-1][1] == "answered"
    assert "crisis" in await events_of(world, alice.id)


async def test_crisis_words_mid_checkin_then_an_answer(any_world: World) -> None:
    """Crisis words typed at a scale question, then a tap: both are stored."""
    world = any_world
    _, alice, question = await opened(world)
    world.clock.advance(timedelta(minutes=1))
    await handled(world, alice.user.chat_id, alice.user.send(CRISIS_WORDS))
    await world.drain()
    world.clock.advance(timedelta(minutes=1))
    await tap_and_settle(world, alice.user, question, data_for(question, "7"))
    seen = await stored(world, alice.id)
    assert any(a[2] == 7 for a in seen.answers)
    assert seen.checkins[-1][2] is not None
    assert "crisis" in await events_of(world, alice.id)


async def test_the_safety_item_above_zero_is_stored_and_alerts(any_world: World) -> None:
    """The safety item answered above 0: the answer is stored (before the alert) and the crisis
    is recorded with the practice's settings read from the row."""
    world = any_world
    await admin.practice_set(world.rt, safety_item=True)
    _, alice, question = await opened(world)
    safety: tuple[str, int | None] | None = None
    while safety is None:
        data = button_data(question)
        if any(d.endswith(":s") for d in data):
            break
        values = {d.rsplit(":", 1)[-1] for d in data}
        if values - {"n"} == {"0", "1", "2", "3"}:  # the safety item
            choice = data_for(question, "2")
        else:
            choice = next((d for d in data if d.endswith(":7")), None) or next(
                (d for d in data if d.endswith(":n")), data[0]
            )
        world.clock.advance(timedelta(minutes=1))
        await tap_and_settle(world, alice.user, question, choice)
        if choice.endswith(":2"):
            safety = ("", 2)
            break
        question = await next_with_buttons(alice.user, after=question)
    assert safety is not None, "the safety item was asked"
    await world.drain()
    seen = await stored(world, alice.id)
    assert any(v == 2 for v, _ in seen.items().values())
    assert "crisis" in await events_of(world, alice.id)


async def test_pause_after_an_answer_closes_the_checkin_as_partial(any_world: World) -> None:
    """/pause right after an answer: the deferred answer is stored before the check-in is
    closed, so it counts as partial, not missed, and the answer stays."""
    world = any_world
    _, alice, question = await opened(world)
    world.clock.advance(timedelta(minutes=1))
    await tap_and_settle(world, alice.user, question, data_for(question, "7"))
    world.clock.advance(timedelta(minutes=1))
    await handled(world, alice.user.chat_id, alice.user.send("/pause"))
    await world.drain()
    seen = await stored(world, alice.id)
    assert len(seen.answers) == 1
    assert seen.status == "paused"
    assert [c[1] for c in seen.checkins] == ["partial"]
    assert seen.conversation is not None and seen.conversation["checkin"] is None


async def test_a_block_and_unblock_are_recorded(any_world: World) -> None:
    """Membership changes load the client by the row's id."""
    world = any_world
    _, alice, _ = await opened(world)
    await alice.user.block()
    await wait_blocked(world, alice)
    await alice.user.unblock()
    await wait_blocked(world, alice, blocked=False)
    assert (await events_of(world, alice.id))[-2:] == ["blocked", "unblocked"]


async def test_a_spanish_client_in_crisis_gets_the_practice_s_spanish_resources(
    any_world: World,
) -> None:
    """Crisis resources per language come from the practice's settings on the row."""
    world = any_world
    await admin.practice_set(world.rt, crisis_resources=[("es", "Llama al 024 ahora")])
    dana = await world.join_therapist(THERAPIST)
    ana = await join_client(world, dana, "Ana Ruiz", language="Español")
    await ana.user.send("quiero morir, me quiero matar")
    reply = await ana.user.next_message(predicate=lambda m: "024" in m.get("text", ""))
    assert "Llama al 024 ahora" in reply["text"]


async def test_erasure_after_an_answer_leaves_nothing(any_world: World) -> None:
    """The answer given just before /delete is erased with the rest."""
    world = any_world
    _, alice, question = await opened(world)
    await answered_then_confirmed(world, alice, question, "delete", "d:del")
    async with world.rt.sessions() as s:
        assert await s.get(Client, alice.id) is None
        assert await s.scalar(select(func.count()).select_from(Answer)) == 0
        assert await s.scalar(select(func.count()).select_from(Checkin)) == 0
    assert t("en", "checkin.thanks")  # the locale is loaded


async def first_answer_matches(world: World, client_id: int) -> list[tuple[Any, ...]]:
    """Each check-in: (status, first_answer_at == the earliest answer's time, answers)."""
    seen = await stored(world, client_id)
    out = []
    for checkin_id, status, first, _ in seen.checkins:
        times = [a[4] for a in seen.answers if a[0] == checkin_id]
        out.append((status, first == (min(times) if times else None), len(times)))
    return out


async def test_mixed_taps_typed_answers_and_a_comment_keep_first_answer_times(
    any_world: World,
) -> None:
    """Taps and typed numbers mixed, then a comment: every answer stored once, the check-in
    answered with its first answer time the earliest answer's; the next check-in, answered once
    and left to expire, is partial with its own first time."""
    world = any_world
    _, alice, question = await opened(world)
    typed = True
    while not any(d.endswith(":s") for d in button_data(question)):
        world.clock.advance(timedelta(minutes=1))
        values = {d.rsplit(":", 1)[-1] for d in button_data(question)}
        if typed and "5" in values:
            await handled(world, alice.user.chat_id, alice.user.send("5"))
        else:
            data = button_data(question)
            choice = next((d for d in data if d.endswith(":7")), None) or data[0]
            await tap_and_settle(world, alice.user, question, choice)
        typed = not typed
        question = await next_with_buttons(alice.user, after=question)
        await world.drain()
    world.clock.advance(timedelta(minutes=1))
    await handled(world, alice.user.chat_id, alice.user.send("Fine overall ✓ שלום"))
    await world.drain()
    first = await first_answer_matches(world, alice.id)
    assert first[0][:2] == ("answered", True)
    assert ("comment", "Fine overall ✓ שלום") in [
        (a[1], a[3]) for a in (await stored(world, alice.id)).answers
    ]

    question = await open_checkin_now(world, alice)
    while not button_data(question)[0].startswith("c:"):
        question = await next_with_buttons(alice.user)
    await world.drain()
    world.clock.advance(timedelta(minutes=2))
    await tap_and_settle(world, alice.user, question, data_for(question, "3"))
    await world.advance(days=5, step=timedelta(hours=6))
    again = await first_answer_matches(world, alice.id)
    assert again[1] == ("partial", True, 1)


async def test_stop_after_an_answer_keeps_it_and_closes_the_checkin_partial(
    any_world: World,
) -> None:
    """/stop confirmed mid-check-in, right after a tap: the answer is stored before the
    check-in is closed (partial), the client is stopped."""
    world = any_world
    _, alice, question = await opened(world)
    await answered_then_confirmed(world, alice, question, "stop", "d:stop")
    seen = await stored(world, alice.id)
    assert seen.status == "stopped"
    assert [(c[1], c[2] is not None) for c in seen.checkins] == [("partial", True)]
    assert len(seen.answers) == 1


async def test_a_therapist_and_a_stranger_are_routed_without_a_client_row(
    any_world: World,
) -> None:
    """No client row for the sender: a therapist's command reaches the staff commands, a
    stranger's crisis words get the resources, and nothing is stored for the stranger."""
    world = any_world
    dana = await world.join_therapist(THERAPIST)
    await dana.user.send("/help")
    assert (await dana.user.next_message())["text"]
    stranger = world.sandbox.user("Zed", language_code="en")
    await stranger.send(CRISIS_WORDS)
    reply = await stranger.next_message()
    assert reply["text"] == t(
        "en", "chat.stranger_crisis", resources=t("en", "crisis.default_resources")
    )
    async with world.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Client)) == 0


async def test_a_double_tap_with_two_values_counts_the_first_only(any_world: World) -> None:
    """Two taps on the same question sent back to back (7, then 1): the question's item keeps
    7, and the 1 meant for it is not taken as the next item's answer."""
    world = any_world
    _, alice, question = await opened(world)
    world.clock.advance(timedelta(minutes=1))
    first = await alice.user.tap(question, data_for(question, "7"))
    second = await alice.user.tap(question, data_for(question, "1"))
    await alice.user.answer_to(first)
    await alice.user.answer_to(second)
    await world.drain()
    items = (await stored(world, alice.id)).items()
    assert [value for value, _ in items.values()] == [7]


async def test_a_therapist_s_block_is_recorded_without_a_client_row(any_world: World) -> None:
    """A membership change from a therapist (no client row): their unreachable time is set on
    a block and cleared on an unblock."""
    world = any_world
    dana = await world.join_therapist(THERAPIST)

    async def unreachable() -> bool:
        async with world.rt.sessions() as s:
            therapist = await s.get(Therapist, dana.id)
            assert therapist is not None
            return therapist.unreachable_at is not None

    await dana.user.block()
    assert await until_async(unreachable, True)
    await dana.user.unblock()
    assert await until_async(unreachable, False)


async def until_async(probe: Any, wanted: bool) -> bool:
    for _ in range(500):
        if await probe() is wanted:
            return True
        await asyncio.sleep(0.01)
    return False
