"""Dialogs opened by commands, shown on top of whatever the conversation was doing.

    none -> confirm_stop   -> stop_reason (stopped: one optional question why) -> none
                           -> none (carried on)
         -> confirm_delete -> none (erased, or carried on)
         -> talk           -> none (the request to talk sent, with an optional sentence, or not)
         -> language       -> none
         -> timezone <-> timezone_confirm -> none

A dialog never disturbs an open check-in: its answer buttons keep working, and when the dialog
ends the current item is asked again so it is the latest message in the chat. A dialog still
open when a new check-in opens ends there (`checkin.open_checkin`): typed answers are the
check-in's, and its buttons answer that they are no longer active. So does one the client
passes over by answering the check-in instead (`passed_over`).
"""

from __future__ import annotations

from collections.abc import Callable

from transitions import EventData

from flows import checkin, foreground, zone_step
from flows.i18n import LANGUAGES, t
from flows.intents import (
    AskToTalk,
    Button,
    EraseAll,
    Keyboard,
    SetLanguage,
    SetTimezone,
    Stop,
    StopReason,
    TellTherapist,
)
from flows.keyboards import DIALOG, NO, OTHER_ZONE, SKIP, YES, language_keyboard, yes_no_keyboard
from flows.machinery import TurnModel, build_machine, can_fire, fire
from flows.parsing import language_from_text, yes_or_no
from flows.state import DIALOGS as STATE_DIALOGS
from flows.timezones import display_zone, parse_zone
from flows.turn import Turn
from flows.visible import visible_text

NONE = "none"
STOP_REASONS = ("better", "not_helping", "too_many", "ending", "other")
"""Why a client stopped, as the buttons offer it (`stop_reason.<code>` in the catalogue)."""
ASK = "ask"  # the value of the button after a check-in that opens the talk dialog
_KEEPS_WORDS = frozenset({"talk", "stop_reason"})
DIALOGS = tuple(sorted(STATE_DIALOGS))
_CONFIRMS = ["confirm_stop", "confirm_delete"]

MACHINE = build_machine(
    "dialog",
    [NONE, *DIALOGS],
    [
        {"trigger": "ask_stop", "source": "*", "dest": "confirm_stop"},
        {"trigger": "ask_delete", "source": "*", "dest": "confirm_delete"},
        {"trigger": "ask_language", "source": "*", "dest": "language"},
        {"trigger": "ask_timezone", "source": "*", "dest": "timezone"},
        {"trigger": "ask_talk", "source": "*", "dest": "talk"},
        {"trigger": "confirm", "source": "confirm_stop", "dest": "stop_reason", "before": "stop"},
        {"trigger": "confirm", "source": "confirm_delete", "dest": NONE, "before": "erase"},
        {"trigger": "cancel", "source": _CONFIRMS, "dest": NONE, "before": "say_cancelled"},
        {"trigger": "cancel", "source": "talk", "dest": NONE, "before": "say_cancelled"},
        {"trigger": "send_talk", "source": "talk", "dest": NONE, "before": "record_talk"},
        {"trigger": "give_reason", "source": "stop_reason", "dest": NONE, "before": "record_why"},
        {
            "trigger": "choose_language",
            "source": "language",
            "dest": NONE,
            "before": "apply_language",
        },
        {
            "trigger": "pick_zone",
            "source": ["timezone", "timezone_confirm"],
            "dest": "timezone_confirm",
            "before": "hold_zone",
        },
        {"trigger": "other_zone", "source": "timezone", "dest": None, "after": "ask_typing"},
        {"trigger": "zone_ok", "source": "timezone_confirm", "dest": NONE, "before": "save_zone"},
        {"trigger": "zone_again", "source": "timezone_confirm", "dest": "timezone"},
        {"trigger": "hint", "source": list(DIALOGS), "dest": None, "after": "prompt_hint"},
    ],
)
for _name in DIALOGS:
    MACHINE.get_state(_name).add_callback("enter", "prompt")
MACHINE.get_state(NONE).add_callback("enter", "return_to_conversation")


def _stop_text(turn: Turn) -> str:
    return turn.text("command.stop_confirm")


def _delete_text(turn: Turn) -> str:
    return turn.text("command.delete_confirm")


def _language_text(turn: Turn) -> str:
    return turn.text("command.language_prompt")


def _talk_text(turn: Turn) -> str:
    return turn.text("talk.prompt")


def _why_text(turn: Turn) -> str:
    return turn.text("stop_reason.prompt")


