"""Random conversations: whatever arrives in whatever order, the flow never raises, never
records an item twice for one check-in, and its state always survives JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st

from flows.checkin import COMMENT_LIMIT
from flows.conversation import ClientContext, handle, start_onboarding, words
from flows.crisis import detect_crisis
from flows.events import Command, Edited, Event, Expire, Media, Nudge, OpenCheckin, Tap, Text
from flows.instruments import DEFAULT_INSTRUMENT, SAFETY_INSTRUMENT, load_instrument
from flows.intents import (
    MAX_CALLBACK_BYTES,
    CrisisAlert,
    FinishCheckin,
    Notice,
    RecordAnswer,
    RecordComment,
    Reply,
    SetLanguage,
    SetTimezone,
)
from flows.state import load, new_state
from tests.flows.testkit import RESOURCES

ITEMS = {
    i.id: i
    for name in (DEFAULT_INSTRUMENT, SAFETY_INSTRUMENT)
    for i in load_instrument(name).flat_items()
}
TEXTS = [
    "7",
    "10",
    "11",
    "0",
    " 3 ",
    "yes",
    "no",
    "да",
    "sí",
    "berlin",
    "+3",
    "UTC-5",
    "español",
    "english",
    "hello",
    "I want to kill myself",
    "no quiero vivir",
    "x" * (COMMENT_LIMIT + 10),
    "new york",
    "Europe/Madrid",
    "maybe",
]
COMMANDS = [
    "help",
    "/pause",
    "resume",
    "stop",
    "delete",
    "mydata",
    "language",
    "timezone",
    "start",
    "bogus",
]
ARGS = ["", "7", "0", "abc", "400", "I want to kill myself"]

contexts = st.builds(
    ClientContext,
    language=st.sampled_from(["en", "es", "ru", "de"]),
    timezone=st.sampled_from([None, "Europe/Berlin", "Asia/Novosibirsk", "Not/AZone"]),
    safety_item=st.booleans(),
    crisis_resources=st.sampled_from(["", RESOURCES]),
    therapist_alias=st.sampled_from(["", "Dr. Lee", "{therapist} {x}"]),
    telegram_language=st.sampled_from([None, "es-AR", "ru", "fr"]),
)


def forged_taps() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(
            lambda c, i, v: f"c:{c}:{i}:{v}",
            st.integers(0, 7),
            st.integers(-1, 9),
            st.sampled_from(["0", "1", "3", "10", "11", "n", "s", "x"]),
        ),
        st.sampled_from(
            [
                "o:lang:es",
                "o:ok:y",
                "o:ok:n",
                "o:tz:*",
                "o:tz:Europe/Paris",
                "o:tzok:y",
                "o:tzok:n",
                "d:stop:y",
                "d:stop:n",
                "d:del:n",
                "d:lang:ru",
                "d:tz:Asia/Tokyo",
                "d:tzok:y",
                "d:tz:Nowhere/Else",
            ]
        ),
        st.text(max_size=20),
    )


ANY_EVENT = [
    "text",
    "tap",
    "tap",
    "tap",
    "tap",
    "tap",
    "command",
    "media",
    "edited",
    "open",
    "nudge",
    "expire",
]
# Mostly answering, so that check-ins reach the follow-up, the comment and the end.
ANSWERING = [*["newest"] * 12, "tap", "text", "text", "help", "media", "nudge", "expire"]


def events(
    data: st.DataObject, at: datetime, shown: list[str], latest: list[str], kinds: list[str]
) -> Event:
    kind = data.draw(st.sampled_from(kinds))
    if kind == "text":
        return Text(at, data.draw(st.one_of(st.sampled_from(TEXTS), st.text(max_size=30))))
    if kind == "newest" and latest:
        return Tap(at, data.draw(st.sampled_from(latest)), data.draw(st.integers(1, 99)))
    if kind == "help":
        return Command(at, data.draw(st.sampled_from(["help", "mydata", "language"])), "")
    if kind in ("tap", "newest"):
        # Mostly the newest buttons (so check-ins get finished), sometimes old or forged ones.
        newest = st.sampled_from(latest) if latest else forged_taps()
        older = st.sampled_from(shown) if shown else forged_taps()
        tapped = data.draw(st.one_of(newest, newest, newest, newest, older, forged_taps()))
        return Tap(at, tapped, data.draw(st.integers(1, 99)))
    if kind == "command":
        return Command(at, data.draw(st.sampled_from(COMMANDS)), data.draw(st.sampled_from(ARGS)))
    if kind == "media":
        kind = data.draw(st.sampled_from(["sticker", "photo", "voice"]))
        return Media(at, kind, data.draw(st.one_of(st.just(""), st.sampled_from(TEXTS))))
    if kind == "edited":
        return Edited(at, data.draw(st.one_of(st.sampled_from(TEXTS), st.text(max_size=30))))
    if kind == "open":
        return OpenCheckin(at, data.draw(st.integers(1, 6)))
    if kind == "nudge":
        return Nudge(at)
    return Expire(at)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    ctx=contexts,
    start=st.sampled_from(["onboarding", "idle", "none", "checkin"]),
    answering=st.sampled_from([False, False, True]),
)
def test_random_event_sequences(
    data: st.DataObject, ctx: ClientContext, start: str, answering: bool
) -> None:
    at = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # a DST weekend in Europe
    state: dict[str, Any] | None
    shown: list[str] = []
    latest: list[str] = []
    if start == "onboarding":
        outcome = start_onboarding(ctx, at)
        state, intents = outcome.state, outcome.intents
    elif start == "checkin" or answering:
        outcome = handle(new_state("idle", "idle"), OpenCheckin(at, 1), ctx)
        state, intents = outcome.state, outcome.intents
    else:
        state, intents = (new_state("idle", "idle") if start == "idle" else None), []
    answered: set[tuple[int, str]] = set()
    commented: set[int] = set()
    finished: set[int] = set()
    for _ in range(data.draw(st.integers(1, 60), label="length")):
        for intent in intents:
            if isinstance(intent, Reply) and intent.buttons:
                latest = [b.data for row in intent.buttons for b in row]
                shown.extend(latest)
            elif isinstance(intent, SetLanguage):
                ctx = replace(ctx, language=intent.code)
            elif isinstance(intent, SetTimezone):
                ctx = replace(ctx, timezone=intent.name)
        at += timedelta(minutes=data.draw(st.integers(0, 600), label="gap"))
        event = events(data, at, shown, latest, ANSWERING if answering else ANY_EVENT)
        given_state = json.dumps(state)
        outcome = handle(state, event, ctx)
        assert json.dumps(state) == given_state, "the given state must not be mutated"
        intents = outcome.intents

        encoded = json.dumps(outcome.state)
        assert json.loads(encoded) == outcome.state
        assert load(json.loads(encoded)) == outcome.state, "the state must stay loadable"
        state = json.loads(encoded)
        tally(f"reached {state['machine']}/{state['state']}")
        if state["dialog"]:
            tally(f"reached dialog {state['dialog']}")

        for intent in intents:
            if isinstance(intent, RecordAnswer):
                key = (intent.checkin_id, intent.item)
                assert key not in answered, f"{key} recorded twice"
                answered.add(key)
                item = ITEMS[intent.item]
                assert intent.value is None or item.low <= intent.value <= item.high
                assert intent.checkin_id not in finished
            elif isinstance(intent, RecordComment):
                assert intent.checkin_id not in commented
                assert 0 < len(intent.text) <= COMMENT_LIMIT
                commented.add(intent.checkin_id)
            elif isinstance(intent, FinishCheckin):
                assert intent.checkin_id not in finished
                finished.add(intent.checkin_id)
                tally(f"check-in finished, complete={intent.complete}")
            elif isinstance(intent, Reply):
                assert intent.text.strip()
                assert not intent.edit or isinstance(event, Tap)
                for row in intent.buttons:
                    for button in row:
                        assert len(button.data.encode()) <= MAX_CALLBACK_BYTES
                        assert button.label.strip()
            elif isinstance(intent, Notice):
                assert isinstance(event, Tap)
            elif isinstance(intent, CrisisAlert):
                if intent.source == "text":
                    assert detect_crisis(words(event))
                else:
                    assert isinstance(event, Tap | Text)
        if detect_crisis(words(event)):
            assert any(isinstance(i, CrisisAlert) for i in intents)
