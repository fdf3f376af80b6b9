"""A client can ask to talk (/talk, or the button after a check-in), and say why they stopped;
crisis language in either still reaches the safety net first."""

from __future__ import annotations

from flows.i18n import t
from flows.intents import AskToTalk, CrisisAlert, Stop, StopReason
from flows.moments import BETWEEN
from tests.flows.testkit import idle_client, last_keyboard_data, of_type, replies


def test_talk_with_a_sentence_is_sent_at_once() -> None:
    client = idle_client()
    intents = client.command("talk", "  the homework  feels too much\u202e ")
    assert of_type(intents, AskToTalk) == [AskToTalk("the homework  feels too much", client.at)]
    assert replies(intents)[-1].text == t("en", "talk.sent", therapist="Dr. Lee")
    assert client.state["dialog"] is None


def test_talk_without_a_sentence_asks_for_one_optionally() -> None:
    client = idle_client()
    intents = client.command("talk")
    assert last_keyboard_data(intents) == ["d:talk:y", "d:talk:n"]
    intents = client.tap("d:talk:y")
    assert of_type(intents, AskToTalk) == [AskToTalk(None, client.at)]
    client.command("talk")
    intents = client.text("Can we talk about the pace?")
    assert of_type(intents, AskToTalk) == [AskToTalk("Can we talk about the pace?", client.at)]
    client.command("talk")
    assert of_type(client.tap("d:talk:n"), AskToTalk) == []
    assert notices(client.tap("d:talk:y"))  # stale: the dialog is over


def notices(intents: list) -> list:
    return [i for i in intents if type(i).__name__ == "Notice"]


def test_the_button_after_a_check_in_opens_the_talk_dialog() -> None:
    client = idle_client()
    client.open(9, BETWEEN)
    for index in (0, 1, 2):
        client.tap(f"c:9:{index}:0")
    intents = client.tap("c:9:4:s")
    assert last_keyboard_data(intents) == ["d:talk:ask"]
    intents = client.tap("d:talk:ask")
    assert client.state["dialog"] == "talk"
    assert replies(intents)[-1].text == t("en", "talk.prompt", therapist="Dr. Lee")


def test_crisis_words_in_a_talk_go_to_the_safety_net_first_and_are_kept() -> None:
    client = idle_client()
    client.command("talk")
    intents = client.text("I want to kill myself")
    kinds = [type(i) for i in intents if isinstance(i, CrisisAlert | AskToTalk)]
    assert kinds == [CrisisAlert, AskToTalk]
    client2 = idle_client()
    intents = client2.command("talk", "I want to kill myself")
    kinds = [type(i) for i in intents if isinstance(i, CrisisAlert | AskToTalk)]
    assert kinds == [CrisisAlert, AskToTalk]


def test_stop_asks_why_once_and_optionally() -> None:
    client = idle_client()
    client.command("stop")
    intents = client.tap("d:stop:y")
    assert of_type(intents, Stop) == [Stop()]
    data = last_keyboard_data(intents)
    assert data[-1] == "d:why:s" and "d:why:not_helping" in data
    intents = client.tap("d:why:not_helping")
    assert of_type(intents, StopReason) == [StopReason("not_helping", None, client.at)]
    assert client.state["dialog"] is None
    ended = t("en", "ended.stopped", therapist="Dr. Lee")
    assert replies(client.text("and another thing"))[-1].text == ended  # asked once only


def test_stop_reason_in_words_and_skipping() -> None:
    client = idle_client()
    client.command("stop")
    client.tap("d:stop:y")
    intents = client.text("Too expensive for me now")
    assert of_type(intents, StopReason) == [StopReason(None, "Too expensive for me now", client.at)]
    skipper = idle_client()
    skipper.command("stop")
    skipper.tap("d:stop:y")
    assert of_type(skipper.tap("d:why:s"), StopReason) == []
    crisis = idle_client()
    crisis.command("stop")
    crisis.tap("d:stop:y")
    intents = crisis.text("I want to end my life")
    kinds = [type(i) for i in intents if isinstance(i, CrisisAlert | StopReason)]
    assert kinds == [CrisisAlert, StopReason]


def test_the_talk_button_does_nothing_before_onboarding_is_done_or_after_stopping() -> None:
    from flows.state import new_state
    from tests.flows.testkit import Client

    onboarding = Client(None, new_state("onboarding", "consent"))
    assert notices(onboarding.tap("d:talk:ask")) and onboarding.state["dialog"] is None
    stopped = idle_client()
    stopped.command("stop")
    stopped.tap("d:stop:y")
    stopped.tap("d:why:s")
    assert notices(stopped.tap("d:talk:ask")) and stopped.state["dialog"] is None
    assert of_type(stopped.command("talk", "please"), AskToTalk) == []


def test_huge_and_invisible_sentences() -> None:
    from flows.checkin import COMMENT_LIMIT

    client = idle_client()
    (sent,) = of_type(client.command("talk", "x" * 10_000), AskToTalk)
    assert sent.text == "x" * COMMENT_LIMIT
    (bare,) = of_type(client.command("talk", "\u200b\u2066\u200b"), AskToTalk)
    assert bare.text is None  # nothing a person could see: a request without words
