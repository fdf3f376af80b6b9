"""The entry point: one event in, the new state and the intents out.

    outcome = handle(stored_state, event, ctx)   # then store outcome.state and carry out
                                                 # outcome.intents in one transaction

`handle` is pure and never raises for any event in any valid or invalid state; it never mutates
the state it is given. Crisis language is looked for in everything the client writes (texts,
edits, captions, a command's arguments) at every step before anything else: the client gets the
crisis resources at once, the therapist an alert, and the conversation carries on where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows import checkin, commands, dialogs, onboarding
from flows.context import ClientContext
from flows.crisis import detect_crisis
from flows.events import Command, Edited, Event, Expire, Media, Nudge, OpenCheckin, Tap, Text
from flows.intents import DiscardCheckin, Intent
from flows.keyboards import CHECKIN, DIALOG, ONBOARDING, split_data
from flows.state import State, load, new_state
from flows.turn import Turn

__all__ = ["ClientContext", "Outcome", "handle", "start_onboarding", "words"]


@dataclass
class Outcome:
    """The state to store (JSON-serialisable) and what to do, in order."""

    state: State
    intents: list[Intent]


def start_onboarding(ctx: ClientContext, at: datetime) -> Outcome:
    """Call right after a valid invite was bound: greets the client and asks for a language."""
    turn = Turn(new_state("onboarding", "new"), ctx, at)
    onboarding.start(turn)
    return Outcome(turn.state, turn.intents)


def handle(state: dict[str, Any] | None, event: Event, ctx: ClientContext) -> Outcome:
    """Feed one event to the client's conversation."""
    loaded = load(state)
    turn = Turn(loaded or new_state("onboarding", "new"), ctx, event.at)
    if loaded is None or (turn.machine == "onboarding" and turn.state["state"] == "new"):
        _without_state(turn, event)
    elif turn.machine == "ended":
        _ended(turn, event)
    else:
        _dispatch(turn, event)
    return Outcome(turn.state, turn.intents)


def _dispatch(turn: Turn, event: Event) -> None:
    match event:
        case Text(text=text):
            _text(turn, text)
        case Tap(data=data):
            _tap(turn, data)
        case Command(name=name, args=args):
            if detect_crisis(args):
                turn.crisis(args)
            commands.run(turn, name, args)
        case Edited(text=text) | Media(text=text) if detect_crisis(text):
            turn.crisis(text)
        case Media():
            turn.say(turn.text("chat.media"))
        case Edited():
            turn.say(turn.text("chat.edited"))
        case OpenCheckin(checkin_id=checkin_id, moment=moment, measures=measures):
            checkin.open_checkin(turn, checkin_id, moment, measures)
        case Nudge():
            checkin.nudge(turn)
        case Expire():
            checkin.close(turn)


def _text(turn: Turn, text: str) -> None:
    if detect_crisis(text):
        # The crisis reply is the answer: no "I didn't understand" after it. A comment with
        # crisis language is still kept, so the therapist sees the client's own words.
        turn.crisis(text)
        if dialogs.keeps_words(turn):
            dialogs.on_text(turn, text)  # a request to talk, why they stopped: still kept
        elif turn.machine == "checkin":
            checkin.on_text(turn, text, crisis=True)
    elif dialogs.is_open(turn) and dialogs.on_text(turn, text):
        pass
    elif turn.machine == "checkin":
        dialogs.passed_over(turn)
        checkin.on_text(turn, text, crisis=False)
    elif turn.machine == "onboarding":
        onboarding.on_text(turn, text)
    else:
        turn.say(turn.text("chat.idle_text"))


def _tap(turn: Turn, data: str) -> None:
    parts = split_data(data)
    owner = parts[0]
    if owner == CHECKIN:
        dialogs.passed_over(turn)
        checkin.on_tap(turn, parts)
    elif owner == DIALOG:
        dialogs.on_tap(turn, parts)
    elif owner == ONBOARDING and turn.machine == "onboarding":
        onboarding.on_tap(turn, parts)
    else:
        turn.notice("chat.button_inactive")


def _ended(turn: Turn, event: Event) -> None:
    """Stopped, declined or erased: crisis language is still answered; little else is."""
    match event:
        case Text(text=text):
            if detect_crisis(text):
                turn.crisis(text)
                if dialogs.keeps_words(turn):
                    dialogs.on_text(turn, text)
            elif not (dialogs.is_open(turn) and dialogs.on_text(turn, text)):
                turn.say(turn.text(f"ended.{turn.state['state']}"))
        case Tap(data=data):
            parts = split_data(data)
            if parts[0] == DIALOG:
                dialogs.on_tap(turn, parts)
            else:
                turn.notice("chat.button_inactive")
        case Command(name=name, args=args):
            if detect_crisis(args):
                turn.crisis(args)
            commands.run_ended(turn, name)
        case OpenCheckin(checkin_id=checkin_id):
            turn.emit(DiscardCheckin(checkin_id, turn.at))
        case Edited(text=text) | Media(text=text) if detect_crisis(text):
            turn.crisis(text)
        case Media() | Edited():
            turn.say(turn.text(f"ended.{turn.state['state']}"))
        case _:
            pass


def _without_state(turn: Turn, event: Event) -> None:
    """No usable stored state: the client is bound but has not been onboarded, so start over.
    Scheduler events change nothing; a crisis text is answered first, as always."""
    match event:
        case OpenCheckin(checkin_id=checkin_id):
            turn.emit(DiscardCheckin(checkin_id, turn.at))
        case Nudge() | Expire():
            pass
        case _:
            if detect_crisis(words(event)):
                turn.crisis(words(event))
            onboarding.start(turn)


def words(event: Event) -> str:
    """What the client wrote in an event (a text, an edit, a caption, a command's arguments)."""
    match event:
        case Text(text=text) | Edited(text=text) | Media(text=text):
            return text
        case Command(args=args):
            return args
    return ""
