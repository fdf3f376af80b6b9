"""A client's conversations end to end: joining, check-ins, commands, refused buttons, things the
bot cannot read, crisis language, and a restart in the middle of a check-in.

Every test drives the real bot through the sandbox and then looks at what the database holds:
answers with their times, the check-in's status, and the client's settings.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from app import admin
from app.effects import instrument
from devtools.sandbox import SandboxUser
from flows.i18n import t
from flows.onboarding import CONSENT_VERSION
from flows.plan import Plan, plan_for, plan_items
from flows.timezones import display_zone, local_time
from storage.models import Alert, Client, ClientEvent, OutboxMessage
from tests.e2e.harness import (
    Person,
    World,
    after_tap,
    alerts_as_aliases,
    button_data,
    data_for,
    join_client,
    next_with_buttons,
    open_checkin_now,
    stored,
    tap_label,
)

THERAPIST = "Dana Lee"  # how the practice names the therapist to the client
CRISIS = t("en", "crisis.default_resources")  # the practice set no resources of its own
SCALE_HINT = t("en", "checkin.tap_hint", low=0, high=10)
YES_NO = ("tension", "talked")


def en(key: str, **params: Any) -> str:
    """An English catalog text as the client sees it."""
    return t("en", key, therapist=THERAPIST, **params)


def plan(safety_item: bool = False) -> Plan:
    brief = instrument("rapport-brief")
    return plan_for(brief, plan_items(brief, safety_item))


def prompt(
    index: int,
    lang: str = "en",
    safety_item: bool = False,
    answers: dict[str, int | None] | None = None,
) -> str:
    """Question `index` as asked, anchors included (`answers` so far: a "yes" to the tension
    probe counts its follow-up in)."""
    return plan(safety_item).prompt(index, lang, answers).replace("{therapist}", THERAPIST)


def acked(question: dict[str, Any], choice: str) -> str:
    """How a tapped question reads once the bot has recorded the answer."""
    first_line = str(question["text"]).split("\n")[0]
    return f"{first_line}\n\n{en('common.chosen', choice=choice)}"


def as_seen_now(user: SandboxUser, message: dict[str, Any]) -> dict[str, Any]:
    """The message as the client's chat shows it now, edits applied."""
    return next(m for m in user.inbox if m["message_id"] == message["message_id"])


async def said(user: SandboxUser) -> str:
    return str((await user.next_message())["text"])


async def refused(user: SandboxUser, message: dict[str, Any], data: str) -> str:
    """Send a tap whether or not the message still shows that button (as an old or modified
    client could) and return the bot's answer to it."""
    query = await user.tap(message, data, forge=True)
    return str((await user.answer_to(query))["text"])


async def tap(world: World, user: SandboxUser, question: dict[str, Any], value: str) -> None:
    """Answer a question a minute later than the last thing that happened, and read what the
    tap brought before going on (a number typed while the next question is still on its way
    was meant for the one tapped, and does not count for the next)."""
    world.clock.advance(timedelta(minutes=1))
    await user.answer_to(await user.tap(question, data_for(question, value)))
    await world.drain()


async def reasked(user: SandboxUser, question: dict[str, Any]) -> dict[str, Any]:
    """The pending question, asked again as the newest message with the same buttons."""
    again = await next_with_buttons(user)
    assert again["text"] == question["text"]
    assert button_data(again) == button_data(question)
    return again


async def therapist_heard(world: World, therapist: Person) -> list[str]:
    await world.drain()
    texts = [m["text"] for m in therapist.user.inbox[1:]]  # after the welcome
    joined = en("therapist.client_joined", client="")  # " has joined Rapport and ..."
    return [x for x in texts if not x.endswith(joined)]


