"""A client asks to talk, and says why they stopped, end to end: the real bot, the sandbox, a
SQLite file and a clock that stops at every due instant. The request is pinned at the top of the
next digest (text and JSON), the reason reaches the therapist, /mydata shows both, and erasure
leaves none of it behind."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from app import admin
from app.digests import digest_for, digest_json
from app.erasure import erase_client
from app.export import export, to_csv
from flows.i18n import t
from storage import people
from storage.models import Client, ClientNote
from tests.e2e.harness import World, next_with_buttons
from tests.e2e.test_scheduling import (
    BERLIN,
    MONDAY,
    D,
    MakeWorld,
    aware,
    join,
    run_until,
)
from tests.e2e.test_scheduling import make_world as make_world  # the fixture

TITLE = t("en", "insights.digest.title", alias="A.S.", finding="")
TALK = t("en", "insights.digest.talk", when="").split(":", 1)[1].strip()


async def talk_json(world: World, client_id: int) -> list[dict[str, Any]]:
    """The talk requests of the client's digest as JSON, asked for now."""
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None
        practice = await people.get_practice(s, world.clock.now())
        digest, _ = await digest_for(s, world.rt, client, practice, world.clock.now(), None)
    return list(digest_json(digest)["talk_requests"])


async def test_talk_is_pinned_atop_the_next_digest_and_stop_reason_reaches_the_therapist(
    make_world: MakeWorld,
) -> None:
    world = await make_world(MONDAY, cadence="off")
    dana = await world.join_therapist("Dana Lee")
    alice = await join(world, dana, "Alice Smith", BERLIN)
    user = alice.person.user
    await user.send("/talk the pace of our sessions")
    await user.next_message(predicate=lambda m: m["text"].startswith("Done"))
    await world.drain()
    # No session booked, so no digest is coming: the therapist is told now, without the words.
    now_told = t("en", "therapist.client_talk_no_session", client="A.S.")
    assert dana.user.inbox[-1]["text"] == now_told
    async with world.rt.sessions() as s:
        (note,) = (await s.scalars(select(ClientNote))).all()
        assert note.kind == "talk" and note.text_enc is not None
        assert b"pace" not in note.text_enc  # encrypted at rest
    assert [x["words"] for x in await talk_json(world, alice.id)] == ["the pace of our sessions"]
    session = aware(D(2026, 1, 8, 15, 0), BERLIN)
    await admin.add_session(world.rt, alice.id, session)
    before = len(dana.user.inbox)
    await run_until(world, session)
    texts = [m.get("text") or m.get("caption") or "" for m in dana.user.inbox[before:]]
    digest_text = next(x for x in texts if x.startswith(TITLE) and TALK in x)
    lines = digest_text.split("\n")
    assert lines[0].startswith(TITLE) and lines[1].startswith("‼") and TALK in lines[1]
    assert "the pace of our sessions" in lines[2]
    # Carried by a pre-session digest: not pinned again.
    assert await talk_json(world, alice.id) == []

    # With a session booked the request waits for its digest: no note now.
    await admin.add_session(world.rt, alice.id, aware(D(2026, 1, 15, 15, 0), BERLIN))
    heard = len(dana.user.inbox)
    await user.send("/talk")
    await user.tap(await next_with_buttons(user), "d:talk:y")
    await user.next_message(predicate=lambda m: m["text"].startswith("Done"))
    await world.drain()
    assert len(dana.user.inbox) == heard
    assert [x["words"] for x in await talk_json(world, alice.id)] == [None]

    # /stop: the one optional question why, and the therapist sees the answer.
    world.clock.advance(timedelta(hours=2))
    await user.send("/stop")
    confirm = await next_with_buttons(user)
    await user.tap(confirm, "d:stop:y")
    why = await next_with_buttons(user)
    assert why["text"] == t("en", "stop_reason.prompt", therapist="Dana Lee")
    await user.send("It felt rushed lately")
    await user.next_message(predicate=lambda m: m["text"].startswith("Thank you"))
    await world.drain()
    told = [m["text"] for m in dana.user.inbox][-2:]
    assert told[0] == t("en", "therapist.client_stopped", client="A.S.")
    assert told[1].startswith(
        t("en", "therapist.client_stop_reason", client="A.S.", reason="").split(":")[0]
    )
    assert "It felt rushed lately" in told[1]

    # /mydata and the export show both; erasure leaves none of it.
    await user.send("/mydata")
    mydata = await user.next_message(predicate=lambda m: "Everything" in m["text"])
    assert (
        "the pace of our sessions" in mydata["text"] and "It felt rushed lately" in mydata["text"]
    )
    (record,) = await export(world.rt, alice.id, actor="test")
    assert [(n["kind"], n["text"]) for n in record["notes"]] == [
        ("talk", "the pace of our sessions"),
        ("talk", None),
        ("stop_reason", "It felt rushed lately"),
    ]
    rows = [line for line in to_csv([record]).splitlines() if ",note:" in line]
    assert len(rows) == 3 and "note:stop_reason," in rows[2] and "rushed" in rows[2]
    async with world.rt.sessions() as s, s.begin():
        assert await erase_client(s, world.rt, alice.id, world.clock.now(), actor="test")
    async with world.rt.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ClientNote)) == 0
