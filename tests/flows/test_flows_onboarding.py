"""Onboarding, step by step: language, consent, time zone (button, name, city, offset)."""

from __future__ import annotations

import pytest

from flows.i18n import t
from flows.intents import (
    DeclineConsent,
    DiscardCheckin,
    RecordConsent,
    SetLanguage,
    SetTimezone,
    TellTherapist,
)
from flows.onboarding import CONSENT_VERSION
from tests.flows.testkit import (
    RESOURCES,
    Client,
    alerts,
    all_text,
    last_keyboard_data,
    make_ctx,
    notices,
    of_type,
    replies,
)


def new_client(**ctx: object) -> Client:
    ctx.setdefault("timezone", None)
    return Client(make_ctx(**ctx))


def to_timezone_step(client: Client) -> None:
    client.start()
    client.tap("o:lang:en")
    client.tap("o:ok:y")
    assert client.state["state"] == "timezone"


def test_greets_in_the_telegram_language_when_supported() -> None:
    client = new_client(telegram_language="es-MX")
    intents = client.start()
    assert of_type(intents, SetLanguage) == [SetLanguage("es")]
    greeting = replies(intents)[0]
    assert greeting.text == t("es", "onboarding.greeting", therapist="Dr. Lee")
    assert last_keyboard_data(intents) == ["o:lang:en", "o:lang:es", "o:lang:ru"]
    labels = [b.label for row in greeting.buttons for b in row]
    assert labels == ["English", "Español", "Русский"]


def test_unsupported_telegram_language_falls_back_to_the_practice_language() -> None:
    intents = new_client(telegram_language="de", language="ru").start()
    assert of_type(intents, SetLanguage) == [SetLanguage("ru")]
    assert "Rapport" in replies(intents)[0].text and "Здравствуйте" in replies(intents)[0].text


def test_full_onboarding_with_a_suggested_zone_button() -> None:
    client = new_client()
    client.start()

    intents = client.tap("o:lang:es")
    ack, about = replies(intents)
    assert ack.edit and ack.buttons == () and ack.text.endswith("✓ Español")
    assert of_type(intents, SetLanguage) == [SetLanguage("es")]
    assert RESOURCES in about.text and "No soy terapeuta" in about.text
    assert last_keyboard_data(intents) == ["o:ok:y", "o:ok:n"]
    assert client.state["state"] == "consent"

    intents = client.tap("o:ok:y")
    assert of_type(intents, RecordConsent) == [RecordConsent(CONSENT_VERSION, client.at)]
    zone_buttons = last_keyboard_data(intents)
    assert "o:tz:Europe/Madrid" in zone_buttons and zone_buttons[-1] == "o:tz:*"
    labels = [b.label for row in replies(intents)[-1].buttons for b in row]
    assert "Madrid · 10:01" in labels  # 09:01 UTC in January

    intents = client.tap("o:tz:Europe/Madrid")
    assert replies(intents)[0].text.endswith("✓ Madrid")
    assert "10:01" in replies(intents)[1].text
    assert client.state["state"] == "timezone_confirm" and client.state["zone"] == "Europe/Madrid"

    intents = client.tap("o:tzok:y")
    assert of_type(intents, SetTimezone) == [SetTimezone("Europe/Madrid")]
    assert replies(intents)[-1].text == t("es", "onboarding.done")
    assert client.state["machine"] == "idle" and client.state["zone"] is None


def test_decline_stores_nothing_more_and_ends() -> None:
    client = new_client()
    client.start()
    client.tap("o:lang:en")
    intents = client.tap("o:ok:n")
    assert of_type(intents, RecordConsent) == []
    assert of_type(intents, DeclineConsent) == [DeclineConsent(client.at)]
    assert of_type(intents, TellTherapist) == [TellTherapist("declined")]
    assert "new invite link" in replies(intents)[-1].text
    assert (client.state["machine"], client.state["state"]) == ("ended", "declined")
    later = client.text("hello?")
    assert replies(later)[0].text == t("en", "ended.declined", therapist="Dr. Lee")
    assert of_type(client.open(5), DiscardCheckin) == [DiscardCheckin(5, client.at)]


@pytest.mark.parametrize(
    ("typed", "zone", "shown"),
    [
        ("Europe/Berlin", "Europe/Berlin", "Europe/Berlin"),
        ("berlin", "Europe/Berlin", "Europe/Berlin"),
        ("new york", "America/New_York", "America/New York"),
        ("Buenos Aires", "America/Argentina/Buenos_Aires", "America/Argentina/Buenos Aires"),
        ("+3", "Etc/GMT-3", "UTC+3"),
        ("UTC-5", "Etc/GMT+5", "UTC-5"),
        ("GMT+5:30", "Asia/Kolkata", "Asia/Kolkata"),
    ],
)
def test_zone_typed_as_name_city_or_offset(typed: str, zone: str, shown: str) -> None:
    client = new_client()
    to_timezone_step(client)
    intents = client.text(typed)
    assert client.state["state"] == "timezone_confirm" and client.state["zone"] == zone
    assert shown in replies(intents)[0].text
    assert last_keyboard_data(intents) == ["o:tzok:y", "o:tzok:n"]
    assert of_type(client.tap("o:tzok:y"), SetTimezone) == [SetTimezone(zone)]