async def counts(world: World) -> dict[str, int]:
    async with world.rt.sessions() as s:
        result = {}
        for table in ("client_event", "outbox", "answer", "checkin", "invite"):
            result[table] = int(await s.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
        result["bound"] = int(
            await s.scalar(
                select(func.count()).select_from(Client).where(Client.telegram_user_id.is_not(None))
            )
            or 0
        )
        return result


async def event_kinds(world: World, client_id: int) -> list[str]:
    async with world.rt.sessions() as s:
        query = select(ClientEvent.kind).where(ClientEvent.client_id == client_id)
        return list(await s.scalars(query.order_by(ClientEvent.id)))


async def begin_joining(
    world: World, therapist: Person, name: str = "Alice Smith"
) -> tuple[int, SandboxUser]:
    """Accept an invite, pick English and agree: the client is at the time-zone question."""
    client_id, token = await world.invite_client(therapist, name)
    user = world.sandbox.user(name.split()[0], language_code="en")
    await user.send(f"/start {token}")
    await tap_label(user, await next_with_buttons(user), "English")
    await tap_label(user, await next_with_buttons(user), en("button.agree"))
    assert (await next_with_buttons(user))["text"] == en("timezone.ask")
    return client_id, user


async def answer_all(
    world: World, user: SandboxUser, question: dict[str, Any], value: str = "5", lang: str = "en"
) -> None:
    """Tap `value` (or "no" on yes/no items) until the comment, then skip it."""
    while True:
        data = button_data(question)
        if data[-1].endswith(":s"):
            await tap(world, user, question, "s")
            assert await after_tap(user, question) == t(lang, "checkin.thanks", therapist=THERAPIST)
            return
        choice = value if has_value(question, value) else "0"
        await tap(world, user, question, choice)
        question = await next_with_buttons(user)


def has_value(question: dict[str, Any], value: str) -> bool:
    return any(d.rsplit(":", 1)[-1] == value for d in button_data(question))


# --- joining ------------------------------------------------------------------------------------


async def test_accepting_with_a_zone_button_activates_the_client(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    client_id, token = await world.invite_client(dana, "Alice Smith")
    alice = world.sandbox.user("Alice", language_code="en")
    await alice.send(f"/start {token}")
    greeting = await next_with_buttons(alice)
    assert greeting["text"] == en("onboarding.greeting")
    await tap_label(alice, greeting, "English")
    consent = await next_with_buttons(alice)
    assert consent["text"] == en("onboarding.about", crisis=CRISIS)
    joined_at = world.clock.now()
    world.clock.advance(timedelta(minutes=2))
    await tap_label(alice, consent, en("button.agree"))
    zones = await next_with_buttons(alice)
    assert zones["text"] == en("timezone.ask")
    before_zone = await stored(world, client_id)
    assert before_zone.timezone is None and before_zone.status == "onboarding"

    await alice.tap(zones, "o:tz:America/New_York")
    confirm = await next_with_buttons(alice)
    now = world.clock.now()
    assert confirm["text"] == en(
        "timezone.confirm", time=local_time("America/New_York", now), zone="America/New York"
    )
    await tap_label(alice, confirm, en("button.yes"))
    assert await said(alice) == en("onboarding.done")
    assert [m["text"] for m in alice.inbox][:2] == [
        f"{greeting['text']}\n\n{en('common.chosen', choice='English')}",
        f"{consent['text']}\n\n{en('common.chosen', choice=en('button.agree'))}",
    ]
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None
        assert (client.status, client.language, client.timezone) == (
            "active",
            "en",
            "America/New_York",
        )
        assert (client.consent_version, client.consent_at) == (CONSENT_VERSION, now)
        assert client.joined_at == joined_at
        assert client.next_checkin_at is not None and client.next_checkin_at > now
        local = client.next_checkin_at.astimezone(ZoneInfo("America/New_York"))
        assert local.strftime("%H:%M") == "18:00"  # the practice's default cadence, local time
    assert await event_kinds(world, client_id) == ["joined", "consented"]
    assert (await stored(world, client_id)).checkins == ()


async def test_declining_unbinds_the_client_and_stores_nothing_more(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    client_id, token = await world.invite_client(dana, "Alice Smith")
    alice = world.sandbox.user("Alice", language_code="en")
    await alice.send(f"/start {token}")
    await tap_label(alice, await next_with_buttons(alice), "English")
    await tap_label(alice, await next_with_buttons(alice), en("button.decline"))
    assert await said(alice) == en("onboarding.declined")
    assert await therapist_heard(world, dana) == [
        t("en", "therapist.client_declined", client="A.S.")
    ]
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None
        assert client.status == "declined"
        assert (client.telegram_user_id, client.chat_id, client.conversation) == (None, None, None)
        assert (client.consent_version, client.consent_at, client.timezone) == (None, None, None)
        assert client.next_checkin_at is None
        assert await s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.client_id == client_id)) == 0  # fmt: skip
    assert await event_kinds(world, client_id) == ["joined"]

    # Later messages get a kind answer and leave no trace; the invite cannot be reused.
    before = await counts(world)
    await alice.send("hello? I changed my mind")
    assert await said(alice) == en("chat.stranger")
    await alice.send_sticker()
    assert await said(alice) == en("chat.stranger")
    await alice.send("/help")
    assert await said(alice) == en("chat.stranger")
    await alice.send(f"/start {token}")
    assert await said(alice) == en("chat.invite_used")
    await world.advance(days=8, step=timedelta(days=1))  # no check-in ever opens
    assert await counts(world) == before
    assert (await stored(world, client_id)).checkins == ()


async def test_a_zone_typed_as_name_city_or_offset_is_confirmed_before_it_is_saved(
    world: World,
) -> None:
    dana = await world.join_therapist(THERAPIST)
    client_id, alice = await begin_joining(world, dana)
    now = world.clock.now()

    def confirm_text(zone: str) -> str:
        return en("timezone.confirm", time=local_time(zone, now), zone=display_zone(zone))

    await alice.send("Atlantis")
    hint = await next_with_buttons(alice)
    assert hint["text"] == en("timezone.not_found")
    assert "o:tz:*" in button_data(hint)  # the suggestions are offered again

    await alice.send("Europe/Lisbon")  # an IANA name
    confirm = await next_with_buttons(alice)
    assert confirm["text"] == confirm_text("Europe/Lisbon")
    await tap_label(alice, confirm, en("button.choose_again"))
    assert (await next_with_buttons(alice))["text"] == en("timezone.ask")

    await alice.send("tokyo")  # a city
    assert (await next_with_buttons(alice))["text"] == confirm_text("Asia/Tokyo")
    await alice.send("no")
    assert (await next_with_buttons(alice))["text"] == en("timezone.ask")

    await alice.send("UTC+5:30")  # an offset that only one kind of zone keeps
    assert (await next_with_buttons(alice))["text"] == confirm_text("Asia/Kolkata")
    assert (await stored(world, client_id)).timezone is None  # nothing saved before "yes"

    await alice.send("UTC-3")  # a whole-hour offset, typed straight over the last suggestion
    confirm = await next_with_buttons(alice)
    assert confirm["text"] == confirm_text("Etc/GMT+3")
    assert "UTC-3" in confirm["text"]
    await tap_label(alice, confirm, en("button.yes"))
    assert await said(alice) == en("onboarding.done")
    after = await stored(world, client_id)
    assert (after.status, after.timezone, after.checkins) == ("active", "Etc/GMT+3", ())
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None and client.next_checkin_at is not None
        assert client.next_checkin_at.astimezone(ZoneInfo("Etc/GMT+3")).hour == 18


# --- check-ins ----------------------------------------------------------------------------------


async def test_a_full_checkin_records_every_answer_with_its_time(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin_now(world, alice)
    opened = world.clock.now()
    assert [m["text"] for m in alice.user.inbox][-2:] == [en("checkin.intro"), prompt(0)]
    assert question["text"] == prompt(0)

    times = {}
    for item, value in zip(
        ("heard", "goals", "approach", "overall", "wellbeing", "tension", "talked"),
        ("8", "6", "9", "7", "4", "1", "0"),
        strict=True,
    ):
        await tap(world, alice.user, question, value)
        times[item] = (int(value), world.clock.now())
        previous, question = question, await next_with_buttons(alice.user)
        label = en("button.yes" if value == "1" else "button.no") if item in YES_NO else value
        # The answered question becomes the next one, in place: the choice made shown above it,
        # and only the next question's buttons.
        assert question["message_id"] == previous["message_id"]
        edited = as_seen_now(alice.user, previous)
        assert edited["text"] == f"{acked(previous, label)}\n\n{question['text']}"
        assert button_data(edited) == button_data(question) != button_data(previous)

    assert question["text"] == prompt(7, answers={"tension": 1})
    world.clock.advance(timedelta(minutes=3))
    await alice.user.send("  the last session felt rushed  ")
    assert await said(alice.user) == en("checkin.thanks")
    assert button_data(as_seen_now(alice.user, question)) == []  # typed: its Skip button went
    finished = world.clock.now()
    result = await stored(world, alice.id)
    assert result.items() == {**times, "comment": (None, finished)}
    assert [a[3] for a in result.answers if a[1] == "comment"] == ["the last session felt rushed"]
    ((_, status, first_answer_at, closed_at),) = result.checkins
    assert (status, first_answer_at, closed_at) == ("answered", times["heard"][1], finished)
    assert first_answer_at is not None and first_answer_at > opened
    assert result.conversation is not None and result.conversation["machine"] == "idle"
    assert await therapist_heard(world, dana) == []  # nothing urgent, nothing to tell


async def test_prefer_not_typed_numbers_and_a_skipped_comment(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin_now(world, alice)
    await tap(world, alice.user, question, "n")
    heard_at = world.clock.now()
    following = await next_with_buttons(alice.user)
    assert following["text"] == prompt(1)
    assert following["acknowledged"] == acked(question, en("checkin.prefer_not"))

    typed = {"goals": "7", "approach": "10/10", "overall": " 5 ", "wellbeing": "3.",
             "tension": "no"}  # fmt: skip
    for index, (item, answer) in enumerate(typed.items(), start=2):
        world.clock.advance(timedelta(minutes=1))
        await alice.user.send(answer)
        typed[item] = world.clock.now()  # type: ignore[assignment]
        answered, question = question, await next_with_buttons(alice.user)
        # A typed answer leaves the question's text as it was, without live buttons.
        assert button_data(as_seen_now(alice.user, answered)) == []
        assert "acknowledged" not in question
        # "no" to the tension probe leaves out its follow-up: the comment comes next
        assert question["text"] == prompt(7 if item == "tension" else index), item
    assert question["text"] == prompt(7)
    await tap(world, alice.user, question, "s")
    assert await after_tap(alice.user, question) == en("checkin.thanks")
    edited = as_seen_now(alice.user, question)
    assert edited["text"] == f"{acked(question, en('checkin.skipped'))}\n\n{en('checkin.thanks')}"
    assert button_data(edited) == ["d:talk:ask"]  # the thanks offers /talk

    result = await stored(world, alice.id)
    assert result.items() == {
        "heard": (None, heard_at),
        "goals": (7, typed["goals"]),
        "approach": (10, typed["approach"]),
        "overall": (5, typed["overall"]),
        "wellbeing": (3, typed["wellbeing"]),
        "tension": (0, typed["tension"]),
    }
    assert [c[1] for c in result.checkins] == ["answered"]


async def test_text_that_answers_nothing_gets_a_hint_and_changes_nothing(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin_now(world, alice)
    await tap(world, alice.user, question, "6")
    question = await next_with_buttons(alice.user)
    before = await stored(world, alice.id)
    for typed in ("11", "-2", "lots", "7 or 8", "x" * 5000):
        await alice.user.send(typed)
        hint = await alice.user.next_message()
        assert hint["text"] == SCALE_HINT, typed[:10]
        assert button_data(hint) == []  # the question's own buttons are still there above
    assert await stored(world, alice.id) == before

    await tap(world, alice.user, question, "2")
    for value in ("9", "9", "9"):
        question = await next_with_buttons(alice.user)
        await tap(world, alice.user, question, value)
    question = await next_with_buttons(alice.user)  # the yes/no tension probe
    await alice.user.send("maybe")
    assert await said(alice.user) == en("checkin.choice_hint")
    await tap(world, alice.user, question, "0")

    # A comment longer than the limit is kept in part, and the client is told so.
    question = await next_with_buttons(alice.user)
    await alice.user.send("y" * 5000)
    assert await said(alice.user) == en("checkin.comment_truncated", limit="2,000")
    assert await said(alice.user) == en("checkin.thanks")
    result = await stored(world, alice.id)
    values = {item: value for item, (value, _) in result.items().items()}
    assert values == {
        "heard": 6, "goals": 2, "approach": 9, "overall": 9, "wellbeing": 9, "tension": 0,
        "comment": None,
    }  # fmt: skip
    assert [a[3] for a in result.answers if a[1] == "comment"] == ["y" * 2000]
    assert [c[1] for c in result.checkins] == ["answered"]


async def test_media_and_edits_mid_checkin_get_a_kind_reply_and_change_nothing(
    world: World,
) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin_now(world, alice)
    typed = await alice.user.send("4")
    question = await next_with_buttons(alice.user)
    before = await stored(world, alice.id)
    assert before.items()["heard"][0] == 4

    await alice.user.send_sticker()
    assert await said(alice.user) == en("chat.media")
    await alice.user.send_photo(caption="my notes")
    assert await said(alice.user) == en("chat.media")
    await alice.user.send_voice(duration=4)
    assert await said(alice.user) == en("chat.media")
    await alice.user.send_document()
    assert await said(alice.user) == en("chat.media")
    await alice.user.edit(typed, "9")  # changing an answer after the fact is not possible
    assert await said(alice.user) == en("chat.edited")
    assert await stored(world, alice.id) == before

    await tap(world, alice.user, question, "8")  # the pending question still works
    question = await next_with_buttons(alice.user)
    assert question["text"] == prompt(2)
    result = await stored(world, alice.id)
    assert {k: v for k, (v, _) in result.items().items()} == {"heard": 4, "goals": 8}
    assert result.items()["goals"][1] == world.clock.now()
    assert [c[1] for c in result.checkins] == ["open"]


# --- commands -----------------------------------------------------------------------------------


async def test_commands_mid_checkin_answer_then_ask_the_pending_item_again(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    user = alice.user
    question = await open_checkin_now(world, alice)
    await tap(world, user, question, "6")
    first = question = await next_with_buttons(user)
    before = await stored(world, alice.id)

    await user.send("/help")
    assert await said(user) == en("help.client", crisis=CRISIS)
    question = await reasked(user, question)
    await user.send("/mydata")
    mydata = await said(user)
    assert mydata.startswith(t("en", "mydata.title")) and "felt heard and respected: 6/10" in mydata
    question = await reasked(user, question)
    await user.send("/frobnicate")
    assert await said(user) == en("command.unknown")
    question = await reasked(user, question)
    await user.send("/resume")  # nothing was paused: a friendly word and nothing else
    assert await said(user) == en("command.resumed")
    question = await reasked(user, question)
    await user.send("/stop")
    stop = await next_with_buttons(user)
    assert stop["text"] == en("command.stop_confirm")
    await tap_label(user, stop, en("button.keep"))
    assert await said(user) == en("command.cancelled")
    question = await reasked(user, question)
    await user.send("/delete")
    assert (await next_with_buttons(user))["text"] == en("command.delete_confirm")
    await user.send("no")
    assert await said(user) == en("command.cancelled")
    question = await reasked(user, question)
    after = await stored(world, alice.id)
    assert (after.status, after.answers, after.checkins) == (
        before.status,
        before.answers,
        before.checkins,
    )

    # The language and the time zone change in the middle; the check-in carries on in Spanish.
    await user.send("/language")
    choose = await next_with_buttons(user)
    assert choose["text"] == en("command.language_prompt")
    await tap_label(user, choose, "Español")
    assert await said(user) == t("es", "language.chosen")
    question = await next_with_buttons(user)
    assert question["text"] == prompt(1, "es")
    await user.send("/timezone")
    assert (await next_with_buttons(user))["text"] == t("es", "timezone.ask")
    await user.send("Madrid")
    confirm = await next_with_buttons(user)
    now = world.clock.now()
    assert confirm["text"] == t(
        "es", "timezone.confirm", time=local_time("Europe/Madrid", now), zone="Europe/Madrid"
    )
    await tap_label(user, confirm, t("es", "button.yes"))
    assert await said(user) == t("es", "timezone.saved", zone="Europe/Madrid")
    latest = await next_with_buttons(user)
    assert latest["text"] == prompt(1, "es")

    # An earlier copy of the question still works until the item is answered; then the later
    # copies, buttons and all, are stale.
    await tap(world, user, first, "3")
    goals_at = world.clock.now()
    question = await next_with_buttons(user)
    assert question["text"] == prompt(2, "es")
    assert button_data(latest)
    assert await refused(user, latest, data_for(latest, "4")) == t("es", "checkin.already_answered")
    await answer_all(world, user, question, "8", lang="es")
    result = await stored(world, alice.id)
    assert (result.language, result.timezone, result.status) == ("es", "Europe/Madrid", "active")
    items = result.items()
    assert [a[1] for a in result.answers].count("goals") == 1
    assert items["goals"] == (3, goals_at)
    assert {k: v for k, (v, _) in items.items()} == {
        "heard": 6, "goals": 3, "approach": 8, "overall": 8, "wellbeing": 8, "tension": 0,
    }  # fmt: skip
    assert [c[1] for c in result.checkins] == ["answered"]


async def test_pause_mid_checkin_closes_it_and_resume_restarts_checkins(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    user = alice.user
    question = await open_checkin_now(world, alice)
    await tap(world, user, question, "7")
    question = await next_with_buttons(user)

    world.clock.advance(timedelta(minutes=5))
    await user.send("/pause 3")
    now = world.clock.now()
    until = (now + timedelta(days=3)).astimezone(ZoneInfo("Europe/Berlin")).date()
    date = en("date.format", date=until)
    assert await said(user) == en("command.paused_until", date=date)
    paused = await stored(world, alice.id)
    assert paused.status == "paused" and paused.paused_until == now + timedelta(days=3)
    ((_, status, first_answer_at, closed_at),) = paused.checkins
    assert (status, closed_at) == ("partial", now) and first_answer_at is not None
    assert await refused(user, question, data_for(question, "5")) == en("checkin.closed")
    assert await stored(world, alice.id) == paused
    assert await therapist_heard(world, dana) == [
        t("en", "therapist.client_paused", client="A.S.", date=until.isoformat())
    ]

    await user.send("/pause soon")
    assert await said(user) == en("command.pause_hint")
    await world.advance(days=3, hours=1, step=timedelta(hours=12))  # the pause runs out
    resumed = await stored(world, alice.id)
    assert (resumed.status, resumed.paused_until) == ("active", None)
    assert resumed.checkins == paused.checkins

    await user.send("/pause")
    assert await said(user) == en("command.paused")
    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None
        assert (client.status, client.paused_until, client.next_checkin_at) == (
            "paused",
            None,
            None,
        )
    await world.advance(days=8, step=timedelta(days=1))  # paused until /resume: no check-in
    await user.send("/resume")
    assert await said(user) == en("command.resumed")
    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None and client.status == "active"
        assert client.next_checkin_at is not None and client.next_checkin_at > world.clock.now()
    assert (await therapist_heard(world, dana))[1:] == [
        t("en", "therapist.client_paused_open", client="A.S."),
        t("en", "therapist.client_resumed", client="A.S."),
    ]
    assert (await stored(world, alice.id)).checkins == paused.checkins
    kinds = await event_kinds(world, alice.id)
    assert kinds[-4:] == ["paused", "resumed", "paused", "resumed"]


async def test_stop_confirmed_before_any_answer_leaves_a_missed_checkin(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    user = alice.user
    question = await open_checkin_now(world, alice)
    world.clock.advance(timedelta(hours=2))
    await user.send("/stop")
    await tap_label(user, await next_with_buttons(user), en("button.yes_stop"))
    assert await said(user) == en("command.stopped")
    why = await next_with_buttons(user)  # the one optional question why: skipped
    assert why["text"] == en("stop_reason.prompt")
    await user.answer_to(await user.tap(why, "d:why:s"))
    await world.drain()
    result = await stored(world, alice.id)
    assert result.status == "stopped" and result.answers == ()
    assert [(c[1], c[3]) for c in result.checkins] == [("missed", world.clock.now())]
    assert await therapist_heard(world, dana) == [
        t("en", "therapist.client_stopped", client="A.S.")
    ]

    assert await refused(user, question, data_for(question, "5")) == en("chat.button_inactive")
    await user.send("are you still there?")
    assert await said(user) == en("ended.stopped")
    await user.send("/help")
    assert await said(user) == en("help.client", crisis=CRISIS)
    await user.send("/pause 3")
    assert await said(user) == en("ended.stopped")
    await world.advance(days=8, step=timedelta(days=1))
    assert await stored(world, alice.id) == result  # no check-in after /stop
    assert len(await therapist_heard(world, dana)) == 1


# --- buttons that must not count ----------------------------------------------------------------


async def test_stale_forged_double_and_other_clients_taps_change_nothing(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    bob = await join_client(world, dana, "Bob Brown")
    user = alice.user
    question = await open_checkin_now(world, alice)
    checkin_id = int(button_data(question)[0].split(":")[1])

    # A double tap: both reach the bot, only the first counts.
    first = await user.tap(question, data_for(question, "7"))
    second = await user.tap(question, data_for(question, "7"))
    assert (await user.answer_to(first))["text"] == ""
    assert (await user.answer_to(second))["text"] == en("checkin.already_answered")
    question = await next_with_buttons(user)
    bob_question = await open_checkin_now(world, bob)  # both have a check-in open now
    alice_before, bob_before = await stored(world, alice.id), await stored(world, bob.id)
    assert bob_before.checkins[0][0] != checkin_id
    assert [a[1:3] for a in alice_before.answers] == [("heard", 7)]
    messages = len(user.inbox)

    forgeries = {
        f"c:{checkin_id}:0:3": "checkin.already_answered",  # an answered item
        f"c:{checkin_id}:1:11": "chat.button_inactive",  # out of the scale
        f"c:{checkin_id}:1:-1": "chat.button_inactive",
        f"c:{checkin_id}:4:5": "chat.button_inactive",  # an item not asked yet
        f"c:{checkin_id}:7:s": "chat.button_inactive",  # skipping ahead to the comment
        f"c:{checkin_id + 1}:1:5": "checkin.closed",  # a check-in that does not exist
        f"c:{checkin_id}:x:5": "chat.button_inactive",
        "c:1": "chat.button_inactive",
        "o:lang:ru": "chat.button_inactive",  # onboarding is over
        "d:stop:y": "chat.button_inactive",  # no /stop was asked for
        "d:del:y": "chat.button_inactive",  # no /delete was asked for
        "zzz": "chat.button_inactive",
    }
    for data, key in forgeries.items():
        assert await refused(user, question, data) == en(key), data
    # Alice's button sent from Bob's chat is not his to press, even for the item he is at.
    alice_button = f"c:{checkin_id}:0:5"
    assert await refused(bob.user, bob_question, alice_button) == en("checkin.closed")
    await world.drain()
    assert len(user.inbox) == messages  # refused kindly, through the button answer alone
    assert await stored(world, alice.id) == alice_before
    assert await stored(world, bob.id) == bob_before

    await answer_all(world, user, question)
    done = await stored(world, alice.id)
    assert [c[1] for c in done.checkins] == ["answered"]
    assert await refused(user, question, data_for(question, "5")) == en("checkin.closed")
    assert await stored(world, alice.id) == done


# --- crisis -------------------------------------------------------------------------------------


async def test_crisis_language_mid_item_and_in_a_comment(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    user = alice.user
    question = await open_checkin_now(world, alice)
    await tap(world, user, question, "5")
    question = await next_with_buttons(user)
    before = await stored(world, alice.id)
    crisis_reply = en("crisis.reply", resources=CRISIS)
    alert = "A.S."  # an urgent alert about Alice

    await user.send("honestly I want to kill myself")
    assert await said(user) == crisis_reply  # at once, and no "please tap a button" after it
    assert alerts_as_aliases(await therapist_heard(world, dana)) == [alert]
    assert (await stored(world, alice.id)).answers == before.answers
    await answer_all_but_comment(world, user, question)
    comment = "some days I think about ending my life"
    await user.send(comment)
    assert await said(user) == crisis_reply
    assert await said(user) == en("checkin.thanks")  # the check-in carries on to its end
    # Gathered into the alert still open, told of minutes ago: recorded, not alerted again.
    assert alerts_as_aliases(await therapist_heard(world, dana)) == [alert]

    result = await stored(world, alice.id)
    assert [a[3] for a in result.answers if a[1] == "comment"] == [comment]
    assert [c[1] for c in result.checkins] == ["answered"]
    assert (await event_kinds(world, alice.id)).count("crisis") == 2
    async with world.rt.sessions() as s:
        urgent = await s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "urgent")
        )
    assert urgent == 1


async def test_crisis_words_in_an_edit_or_a_caption_are_answered_at_once(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    user = alice.user
    sent = await user.send("I'm fine, see you Tuesday")
    assert await said(user) == en("chat.idle_text")

    await user.edit(sent, "I'm not fine, I want to kill myself")
    assert await said(user) == en("crisis.reply", resources=CRISIS)
    assert alerts_as_aliases(await therapist_heard(world, dana)) == ["A.S."]
    await user.edit(sent, "I'm fine, see you on Tuesday")  # any other edit: the usual note
    assert await said(user) == en("chat.edited")

    await user.send_photo(caption="this is where I want to end my life")  # a caption, too
    assert await said(user) == en("crisis.reply", resources=CRISIS)
    await user.send_photo(caption="the view from our walk")
    assert await said(user) == en("chat.media")
    assert (await event_kinds(world, alice.id)).count("crisis") == 2


async def answer_all_but_comment(world: World, user: SandboxUser, question: dict[str, Any]) -> None:
    while not button_data(question)[-1].endswith(":s"):
        await tap(world, user, question, "5" if has_value(question, "5") else "0")
        question = await next_with_buttons(user)


async def test_a_positive_safety_item_raises_an_urgent_alert(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    await admin.practice_set(world.rt, safety_item=True)
    question = await open_checkin_now(world, alice)
    safety_index = plan(safety_item=True).ids.index("phq9_item9")
    while not question["text"].startswith(prompt(safety_index, safety_item=True)[:40]):
        await tap(world, alice.user, question, "5" if has_value(question, "5") else "0")
        question = await next_with_buttons(alice.user)
    assert question["text"] == prompt(safety_index, safety_item=True)
    assert await therapist_heard(world, dana) == []

    await tap(world, alice.user, question, "2")
    answered_at = world.clock.now()
    assert await said(alice.user) == en("crisis.reply", resources=CRISIS)
    comment = await next_with_buttons(alice.user)  # the check-in goes on
    # The crisis resources come first, urgent: the next question follows them as a new message.
    assert comment["message_id"] > question["message_id"] and "acknowledged" not in comment
    assert button_data(as_seen_now(alice.user, question)) == []
    assert comment["text"] == prompt(safety_index + 1, safety_item=True)
    heard = await therapist_heard(world, dana)
    assert alerts_as_aliases(heard) == ["A.S."]
    assert heard[0].startswith(
        t("en", "therapist.alert_crisis_safety").split("{at", 1)[0].format(client="A.S.")
    )
    await tap(world, alice.user, comment, "s")
    assert await after_tap(alice.user, comment) == en("checkin.thanks")
    result = await stored(world, alice.id)
    assert result.items()["phq9_item9"] == (2, answered_at)
    assert [c[1] for c in result.checkins] == ["answered"]
    async with world.rt.sessions() as s:
        event = (await s.scalars(select(ClientEvent).where(ClientEvent.kind == "crisis"))).one()
        assert event.at == answered_at
        alert = (await s.scalars(select(Alert))).one()  # stored, to be acknowledged
        assert event.data == {
            "source": "safety_item",
            "category": None,
            "alerted": "therapist",
            "alert": alert.id,
        }
        assert (alert.kind, alert.cause, alert.urgent) == ("crisis", "safety_item", True)


# --- a restart in the middle ----------------------------------------------------------------------


async def test_a_restart_mid_checkin_loses_and_doubles_nothing(world: World) -> None:
    dana = await world.join_therapist(THERAPIST)
    alice = await join_client(world, dana, "Alice Smith")
    user = alice.user
    question = await open_checkin_now(world, alice)
    await tap(world, user, question, "8")
    question = await next_with_buttons(user)
    await tap(world, user, question, "7")
    question = await next_with_buttons(user)
    assert question["text"] == prompt(2)
    before = await stored(world, alice.id)

    await world.stop_bot()
    # While the bot is down the client taps the pending question; Telegram keeps the update.
    world.clock.advance(timedelta(minutes=1))
    await user.tap(question, data_for(question, "6"))
    assert await stored(world, alice.id) == before
    world.clock.advance(timedelta(minutes=10))
    await world.start_bot()
    question = await next_with_buttons(user)
    assert question["text"] == prompt(3)
    # A tap carries no time of its own: it counts when the bot, back up, handles it.
    assert (await stored(world, alice.id)).items()["approach"] == (6, world.clock.now())

    await world.restart()  # once more: the item answered before the restart stays answered
    checkin_id = before.checkins[0][0]
    assert await refused(user, question, f"c:{checkin_id}:2:1") == en("checkin.already_answered")
    await answer_all(world, user, question, "4")
    result = await stored(world, alice.id)
    items = [a[1] for a in result.answers]
    assert items == ["heard", "goals", "approach", "overall", "wellbeing", "tension"]
    assert {k: v for k, (v, _) in result.items().items()} == {
        "heard": 8, "goals": 7, "approach": 6, "overall": 4, "wellbeing": 4, "tension": 0,
    }  # fmt: skip
    assert [c[1] for c in result.checkins] == ["answered"]  # the restart opened no other
    texts = [m["text"] for m in user.inbox]
    assert texts.count(en("checkin.intro")) == 1
    assert sum(x.endswith(en("checkin.thanks")) for x in texts) == 1
