r"""Onboarding, right after a client's invite was accepted: language, what Rapport is and is not,
consent, and time zone.

    new -> language -> consent -> timezone <-> timezone_confirm -> done (the conversation is idle)
                              \-> declined (nothing more is stored; the client is unbound)

If the practice already set the client's zone, consent leads straight to confirming it.
"""

from __future__ import annotations

from transitions import EventData

from flows import zone_step
from flows.i18n import LANGUAGES, supported_language, t
from flows.intents import (
    DeclineConsent,
    Keyboard,
    RecordConsent,
    SetLanguage,
    SetTimezone,
    TellTherapist,
)
from flows.keyboards import NO, ONBOARDING, OTHER_ZONE, YES, language_keyboard, yes_no_keyboard
from flows.machinery import TurnModel, build_machine, can_fire, fire
from flows.parsing import language_from_text, yes_or_no
from flows.timezones import is_zone, parse_zone
from flows.turn import Turn

# The version of the wording the client agrees to (`onboarding.about` in every catalog).
# Change it whenever that wording changes in meaning, so consent records say what was agreed to.
CONSENT_VERSION = "onboarding-consent-1"

STEPS = ("language", "consent", "timezone", "timezone_confirm")

MACHINE = build_machine(
    "onboarding",
    ["new", *STEPS, "done", "declined"],
    [
        {"trigger": "begin", "source": "new", "dest": "language"},
        {
            "trigger": "choose_language",
            "source": "language",
            "dest": "consent",
            "before": "apply_language",
        },
        {
            "trigger": "agree",
            "source": "consent",
            "dest": "timezone_confirm",
            "conditions": "has_preset_zone",
            "before": ["record_consent", "hold_preset_zone"],
        },
        {"trigger": "agree", "source": "consent", "dest": "timezone", "before": "record_consent"},
        {"trigger": "decline", "source": "consent", "dest": "declined"},
        {
            "trigger": "pick_zone",
            "source": ["timezone", "timezone_confirm"],
            "dest": "timezone_confirm",
            "before": "hold_zone",
        },
        {"trigger": "other_zone", "source": "timezone", "dest": None, "after": "ask_typing"},
        {"trigger": "zone_ok", "source": "timezone_confirm", "dest": "done", "before": "save_zone"},
        {"trigger": "zone_again", "source": "timezone_confirm", "dest": "timezone"},
        {"trigger": "remind", "source": list(STEPS), "dest": None, "after": "prompt"},
        {"trigger": "hint", "source": list(STEPS), "dest": None, "after": "prompt_hint"},
    ],
)
for _state, _callback in (
    ("language", "prompt"),
    ("consent", "prompt"),
    ("timezone", "prompt"),
    ("timezone_confirm", "prompt"),
    ("done", "finish"),
    ("declined", "say_declined"),
):
    MACHINE.get_state(_state).add_callback("enter", _callback)


def greeting_text(turn: Turn) -> str:
    return turn.text("onboarding.greeting")


def about_text(turn: Turn) -> str:
    return turn.text("onboarding.about", crisis=turn.crisis_resources)


def _consent_keyboard(turn: Turn) -> Keyboard:
    return yes_no_keyboard(turn.lang, ONBOARDING, "ok", "button.agree", "button.decline")


