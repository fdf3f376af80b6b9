"""The therapist's commands end to end, and every role boundary around them."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from flows.i18n import t
from storage import people
from storage.models import AuditEvent, Client, TherapySession
from tests.e2e.harness import Person, World, join_client, token_of


async def command(world: World, person: Person, text: str) -> str:
    person.user.skip_to_end()
    await person.user.send(text)
    message = await person.next_message()
    return str(message["text"])


async def test_clients_lists_only_the_therapists_own_clients_and_is_audited(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    omar = await world.join_therapist("Omar Haddad")
    await join_client(world, dana, "Alice Smith")
    await world.invite_client(omar, "Zoe Quinn")
    listing = await command(world, dana, "/clients")
    assert "A.S." in listing and "Z.Q." not in listing
    assert "Alice" not in listing  # aliases only, never full names
    assert t("en", "status.active") in listing
    async with world.rt.sessions() as s:
        actions = [e.action for e in await s.scalars(select(AuditEvent))]
    assert "list_clients" in actions


async def test_another_therapists_client_looks_like_no_client(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    omar = await world.join_therapist("Omar Haddad")
    await world.invite_client(omar, "Zoe Quinn")
    for text in ("/digest Z.Q.", "/session Z.Q. tomorrow 10:00", "/pause Z.Q.", "/cadence Z.Q."):
        reply = await command(world, dana, text)
        assert reply == t("en", "staff.unknown_alias", alias="Z.Q."), text
    async with world.rt.sessions() as s:
        assert (await s.scalars(select(TherapySession))).all() == []
        zoe = (await s.scalars(select(Client))).one()
        assert zoe.status == "invited"


async def test_session_in_everyday_words_is_echoed_in_the_therapists_zone(world: World) -> None:
    dana = await world.join_therapist("Dana Lee", timezone="Europe/Berlin")
    alice = await join_client(world, dana, "Alice Smith")
    reply = await command(world, dana, "/session A.S. tomorrow 9:30")
    local_now = world.clock.now().astimezone(ZoneInfo("Europe/Berlin"))
    tomorrow = (local_now + timedelta(days=1)).strftime("%a %d %b %Y 09:30")
    assert tomorrow in reply
    async with world.rt.sessions() as s:
        session = (await s.scalars(select(TherapySession))).one()
        assert session.client_id == alice.id
        assert session.starts_at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") == "09:30"
        assert session.digest_at is not None and session.digest_at < session.starts_at
    assert "couldn't read" in await command(world, dana, "/session A.S. someday")


async def test_invite_creates_a_client_whose_link_works(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    reply = await command(world, dana, "/invite Bruno Costa")
    link = next(word for word in reply.split() if word.startswith("https://t.me/"))
    bruno = world.sandbox.user("Bruno", language_code="es")
    await bruno.send(f"/start {token_of(link)}")
    greeting = await bruno.next_message()
    assert "Rapport" in greeting["text"]
    async with world.rt.sessions() as s:
        client = (await s.scalars(select(Client))).one()
        assert client.alias == "B.C." and client.telegram_user_id == bruno.id


async def test_pause_resume_and_cadence(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    alice.user.skip_to_end()
    assert "paused" in await command(world, dana, "/pause A.S. 7")
    told = await alice.next_message()
    assert told["text"] == t("en", "staff.paused_by_therapist", therapist="Dana Lee")
    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None and client.status == "paused" and client.next_checkin_at is None
    assert await command(world, dana, "/resume A.S.") == t("en", "staff.resumed", alias="A.S.")
    reply = await command(world, dana, "/cadence A.S. every 3 days at 19:00")
    assert "every 3 days at 19:00" in reply
    assert "couldn't read" in await command(world, dana, "/cadence A.S. hourly")
    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None and client.cadence == "every 3 days at 19:00"
        assert client.next_checkin_at is not None
        local = client.next_checkin_at.astimezone(ZoneInfo("Europe/Berlin"))
        assert local.strftime("%H:%M") == "19:00"


async def test_a_client_cannot_use_therapist_commands(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await world.invite_client(dana, "Bob Brown")
    for text in ("/clients", "/digest B.B.", "/invite Mallory", "/session B.B. tue 10:00"):
        reply = await command(world, alice, text)
        assert reply == t("en", "command.unknown"), text
    async with world.rt.sessions() as s:
        assert len(await people.list_clients(s, dana.id)) == 2
        assert (await s.scalars(select(TherapySession))).all() == []


async def test_a_stranger_gets_nothing_from_therapist_commands(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    await world.invite_client(dana, "Bob Brown")
    sam = world.sandbox.user("Sam")
    for text in ("/clients", "/digest B.B."):
        await sam.send(text)
        assert (await sam.next_message())["text"] == t("en", "chat.stranger")


async def test_therapist_timezone_and_quiet_hours(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    assert "Asia/Kolkata" in await command(world, dana, "/timezone Asia/Kolkata")
    assert "Mars/Olympus" in await command(world, dana, "/timezone Mars/Olympus")
    assert "22:00-07:00" in await command(world, dana, "/quiet 22:00-07:00")
    async with world.rt.sessions() as s:
        therapists = await people.list_therapists(s)
        assert therapists[0].timezone == "Asia/Kolkata"
        assert therapists[0].quiet_hours == "22:00-07:00"
