"""The client's answer path under attack: a question asked twice, taps on the copy above, forged
taps, crises and failures in the middle of a check-in, a typed answer racing a slow edit, a PHQ-9
stopped at its last item, and the console's outcome measures.

Each test says what the client (or therapist) does and what they should then see; the database
is checked where an answer could be lost or counted twice. The README's promises under test: "No
answered question keeps live buttons", and after crisis resources "the check-in goes on below
them"; a measure stopped part-way is asked again at the next check-in."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app import admin, heartbeat
from app.console import new_link_token
from app.reports import digest_now
from app.runtime import OutboxJob
from devtools.sandbox import SandboxUser
from flows.i18n import t
from flows.instruments import INSTRUMENTS_DIR, load_instrument
from flows.moments import SESSION
from storage.models import OutboxMessage
from tests.e2e.harness import (
    Person,
    World,
    button_data,
    data_for,
    following,
    join_client,
    next_with_buttons,
    open_checkin_now,
    stored,
)
from tests.e2e.test_outcome_measures import BRIEF, PHQ9, weekly_world
from tests.e2e.test_scheduling import (
    BERLIN,
    INTROS,
    D,
    MakeWorld,
    answer_checkin,
    answers_of,
    aware,
    checkins_of,
    run_until,
)
from tests.e2e.test_scheduling import make_world as make_world  # the fixture
from web.app import console_app

THERAPIST = "Dana Lee"
CRISIS_WORDS = "I want to kill myself"


def en(key: str, **params: Any) -> str:
    return t("en", key, therapist=THERAPIST, **params)


def live_checkin_messages(user: SandboxUser) -> list[dict[str, Any]]:
    """The bot messages in the chat that show check-in answer buttons now."""
    return [m for m in user.inbox if any(d.startswith("c:") for d in button_data(m))]


def shown(user: SandboxUser, message: dict[str, Any]) -> dict[str, Any]:
    """The message as the chat shows it now, edits applied."""
    return next(m for m in user.inbox if m["message_id"] == message["message_id"])


async def answer_of(user: SandboxUser, query: dict[str, Any]) -> str:
    return str((await user.answer_to(query)).get("text") or "")


def asks(message: dict[str, Any], number: int) -> bool:
    """Whether the message asks item `number` (after any `✓` acknowledgement of the one before)."""
    return re.search(rf"(^|\n\n){number}/\d+\. ", str(message["text"])) is not None


async def items_of(world: World, client_id: int) -> list[tuple[str, int | None]]:
    return [(a[1], a[2]) for a in (await stored(world, client_id)).answers]


async def checkin_opened(world: World) -> tuple[Person, dict[str, Any]]:
    """Alice, Dana's client, with a check-in open: its first question."""
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    return alice, await open_checkin_now(world, alice)


async def tap_and_settle(
    world: World, user: SandboxUser, message: dict[str, Any], data: str, *, forge: bool = False
) -> str:
    """Tap, wait for the bot's answer to the tap, and for everything it sent to go out."""
    answer = await answer_of(user, await user.tap(message, data, forge=forge))
    await world.drain()
    return answer


async def tap_and_spin(user: SandboxUser, message: dict[str, Any], data: str) -> str:
    """Tap and wait only for the bot's answer to the tap (the button stops spinning)."""
    return await answer_of(user, await user.tap(message, data))


async def crisis_words(world: World, user: SandboxUser) -> dict[str, Any]:
    """The client writes crisis words mid-check-in; the resources message they get."""
    await user.send(CRISIS_WORDS)
    resources = await user.next_message()
    await world.drain()
    return resources


# --- a question asked twice: the copy above keeps its buttons -------------------------------------


