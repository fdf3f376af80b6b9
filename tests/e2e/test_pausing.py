"""Pausing and resuming, whoever does it: the client (/pause, /resume), their therapist
(/pause <alias>, /resume <alias>) or the end of a pause with a date.

A pause means "stop asking me": a check-in left open is closed at once (partial if something was
answered, else missed) so the digest counts it, its buttons stop working, and no nudge follows.
The same happens whichever side pauses; only who is told differs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from flows.i18n import t
from flows.state import new_state
from storage.models import ClientEvent
from tests.e2e.harness import (
    Person,
    World,
    data_for,
    join_client,
    next_with_buttons,
    open_checkin_now,
    stored,
)


async def command(person: Person, text: str) -> str:
    person.user.skip_to_end()
    await person.user.send(text)
    return str((await person.next_message())["text"])


async def pause(world: World, by: str, dana: Person, alice: Person, days: int | None) -> None:
    """`by` pauses Alice's check-ins (for `days`, or until resumed) and gets the answer."""
    if by == "client":
        answer = await command(alice, "/pause" + (f" {days}" if days else ""))
        assert answer.startswith(t("en", "command.paused")[:20])
    else:
        answer = await command(dana, "/pause A.S." + (f" {days}" if days else ""))
        assert answer.startswith("Check-ins for A.S. are paused until")
        told = await alice.next_message()
        assert told["text"] == t("en", "staff.paused_by_therapist", therapist="Dana Lee")


async def resume(world: World, by: str, dana: Person, alice: Person) -> None:
    if by == "client":
        assert await command(alice, "/resume") == t("en", "command.resumed")
    else:
        assert await command(dana, "/resume A.S.") == t("en", "staff.resumed", alias="A.S.")


async def life_events(world: World, client_id: int) -> list[tuple[str, dict[str, str] | None]]:
    async with world.rt.sessions() as s:
        rows = await s.execute(
            select(ClientEvent.kind, ClientEvent.data)
            .where(ClientEvent.client_id == client_id, ClientEvent.kind.in_(("paused", "resumed")))
            .order_by(ClientEvent.id)
        )
        return [(kind, data) for kind, data in rows]


@pytest.mark.parametrize("by", ["client", "therapist"])
@pytest.mark.parametrize("answered", [True, False], ids=["answered", "unanswered"])
async def test_a_pause_closes_the_open_check_in_and_no_nudge_follows(
    world: World, by: str, answered: bool
) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin_now(world, alice)
    if answered:
        world.clock.advance(timedelta(minutes=1))
        await alice.user.tap(question, data_for(question, "7"))
        question = await next_with_buttons(alice.user)
    world.clock.advance(timedelta(minutes=5))

    await pause(world, by, dana, alice, days=None)
    now = world.clock.now()
    paused = await stored(world, alice.id)
    assert (paused.status, paused.paused_until) == ("paused", None)
    ((_, status, _, closed_at),) = paused.checkins
    assert (status, closed_at) == ("partial" if answered else "missed", now)
    assert paused.conversation is not None and paused.conversation["checkin"] is None
    assert paused.conversation["machine"] == "idle"

    alice.user.skip_to_end()
    query = await alice.user.tap(question, data_for(question, "5"), forge=True)
    assert (await alice.user.answer_to(query))["text"] == t("en", "checkin.closed")
    assert await stored(world, alice.id) == paused, "a tap after the pause records nothing"

    seen = len(alice.user.inbox)
    await world.advance(days=4, step=timedelta(hours=6))  # past the nudge and the expiry
    assert alice.user.inbox[seen:] == [], "no nudge, nothing at all while paused"
    assert await stored(world, alice.id) == paused

    await resume(world, by, dana, alice)
    resumed = await stored(world, alice.id)
    assert (resumed.status, resumed.checkins) == ("active", paused.checkins)
    extra = {"by": "therapist"} if by == "therapist" else None
    assert await life_events(world, alice.id) == [("paused", extra), ("resumed", extra)]


async def test_the_therapists_pause_with_a_date_runs_out_by_itself(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await pause(world, "therapist", dana, alice, days=3)
    paused = await stored(world, alice.id)
    assert paused.status == "paused" and paused.paused_until is not None
    await world.advance(days=3, hours=1, step=timedelta(hours=12))
    resumed = await stored(world, alice.id)
    assert (resumed.status, resumed.paused_until) == ("active", None)
    assert resumed.conversation == new_state("idle", "idle")
    assert await life_events(world, alice.id) == [
        ("paused", {"by": "therapist"}),
        ("resumed", {"by": "schedule"}),
    ]
