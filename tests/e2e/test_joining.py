"""Joining through an invite, and everyone who should be turned away (end to end)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from app import admin
from devtools.sandbox import SandboxUser
from flows.i18n import t
from storage import audit, checkins, outbox, people
from storage.models import Client, ClientEvent, OutboxMessage, Therapist
from tests.e2e.harness import (
    Person,
    World,
    button_labels,
    data_for,
    join_client,
    next_with_buttons,
    onboard,
    open_checkin_now,
    stored,
    token_of,
)
from tests.e2e.test_privacy import answer_checkin as answer_with


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


# --- one person per client: links cannot take over an account -----------------------------------

COMMENT = "the second half of the session felt rushed"


async def answer_checkin(world: World, person: Person) -> None:
    """Open a check-in now and answer it with 7s (no on yes/no) and COMMENT."""
    await answer_with(world, person, COMMENT)


async def new_link(world: World, client_id: int) -> str:
    return token_of((await admin.new_invite(world.rt, client_id=client_id))["invite_link"])


async def intruder_finds_nothing(world: World, intruder: SandboxUser) -> None:
    """The account that tried a link is a stranger: /mydata shows it nothing."""
    await intruder.send("/mydata")
    reply = await intruder.next_message()
    assert reply["text"] == t("en", "chat.stranger")
    assert COMMENT not in reply["text"]


async def still_served(world: World, person: Person) -> None:
    """The client is bound to their own account and gets their data and check-ins as before."""
    async with world.rt.sessions() as s:
        client = await s.get(Client, person.id)
        assert client is not None and client.telegram_user_id == person.user.id
        assert client.status == "active"
    await person.user.send("/mydata")
    mydata = await person.user.next_message()
    assert COMMENT in mydata["text"]
    await answer_checkin(world, person)


async def test_an_older_link_stops_working_once_a_newer_one_is_issued(world: World) -> None:
    therapist = await world.join_therapist()
    client_id, older = await world.invite_client(therapist, "Alice Smith")
    newer = await new_link(world, client_id)
    await world.drain()
    before = await stored_counts(world)
    bob = world.sandbox.user("Bob", language_code="en")
    await bob.send(f"/start {older}")
    assert (await bob.next_message())["text"] == t("en", "chat.invite_invalid")
    assert await stored_counts(world) == before
    alice = world.sandbox.user("Alice", language_code="en")
    await onboard(world, alice, newer)
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None and client.telegram_user_id == alice.id


async def test_an_old_link_opened_after_the_client_joined_takes_nothing_over(world: World) -> None:
    therapist = await world.join_therapist()
    client_id, older = await world.invite_client(therapist, "Alice Smith")
    newer = await new_link(world, client_id)
    user = world.sandbox.user("Alice", language_code="en")
    await onboard(world, user, newer)
    alice = Person(client_id, user)
    await answer_checkin(world, alice)
    before, kept = await stored_counts(world), await stored(world, client_id)

    bob = world.sandbox.user("Bob", language_code="en")
    await bob.send(f"/start {older}")
    assert (await bob.next_message())["text"] == t("en", "chat.invite_invalid")
    await intruder_finds_nothing(world, bob)
    assert await stored_counts(world) == before
    assert await stored(world, client_id) == kept
    await still_served(world, alice)


async def test_no_link_rebinds_a_client_who_has_joined(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    await answer_checkin(world, alice)
    # The admin is refused a new link for her, and told how to move her instead.
    with pytest.raises(admin.AdminError, match=f"rapport client move {alice.id}"):
        await admin.new_invite(world.rt, client_id=alice.id)
    # A link for her made before this rule (the old `rapport invite` did) is refused as well.
    async with world.rt.sessions() as s, s.begin():
        token = await people.create_invite(s, now=world.clock.now(), client_id=alice.id)
    before, kept = await stored_counts(world), await stored(world, alice.id)

    bob = world.sandbox.user("Bob", language_code="en")
    await bob.send(f"/start {token}")
    assert (await bob.next_message())["text"] == t("en", "chat.invite_taken")
    await intruder_finds_nothing(world, bob)
    assert await stored_counts(world) == before
    assert await stored(world, alice.id) == kept
    await still_served(world, alice)


async def test_reopening_ones_own_link_says_already_connected(world: World) -> None:
    therapist = await world.join_therapist()
    client_id, token = await world.invite_client(therapist, "Alice Smith")
    user = world.sandbox.user("Alice", language_code="es")
    await onboard(world, user, token, language="Español")
    kept = await stored(world, client_id)
    await user.send(f"/start {token}")
    assert (await user.next_message())["text"] == t("es", "chat.already_joined")
    await world.drain()
    assert await stored(world, client_id) == kept


async def test_a_therapist_opening_a_client_link_is_refused(world: World) -> None:
    therapist = await world.join_therapist()
    client_id, token = await world.invite_client(therapist, "Alice Smith")
    await world.drain()
    before = await stored_counts(world)
    await therapist.user.send(f"/start {token}")
    assert (await therapist.next_message())["text"] == t("en", "chat.invite_therapist_account")
    assert await stored_counts(world) == before
    async with world.rt.sessions() as s:
        assert await people.client_by_user(s, therapist.user.id) is None
    await therapist.user.send("/help")  # still a therapist, nothing else
    assert (await therapist.next_message())["text"] == t("en", "help.therapist")
    alice = world.sandbox.user("Alice", language_code="en")
    await onboard(world, alice, token)  # the link is still the client's to use
    assert (await stored(world, client_id)).status == "active"


async def test_a_client_opening_a_therapist_link_is_refused(world: World) -> None:
    dana = await world.join_therapist()
    alice = await join_client(world, dana, "Alice Smith")
    await answer_checkin(world, alice)
    lee = await admin.add_therapist(world.rt, "Lee Park", "Europe/Berlin")
    kept = await stored(world, alice.id)
    before = await stored_counts(world)
    await alice.user.send(f"/start {token_of(lee['invite_link'])}")
    assert (await alice.next_message())["text"] == t("en", "chat.invite_client_account")
    assert await stored_counts(world) == before
    assert await stored(world, alice.id) == kept
    async with world.rt.sessions() as s:
        therapist = await s.get(Therapist, lee["id"])
        assert therapist is not None and therapist.telegram_user_id is None
    await still_served(world, alice)


async def test_an_account_that_is_someone_else_cannot_take_a_second_link(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    carol_id, token = await world.invite_client(therapist, "Carol White")
    await world.drain()
    before, kept = await stored_counts(world), await stored(world, alice.id)
    await alice.user.send(f"/start {token}")
    assert (await alice.next_message())["text"] == t("en", "chat.invite_other_account")
    assert await stored_counts(world) == before
    assert await stored(world, alice.id) == kept
    assert (await stored(world, carol_id)).status == "invited"


@pytest.mark.postgres
async def test_two_accounts_opening_one_link_at_once_on_postgres(pg_world: World) -> None:
    """The bot handles updates concurrently: two accounts that open one link at the same moment
    are handled on two connections at once, and exactly one of them joins, every time."""
    world = pg_world
    therapist = await world.join_therapist()
    for trial in range(10):
        client_id, token = await world.invite_client(therapist, f"Client {trial}")
        first = world.sandbox.user(f"A{trial}", language_code="en")
        second = world.sandbox.user(f"B{trial}", language_code="en")
        await asyncio.gather(first.send(f"/start {token}"), second.send(f"/start {token}"))
        replies = [(await u.next_message())["text"] for u in (first, second)]
        # The loser is refused as "link used" or, if the winner's claim committed first, as
        # "someone already joined with this link"; either way nothing of theirs is bound.
        refusals = {t("en", "chat.invite_used"), t("en", "chat.invite_taken")}
        refused = [text in refusals for text in replies]
        assert sorted(refused) == [False, True], f"trial {trial}: {replies}"
        winner = second if refused[0] else first
        async with world.rt.sessions() as s:
            client = await s.get(Client, client_id)
            assert client is not None and client.telegram_user_id == winner.id, f"trial {trial}"


# --- moving to another account is explicit ----------------------------------------------------


async def test_moving_a_client_ends_the_old_binding_and_keeps_their_data(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    await answer_checkin(world, alice)
    question = await open_checkin_now(world, alice)  # a check-in left half done
    await alice.user.tap(question, data_for(question, "7"))
    await next_with_buttons(alice.user)
    await world.drain()  # the next question is marked sent, not only shown
    async with world.rt.sessions() as s, s.begin():  # a message still waiting for the old chat
        await outbox.enqueue(
            s,
            world.rt.cipher,
            chat_id=alice.user.chat_id,
            kind="text",
            payload={"text": "later"},
            now=world.clock.now(),
            client_id=alice.id,
            not_before=world.clock.now() + timedelta(hours=2),
        )
    older = await world.invite_client(
        therapist, "Nobody Else"
    )  # another client's link is untouched

    moved = await admin.move_client_account(world.rt, alice.id)
    assert moved["cancelled_messages"] == 1
    seen = len(alice.user.inbox)
    await world.advance(hours=3)
    assert len(alice.user.inbox) == seen  # the cancelled message never went out
    await alice.user.send("/mydata")  # the old account is nobody now
    assert (await alice.next_message())["text"] == t("en", "chat.stranger")

    after = await stored(world, alice.id)
    assert after.status == "invited" and after.conversation is None
    assert [c[1] for c in after.checkins] == ["answered", "partial"]  # kept, the open one closed
    async with world.rt.sessions() as s:
        trail = [(e.actor, e.action, e.client_id, e.detail) for e in await audit.audit_log(s)]
        kinds = [e.kind for e in await checkins.events_of(s, alice.id)]
    assert ("cli", "client_moved", alice.id, None) in trail
    assert kinds[-1] == "moved"

    phone = world.sandbox.user("Alice", language_code="en")  # her new account
    await onboard(world, phone, token_of(moved["invite_link"]))  # consent again
    person = Person(alice.id, phone)
    await still_served(world, person)  # her earlier answers are hers on the new account
    bob = world.sandbox.user("Bob", language_code="en")
    await bob.send(f"/start {token_of(moved['invite_link'])}")
    assert (await bob.next_message())["text"] == t("en", "chat.invite_used")
    await bob.send(f"/start {older[1]}")  # still valid: it is another client's
    assert "Rapport" in (await bob.next_message())["text"]


async def test_moving_a_therapist_to_a_new_account(world: World) -> None:
    dana = await world.join_therapist()
    alice = await join_client(world, dana, "Alice Smith")
    with pytest.raises(admin.AdminError, match=f"rapport therapist move {dana.id}"):
        await admin.new_invite(world.rt, therapist_id=dana.id)
    moved = await admin.move_therapist_account(world.rt, dana.id)
    dana.user.skip_to_end()
    await dana.user.send("/clients")
    assert (await dana.next_message())["text"] == t("en", "chat.stranger")
    laptop = world.sandbox.user("Dana", language_code="en")
    await laptop.send(f"/start {token_of(moved['invite_link'])}")
    assert (await laptop.next_message())["text"] == t("en", "therapist.welcome")
    await laptop.send("/clients")
    assert "A.S." in (await laptop.next_message())["text"]
    async with world.rt.sessions() as s:
        trail = [(e.actor, e.action, e.detail) for e in await audit.audit_log(s)]
    assert ("cli", f"therapist_moved:{dana.id}", None) in trail
    waiting, _ = await world.invite_client(dana, "Carol White")
    with pytest.raises(admin.AdminError, match=f"rapport invite --client {waiting}"):
        await admin.move_client_account(world.rt, waiting)  # nobody to move from
    await still_client(world, alice)


async def still_client(world: World, person: Person) -> None:
    await person.user.send("/mydata")
    assert (await person.next_message())["text"].startswith(t("en", "mydata.title")[:10])


async def test_a_therapist_renews_a_link_or_moves_a_client_from_telegram(world: World) -> None:
    dana = await world.join_therapist()
    alice = await join_client(world, dana, "Alice Smith")
    dana.user.skip_to_end()
    await dana.user.send("/invite Carol White")
    first = (await dana.next_message())["text"]
    await dana.user.send("/invite c.w.")
    renewed = (await dana.next_message())["text"]
    assert renewed.startswith(t("en", "staff.invite_renewed", alias="C.W.", days=14, link="")[:30])
    carol = world.sandbox.user("Carol", language_code="en")
    await carol.send(f"/start {token_of(first.split()[-1])}")
    assert (await carol.next_message())["text"] == t("en", "chat.invite_invalid")
    await onboard(world, carol, token_of(renewed.split()[-1]))

    dana.user.skip_to_end()
    await dana.user.send("/invite A.S.")
    assert (await dana.next_message())["text"] == t("en", "staff.invite_joined", alias="A.S.")
    await dana.user.send("/move A.S.")
    moved = (await dana.next_message())["text"]
    assert moved.startswith(t("en", "staff.moved", alias="A.S.", days=14, link="")[:40])
    await alice.user.send("/mydata")
    assert (await alice.next_message())["text"] == t("en", "chat.stranger")
    phone = world.sandbox.user("Alice", language_code="en")
    await onboard(world, phone, token_of(moved.split()[-1]))
    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None and client.telegram_user_id == phone.id
        trail = [(e.actor, e.action) for e in await audit.audit_log(s, alice.id)]
    assert (f"therapist:{dana.id}", "client_moved") in trail