async def test_a_nudged_question_answered_by_typing_keeps_no_live_copy(world: World) -> None:
    """The bug this guards against: a typed answer retires the buttons of the newest copy only; the
    nudged question's first copy keeps live buttons."""
    alice, first = await checkin_opened(world)
    await world.advance(days=2, minutes=30, step=timedelta(hours=6))  # the one nudge
    nudged = await next_with_buttons(alice.user)
    assert button_data(nudged) == button_data(first)  # the same question, asked again below

    await alice.user.send("7")
    second = await next_with_buttons(alice.user)
    await world.drain()

    assert await items_of(world, alice.id) == [("heard", 7)]
    assert asks(second, 2)
    # Only the question now asked shows buttons: question 1 was answered, in either copy.
    assert [m["message_id"] for m in live_checkin_messages(alice.user)] == [second["message_id"]]


async def test_a_nudged_question_keeps_no_live_copy_once_a_day_old(world: World) -> None:
    """The nudge comes days after the question, when sent messages are forgotten: the copy
    above must still lose its buttons once the question is answered."""
    alice, first = await checkin_opened(world)
    await world.advance(days=2, minutes=30, step=timedelta(hours=6))  # the one nudge
    nudged = await next_with_buttons(alice.user)
    await world.drain()
    await heartbeat.housekeeping(world.rt)  # hourly: sent messages a day old are forgotten

    await alice.user.send("7")
    second = await next_with_buttons(alice.user)
    await world.drain()

    assert await items_of(world, alice.id) == [("heard", 7)]
    assert not button_data(shown(alice.user, first)) and not button_data(shown(alice.user, nudged))
    assert [m["message_id"] for m in live_checkin_messages(alice.user)] == [second["message_id"]]


async def test_a_question_tapped_a_day_later_is_answered_in_place(world: World) -> None:
    """Tapped once its message was forgotten by housekeeping, the question still shows the
    choice made and keeps no buttons; the next one is asked with the only live buttons."""
    alice, first = await checkin_opened(world)
    await world.drain()
    world.clock.advance(timedelta(days=1, hours=1))
    await heartbeat.housekeeping(world.rt)

    assert await tap_and_settle(world, alice.user, first, data_for(first, "7")) == ""

    assert await items_of(world, alice.id) == [("heard", 7)]
    assert "✓ 7" in shown(alice.user, first)["text"]
    live = live_checkin_messages(alice.user)
    assert len(live) == 1 and asks(live[0], 2), [m["text"][:40] for m in live]


async def test_a_tap_on_the_copy_above_a_re_asked_question(world: World) -> None:
    """The bug this guards against: a tap on the older copy of a re-asked question turns that copy
    into the next question, up above; the newest copy keeps the answered question's live
    buttons."""
    alice, first = await checkin_opened(world)
    await alice.user.send("/help")  # answered, then question 1 is asked again below the help
    again = await next_with_buttons(alice.user)
    assert button_data(again) == button_data(first)

    # Scrolled up, tapped there.
    assert await tap_and_settle(world, alice.user, first, data_for(first, "7")) == ""

    assert await items_of(world, alice.id) == [("heard", 7)]
    live = live_checkin_messages(alice.user)
    # What the client sees at the bottom of the chat must be question 2, not question 1 with
    # buttons that only answer "already answered".
    assert len(live) == 1 and asks(live[0], 2), [m["text"][:40] for m in live]
    assert live[0]["message_id"] == max(m["message_id"] for m in alice.user.inbox)


async def test_a_language_change_mid_checkin_then_a_tap_on_the_old_question(
    world: World,
) -> None:
    """The bug this guards against: after /language the question is asked again in the new
    language; a tap on the English copy above leaves the new copy with live buttons."""
    alice, first = await checkin_opened(world)
    await alice.user.send("/language")
    prompt = await next_with_buttons(alice.user)
    await alice.user.tap(prompt, button_text="Español")
    spanish = await next_with_buttons(alice.user)
    assert button_data(spanish) == button_data(first)

    await tap_and_settle(world, alice.user, first, data_for(first, "7"))  # the English copy

    assert await items_of(world, alice.id) == [("heard", 7)]
    assert (await stored(world, alice.id)).language == "es"
    live = live_checkin_messages(alice.user)
    assert len(live) == 1 and asks(live[0], 2), [m["text"][:40] for m in live]
    assert button_data(shown(alice.user, spanish)) != button_data(first)


