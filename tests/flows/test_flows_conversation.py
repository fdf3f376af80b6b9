"""The entry point as a whole: purity, unusable stored states, crisis in dialogs, the bench."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flows.crisis import match_crisis
from flows.i18n import t
from flows.intents import CrisisAlert, DiscardCheckin, Intent
from tests.flows.testkit import (
    RESOURCES,
    Client,
    alerts,
    idle_client,
    last_keyboard_data,
    make_ctx,
    of_type,
    replies,
)

ROOT = Path(__file__).resolve().parents[2]


def test_flows_import_neither_telegram_nor_sqlalchemy_nor_the_other_layers() -> None:
    code = (
        "import sys, flows.conversation, flows.instruments, flows.crisis, flows.i18n\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'telegram', 'sqlalchemy', 'bot', 'storage', 'insights'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == ""


def test_an_unusable_stored_state_starts_over() -> None:
    garbled_states: list[Any] = [
        {"version": 99},
        {"version": 1, "machine": "checkin", "state": "asking"},
        {"version": 1, "machine": "idle", "state": "idle", "checkin": "x"},
        {"version": 1, "machine": "idle", "state": "dancing"},
        [],
    ]
    for garbled in garbled_states:
        client = Client(make_ctx(timezone=None), garbled)
        intents = client.text("hello")
        assert client.state["machine"] == "onboarding", garbled
        assert last_keyboard_data(intents) == ["o:lang:en", "o:lang:es", "o:lang:ru"]


def test_scheduler_events_without_state_do_not_start_onboarding() -> None:
    client = Client(make_ctx(timezone=None))
    assert client.open(4) == [DiscardCheckin(4, client.at)]
    assert client.nudge() == [] and client.expire() == []
    assert client.state["state"] == "new"
    assert last_keyboard_data(client.text("hi"))[0] == "o:lang:en"


def test_crisis_language_typed_into_a_dialog_gets_only_the_crisis_reply() -> None:
    client = idle_client()
    client.command("timezone")
    before = client.state
    intents = client.text("I want to end it all")
    assert alerts(intents) == [("text", client.at)]
    assert len(replies(intents)) == 1 and RESOURCES in replies(intents)[0].text
    assert client.state == before


def test_the_benchmark_runs_complete_check_ins() -> None:
    spec = importlib.util.spec_from_file_location("flow_bench", ROOT / "bench" / "flow_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    count, cpu, wall = bench.run(3)
    assert count == 27 and cpu >= 0 and wall > 0


def test_crisis_language_after_a_command_is_answered_and_the_command_still_runs() -> None:
    for client in (idle_client(), mid_checkin(), stopped(), Client(make_ctx(timezone=None))):
        intents = client.command("help", "I want to kill myself")
        assert alerts(intents) == [("text", client.at)]
        first, *rest = replies(intents)
        assert RESOURCES in first.text and rest, "the command's own answer follows"
    assert alerts(idle_client().command("pause", "3")) == []


@pytest.mark.parametrize("how", ["edited", "caption"])
def test_crisis_language_in_an_edit_or_a_caption_is_answered_wherever_the_client_is(
    how: str,
) -> None:
    """Flows act only on original texts, but crisis words added by an edit, or written under a
    photo, are still words the client wrote: resources at once and an alert, in any state.
    Other edits and media get the usual note."""

    def send(client: Client, words: str) -> list[Intent]:
        return client.edited(words) if how == "edited" else client.media("photo", words)

    idle = idle_client()
    usual = t("en", "chat.edited" if how == "edited" else "chat.media")
    assert replies(send(idle, "see you tuesday"))[0].text == usual
    for client in (idle, mid_checkin(), stopped(), Client(make_ctx(timezone=None))):
        before = client.state["machine"] if client.stored is not None else "onboarding"
        intents = send(client, "actually I want to kill myself")
        assert alerts(intents) == [("text", client.at)], before
        assert RESOURCES in replies(intents)[0].text
        assert client.state["machine"] == before


def mid_checkin() -> Client:
    client = idle_client()
    client.open(1)
    return client


def stopped() -> Client:
    client = idle_client()
    client.command("stop")
    client.tap("d:stop:y")
    assert client.state["machine"] == "ended", client.state
    return client


def test_a_crisis_alert_says_what_kind_and_offers_a_true_reply_for_each_outcome() -> None:
    """The flow cannot know who can be reached: it gives the executor a reply for each
    outcome, and only the one for a therapist who was told says so."""
    client = idle_client()
    (alert,) = of_type(client.text("I have pills saved up to end my life"), CrisisAlert)
    found = match_crisis("I have pills saved up to end my life")
    assert found is not None
    assert (alert.category, alert.words) == (found.category, "I have pills saved up to end my life")
    told, practice, nobody = alert.replies.therapist, alert.replies.practice, alert.replies.nobody
    assert all(RESOURCES in reply for reply in (told, practice, nobody))
    assert "Dr. Lee" in told and "Dr. Lee" not in practice and "Dr. Lee" not in nobody
    assert "know" in practice.split(RESOURCES)[1] and "know" not in nobody.split(RESOURCES)[1]
    assert alert.resources == RESOURCES
