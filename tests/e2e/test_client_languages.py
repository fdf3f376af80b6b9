"""A Spanish and a Russian client, end to end: every message they receive, from the greeting to
the crisis reply, is their own language's catalog text, while their therapist hears in English."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from app.effects import instrument
from devtools.sandbox import SandboxUser
from flows.i18n import CATALOGS, t
from flows.plan import plan_for, plan_items
from flows.timezones import local_time
from tests.e2e.harness import (
    Person,
    World,
    alerts_as_aliases,
    button_labels,
    data_for,
    next_with_buttons,
    open_checkin_now,
    stored,
    tap_label,
)

THERAPIST = "Dana Lee"


@dataclass(frozen=True)
class Speaker:
    lang: str
    name: str  # how the language is named on its button
    city: str
    zone: str
    unreadable: str  # a reply to a 0-10 question that is not a number
    comment: str  # crisis language, in this language


SPEAKERS = [
    Speaker("es", "Español", "Madrid", "Europe/Madrid", "bastante", "a veces quiero morirme"),
    Speaker("ru", "Русский", "Москва", "Europe/Moscow", "много", "иногда хочу умереть"),
]


class Transcript:
    """The messages a client should end up seeing, built from the catalogs as the test goes."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.texts: list[str] = []
        self.in_place: int | None = None  # the message the next question is asked in

    def text(self, key: str, **params: Any) -> str:
        """A catalog text that really is translated: a missing key would fall back to English."""
        assert key in CATALOGS[self.lang], key
        params.setdefault("therapist", THERAPIST)
        return t(self.lang, key, **params)

    def expect(self, key: str, **params: Any) -> str:
        text = self.text(key, **params)
        assert text != t("en", key, therapist=THERAPIST, **params), key
        self.texts.append(text)
        return text

    def expect_question(self, index: int, answers: dict[str, int | None] | None = None) -> str:
        brief = instrument("rapport-brief")
        plan = plan_for(brief, plan_items(brief, False))
        text = plan.prompt(index, self.lang, answers).replace("{therapist}", THERAPIST)
        assert text != plan.prompt(index, "en", answers).replace("{therapist}", THERAPIST)
        if self.in_place is not None:  # asked in place of the question just answered
            self.texts[self.in_place] += f"\n\n{text}"
            self.in_place = None
        else:
            self.texts.append(text)
        return text

    def answered(self, text: str, choice: str, *, question: bool = False) -> None:
        """The message showing `text` was tapped: it now shows the choice made (a question
        keeps its first line, without the scale's anchors, and the next question follows in
        the same message)."""
        position = next(
            i for i, x in enumerate(self.texts) if x == text or x.endswith(f"\n\n{text}")
        )
        shown = text.split("\n")[0] if question else text
        self.texts[position] = f"{shown}\n\n{self.text('common.chosen', choice=choice)}"
        self.in_place = position if question else None


async def read(world: World, user: SandboxUser, query: dict[str, Any]) -> None:
    """Wait for the bot's answer to a tap and for what it brought to be delivered, as a person
    reads the next question before typing."""
    await user.answer_to(query)
    await world.drain()


@pytest.mark.parametrize("speaker", SPEAKERS, ids=[s.lang for s in SPEAKERS])
async def test_a_client_hears_only_their_own_language(world: World, speaker: Speaker) -> None:
    lang = speaker.lang
    script = Transcript(lang)
    dana = await world.join_therapist(THERAPIST)
    client_id, token = await world.invite_client(dana, "Alex Moreno")
    user = world.sandbox.user("Alex", language_code=lang)

    # Onboarding, greeted in the language the Telegram app uses.
    await user.send(f"/start {token}")
    greeting = await next_with_buttons(user)
    assert greeting["text"] == script.expect("onboarding.greeting")
    assert button_labels(greeting) == ["English", "Español", "Русский"]
    await tap_label(user, greeting, speaker.name)
    script.answered(greeting["text"], speaker.name)
    consent = await next_with_buttons(user)
    crisis = script.text("crisis.default_resources")
    assert consent["text"] == script.expect("onboarding.about", crisis=crisis)
    await tap_label(user, consent, script.text("button.agree"))
    script.answered(consent["text"], script.text("button.agree"))
    assert (await next_with_buttons(user))["text"] == script.expect("timezone.ask")
    await user.send(speaker.city)
    confirm = await next_with_buttons(user)
    time = local_time(speaker.zone, world.clock.now())
    assert confirm["text"] == script.expect("timezone.confirm", time=time, zone=speaker.zone)
    await tap_label(user, confirm, script.text("button.yes"))
    script.answered(confirm["text"], script.text("button.yes"))
    assert (await user.next_message())["text"] == script.expect("onboarding.done")

    # A check-in: a reply that is not a number, taps, a yes, a no, and a comment in crisis.
    question = await open_checkin_now(world, Person(client_id, user))
    script.expect("checkin.intro")
    assert question["text"] == script.expect_question(0)
    await user.send(speaker.unreadable)
    assert (await user.next_message())["text"] == script.expect("checkin.tap_hint", low=0, high=10)
    values = {"heard": "9", "goals": "8", "approach": "8", "overall": "9", "wellbeing": "6"}
    for index, value in enumerate(values.values()):
        world.clock.advance(timedelta(minutes=1))
        await read(world, user, await user.tap(question, data_for(question, value)))
        script.answered(question["text"], value, question=True)
        if index == 0:  # the hint is below the first question: the next one comes below it
            script.in_place = None
        question = await next_with_buttons(user)
        assert question["text"] == script.expect_question(index + 1)
    # "yes" to the tension probe brings its follow-up; "no" to that leads to the comment.
    for value, label, upcoming in (("1", "button.yes", 6), ("0", "button.no", 7)):
        await read(world, user, await user.tap(question, data_for(question, value)))
        script.answered(question["text"], script.text(label), question=True)
        question = await next_with_buttons(user)
        assert question["text"] == script.expect_question(upcoming, {"tension": 1})
    await user.send(speaker.comment)
    reply = await user.next_message()
    assert reply["text"] == script.expect("crisis.reply", resources=crisis)
    assert (await user.next_message())["text"] == script.expect("checkin.thanks")
    await user.send("/help")
    assert (await user.next_message())["text"] == script.expect("help.client", crisis=crisis)

    assert [m["text"] for m in user.inbox] == script.texts
    await world.drain()
    alerts = [m["text"] for m in dana.user.inbox[2:]]  # after the welcome and "joined"
    assert alerts_as_aliases(alerts) == ["A.M."]  # in the therapist's own language
    assert speaker.comment in alerts[0]  # the practice shows comments in digests
    result = await stored(world, client_id)
    assert (result.language, result.timezone, result.status) == (lang, speaker.zone, "active")
    answers = {item: value for item, (value, _) in result.items().items()}
    assert answers == {**{k: int(v) for k, v in values.items()}, "tension": 1, "talked": 0,
                       "comment": None}  # fmt: skip
    assert [a[3] for a in result.answers if a[1] == "comment"] == [speaker.comment]
    assert [c[1] for c in result.checkins] == ["answered"]
