"""The digest before a session, end to end: exactly one photo (the chart, a short caption that is
whole lines) and one text, led by the same headline, and the client's wellbeing in the headline,
the text, the JSON and the chart. The real bot, the sandbox, a SQLite file and a stepped clock."""

from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image

from app import admin
from app.reports import digest_now
from flows.i18n import t
from tests.e2e.harness import (
    Person,
    World,
    after_tap,
    alerts_as_aliases,
    data_for,
    join_client,
    next_with_buttons,
)
from tests.e2e.harness import open_checkin_now as open_checkin
from tests.e2e.test_scheduling import BERLIN, MONDAY, D, MakeWorld, aware, run_until
from tests.e2e.test_scheduling import make_world as make_world  # the fixture

PNG = b"\x89PNG\r\n\x1a\n"


async def check_in(world: World, client: Person, wellbeing: int, comment: str) -> None:
    """A whole check-in: 9 on each alliance item, `wellbeing`, no tension, a comment."""
    question = await open_checkin(world, client)
    for value in ("9", "9", "9", "9", str(wellbeing), "0"):
        world.clock.advance(timedelta(minutes=2))
        await client.user.tap(question, data_for(question, value))
        question = await next_with_buttons(client.user)
    world.clock.advance(timedelta(minutes=3))
    await client.user.send(comment)
    await client.user.next_message()  # thanks
    await world.drain()
    world.clock.advance(timedelta(days=1))


async def test_a_digest_is_one_photo_and_one_text_and_carries_wellbeing(
    make_world: MakeWorld,
) -> None:
    world = await make_world(MONDAY, cadence="off")
    dana = await world.join_therapist("Dana Lee", BERLIN)
    alice = await join_client(world, dana, "Alice Smith")
    for wellbeing, comment in ((7, "a good week"), (7, "helpful"), (2, "a very hard week")):
        await check_in(world, alice, wellbeing, comment)
    session = await admin.add_session(world.rt, alice.id, aware(D(2026, 1, 9, 15, 0), BERLIN))
    before = len(dana.user.inbox)
    await run_until(world, aware(D(2026, 1, 9, 14, 0), BERLIN))

    received = dana.user.inbox[before:]
    assert len(received) == 2, [m.get("text") or m.get("caption") for m in received]
    photo, text_message = received
    assert "photo" in photo and "text" in text_message and "photo" not in text_message
    text = text_message["text"]
    head = text.splitlines()[0]
    assert head.startswith("Digest for A.S.: No signs of withdrawal") and "wellbeing 2/10" in head
    # the caption: the headline and when the session is, whole lines, never cut with "…"
    assert photo["caption"].splitlines() == [head, "Session: Fri 9 Jan, 15:00"]
    assert "…" not in photo["caption"] and len(photo["caption"]) <= 1024
    assert "Wellbeing, 7 Jan: 2/10 (usually 7)" in text
    assert "Latest answers, 7 Jan: alliance 36/40 (heard 9, goals 9, approach 9, overall 9)" in text
    assert "“a very hard week”" in text and len(text) <= 4096
    assert session["digest_at"]

    chart = world.sandbox.world.files.get(photo["photo"][-1]["file_id"])
    assert chart is not None and chart.data.startswith(PNG)
    assert Image.open(io.BytesIO(chart.data)).size == (900, 1200)

    report = await digest_now(world.rt, alice.id)
    assert len(report.chunks) == 1
    wellbeing = report.as_json["wellbeing"]
    assert wellbeing["latest"] == 2 and wellbeing["usual"] == 7.0
    assert [point["value"] for point in wellbeing["series"]] == [7, 7, 2]
    assert report.as_json["headline"] in report.chunks[0].splitlines()[0]


