"""A dialog the client opened and walked away from (`/delete`'s "are you sure?", `/talk`'s "write
a sentence") must not swallow what they type days later into a check-in: a typed "yes" to the
check-in's question is an answer, never a confirmation of erasure, and a typed "7" is a score,
never a request to talk."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app import admin
from flows.i18n import t
from storage.models import Client, ClientNote
from tests.e2e.harness import (
    World,
    data_for,
    join_client,
    next_with_buttons,
    onboard,
    open_checkin_now,
    stored,
    token_of,
)


async def test_a_stale_delete_confirmation_never_takes_a_checkin_yes(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await alice.user.send("/delete")
    sure = await next_with_buttons(alice.user)  # "are you sure?": left unanswered
    world.clock.advance(timedelta(days=2))

    await open_checkin_now(world, alice)
    for answer in ("8", "6", "9", "7", "4"):
        await alice.user.send(answer)
        await next_with_buttons(alice.user)
    await alice.user.send("yes")  # the tension question: yes, there was some
    await next_with_buttons(alice.user)
    # Its button, tapped late, is no longer active either.
    query = await alice.user.tap(sure, data="d:del:y", forge=True)
    answer = await alice.user.answer_to(query)
    assert answer.get("text") == t("en", "chat.button_inactive")
    await world.drain()

    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None, "the client was erased by a typed check-in answer"
    items = (await stored(world, alice.id)).items()
    assert items["tension"][0] == 1
    assert t("en", "command.deleted") not in [m["text"] for m in alice.user.inbox]


async def test_a_stale_talk_prompt_never_takes_a_typed_score(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await alice.user.send("/talk")
    await next_with_buttons(alice.user)  # "write a sentence, or tap Send": left as it is
    world.clock.advance(timedelta(days=2))

    await open_checkin_now(world, alice)
    await alice.user.send("7")
    await next_with_buttons(alice.user)
    await world.drain()

    assert (await stored(world, alice.id)).items()["heard"][0] == 7
    async with world.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ClientNote)) == 0


async def test_a_delete_question_passed_over_by_tapping_on_never_takes_a_typed_yes(
    world: World,
) -> None:
    """Mid check-in the client sends /delete, then leaves the question and goes on tapping
    answers: by the tension question the latest thing asked is the check-in's, and a typed
    "yes" answers it."""
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin_now(world, alice)
    await alice.user.send("/delete")
    await next_with_buttons(alice.user)  # "are you sure?"
    for value in ("8", "6", "9", "7", "4"):
        await alice.user.tap(question, data_for(question, value))
        question = await next_with_buttons(alice.user)
    await alice.user.send("yes")
    await alice.user.next_message()
    await world.drain()

    async with world.rt.sessions() as s:
        assert await s.get(Client, alice.id) is not None, "erased by a typed check-in answer"
    assert (await stored(world, alice.id)).items()["tension"][0] == 1


async def test_an_unanswered_why_after_stop_is_gone_once_the_client_starts_again(
    world: World,
) -> None:
    """/stop, the "why?" left unanswered, a new link, /start: what the client then writes is
    not filed as why they stopped, and the therapist hears no such reason."""
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await alice.user.send("/stop")
    await alice.user.tap(await next_with_buttons(alice.user), "d:stop:y")
    await next_with_buttons(alice.user)  # why? (left unanswered)
    await world.drain()
    world.clock.advance(timedelta(days=3))
    link = (await admin.new_invite(world.rt, client_id=alice.id))["invite_link"]
    await onboard(world, alice.user, token_of(link))
    heard = len(dana.user.inbox)
    await alice.user.send("hello, I'm back")
    await alice.user.next_message()
    await world.drain()

    async with world.rt.sessions() as s:
        kinds = (await s.scalars(select(ClientNote.kind))).all()
    assert "stop_reason" not in kinds
    assert not any("hello" in (m.get("text") or "") for m in dana.user.inbox[heard:])
