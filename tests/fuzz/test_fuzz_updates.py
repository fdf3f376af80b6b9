"""Random Telegram updates through the real handlers: two clients mid-check-in, one mid-
onboarding, a stranger, the therapist and a group, doing whatever hypothesis makes them do,
interleaved. The bot never crashes or logs an error, stores only answers the clients really gave
for the item being asked, loses none, and its stored conversations stay consistent with the
check-in rows. After every move, for everyone: nobody's move changes another client's answers; a
client who erased themselves leaves no row behind; a stranger is bound to nothing, has nothing
queued and is told nothing but that the bot is for invited people (or where to turn in a crisis);
the therapist never hears of another therapist's client."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app import admin, heartbeat
from devtools.sandbox import ActionError, SandboxGroup, SandboxUser, callback_data_of
from flows.i18n import t
from storage.models import OutboxMessage, ProcessedUpdate
from tests.e2e.harness import World, next_with_buttons, token_of
from tests.faults.inprocess import until_idle
from tests.faults.seed import add_clients, add_therapist
from tests.faults.traffic import GUARD, Traffic
from tests.fuzz.moves import Move, moves
from tests.fuzz.oracle import (
    bound_to,
    check_consistent,
    check_move,
    expected_from_tap,
    expected_from_text,
    rows_about,
    snapshot,
    stranger_may_read,
)

PEOPLE = 5  # 0: mid-onboarding, 1 and 2: mid-check-in, 3: a stranger, 4: the therapist
STRANGER, THERAPIST = 3, 4
OTHER_ALIAS = "Z000"  # a client of another therapist
EXAMPLES = int(os.environ.get("RAPPORT_FUZZ_EXAMPLES", "40"))


@dataclass
class Person:
    user: SandboxUser
    client_id: int | None  # None: a stranger or the therapist
    texts: list[dict[str, Any]] = field(default_factory=list)


class Updates:
    """The ids of the updates the sandbox queues for the bot (to wait until each is handled)."""

    def __init__(self, world: World) -> None:
        self.ids: list[int] = []
        inner = world.sandbox.world
        enqueue = inner.enqueue

        def recording(bot: Any, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
            update = enqueue(bot, kind, payload)
            if update is not None:
                self.ids.append(int(update["update_id"]))
            return update

        inner.enqueue = recording  # type: ignore[method-assign]


@pytest.fixture
def updates(live: tuple[World, Traffic]) -> Updates:
    return Updates(live[0])


async def settled(world: World, traffic: Traffic, updates: Updates) -> None:
    """Every queued update handled to the end (its replies after the commit included) and
    recorded with its effects, the outbox sent, and no Bot API call but the long poll on the
    wire."""
    await until_idle(world)
    wanted = set(updates.ids)
    async with world.rt.sessions() as s:
        done = await s.scalar(
            select(func.count())
            .select_from(ProcessedUpdate)
            .where(ProcessedUpdate.update_id.in_(wanted))
        )
    assert done == len(wanted), f"{len(wanted) - (done or 0)} updates handled but not recorded"
    await world.drain(timeout=GUARD)
    await traffic.until(
        lambda: all(
            traffic.in_flight(m) == 0
            for m in ("sendMessage", "editMessageText", "answerCallbackQuery", "sendPhoto")
        ),
        timeout=GUARD,
        what="replies delivered",
    )


async def cast(world: World, onboarding_taps_language: bool) -> tuple[list[Person], SandboxGroup]:
    now = world.clock.now()
    therapist = await add_therapist(world.rt.sessions, world.rt.cipher, world.sandbox, now)
    invited = await admin.add_client(world.rt, therapist.id, "Olga Newman")
    newcomer = world.sandbox.user("Olga", language_code="en")
    await newcomer.send(f"/start {token_of(invited['invite_link'])}")
    greeting = await next_with_buttons(newcomer, timeout=GUARD)
    if onboarding_taps_language:
        await newcomer.tap(greeting, button_text="English")
        await next_with_buttons(newcomer, timeout=GUARD)
    answering = await add_clients(
        world.rt.sessions, world.rt.cipher, world.sandbox, therapist, 2, now, due=now
    )
    await heartbeat.run_pass(world.rt)
    for member in answering:
        await next_with_buttons(member.user, timeout=GUARD)
    other = await add_therapist(
        world.rt.sessions, world.rt.cipher, world.sandbox, now, name="Rita Moss"
    )
    others = await add_clients(
        world.rt.sessions, world.rt.cipher, world.sandbox, other, 1, now, prefix="Z"
    )
    assert others[0].alias == OTHER_ALIAS
    stranger = world.sandbox.user("Mallory", language_code="de")
    group = world.sandbox.group("Book club", [stranger, newcomer])
    people = [Person(newcomer, int(invited["id"]))]
    people += [Person(m.user, m.id) for m in answering]
    people.append(Person(stranger, None))
    people.append(Person(therapist.user, None))
    return people, group


def is_unknown_alias(text: str) -> bool:
    """The answer to an alias that is not the therapist's own: it only repeats what they typed,
    exactly as for an alias nobody has."""
    head, _, tail = t("en", "staff.unknown_alias").partition("{alias}")
    return text.startswith(head) and text.endswith(tail) and "\n" not in text


def _callback_data(data: str) -> str:
    """Telegram carries at most 64 bytes of callback data."""
    return data.encode()[:64].decode(errors="ignore")


async def perform(person: Person, move: Move, group: SandboxGroup) -> tuple[str, str]:
    """Do the move; returns what reached the bot: ("tap", data), ("text", text) or ("other", "")."""
    user = person.user
    text = move.text if move.text.strip() else "?"
    try:
        if move.kind == "text":
            person.texts.append(await user.send(text))
            return "text", text
        if move.kind == "edit" and person.texts:
            await user.edit(person.texts[move.pick % len(person.texts)], text)
        elif move.kind == "sticker":
            await user.send_sticker()
        elif move.kind == "photo":
            await user.send_photo(caption=text[:100] if move.pick % 2 else None)
        elif move.kind == "voice":
            await user.send_voice()
        elif move.kind == "group":
            group.add_member(user)
            await group.send(user, text)
        elif move.kind == "tap_last":
            asked = [m for m in user.inbox if callback_data_of(m)]
            if asked:
                data = callback_data_of(asked[-1])[move.pick % len(callback_data_of(asked[-1]))]
                await user.tap(asked[-1], data)
                return "tap", data
        elif move.kind == "tap":
            shown = [(m, d) for m in user.inbox for d in callback_data_of(m)]
            if shown:
                message, data = shown[move.pick % len(shown)]
                await user.tap(message, data)
                return "tap", data
        elif move.kind == "forge" and (inbox := user.inbox):
            data = _callback_data(move.text)
            await user.tap(inbox[move.pick % len(inbox)], data, forge=True)
            return "tap", data
    except ActionError:
        pass  # something a Telegram client would not let the person do
    return "other", ""


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    script=st.lists(moves(PEOPLE), min_size=3, max_size=12),
    onboarding_taps_language=st.booleans(),
)
@example(  # a client erases themselves mid-check-in, then writes again; a stranger in crisis
    script=[
        Move(1, "text", "/delete"),
        Move(1, "tap_last", "", 0),
        Move(1, "text", "7"),
        Move(3, "text", "I want to kill myself"),
        Move(4, "text", "/digest K000"),
    ],
    onboarding_taps_language=False,
)
async def test_random_updates_never_break_the_bot(
    live: tuple[World, Traffic],
    updates: Updates,
    caplog: pytest.LogCaptureFixture,
    script: list[Move],
    onboarding_taps_language: bool,
) -> None:
    world, traffic = live
    first_record = len(caplog.records)
    people, group = await cast(world, onboarding_taps_language)
    await settled(world, traffic, updates)

    clients = [p.client_id for p in people if p.client_id is not None]
    for step, move in enumerate(script):
        person = people[move.who]
        before = {c: await snapshot(world, c) for c in clients}
        what, payload = await perform(person, move, group)
        await settled(world, traffic, updates)
        label = f"step {step} {move!r}"
        for client_id, was in before.items():
            after = await snapshot(world, client_id)
            must: dict[Any, Any] = {}
            may: dict[Any, Any] = {}
            if client_id == person.client_id and what == "tap":
                must = expected_from_tap(was, payload)
            elif client_id == person.client_id and what == "text":
                must, may = expected_from_text(was, payload)
            check_move(was, after, must, may, f"{label}, client {client_id}")
            check_consistent(after, f"{label}, client {client_id}")
            if not after.exists:
                assert await rows_about(world, client_id) == {}, f"{label}: erased, yet kept"
        stranger = people[STRANGER].user
        assert await bound_to(world, stranger.id, stranger.chat_id) == [], label
        told = [m.get("text", "") for m in stranger.inbox]
        assert all(stranger_may_read(text) for text in told), f"{label}: a stranger read {told}"
        for message in people[THERAPIST].user.inbox:
            heard = message.get("text") or message.get("caption") or ""
            assert OTHER_ALIAS not in heard or is_unknown_alias(heard), (
                f"{label}: told about another therapist's client: {heard!r}"
            )

    for index, person in enumerate(people):
        if person.client_id is not None:
            check_consistent(await snapshot(world, person.client_id), f"person {index} at end")
    async with world.rt.sessions() as s:
        failed = await s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "failed")
        )
    assert failed == 0, "the bot sent something Telegram refused"
    problems = [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records[first_record:]
        if r.levelno >= logging.ERROR
        or (r.levelno >= logging.WARNING and r.name.startswith(("bot", "flows", "storage")))
    ]
    assert problems == []
