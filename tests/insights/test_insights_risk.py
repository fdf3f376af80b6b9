"""Risk stays in view: urgent alerts and blocking since the last session open the digest."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from insights.chart import render_chart
from insights.digest import build_digest, caption, render_text, to_json
from insights.history import CrisisEvent
from tests.insights.builders import T0, after_last, answered, build

STEADY = [answered(38, comment="fine") for _ in range(6)]


def _with_crisis(**crisis: object) -> tuple[object, object]:
    history = build(STEADY, events=[("blocked", 16.5)], sessions=[-1, 7])
    at = T0 + timedelta(days=15, hours=3, minutes=4)
    history = replace(history, crises=(CrisisEvent(at=at, **crisis),))  # type: ignore[arg-type]
    return history, at


def test_a_crisis_opens_the_digest_and_makes_it_an_alert_whatever_the_scores() -> None:
    history, at = _with_crisis(category="death_wish", alerted="therapist")
    now = after_last(history) + timedelta(days=1)
    digest = build_digest(history, now, now + timedelta(hours=3), include_comments=False)

    assert digest.level == "alert" and not digest.all_well
    lines = "\n".join(render_text(digest, "Europe/Madrid")).splitlines()
    assert lines[1] == "Since the last session:"
    local = at.astimezone(ZoneInfo("Europe/Madrid"))
    assert lines[2] == (
        f"‼ Urgent alert, {local:%a} {local.day} {local:%b, %H:%M}: the client wrote about "
        "wishing to be dead. The therapist was alerted."
    )
    assert lines[3].startswith("‼ Blocked the bot, ")
    whole = "\n".join(lines)
    assert "No signs of withdrawal" not in whole
    assert "“fine”" not in whole  # comments off: the block needs no client words
    # the headline, in the caption and atop the text, names the risk first
    head = caption(digest, "Europe/Madrid").splitlines()[0]
    assert head == lines[0] and head.startswith("Digest for A.B.: Urgent alert ")
    assert "blocked the bot" in head
    assert sum("Blocked the bot" in line for line in lines) == 1, "blocking listed once"

    data = to_json(digest)
    assert data["level"] == "alert" and data["all_well"] is False
    assert data["risks_since"] == "last_session"
    assert [r["kind"] for r in data["risks"]] == ["crisis", "blocked"]
    assert data["risks"][0] == {
        "kind": "crisis",
        "at": at.isoformat(),
        "category": "death_wish",
        "alerted": "therapist",
        "acknowledged": None,
    }


def test_without_the_crisis_the_same_client_is_all_well() -> None:
    history = build(STEADY, sessions=[-1, 7])
    now = after_last(history) + timedelta(days=1)
    digest = build_digest(history, now, None)
    assert digest.all_well and digest.level == "none" and digest.risks == ()


def test_only_risk_since_the_last_session_and_up_to_now_is_shown() -> None:
    history, at = _with_crisis(source="safety_item", alerted="safety_contact")
    now = after_last(history) + timedelta(days=1)
    later = build_digest(
        replace(history, sessions=(*history.sessions, at + timedelta(days=2))),
        now + timedelta(days=3),
        None,
    )
    assert later.risks == ()
    before = build_digest(history, at - timedelta(minutes=1), None)
    assert before.risks == ()
    digest = build_digest(history, now, None, lang="es")
    text = "\n".join(render_text(digest))
    assert "Desde la última sesión:" in text
    assert "pregunta de seguridad" in text and "contacto de seguridad" in text
    assert digest.risks[0].kind == "safety_item"


def test_with_no_session_before_the_risk_window_is_the_whole_history() -> None:
    history, _ = _with_crisis()
    history = replace(history, sessions=())
    digest = build_digest(history, after_last(history), None, lang="ru")
    text = "\n".join(render_text(digest))
    assert "С начала опросов:" in text and "написал(а) то, что может означать риск" in text
    assert to_json(digest)["risks_since"] == "start"


@pytest.mark.parametrize("lang", ["en", "es", "ru"])
def test_the_chart_marks_crisis_events_in_the_legend(lang: str) -> None:
    history, _ = _with_crisis()
    now = after_last(history)
    plain, marked = io.BytesIO(), io.BytesIO()
    render_chart(replace(history, crises=()), now, plain, lang=lang)
    render_chart(history, now, marked, lang=lang)
    assert plain.getvalue() != marked.getvalue()
