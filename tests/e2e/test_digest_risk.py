"""Risk stays in view, end to end: a client writes crisis words, the urgent alert goes out, and
the digest asked for minutes later opens with that alert (its time in the therapist's zone and its
kind), is an alert, and never says "no signs of withdrawal" — with comments off, too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app import admin
from app.reports import digest_now
from tests.e2e.harness import World, alerts_as_aliases, join_client
from tests.e2e.test_acknowledgement import CONTACTED, crisis_alert, tap


async def test_the_digest_after_an_urgent_alert_opens_with_it(world: World) -> None:
    await admin.practice_set(world.rt, digest_comments=False)
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")

    await alice.user.send("I want to kill myself")
    await alice.user.next_message()  # the crisis resources
    seen = [(await dana.user.next_message())["text"] for _ in range(2)]  # joined, then alert
    assert alerts_as_aliases(seen)[-1] == "A.S."
    await world.drain()
    alerted_at = world.clock.now()

    report = await digest_now(world.rt, alice.id)
    text = "\n".join(report.chunks)
    lines = text.splitlines()
    assert lines[1] == "Since check-ins began:"
    assert lines[2].startswith("‼ Urgent alert, ") and "The therapist was alerted." in lines[2]
    assert "No signs of withdrawal" not in text and "kill" not in text
    assert report.as_json["level"] == "alert" and report.as_json["all_well"] is False
    (risk,) = report.as_json["risks"]
    assert risk["kind"] == "crisis" and risk["alerted"] == "therapist"
    assert risk["category"]
    local = alerted_at.astimezone(ZoneInfo("Europe/Berlin"))  # the therapist's zone
    assert f"{local:%H:%M}" in lines[2]


async def test_the_risk_line_says_whether_the_alert_was_acknowledged(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    alert = await crisis_alert(world, alice, dana)

    def risk_line(report: Any) -> str:
        return next(x for x in "\n".join(report.chunks).splitlines() if x.startswith("‼ Urgent"))

    before = await digest_now(world.rt, alice.id)
    assert risk_line(before).endswith(" Not acknowledged.")
    assert before.as_json["risks"][0]["acknowledged"] == {"by": None, "at": None}

    world.clock.advance(timedelta(minutes=20))
    await tap(dana.user, alert, button_text=CONTACTED)
    await world.drain()
    after = await digest_now(world.rt, alice.id)
    line = risk_line(after)
    local = world.clock.now().astimezone(ZoneInfo("Europe/Berlin"))
    assert "Acknowledged by Dana Lee, " in line and f"{local:%H:%M}" in line
    assert "Not acknowledged" not in line
    assert after.as_json["risks"][0]["acknowledged"]["by"] == "Dana Lee"