async def test_clients_and_mydata_speak_plain_words_not_codes(make_world: MakeWorld) -> None:
    world = await make_world(MONDAY, cadence="off")
    dana = await world.join_therapist("Dana Lee", BERLIN)
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin(world, alice)
    for value in ("9", "9", "9", "9", "6", "1", "0"):  # tension: yes; talked through: no
        world.clock.advance(timedelta(minutes=2))
        await alice.user.tap(question, data_for(question, value))
        question = await next_with_buttons(alice.user)
    await alice.user.send("we clashed about homework")
    await alice.user.next_message()
    await world.drain()

    dana.user.skip_to_end()
    await dana.user.send("/clients")
    listing = str((await dana.next_message())["text"])
    assert "reported tension" in listing and "(answered)" in listing
    assert "rupture_reported" not in listing and "_" not in listing

    alice.user.skip_to_end()
    await alice.user.send("/mydata")
    mine = str((await alice.next_message())["text"])
    assert "tension or misunderstanding: yes" in mine and "talked it through: no" in mine
    assert "how you have been: 6/10" in mine and "your comment: “we clashed about homework”" in mine
    assert "tension: 1" not in mine and "talked: 0" not in mine


async def test_a_practice_that_asks_the_phq9_sees_it_scored_in_the_digest(
    make_world: MakeWorld,
) -> None:
    world = await make_world(MONDAY, cadence="off")
    await admin.practice_set(world.rt, instrument="phq-9")
    dana = await world.join_therapist("Dana Lee", BERLIN)
    alice = await join_client(world, dana, "Alice Smith")
    for answers in (["1"] * 8 + ["0"], ["2"] * 8 + ["0"]):  # 8, then 16; item 9 "not at all"
        question = await open_checkin(world, alice)
        for position, value in enumerate(answers, start=1):
            world.clock.advance(timedelta(minutes=1))
            await alice.user.tap(question, data_for(question, value))
            if position < len(answers):  # the next question, asked in place of this one
                question = await next_with_buttons(alice.user, after=question)
        # The thanks, in place of the last question, its button offering /talk.
        thanks = await after_tap(alice.user, question)
        assert thanks == t("en", "checkin.thanks", therapist="Dana Lee")
        await world.drain()
        alice.user.skip_to_end()
        world.clock.advance(timedelta(days=3))

    report = await digest_now(world.rt, alice.id)
    (text,) = report.chunks
    assert "PHQ-9 (depression)" in text and "16/27, moderately severe; 8 on " in text
    assert "reliably worse (by 6 or more)" in text
    assert "PHQ-9 reliably worse (8 → 16)" in text.splitlines()[0]
    (phq,) = report.as_json["outcomes"]
    assert (phq["total"], phq["band"], phq["change"]) == (16, "moderately severe", "worse")

    alice.user.skip_to_end()
    await alice.user.send("/mydata")
    mine = str((await alice.next_message())["text"])
    assert "PHQ-9 (depression), question 1: Several days" in mine
    assert "PHQ-9 (depression), question 2: More than half the days" in mine
    assert "safety question: Not at all" in mine and "phq9" not in mine


async def test_phq9_item_9_answered_yes_alerts_at_once_and_opens_the_digest(
    make_world: MakeWorld,
) -> None:
    world = await make_world(MONDAY, cadence="off")
    await admin.practice_set(world.rt, instrument="phq-9", safety_item=True)
    dana = await world.join_therapist("Dana Lee", BERLIN)
    alice = await join_client(world, dana, "Alice Smith")
    before = len(dana.user.inbox)
    question = await open_checkin(world, alice)
    asked = 1
    for value in ["0"] * 8:
        await alice.user.tap(question, data_for(question, value))
        question = await next_with_buttons(alice.user)
        asked += 1
    assert asked == 9  # item 9 once, though the safety item is on too
    await alice.user.tap(question, data_for(question, "1"))  # "several days"
    await world.drain()
    alerts = alerts_as_aliases(m.get("text") or "" for m in dana.user.inbox[before:])
    assert "A.S." in alerts

    report = await digest_now(world.rt, alice.id)
    lines = report.chunks[0].splitlines()
    assert lines[0].startswith("Digest for A.S.: Safety question answered yes ")
    assert lines[2].startswith("‼ Urgent alert, ") and "safety question" in lines[2]
    assert report.as_json["risks"][0]["kind"] == "safety_item"
