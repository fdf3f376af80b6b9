"""A digest with an alert-level flag carries the acknowledgement buttons, end to end: the flag is
an alert like any other (stored, listed in `/alerts` and for the practice), acknowledged once by
the therapist it was shown to, audited, the digest's message edited; the next digest says who
acknowledged it and raises nothing new while the flag goes on, and a flag that went away and came
back is raised again. Someone else's tap, a client's tap and forged data change nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app import admin, alerts
from app.clock import ManualClock
from app.config import load_settings
from app.runtime import Runtime
from flows.i18n import t
from storage.crypto import Cipher
from storage.models import Alert, AlertMessage, Client
from tests.conftest import TEST_KEY
from tests.e2e.harness import (
    Person,
    World,
    button_data,
    button_labels,
    data_for,
    join_client,
    next_with_buttons,
)
from tests.e2e.harness import open_checkin_now as open_checkin
from tests.e2e.test_acknowledgement import CONTACTED, SEEN, audited, current, stored_alerts, tap
from tests.e2e.test_scheduling import MONDAY, MakeWorld, run_until
from tests.e2e.test_scheduling import make_world as make_world  # the fixture

NOT_CONCERN = t("en", "alert.button_not_concern")
ALL_THREE = [SEEN, CONTACTED, NOT_CONCERN]
TITLE = "Digest for A.S."


async def check_in(world: World, client: Person, alliance: int) -> None:
    """A whole check-in: `alliance` on each alliance item, wellbeing 6, "no" to what asks yes
    or no, a comment (the questions asked depend on whether a session was held since)."""
    question = await open_checkin(world, client)
    scales = 0
    while True:
        values = {data.rsplit(":", 1)[-1] for data in button_data(question)}
        if "10" in values:  # a 0-10 scale: the four alliance items, then wellbeing
            value = str(alliance) if scales < 4 else "6"
            scales += 1
        elif "0" in values:
            value = "0"
        else:
            break  # the comment
        world.clock.advance(timedelta(minutes=2))
        await client.user.tap(question, data_for(question, value))
        question = await next_with_buttons(client.user)
    world.clock.advance(timedelta(minutes=3))
    await client.user.send("ok")
    await client.user.next_message()  # thanks
    await world.drain()
    world.clock.advance(timedelta(days=2))


async def flagged(make_world: MakeWorld) -> tuple[World, Person, Person]:
    """Dana's client Alice, whose alliance falls far below her own baseline: an alert-level
    signal."""
    world = await make_world(MONDAY, cadence="off")
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    for alliance in (9, 9, 9, 4, 3):
        await check_in(world, alice, alliance)
    return world, dana, alice


async def ask_digest(world: World, therapist: Person) -> dict[str, Any]:
    """`/digest A.S.`: the digest's text message (after its chart)."""
    therapist.user.skip_to_end()
    await therapist.user.send("/digest A.S.")
    text = await therapist.user.next_message(
        predicate=lambda m: (m.get("text") or "").startswith(TITLE)
    )
    await world.drain()
    return text


async def test_a_flag_is_acknowledged_once_and_not_raised_again(make_world: MakeWorld) -> None:
    world, dana, alice = await flagged(make_world)

    digest = await ask_digest(world, dana)
    assert "‼ ALERT" in digest["text"]
    assert button_labels(digest) == ALL_THREE
    [flag] = await stored_alerts(world)
    assert (flag.kind, flag.cause, flag.urgent, flag.client_id) == (
        "flag",
        "falling_alliance",
        False,
        alice.id,
    )
    assert flag.ack_at is None and flag.escalate_at is None and flag.ended_at is None

    # Listed as open, for the therapist (with the buttons) and for the practice.
    dana.user.skip_to_end()
    heard = len(dana.user.inbox)
    await dana.user.send("/alerts")
    await dana.next_message()
    await world.drain()
    title, line = dana.user.inbox[heard:]
    assert title["text"] == t("en", "alert.open_title", count=1)
    assert line["text"].startswith("A.S. was flagged in a digest: a falling alliance rating, on ")
    assert button_labels(line) == ALL_THREE
    async with world.rt.sessions() as s:
        views = await alerts.open_for_practice(s, world.rt)
    assert [(v.alias, v.kind, v.cause, v.urgent) for v in views] == [
        ("A.S.", "flag", "falling_alliance", False)
    ]

    # A second digest while the flag is open: the same alert's buttons, no new alert.
    world.clock.advance(timedelta(hours=1))
    again = await ask_digest(world, dana)
    assert button_labels(again) == ALL_THREE
    assert [a.id for a in await stored_alerts(world)] == [flag.id]

    world.clock.advance(timedelta(minutes=30))
    assert await tap(dana.user, digest, button_text=NOT_CONCERN) == t("en", "alert.ack_done")
    await world.drain()
    [stored] = await stored_alerts(world)
    assert (stored.ack_choice, stored.ack_by, stored.ack_at) == (
        "not_concern",
        dana.id,
        world.clock.now(),
    )
    assert await audited(world) == [(f"therapist:{dana.id}", "alert_not_concern", alice.id)]
    shown = current(dana.user, digest)
    assert shown["text"].startswith(digest["text"])  # the digest, as it was, and who acknowledged
    assert "Acknowledged by Dana Lee" in shown["text"] and NOT_CONCERN in shown["text"]
    # Every message that showed it loses its buttons: both digests and the list line.
    assert not any(button_labels(m) for m in dana.user.inbox)

    # The next digest: the flag goes on, acknowledged; nothing raised, no buttons.
    world.clock.advance(timedelta(days=1))
    later = await ask_digest(world, dana)
    assert "‼ ALERT" in later["text"] and not button_labels(later)
    assert "✅ Flag acknowledged by Dana Lee, " in later["text"]
    assert "Not a concern" in later["text"]
    assert [a.id for a in await stored_alerts(world)] == [flag.id]
    dana.user.skip_to_end()
    await dana.user.send("/alerts")
    assert (await dana.next_message())["text"] == t("en", "alert.none_open")


