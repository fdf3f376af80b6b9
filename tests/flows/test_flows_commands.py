"""Commands at any time: pause/resume, stop and delete with confirmation, language, time zone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flows.commands import command_name, pause_days
from flows.i18n import t
from flows.intents import (
    DiscardCheckin,
    EraseAll,
    FinishCheckin,
    Pause,
    RecordAnswer,
    Reply,
    Resume,
    SetTimezone,
    ShowMyData,
    Stop,
    TellTherapist,
)
from tests.flows.testkit import (
    RESOURCES,
    Client,
    alerts,
    all_text,
    idle_client,
    last_keyboard_data,
    make_ctx,
    notices,
    of_type,
    replies,
)


def in_checkin(checkin_id: int = 7, **ctx: object) -> Client:
    client = idle_client(make_ctx(**ctx))
    client.open(checkin_id)
    client.tap(f"c:{checkin_id}:0:8")
    return client


@pytest.mark.parametrize(
    ("raw", "name"), [("/Pause@RapportBot", "pause"), ("help", "help"), (" /STOP ", "stop")]
)
def test_command_names_are_normalised(raw: str, name: str) -> None:
    assert command_name(raw) == name


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        ("", (True, None)),
        ("7", (True, 7)),
        ("7d", (True, 7)),
        ("14 days", (True, 14)),
        ("0", (False, None)),
        ("400", (False, None)),
        ("soon", (False, None)),
        ("-3", (False, None)),
    ],
)
def test_pause_arguments(args: str, parsed: tuple[bool, int | None]) -> None:
    assert pause_days(args) == parsed


def test_pause_for_days_confirms_the_local_date() -> None:
    client = idle_client()
    intents = client.command("pause", "7")
    assert of_type(intents, Pause) == [Pause(client.at + timedelta(days=7))]
    assert replies(intents) == [Reply(t("en", "command.paused_until", date="12 January 2026"))]


def test_pause_date_is_written_in_the_client_language() -> None:
    client = idle_client(make_ctx(language="es"))
    assert "12 de enero de 2026" in all_text(client.command("pause", "7"))
    client = idle_client(make_ctx(language="ru"))
    assert "до 12 января 2026. " in all_text(client.command("pause", "7"))


def test_pause_until_resume_and_resume() -> None:
    client = idle_client()
    intents = client.command("/pause")
    assert of_type(intents, Pause) == [Pause(None)]
    assert replies(intents) == [Reply(t("en", "command.paused"))]
    intents = client.command("/resume")
    assert of_type(intents, Resume) == [Resume()]
    assert replies(intents) == [Reply(t("en", "command.resumed"))]


def test_pause_with_a_bad_argument_explains_and_pauses_nothing() -> None:
    client = idle_client()
    intents = client.command("pause", "forever-ish")
    assert of_type(intents, Pause) == []
    assert replies(intents) == [Reply(t("en", "command.pause_hint"))]


def test_pause_mid_check_in_closes_the_check_in() -> None:
    client = in_checkin()
    intents = client.command("pause", "3")
    assert of_type(intents, FinishCheckin) == [FinishCheckin(7, client.at, False, 1)]
    assert of_type(intents, Pause) == [Pause(client.at + timedelta(days=3))]
    assert last_keyboard_data(intents) == []
    assert client.state["machine"] == "idle"


def test_stop_asks_first_and_cancelling_changes_nothing() -> None:
    client = in_checkin()
    intents = client.command("stop")
    assert replies(intents)[0].text == t("en", "command.stop_confirm", therapist="Dr. Lee")
    assert last_keyboard_data(intents) == ["d:stop:y", "d:stop:n"]
    intents = client.tap("d:stop:n")
    assert of_type(intents, Stop) == [] and of_type(intents, TellTherapist) == []
    assert replies(intents)[0].edit
    assert replies(intents)[1].text == t("en", "command.cancelled")
    assert last_keyboard_data(intents)[0] == "c:7:1:0"  # the check-in carries on
    assert client.state["dialog"] is None and client.state["machine"] == "checkin"


def test_stop_confirmed_mid_check_in() -> None:
    client = in_checkin()
    client.command("stop")
    intents = client.tap("d:stop:y")
    kinds = [type(i).__name__ for i in intents]
    # Stop tells the therapist; the last reply asks, optionally, why
    assert kinds == ["Reply", "FinishCheckin", "Stop", "Reply", "Reply"]
    assert of_type(intents, FinishCheckin) == [FinishCheckin(7, client.at, False, 1)]
    assert (client.state["machine"], client.state["state"]) == ("ended", "stopped")
    assert client.state["dialog"] == "stop_reason"
    assert client.state["checkin"] is None
    assert notices(client.tap("c:7:1:5")) == [t("en", "chat.button_inactive")]


def test_after_stopping_little_works_but_crisis_language_is_always_answered() -> None:
    client = idle_client()
    client.command("stop")
    client.tap("d:stop:y")
    client.tap("d:why:s")  # no reason given
    ended = t("en", "ended.stopped", therapist="Dr. Lee")
    assert replies(client.text("hello")) == [Reply(ended)]
    assert replies(client.command("resume")) == [Reply(ended)]
    assert of_type(client.command("mydata"), ShowMyData) == [ShowMyData()]
    assert of_type(client.open(9), DiscardCheckin) == [DiscardCheckin(9, client.at)]
    intents = client.text("I want to kill myself")
    assert alerts(intents) == [("text", client.at)]
    assert RESOURCES in all_text(intents)
    client.command("delete")
    assert of_type(client.tap("d:del:y"), EraseAll) == [EraseAll()]


def test_delete_asks_first_and_can_be_cancelled_by_typing_no() -> None:
    client = in_checkin()
    intents = client.command("delete")
    assert last_keyboard_data(intents) == ["d:del:y", "d:del:n"]
    intents = client.text("no")
    assert of_type(intents, EraseAll) == []
    assert replies(intents)[0].text == t("en", "command.cancelled")
    assert client.state["machine"] == "checkin"


def test_delete_confirmed_erases_everything_with_a_goodbye() -> None:
    client = in_checkin()
    client.command("delete")
    intents = client.tap("d:del:y")
    assert of_type(intents, TellTherapist) == [TellTherapist("deleted")]
    assert of_type(intents, EraseAll) == [EraseAll()]
    assert replies(intents)[-1].text == t("en", "command.deleted")
    assert (client.state["machine"], client.state["state"]) == ("ended", "erased")
    assert of_type(client.command("mydata"), ShowMyData) == []


def test_confirm_buttons_only_count_while_their_dialog_is_open() -> None:
    client = idle_client()
    assert notices(client.tap("d:stop:y")) == [t("en", "chat.button_inactive")]
    client.command("delete")
    assert notices(client.tap("d:stop:y")) == [t("en", "chat.button_inactive")]
    assert client.state["dialog"] == "confirm_delete"


def test_timezone_command_re_runs_the_zone_step() -> None:
    client = in_checkin()
    intents = client.command("timezone")
    assert "d:tz:Europe/London" in last_keyboard_data(intents)
    intents = client.text("new york")
    assert "America/New York" in replies(intents)[0].text
    intents = client.tap("d:tzok:y")
    assert of_type(intents, SetTimezone) == [SetTimezone("America/New_York")]
    assert t("en", "timezone.saved", zone="America/New York") in all_text(intents)
    assert last_keyboard_data(intents)[0] == "c:7:1:0"
    assert client.state["dialog"] is None and client.state["zone"] is None


def test_timezone_dialog_unknown_text_hint_and_choose_again() -> None:
    client = idle_client()
    client.command("timezone")
    before = client.state
    intents = client.text("my place")
    assert replies(intents)[0].text == t("en", "timezone.not_found")
    assert client.state == before
    client.tap("d:tz:America/Chicago")
    assert client.state["dialog"] == "timezone_confirm"
    client.tap("d:tzok:n")
    assert client.state["dialog"] == "timezone"
    intents = client.tap("d:tz:*")
    assert replies(intents)[-1].text == t("en", "timezone.ask_other")


def test_language_dialog_accepts_a_typed_language() -> None:
    client = idle_client()
    client.command("language")
    intents = client.text("español")
    assert replies(intents)[-1].text == t("es", "language.chosen")


def test_text_a_dialog_has_no_use_for_goes_to_the_conversation() -> None:
    client = in_checkin()
    client.command("stop")
    intents = client.text("6")
    assert of_type(intents, RecordAnswer) == [RecordAnswer(7, "goals", 6, client.at)]
    assert client.state["dialog"] is None  # passed over (`dialogs.passed_over`)


def test_start_when_already_set_up() -> None:
    intents = idle_client().command("start", "sometoken")
    assert replies(intents) == [Reply(t("en", "command.start_again"))]