_YES_NO: dict[str, tuple[Callable[[Turn], str], str, str, str]] = {
    # dialog: (its question, callback field, "yes" button, "no" button)
    "confirm_stop": (_stop_text, "stop", "button.yes_stop", "button.keep"),
    "confirm_delete": (_delete_text, "del", "button.yes_delete", "button.keep"),
    "talk": (_talk_text, "talk", "button.talk_send", "button.cancel"),
}


def _why_keyboard(turn: Turn) -> Keyboard:
    rows = [
        (Button(turn.text(f"stop_reason.{code}"), f"{DIALOG}:why:{code}"),) for code in STOP_REASONS
    ]
    return (*rows, (Button(turn.text("button.skip"), f"{DIALOG}:why:{SKIP}"),))


def _words(text: str | None) -> str | None:
    """What the client wrote, as a person may see it, within a comment's limit; None if
    nothing."""
    kept = visible_text(text or "").strip()[: checkin.COMMENT_LIMIT]
    return kept or None


class DialogModel(TurnModel):
    """The dialogs' model: here `state` is the dialog slot of the state dict."""

    __slots__ = ()

    @property
    def state(self) -> str:
        return str(self.turn.state["dialog"] or NONE)

    @state.setter
    def state(self, value: str) -> None:
        self.turn.state["dialog"] = None if value == NONE else value

    def prompt(self, _: EventData) -> None:
        turn, name = self.turn, self.state
        if name in _YES_NO:
            text_of, field, yes_key, no_key = _YES_NO[name]
            turn.say(text_of(turn), yes_no_keyboard(turn.lang, DIALOG, field, yes_key, no_key))
        elif name == "language":
            turn.say(_language_text(turn), language_keyboard(DIALOG))
        elif name == "stop_reason":
            turn.say(_why_text(turn), _why_keyboard(turn))
        elif name == "timezone":
            zone_step.ask(turn, DIALOG)
        elif name == "timezone_confirm":
            zone_step.confirm(turn, DIALOG, str(turn.state["zone"]))

    def prompt_hint(self, _: EventData) -> None:
        turn, name = self.turn, self.state
        if name in _CONFIRMS:
            turn.say(turn.text("command.confirm_hint"))
        elif name == "language":
            turn.say(turn.text("onboarding.language_hint"), language_keyboard(DIALOG))
        else:
            zone_step.hint(turn, DIALOG, name)

    def ask_typing(self, _: EventData) -> None:
        zone_step.ask_typing(self.turn)

    def stop(self, _: EventData) -> None:
        turn = self.turn
        checkin.close(turn)
        turn.emit(Stop())  # the therapist is told (`flows.lifecycle.stop`)
        turn.say(turn.text("command.stopped"))
        turn.state.update({"machine": "ended", "state": "stopped", "zone": None})

    def erase(self, _: EventData) -> None:
        turn = self.turn
        turn.emit(TellTherapist("deleted"))
        turn.emit(EraseAll())
        turn.say(turn.text("command.deleted"))
        turn.state.update({"machine": "ended", "state": "erased", "zone": None, "checkin": None})

    def record_talk(self, event: EventData) -> None:
        send_talk(self.turn, str(event.kwargs.get("text") or ""))

    def record_why(self, event: EventData) -> None:
        turn = self.turn
        reason, words = event.kwargs.get("reason"), _words(event.kwargs.get("text"))
        if reason is not None or words is not None:
            turn.emit(StopReason(reason, words, turn.at))
            turn.say(turn.text("stop_reason.thanks"))

    def say_cancelled(self, _: EventData) -> None:
        self.turn.say(self.turn.text("command.cancelled"))

    def apply_language(self, event: EventData) -> None:
        code = str(event.kwargs["code"])
        self.turn.lang = code
        self.turn.emit(SetLanguage(code))
        self.turn.say(self.turn.text("language.chosen"))

    def hold_zone(self, event: EventData) -> None:
        self.turn.state["zone"] = str(event.kwargs["zone"])

    def save_zone(self, _: EventData) -> None:
        turn = self.turn
        zone = str(turn.state["zone"])
        turn.emit(SetTimezone(zone))
        turn.say(turn.text("timezone.saved", zone=display_zone(zone)))
        turn.state["zone"] = None

    def return_to_conversation(self, _: EventData) -> None:
        foreground.resume(self.turn)


def open_dialog(turn: Turn, trigger: str) -> None:
    """Start a dialog ("ask_stop", "ask_delete", "ask_language", "ask_timezone")."""
    fire(MACHINE, DialogModel(turn), trigger)