# --- crisis resources stay the last word until the check-in goes on below them --------------------


async def test_after_crisis_words_a_tap_on_the_question_above_asks_the_next_one_below(
    world: World,
) -> None:
    """The bug this guards against: a tap on the question above the crisis resources edits the next
    question in above them instead of asking it below."""
    alice, first = await checkin_opened(world)
    resources = await crisis_words(world, alice.user)
    assert resources["text"].startswith(en("crisis.reply", resources="").split("\n")[0][:20])

    await tap_and_settle(world, alice.user, first, data_for(first, "7"))  # still question 1's

    assert await items_of(world, alice.id) == [("heard", 7)]
    assert shown(alice.user, resources)["text"] == resources["text"]
    live = live_checkin_messages(alice.user)
    assert len(live) == 1 and asks(live[0], 2)
    # The README: resources come first, "and the check-in goes on below them".
    assert live[0]["message_id"] > resources["message_id"]


# --- forged taps ----------------------------------------------------------------------------------


async def test_a_forged_tap_on_the_crisis_resources_does_not_overwrite_them(
    world: World,
) -> None:
    """The bug this guards against: a tap's acknowledgement edits whatever message carried the tap:
    forged onto the crisis resources, it overwrites them with the next question."""
    alice, first = await checkin_opened(world)
    resources = await crisis_words(world, alice.user)

    # A modified client sends the current question's own data from the resources message.
    await tap_and_settle(world, alice.user, resources, data_for(first, "7"), forge=True)

    assert shown(alice.user, resources)["text"] == resources["text"]  # still in the chat
    assert not button_data(shown(alice.user, resources))


# --- a typed answer while the next question is still on its way -----------------------------------


async def test_typed_answers_while_telegram_fails_a_send_leave_no_live_answered_question(
    world: World,
) -> None:
    """The bug this guards against: the buttons a typed answer retires are found among messages
    marked sent only; a question still being sent (a 5xx, retried) keeps its buttons after it was
    answered."""
    alice, _ = await checkin_opened(world)
    await world.drain()
    world.sandbox.faults.fail_next("sendMessage", 500)  # question 2's first send fails

    await alice.user.send("7")  # question 1
    await alice.user.send("8")  # question 2, typed ahead while its send is retried
    await until_retry_written(world)
    await world.advance(minutes=1)
    await world.drain()

    assert await items_of(world, alice.id) == [("heard", 7), ("goals", 8)]
    live = live_checkin_messages(alice.user)
    assert len(live) == 1 and asks(live[0], 3), [m["text"][:40] for m in live]