def test_confirmation_shows_the_local_time() -> None:
    client = new_client()
    to_timezone_step(client)
    intents = client.text("UTC+3")
    assert "12:01" in replies(intents)[0].text  # 09:01 UTC (one tick after the start) + 3 h


def test_unknown_zone_gets_a_hint_and_changes_nothing() -> None:
    client = new_client()
    to_timezone_step(client)
    before = client.state
    intents = client.text("somewhere nice")
    assert replies(intents)[0].text == t("en", "timezone.not_found")
    assert "o:tz:*" in last_keyboard_data(intents)
    assert client.state == before
    assert of_type(intents, SetTimezone) == []


def test_other_zone_asks_to_type_and_choose_again_goes_back() -> None:
    client = new_client()
    to_timezone_step(client)
    intents = client.tap("o:tz:*")
    assert replies(intents)[-1].text == t("en", "timezone.ask_other")
    assert client.state["state"] == "timezone"
    client.text("tokyo")
    assert client.state["zone"] == "Asia/Tokyo"
    intents = client.tap("o:tzok:n")
    assert client.state["state"] == "timezone" and of_type(intents, SetTimezone) == []
    assert "o:tz:Europe/London" in last_keyboard_data(intents)


def test_typed_no_at_confirmation_chooses_again_and_typed_yes_confirms() -> None:
    client = new_client()
    to_timezone_step(client)
    client.text("paris")
    client.text("no")
    assert client.state["state"] == "timezone"
    client.text("lisbon")
    assert of_type(client.text("yes"), SetTimezone) == [SetTimezone("Europe/Lisbon")]


def test_zone_set_by_the_practice_is_confirmed_straight_after_consent() -> None:
    client = new_client(timezone="America/Mexico_City", language="es")
    client.start()
    client.tap("o:lang:es")
    intents = client.tap("o:ok:y")
    assert client.state["state"] == "timezone_confirm"
    assert "Tu consulta configuró" in replies(intents)[-1].text
    assert "03:01" in replies(intents)[-1].text
    assert of_type(client.tap("o:tzok:y"), SetTimezone) == [SetTimezone("America/Mexico_City")]


def test_typed_language_name_is_understood() -> None:
    client = new_client()
    client.start()
    intents = client.text("Русский")
    assert of_type(intents, SetLanguage) == [SetLanguage("ru")]
    assert client.state["state"] == "consent"


def test_text_at_consent_gets_a_hint_with_the_buttons() -> None:
    client = new_client()
    client.start()
    client.tap("o:lang:en")
    intents = client.text("what is this?")
    assert replies(intents)[0].text == t("en", "onboarding.consent_hint")
    assert last_keyboard_data(intents) == ["o:ok:y", "o:ok:n"]
    assert client.state["state"] == "consent"


def test_stale_and_foreign_onboarding_buttons_are_refused() -> None:
    client = new_client()
    client.start()
    client.tap("o:lang:en")
    before = client.state
    for data in ("o:lang:es", "o:tzok:y", "o:tz:Europe/Berlin", "o:ok:maybe", "o:lang:xx", "o"):
        intents = client.tap(data)
        assert notices(intents) == [t("en", "chat.button_inactive")], data
        assert replies(intents) == []
        assert client.state == before


def test_commands_during_onboarding_then_the_step_is_shown_again() -> None:
    client = new_client()
    client.start()
    client.tap("o:lang:en")
    intents = client.command("/help")
    assert "/pause" in replies(intents)[0].text
    assert last_keyboard_data(intents) == ["o:ok:y", "o:ok:n"]
    intents = client.command("pause", "3")
    assert replies(intents)[0].text == t("en", "onboarding.finish_first")
    assert last_keyboard_data(intents) == ["o:ok:y", "o:ok:n"]
    assert client.state["state"] == "consent"


def test_language_change_during_onboarding_repeats_the_step_in_the_new_language() -> None:
    client = new_client()
    client.start()
    client.tap("o:lang:en")
    intents = client.command("language")
    assert last_keyboard_data(intents) == ["d:lang:en", "d:lang:es", "d:lang:ru"]
    intents = client.tap("d:lang:ru")
    assert of_type(intents, SetLanguage) == [SetLanguage("ru")]
    assert "Вы согласны?" in all_text(intents)
    assert client.state["state"] == "consent" and client.state["dialog"] is None


def test_crisis_language_during_onboarding_is_answered_at_once() -> None:
    client = new_client()
    client.start()
    before = client.state
    intents = client.text("honestly I want to die")
    assert alerts(intents) == [("text", client.at)]
    assert RESOURCES in replies(intents)[0].text
    assert len(replies(intents)) == 1
    assert client.state == before


def test_check_in_opened_before_onboarding_finished_is_discarded() -> None:
    client = new_client()
    client.start()
    assert client.open(3) == [DiscardCheckin(3, client.at)]
    assert client.state["machine"] == "onboarding"


def test_missing_state_starts_onboarding() -> None:
    client = Client(make_ctx(timezone=None))
    intents = client.text("hi")
    assert client.state["machine"] == "onboarding"
    assert last_keyboard_data(intents) == ["o:lang:en", "o:lang:es", "o:lang:ru"]
