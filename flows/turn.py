"""One event being handled: the client's state, their context, and the intents produced so far."""

from __future__ import annotations

from datetime import datetime

from flows.context import ClientContext
from flows.crisis import match_crisis
from flows.i18n import t
from flows.intents import CrisisAlert, CrisisReplies, Intent, Keyboard, Notice, Reply
from flows.state import Machine, State


class Turn:
    """Shared by the machines' models while one event is processed; discarded afterwards."""

    __slots__ = ("_lang", "at", "ctx", "intents", "state", "therapist")

    def __init__(self, state: State, ctx: ClientContext, at: datetime) -> None:
        self.state = state
        self.ctx = ctx
        self.at = at
        self.intents: list[Intent] = []
        self.lang = ctx.lang

    @property
    def lang(self) -> str:
        """The client's language; it changes within the turn when they pick another one."""
        return self._lang

    @lang.setter
    def lang(self, code: str) -> None:
        self._lang = code
        self.therapist = self.ctx.therapist_alias or t(code, "common.your_therapist")

    def text(self, key: str, **params: object) -> str:
        """A catalog text in the client's language, with `{therapist}` filled in."""
        return t(self._lang, key, therapist=self.therapist, **params)

    @property
    def crisis_resources(self) -> str:
        return self.ctx.crisis_resources.strip() or t(self.lang, "crisis.default_resources")

    def say(self, text: str, buttons: Keyboard = (), *, edit: bool = False) -> None:
        self.intents.append(Reply(text, buttons, edit))

    def ack(self, prompt: str, choice: str) -> None:
        """Replace the tapped message with its prompt and the choice made, dropping its buttons."""
        self.intents.append(
            Reply(f"{prompt}\n\n{self.text('common.chosen', choice=choice)}", edit=True)
        )

    def notice(self, key: str) -> None:
        self.intents.append(Notice(self.text(key)))

    def emit(self, intent: Intent) -> None:
        self.intents.append(intent)

    def crisis(self, words: str | None) -> None:
        """Crisis resources to the client at once, and an urgent alert for a person: crisis
        language in `words`, or (None) a positive answer to the safety item."""
        resources = self.crisis_resources
        replies = CrisisReplies(
            therapist=self.text("crisis.reply", resources=resources),
            practice=self.text("crisis.reply_practice", resources=resources),
            nobody=self.text("crisis.reply_alone", resources=resources),
        )
        if words is None:
            self.emit(CrisisAlert("safety_item", self.at, replies, resources))
            return
        found = match_crisis(words)
        category = found.category if found is not None else None
        self.emit(CrisisAlert("text", self.at, replies, resources, category, words))

    # where the conversation is -------------------------------------------------------------
    @property
    def machine(self) -> Machine:
        return self.state["machine"]

    def switch(self, machine: Machine, state: str) -> None:
        self.state["machine"] = machine
        self.state["state"] = state
