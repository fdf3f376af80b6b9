"""An urgent alert reaches a person, and the client is told the truth about who was told.

When the client's own therapist cannot be reached (has not joined, blocked the bot), the
practice's safety contact is alerted; with no one reachable, the client is told so and given the
crisis resources, and `rapport health` warns until a safety contact is set.
"""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app import admin
from cli.main import commands
from flows.crisis import match_crisis
from flows.i18n import t
from storage.models import ClientEvent, Therapist
from tests.conftest import TEST_KEY
from tests.e2e.harness import Person, World, join_client, onboard
from tests.e2e.test_acknowledgement import SEEN, tap

CRISIS_WORDS = "I just want to kill myself"
DEFAULT = t("en", "crisis.default_resources")


async def client_of_absent_therapist(world: World) -> Person:
    """A client who joined, of a therapist who never did."""
    nora = await admin.add_therapist(world.rt, "Nora Absent", "Europe/Berlin")
    client = await admin.add_client(world.rt, nora["id"], "Alice Smith")
    user = world.sandbox.user("Alice", language_code="en")
    await onboard(world, user, client["invite_link"].rsplit("=", 1)[1])
    return Person(client["id"], user)


async def crisis_reply(world: World, person: Person, words: str = CRISIS_WORDS) -> str:
    await person.user.send(words)
    reply = await person.user.next_message()
    await world.drain()
    return str(reply["text"])


async def health(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> tuple[int, str]:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RAPPORT_ENCRYPTION_KEY", TEST_KEY)
    result = await asyncio.to_thread(CliRunner().invoke, commands, ["health"])
    return result.exit_code, result.output


async def alerted(world: World) -> list[str]:
    async with world.rt.sessions() as s:
        events = await s.scalars(select(ClientEvent).where(ClientEvent.kind == "crisis"))
        return [str((e.data or {}).get("alerted")) for e in events]


async def test_nobody_reachable_the_client_is_not_told_anyone_was_and_health_warns(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await client_of_absent_therapist(world)
    code, out = await health(monkeypatch, sqlite_url)
    assert code == 0, out  # the bot is alive: a setting to fix, not a process to restart
    assert out.splitlines()[0] == "ok"
    assert any("--safety-contact" in line for line in out.splitlines()[1:]), out

    reply = await crisis_reply(world, alice)

    assert reply == t("en", "crisis.reply_alone", resources=DEFAULT)
    assert "know" not in reply.split(DEFAULT)[1]  # nobody was "let know"
    assert "112" in reply
    assert await alerted(world) == ["nobody"]


async def test_the_safety_contact_is_alerted_when_the_therapist_never_joined(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sam = await world.join_therapist("Sam Reyes", timezone="America/New_York")
    shown = await admin.practice_set(world.rt, safety_contact=str(sam.id))
    assert shown["safety_contact"] == sam.id
    alice = await client_of_absent_therapist(world)
    heard = len(sam.user.inbox)

    reply = await crisis_reply(world, alice)

    assert reply == t("en", "crisis.reply_practice", resources=DEFAULT)
    alerts = [m["text"] for m in sam.user.inbox[heard:]]
    assert len(alerts) == 1
    assert "A.S." in alerts[0] and "Nora Absent" in alerts[0]
    assert t("en", "therapist.unreachable_not_joined") in alerts[0]
    assert await alerted(world) == ["safety_contact"]
    code, out = await health(monkeypatch, sqlite_url)
    assert (code, out.strip()) == (0, "ok")


async def test_the_safety_contact_is_alerted_when_the_therapist_blocked_the_bot(
    world: World,
) -> None:
    dana = await world.join_therapist("Dana Lee")
    sam = await world.join_therapist("Sam Reyes")
    await admin.practice_set(world.rt, safety_contact=str(sam.id))
    alice = await join_client(world, dana, "Alice Smith")
    await dana.user.block()
    await wait_unreachable(world, dana.id)
    heard_dana, heard_sam = len(dana.user.inbox), len(sam.user.inbox)

    reply = await crisis_reply(world, alice)

    assert reply == t("en", "crisis.reply_practice", resources=DEFAULT)
    assert len(dana.user.inbox) == heard_dana
    alerts = [m["text"] for m in sam.user.inbox[heard_sam:]]
    assert len(alerts) == 1 and t("en", "therapist.unreachable_blocked") in alerts[0]

    await dana.user.unblock()  # back: the therapist is told again, not the safety contact
    await wait_unreachable(world, dana.id, False)
    reply = await crisis_reply(world, alice)
    assert reply == t("en", "crisis.reply", resources=DEFAULT, therapist="Dana Lee")
    assert len(sam.user.inbox) == heard_sam + 1
    assert await alerted(world) == ["safety_contact", "therapist"]


async def wait_unreachable(world: World, therapist_id: int, blocked: bool = True) -> None:
    async def stored() -> bool:
        async with world.rt.sessions() as s:
            therapist = await s.get(Therapist, therapist_id)
            assert therapist is not None
            return (therapist.unreachable_at is not None) is blocked

    for _ in range(500):
        if await stored():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the membership change was not stored")


async def test_the_alert_says_what_kind_when_and_where_to_turn_but_not_the_words(
    world: World,
) -> None:
    dana = await world.join_therapist("Dana Lee", timezone="America/New_York")
    await admin.practice_set(
        world.rt, crisis_resources=("en", "Call Samaritans on 116 123"), digest_comments=False
    )
    alice = await join_client(world, dana, "Alice Smith")
    heard = len(dana.user.inbox)
    at = world.clock.now()

    reply = await crisis_reply(world, alice)

    assert "116 123" in reply
    alert = dana.user.inbox[heard]["text"]
    found = match_crisis(CRISIS_WORDS)
    assert found is not None
    assert t("en", f"therapist.crisis_kind.{found.category}") in alert
    assert at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") in alert
    assert at.strftime("%H:%M") not in alert  # not UTC: the therapist's own time
    assert "A.S." in alert and "Alice" not in alert
    assert "Call Samaritans on 116 123" in alert
    assert CRISIS_WORDS not in alert and "kill" not in alert

    await admin.practice_set(world.rt, digest_comments=True)  # the practice shows comments
    await tap(dana.user, dana.user.inbox[heard], button_text=SEEN)  # else gathered into it
    await crisis_reply(world, alice)
    assert CRISIS_WORDS in dana.user.inbox[-1]["text"]


@pytest.mark.parametrize("lang", ["en", "es", "ru"])
def test_the_built_in_crisis_resources_name_a_number(lang: str) -> None:
    assert "112" in t(lang, "crisis.default_resources")
