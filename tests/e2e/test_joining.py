"""Joining through an invite, and everyone who should be turned away (end to end)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from bot import admin
from flows.i18n import t
from storage.models import Client, ClientEvent, OutboxMessage
from tests.e2e.harness import World, button_labels


async def stored_counts(world: World) -> dict[str, int]:
    async with world.rt.sessions() as s:
        counts = {}
        for table in ("client", "therapist", "client_event", "outbox", "invite", "answer"):
            counts[table] = int(await s.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
        counts["bound"] = int(
            await s.scalar(
                select(func.count()).select_from(Client).where(Client.telegram_user_id.is_not(None))
            )
            or 0
        )
        return counts


async def test_a_client_joins_with_a_valid_invite(world: World) -> None:
    therapist = await world.join_therapist()
    client_id, token = await world.invite_client(therapist, "Alice Smith")
    alice = world.sandbox.user("Alice", language_code="en")
    await alice.send(f"/start {token}")
    greeting = await alice.next_message()
    assert "Rapport" in greeting["text"]
    assert {"English", "Español", "Русский"} <= set(button_labels(greeting))
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None
        assert client.telegram_user_id == alice.id
        assert client.status == "onboarding"
        kinds = list(await s.scalars(select(ClientEvent.kind)))
        assert kinds == ["joined"]


async def test_bad_invites_are_refused_and_nothing_is_stored(world: World) -> None:
    therapist = await world.join_therapist()
    _, token = await world.invite_client(therapist, "Bob Brown")
    await world.drain()
    before = await stored_counts(world)

    mallory = world.sandbox.user("Mallory", language_code="en")
    await mallory.send("/start not-a-real-token")
    assert (await mallory.next_message())["text"] == t("en", "chat.invite_invalid")
    await mallory.send("/start " + "x" * 80)
    assert (await mallory.next_message())["text"] == t("en", "chat.invite_invalid")
    assert await stored_counts(world) == before

    world.clock.advance(timedelta(days=15))  # invites live 14 days
    await mallory.send(f"/start {token}")
    assert (await mallory.next_message())["text"] == t("en", "chat.invite_invalid")
    assert await stored_counts(world) == before


async def test_an_invite_works_once(world: World) -> None:
    therapist = await world.join_therapist()
    _, token = await world.invite_client(therapist, "Carol White")
    carol = world.sandbox.user("Carol", language_code="es")
    await carol.send(f"/start {token}")
    await carol.next_message()
    await world.drain()
    before = await stored_counts(world)
    eve = world.sandbox.user("Eve", language_code="ru")
    await eve.send(f"/start {token}")
    assert (await eve.next_message())["text"] == t("ru", "chat.invite_used")
    assert await stored_counts(world) == before


async def test_strangers_and_groups_get_a_polite_reply_and_leave_no_trace(world: World) -> None:
    before = await stored_counts(world)
    stranger = world.sandbox.user("Sam", language_code="es")
    await stranger.send("hola")
    assert (await stranger.next_message())["text"] == t("es", "chat.stranger")
    await stranger.send("/help")
    assert (await stranger.next_message())["text"] == t("es", "chat.stranger")
    await stranger.send_sticker()
    assert (await stranger.next_message())["text"] == t("es", "chat.stranger")
    # Someone in crisis is not turned away: the practice's resources (or the default advice).
    await stranger.send("ya no quiero vivir")
    resources = t("es", "crisis.default_resources")
    assert (await stranger.next_message())["text"] == t(
        "es", "chat.stranger_crisis", resources=resources
    )
    await admin.practice_set(world.rt, crisis_resources=("es", "Llama al 024."))
    english = world.sandbox.user("Kim", language_code="en")
    await english.send("I want to kill myself")
    assert (await english.next_message())["text"] == t(
        "en", "chat.stranger_crisis", resources=t("en", "crisis.default_resources")
    )
    await stranger.send("quiero morir")
    assert "Llama al 024." in (await stranger.next_message())["text"]

    group = world.sandbox.group("Team", members=[stranger])
    await group.send(stranger, "/help")
    reply = await group.next_message()
    assert reply["text"] == t("es", "chat.group")
    assert reply["chat"]["type"] == "group"
    after = await stored_counts(world)
    assert after == before
    async with world.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 0


async def test_help_answers_a_client_and_a_therapist(world: World) -> None:
    therapist = await world.join_therapist()
    await therapist.user.send("/help")
    assert (await therapist.next_message())["text"].startswith(
        t("en", "help.therapist").split("\n")[0]
    )