def passed_over(turn: Turn) -> None:
    """The client answers the check-in instead of the open dialog: they moved on, and the
    dialog ends without a word, so that a later typed "yes" meant for the check-in never
    confirms an old "delete everything?" (its buttons then answer they are no longer active)."""
    turn.state["dialog"] = None


def is_open(turn: Turn) -> bool:
    return turn.state["dialog"] is not None


def keeps_words(turn: Turn) -> bool:
    """Whether the open dialog keeps what the client writes (a crisis text included, after the
    safety net has answered it)."""
    return turn.state["dialog"] in _KEEPS_WORDS


def on_tap(turn: Turn, parts: list[str]) -> None:
    """A dialog button: counts only while that dialog is the open one."""
    model = DialogModel(turn)
    name = model.state
    field, value = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
    if field == "stop" and name == "confirm_stop" and value in (YES, NO):
        turn.ack(_stop_text(turn), turn.text("button.yes_stop" if value == YES else "button.keep"))
        fire(MACHINE, model, "confirm" if value == YES else "cancel")
    elif field == "del" and name == "confirm_delete" and value in (YES, NO):
        label = turn.text("button.yes_delete" if value == YES else "button.keep")
        turn.ack(_delete_text(turn), label)
        fire(MACHINE, model, "confirm" if value == YES else "cancel")
    elif (
        field == "talk" and value == ASK and name != "talk" and turn.machine in ("idle", "checkin")
    ):
        # Not while its prompt is the open dialog: a double tap asks once.
        fire(MACHINE, model, "ask_talk")
    elif field == "talk" and name == "talk" and value in (YES, NO):
        label = turn.text("button.talk_send" if value == YES else "button.cancel")
        turn.ack(_talk_text(turn), label)
        fire(MACHINE, model, "send_talk" if value == YES else "cancel")
    elif field == "why" and name == "stop_reason" and value in (*STOP_REASONS, SKIP):
        label = turn.text("button.skip" if value == SKIP else f"stop_reason.{value}")
        turn.ack(_why_text(turn), label)
        fire(MACHINE, model, "give_reason", reason=None if value == SKIP else value)
    elif field == "lang" and name == "language" and value in LANGUAGES:
        turn.ack(_language_text(turn), t(value, "language.name"))
        fire(MACHINE, model, "choose_language", code=value)
    elif field == "tz" and name == "timezone" and value == OTHER_ZONE:
        turn.ack(zone_step.ask_text(turn), turn.text("button.other_zone"))
        fire(MACHINE, model, "other_zone")
    elif field == "tz" and name == "timezone" and (zone := zone_step.tapped_zone(value)):
        turn.ack(zone_step.ask_text(turn), zone_step.zone_label(turn, zone))
        fire(MACHINE, model, "pick_zone", zone=zone)
    elif field == "tzok" and name == "timezone_confirm" and value in (YES, NO):
        prompt = zone_step.confirm_text(turn, str(turn.state["zone"]))
        turn.ack(prompt, turn.text("button.yes" if value == YES else "button.choose_again"))
        fire(MACHINE, model, "zone_ok" if value == YES else "zone_again")
    else:
        turn.notice("chat.button_inactive")


def on_text(turn: Turn, text: str) -> bool:
    """Typed answers to the open dialog. False when the dialog has no use for text, so the
    conversation underneath can take it (a typed check-in answer, say)."""
    model = DialogModel(turn)
    name = model.state
    if name == "talk":
        fire(MACHINE, model, "send_talk", text=text)
    elif name == "stop_reason":
        fire(MACHINE, model, "give_reason", text=text)
    elif name in _CONFIRMS:
        answer = yes_or_no(turn.lang, text)
        if answer is None:
            return False
        fire(MACHINE, model, "confirm" if answer else "cancel")
    elif name == "language":
        code = language_from_text(text)
        if code is None:
            return False
        fire(MACHINE, model, "choose_language", code=code)
    elif name in ("timezone", "timezone_confirm"):
        if zone := parse_zone(text):
            fire(MACHINE, model, "pick_zone", zone=zone)
        elif name == "timezone_confirm" and (answer := yes_or_no(turn.lang, text)) is not None:
            fire(MACHINE, model, "zone_ok" if answer else "zone_again")
        elif can_fire(MACHINE, model, "hint"):
            fire(MACHINE, model, "hint")
    else:
        return False
    return True


def send_talk(turn: Turn, text: str) -> None:
    """`/talk <a sentence>`: the request to talk, sent without a dialog."""
    turn.emit(AskToTalk(_words(text), turn.at))
    turn.say(turn.text("talk.sent"))
