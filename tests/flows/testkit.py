"""Helpers for the flow tests: a scripted client whose state goes through JSON between events."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flows.conversation import ClientContext, Outcome, handle, start_onboarding
from flows.events import Command, Edited, Event, Expire, Media, Nudge, OpenCheckin, Tap, Text
from flows.intents import CrisisAlert, Intent, Notice, Reply, SetLanguage, SetTimezone
from flows.moments import Moment
from flows.state import new_state

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin
RESOURCES = "Samaritans: call 116 123, free, day or night."


def make_ctx(**overrides: Any) -> ClientContext:
    base = ClientContext(
        language="en",
        timezone="Europe/Berlin",
        crisis_resources=RESOURCES,
        therapist_alias="Dr. Lee",
    )
    return replace(base, **overrides)


class Client:
    """Drives one conversation the way the Telegram layer would: state stored as JSON."""

    def __init__(self, ctx: ClientContext | None = None, state: dict[str, Any] | None = None):
        self.ctx = ctx or make_ctx()
        self.stored: str | None = json.dumps(state) if state is not None else None
        self.at = START
        self.message_id = 100
        self.last: list[Intent] = []

    # state ---------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        assert self.stored is not None
        state: dict[str, Any] = json.loads(self.stored)
        return state

    def _keep(self, outcome: Outcome) -> list[Intent]:
        encoded = json.dumps(outcome.state)
        assert json.loads(encoded) == outcome.state, "state must round-trip through JSON"
        self.stored = encoded
        self.last = outcome.intents
        # What the Telegram layer does: settings the flow changed are part of the next context.
        for intent in outcome.intents:
            if isinstance(intent, SetLanguage):
                self.ctx = replace(self.ctx, language=intent.code)
            elif isinstance(intent, SetTimezone):
                self.ctx = replace(self.ctx, timezone=intent.name)
        return outcome.intents

    # events --------------------------------------------------------------------------------
    def tick(self, seconds: float = 30) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at

    def start(self) -> list[Intent]:
        return self._keep(start_onboarding(self.ctx, self.at))

    def send(self, event: Event) -> list[Intent]:
        before = self.stored
        outcome = handle(json.loads(before) if before is not None else None, event, self.ctx)
        assert self.stored == before, "handle must not mutate the state it was given"
        return self._keep(outcome)

    def text(self, text: str) -> list[Intent]:
        return self.send(Text(self.tick(), text))

    def tap(self, data: str) -> list[Intent]:
        self.message_id += 1
        return self.send(Tap(self.tick(), data, self.message_id))

    def command(self, name: str, args: str = "") -> list[Intent]:
        return self.send(Command(self.tick(), name, args))

    def open(self, checkin_id: int, moment: Moment = "session") -> list[Intent]:
        return self.send(OpenCheckin(self.tick(), checkin_id, moment))

    def nudge(self) -> list[Intent]:
        return self.send(Nudge(self.tick()))

    def expire(self) -> list[Intent]:
        return self.send(Expire(self.tick()))

    def media(self, kind: str = "sticker", caption: str = "") -> list[Intent]:
        return self.send(Media(self.tick(), kind, caption))

    def edited(self, text: str = "") -> list[Intent]:
        return self.send(Edited(self.tick(), text))


def idle_client(ctx: ClientContext | None = None) -> Client:
    return Client(ctx, new_state("idle", "idle"))


def replies(intents: list[Intent]) -> list[Reply]:
    """What the client is told, a crisis reply as when their own therapist could be alerted
    (the executor picks the true one of `CrisisAlert.replies`)."""
    return [
        Reply(i.replies.therapist) if isinstance(i, CrisisAlert) else i
        for i in intents
        if isinstance(i, Reply | CrisisAlert)
    ]


def alerts(intents: list[Intent]) -> list[tuple[str, datetime]]:
    """The urgent alerts asked for: (source, at) each."""
    return [(i.source, i.at) for i in intents if isinstance(i, CrisisAlert)]


def of_type(intents: list[Intent], kind: type) -> list[Any]:
    return [i for i in intents if isinstance(i, kind)]


def notices(intents: list[Intent]) -> list[str]:
    return [i.text for i in intents if isinstance(i, Notice)]


def last_keyboard_data(intents: list[Intent]) -> list[str]:
    """Callback data of the last message sent with buttons."""
    for reply in reversed(replies(intents)):
        if reply.buttons:
            return [b.data for row in reply.buttons for b in row]
    return []


def all_text(intents: list[Intent]) -> str:
    return "\n".join(r.text for r in replies(intents))