async def test_someone_elses_or_a_forged_tap_changes_nothing(make_world: MakeWorld) -> None:
    world, dana, alice = await flagged(make_world)
    sam = await world.join_therapist("Sam Reyes")
    digest = await ask_digest(world, dana)
    [flag] = await stored_alerts(world)
    refused = t("en", "alert.ack_refused")

    own = sam.user.inbox[-1]  # any message in Sam's own chat carries the forged tap
    for choice in ("s", "c", "n"):
        assert await tap(sam.user, own, data=f"al:{flag.id}:{choice}", forge=True) == refused
    answer = await tap(alice.user, alice.user.inbox[-1], data=f"al:{flag.id}:n", forge=True)
    assert answer == t("en", "chat.button_inactive")
    for data in ("al:999999:n", f"al:{flag.id}:x", f"al:{flag.id}", "al:1e3:n"):
        answer = await tap(dana.user, digest, data=data, forge=True)
        assert answer in (refused, t("en", "chat.button_inactive")), data

    await world.drain()
    [after] = await stored_alerts(world)
    assert (after.ack_choice, after.ack_by, after.ack_at) == (None, None, None)
    assert await audited(world) == []
    assert button_labels(current(dana.user, digest)) == ALL_THREE


async def test_a_flag_that_went_away_and_came_back_is_raised_again(make_world: MakeWorld) -> None:
    world, dana, alice = await flagged(make_world)
    digest = await ask_digest(world, dana)
    await tap(dana.user, digest, button_text=CONTACTED)
    await world.drain()

    # She is back where she was; the digest before the session says so, without a flag.
    for alliance in (9, 9):
        await check_in(world, alice, alliance)
    session_at = world.clock.now() + timedelta(days=1)
    await admin.add_session(world.rt, alice.id, session_at)
    heard = len(dana.user.inbox)
    await run_until(world, session_at - timedelta(minutes=30))
    texts = [m for m in dana.user.inbox[heard:] if (m.get("text") or "").startswith(TITLE)]
    assert len(texts) == 1 and "‼ ALERT" not in texts[0]["text"]
    assert not button_labels(texts[0])
    [ended] = await stored_alerts(world)
    assert ended.ended_at is not None

    # It falls again after the session: a new episode, a new flag with its buttons.
    world.clock.advance(timedelta(days=1))
    for alliance in (3, 2):
        await check_in(world, alice, alliance)
    back = await ask_digest(world, dana)
    assert "‼ ALERT" in back["text"] and button_labels(back) == ALL_THREE
    first, second = await stored_alerts(world)
    assert (first.id, first.ack_choice) == (ended.id, "contacted")
    assert second.kind == "flag" and second.ack_at is None and second.ended_at is None
    async with world.rt.sessions() as s:
        shown = (await s.scalars(select(AlertMessage.alert_id))).all()
    assert sorted(shown) == [first.id, second.id]


def test_a_full_digest_keeps_room_for_the_acknowledgement() -> None:
    """The acknowledgement goes after the digest's text, in one Telegram message: a nearly full
    digest gives up its last lines (whole ones), never the acknowledgement."""
    line = "✅ Acknowledged by Dana Lee on Mon 12 Jan, 10:00: Not a concern"
    short = "Digest for A.S.\nall well"
    assert alerts.with_line(short, line) == f"{short}\n\n{line}"
    full = "\n".join(f"line {n} " + "x" * 60 for n in range(60))[: alerts.TEXT_LIMIT]
    edited = alerts.with_line(full, line)
    assert len(edited) <= alerts.TEXT_LIMIT and edited.endswith(f"\n…\n\n{line}")
    kept = edited.split("\n…\n\n")[0]
    assert full.startswith(kept) and full[len(kept)] == "\n"  # whole lines
    one_long_line = "y" * 5000
    assert len(alerts.with_line(one_long_line, line)) <= alerts.TEXT_LIMIT


def test_a_flags_cause_names_whole_codes_within_the_column() -> None:
    assert (
        alerts.flag_cause(["silence", "falling_alliance", "silence"]) == "falling_alliance,silence"
    )
    many = [f"code_{n:03}" for n in range(40)]
    cause = alerts.flag_cause(many)
    assert len(cause) <= alerts.CAUSE_LIMIT and all(c in many for c in cause.split(","))


async def test_two_digests_at_once_raise_one_flag(db_url: str, clock: ManualClock) -> None:
    """Two replicas, or a digest asked for while the heartbeat sends one: one flag, not two."""
    settings = load_settings(database_url=db_url, encryption_key=TEST_KEY, telegram_token=None)
    rt = Runtime.create(settings, clock=clock, cipher=Cipher(TEST_KEY))
    try:
        therapist = await admin.add_therapist(rt, "Dana Lee", "Europe/Berlin")
        client_id = (await admin.add_client(rt, therapist["id"], "Alice Smith"))["id"]

        async def digest() -> int | None:
            async with rt.sessions() as s, s.begin():
                client = await s.get(Client, client_id)
                assert client is not None
                flag = await alerts.flag_for_digest(
                    s, rt, client, ["falling_alliance"], clock.now()
                )
                await asyncio.sleep(0.05)  # the other digest runs meanwhile
                return None if flag is None else flag.id

        ids = await asyncio.gather(*(digest() for _ in range(4)))
        async with rt.sessions() as s:
            raised = (await s.scalars(select(Alert.id))).all()
        assert len(raised) == 1 and set(ids) == set(raised)
    finally:
        await rt.close()