class OnboardingModel(TurnModel):
    """Onboarding's model: the turn alone."""

    __slots__ = ()

    # prompts -------------------------------------------------------------------------------
    def prompt(self, _: EventData) -> None:
        """Show the current step in full (also after a command interrupted onboarding)."""
        turn, step = self.turn, self.state
        if step == "language":
            turn.say(greeting_text(turn), language_keyboard(ONBOARDING))
        elif step == "consent":
            turn.say(about_text(turn), _consent_keyboard(turn))
        elif step == "timezone":
            zone_step.ask(turn, ONBOARDING)
        elif step == "timezone_confirm":
            zone = str(turn.state["zone"])
            zone_step.confirm(turn, ONBOARDING, zone, preset=zone == turn.ctx.timezone)

    def prompt_hint(self, _: EventData) -> None:
        """A short nudge with the step's buttons, when a message did not answer the step."""
        turn, step = self.turn, self.state
        if step == "language":
            turn.say(turn.text("onboarding.language_hint"), language_keyboard(ONBOARDING))
        elif step == "consent":
            turn.say(turn.text("onboarding.consent_hint"), _consent_keyboard(turn))
        else:
            zone_step.hint(turn, ONBOARDING, step)

    def ask_typing(self, _: EventData) -> None:
        zone_step.ask_typing(self.turn)

    # actions -------------------------------------------------------------------------------
    def apply_language(self, event: EventData) -> None:
        code = str(event.kwargs["code"])
        self.turn.lang = code
        self.turn.emit(SetLanguage(code))

    def record_consent(self, _: EventData) -> None:
        self.turn.emit(RecordConsent(CONSENT_VERSION, self.turn.at))

    def has_preset_zone(self, _: EventData) -> bool:
        zone = self.turn.ctx.timezone
        return zone is not None and is_zone(zone)

    def hold_preset_zone(self, _: EventData) -> None:
        self.turn.state["zone"] = self.turn.ctx.timezone

    def hold_zone(self, event: EventData) -> None:
        self.turn.state["zone"] = str(event.kwargs["zone"])

    def save_zone(self, _: EventData) -> None:
        self.turn.emit(SetTimezone(str(self.turn.state["zone"])))

    def finish(self, _: EventData) -> None:
        turn = self.turn
        turn.state["zone"] = None
        turn.switch("idle", "idle")
        turn.say(turn.text("onboarding.done"))

    def say_declined(self, _: EventData) -> None:
        turn = self.turn
        turn.emit(DeclineConsent(turn.at))
        turn.emit(TellTherapist("declined"))
        turn.say(turn.text("onboarding.declined"))
        turn.switch("ended", "declined")


def greeting_language(telegram_language: str | None, fallback: str) -> str:
    """Telegram's language when we speak it, else the language the practice set."""
    return supported_language(telegram_language) or fallback


def start(turn: Turn) -> None:
    """Begin onboarding from scratch (a fresh invite was just bound)."""
    turn.state.update(
        {"machine": "onboarding", "state": "new", "zone": None, "dialog": None, "checkin": None}
    )
    lang = greeting_language(turn.ctx.telegram_language, turn.ctx.lang)
    turn.lang = lang
    turn.emit(SetLanguage(lang))
    fire(MACHINE, OnboardingModel(turn), "begin")


def reprompt(turn: Turn) -> None:
    """Show the current step again, e.g. after /help in the middle of onboarding."""
    model = OnboardingModel(turn)
    if can_fire(MACHINE, model, "remind"):
        fire(MACHINE, model, "remind")


def on_tap(turn: Turn, parts: list[str]) -> None:
    """A button of an onboarding step: counts only if that step is the current one."""
    model = OnboardingModel(turn)
    step = model.state
    name, value = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
    if name == "lang" and step == "language" and value in LANGUAGES:
        turn.ack(greeting_text(turn), t(value, "language.name"))
        fire(MACHINE, model, "choose_language", code=value)
    elif name == "ok" and step == "consent" and value in (YES, NO):
        turn.ack(about_text(turn), turn.text("button.agree" if value == YES else "button.decline"))
        fire(MACHINE, model, "agree" if value == YES else "decline")
    elif name == "tz" and step == "timezone" and value == OTHER_ZONE:
        turn.ack(zone_step.ask_text(turn), turn.text("button.other_zone"))
        fire(MACHINE, model, "other_zone")
    elif name == "tz" and step == "timezone" and (zone := zone_step.tapped_zone(value)):
        turn.ack(zone_step.ask_text(turn), zone_step.zone_label(turn, zone))
        fire(MACHINE, model, "pick_zone", zone=zone)
    elif name == "tzok" and step == "timezone_confirm" and value in (YES, NO):
        zone = str(turn.state["zone"])
        prompt = zone_step.confirm_text(turn, zone, preset=zone == turn.ctx.timezone)
        turn.ack(prompt, turn.text("button.yes" if value == YES else "button.choose_again"))
        fire(MACHINE, model, "zone_ok" if value == YES else "zone_again")
    else:
        turn.notice("chat.button_inactive")


def on_text(turn: Turn, text: str) -> None:
    """Typed answers where they make sense (a language name, a city, yes/no), else a hint."""
    model = OnboardingModel(turn)
    step = model.state
    if step == "language" and (code := language_from_text(text)):
        fire(MACHINE, model, "choose_language", code=code)
    elif step in ("timezone", "timezone_confirm") and (zone := parse_zone(text)):
        fire(MACHINE, model, "pick_zone", zone=zone)
    elif step == "timezone_confirm" and (answer := yes_or_no(turn.lang, text)) is not None:
        fire(MACHINE, model, "zone_ok" if answer else "zone_again")
    elif can_fire(MACHINE, model, "hint"):
        fire(MACHINE, model, "hint")