async def until_retry_written(world: World) -> None:
    """Wait until a failed send is written down for a retry (it is then due a moment later)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while loop.time() < deadline:
        async with world.rt.sessions() as s:
            retried = await s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.attempts > 0)
            )
        if retried:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("no send was written down for a retry")


# --- the thanks' /talk button ---------------------------------------------------------------------


async def test_a_double_tap_on_the_thanks_talk_button_asks_once(world: World) -> None:
    """Each tap on the thanks' talk button used to open the talk dialog again: a double tap
    asked twice, and the first prompt kept buttons that no longer worked."""
    alice, question = await checkin_opened(world)
    while any(d.startswith("c:") for d in button_data(question)):
        value = "s" if any(d.endswith(":s") for d in button_data(question)) else "0"
        await alice.user.tap(question, data_for(question, value))
        question = await following(alice.user, question)
    thanks = question
    assert button_data(thanks) == ["d:talk:ask"]

    first = await alice.user.tap(thanks, "d:talk:ask")
    second = await alice.user.tap(thanks, "d:talk:ask")  # a double tap
    await answer_of(alice.user, first)
    await answer_of(alice.user, second)
    await world.drain()

    prompts = [m for m in alice.user.inbox if "d:talk:y" in button_data(m)]
    assert len(prompts) == 1, [m["message_id"] for m in prompts]


# --- the console sets a client's outcome measures -------------------------------------------------


@pytest.fixture
async def console(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app(world.rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as web:
        yield web


async def signed_in(web: httpx.AsyncClient, world: World, therapist_id: int) -> None:
    token = await new_link_token(world.rt, therapist_id)
    page = await web.get(f"/signin/{token}")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre is not None
    answer = await web.post("/signin", data={"token": token, "pre": pre.group(1)})
    assert answer.status_code == 303


async def test_a_therapist_cannot_point_a_client_s_measures_at_server_files(
    world: World, console: httpx.AsyncClient, tmp_path: Path
) -> None:
    dana = await world.join_therapist(THERAPIST)  # a therapist, not an admin
    alice = await join_client(world, dana, "Alice Smith")
    code = next(c["code"] for c in await admin.list_clients(world.rt) if c["id"] == alice.id)
    await signed_in(console, world, dana.id)
    page = await console.get(f"/clients/{code}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None

    async def set_outcomes(value: str) -> httpx.Response:
        return await console.post(
            f"/clients/{code}/settings", data={"csrf": csrf.group(1), "outcomes": value}
        )

    # A file lying anywhere on the server that happens to read as an instrument.
    stray = tmp_path / "stray.yaml"
    shutil.copy(INSTRUMENTS_DIR / "gad-7.yaml", stray)
    taken = await set_outcomes(f"{stray}:14d")
    answers = [
        await set_outcomes(f"{path}:14d")
        for path in ("/etc/passwd", f"{tmp_path}/missing.yaml", str(tmp_path))
    ]

    client = next(c for c in await admin.list_clients(world.rt) if c["id"] == alice.id)
    assert client["outcomes"] is None, client["outcomes"]  # nothing from the file system
    assert taken.status_code == 400
    for answer in answers:
        assert answer.status_code == 400  # refused, not a server error
        assert str(tmp_path) not in answer.text and "/etc" not in answer.text


# --- a measure stopped part-way -------------------------------------------------------------------


async def test_a_phq9_stopped_at_item_9_is_asked_again_next_checkin(
    make_world: MakeWorld,
) -> None:
    world, _, alice = await weekly_world(make_world, "phq-9:14d")
    own = [i.id for i in BRIEF.items if i.asked_at(SESSION) and i.kind != "text"]
    ninth = load_instrument("phq-9").items[8].question("en", SESSION)
    phq_asked = []
    end = aware(D(2026, 1, 14, 12, 0), BERLIN)  # Mondays 5 and 12 January
    while world.clock.now() < end:
        before = len(alice.person.user.inbox)
        await run_until(world, min(end, world.clock.now() + timedelta(hours=12)))
        fresh = [m.get("text") or "" for m in alice.person.user.inbox[before:]]
        if any(x.startswith(INTROS) for x in fresh):
            read = await answer_checkin(world, alice, value=2, items=len(own) + 8)
            phq_asked.append(any(ninth in x for x in read))  # stopped where item 9 is asked
    assert phq_asked[0], "the first check-in asks the PHQ-9 and stops at its item 9"

    rows = await checkins_of(world, alice.id)
    first = await answers_of(world, rows[0].id)
    assert len(first.keys() & PHQ9) == 8 and "phq9_item9" not in first
    assert (await digest_now(world.rt, alice.id)).as_json["outcomes"] == []  # not scored
    # Stopped part-way, so asked again the next week rather than two weeks later.
    assert len(rows) == 2 and (await answers_of(world, rows[1].id)).keys() & PHQ9


# --- a typed answer while the tapped question's edit is still on its way --------------------------


async def test_a_typed_answer_never_counts_for_a_question_not_yet_shown(world: World) -> None:
    """The bug this guards against: a typed number counts for the current item even while the
    message asking it has not reached the client: it is stored as the answer to a question they
    never saw."""
    alice, first = await checkin_opened(world)
    await world.drain()
    hold = world.sandbox.faults.hold("editMessageText", chat_id=alice.user.chat_id)
    # The tap on question 1 is answered at once (the spinner stops) but the edit that asks
    # question 2 in its place is slow to arrive; the client, seeing question 1 unchanged, types
    # the answer they meant for it.
    await tap_and_spin(alice.user, first, data_for(first, "7"))
    await world.sandbox.world.signal.until(lambda: hold.parked == 1, 5.0)
    assert shown(alice.user, first)["text"] == first["text"]  # question 2 is not on screen
    await alice.user.send("3")
    await asyncio.sleep(0.3)  # the typed answer is handled while the edit waits
    hold.lift()
    await world.drain()

    # The 3 was typed at question 1: it must not become the answer to question 2.
    assert ("goals", 3) not in await items_of(world, alice.id)


async def test_the_safety_item_keeps_its_place_when_the_phq9_is_due(make_world: MakeWorld) -> None:
    world, _, alice = await weekly_world(make_world, "phq-9:14d")
    await admin.practice_set(world.rt, safety_item=True)
    own = [i.id for i in BRIEF.items if i.asked_at(SESSION) and i.kind != "text"]
    ninth = load_instrument("phq-9").items[8].question("en", SESSION)
    read: list[str] = []
    end = aware(D(2026, 1, 6, 12, 0), BERLIN)  # Monday 5 January
    while world.clock.now() < end and not read:
        await run_until(world, min(end, world.clock.now() + timedelta(hours=12)))
        if any((m.get("text") or "").startswith(INTROS) for m in alice.person.user.inbox):
            read = await answer_checkin(world, alice, value=2, items=len(own))
    assert read, "the check-in was asked"

    # As in every check-in with the safety item on, it comes right after the check-in's own
    # items, before the client can drift off inside the measure.
    assert ninth in read[-1], read[-1][:60]


async def test_a_typed_answer_hands_both_its_messages_to_the_sender_in_order(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typed answer queues two messages in the client's chat: the old question's buttons go,
    then the next question comes. Both are handed to the sender by the answer's transaction, in
    order (the second behind the first), instead of the second waiting to be found once the
    first is marked sent."""
    alice, _ = await checkin_opened(world)
    await world.drain()
    handed: list[list[tuple[str, ...]]] = []
    hand_over = world.rt.hand_over

    def spy(jobs: list[OutboxJob]) -> None:
        handed.append([tuple(row.kind for row in job.rows()) for job in jobs])
        hand_over(jobs)

    monkeypatch.setattr(world.rt, "hand_over", spy)
    since = len(world.sandbox.calls)
    await alice.user.send("7")
    await next_with_buttons(alice.user)
    await world.drain()
    assert handed == [[("markup", "text")]]
    methods = [c.method for c in world.sandbox.calls[since:] if c.method != "getUpdates"]
    assert methods == ["editMessageReplyMarkup", "sendMessage"], methods


async def test_the_next_question_waits_while_the_old_ones_buttons_fail_to_go(
    world: World,
) -> None:
    """The row behind a failed send goes no sooner than it: Telegram fails the removal of the
    answered question's buttons (a 5xx, retried), and the next question follows the retry
    instead of overtaking it. Each goes once."""
    alice, _ = await checkin_opened(world)
    await world.drain()
    since = len(world.sandbox.calls)
    world.sandbox.faults.fail_next("editMessageReplyMarkup", 502, chat_id=alice.user.chat_id)
    await alice.user.send("7")
    await until_retry_written(world)
    assert not [c for c in world.sandbox.calls[since:] if c.method == "sendMessage"]
    await world.advance(minutes=1)
    await next_with_buttons(alice.user)
    await world.drain()
    calls = [c.method for c in world.sandbox.calls[since:] if c.method != "getUpdates"]
    assert calls == ["editMessageReplyMarkup", "editMessageReplyMarkup", "sendMessage"], calls
    live = live_checkin_messages(alice.user)
    assert len(live) == 1 and asks(live[0], 2), [m["text"][:40] for m in live]
