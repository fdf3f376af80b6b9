"""Parsing the fixed backtest format into histories, cadences, and threshold files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from insights.history import cadence_days_from_spec, history_from_backtest_line, needs_sessions
from insights.thresholds import Thresholds

EXAMPLE = {
    "client": "c17",
    "timezone": "Europe/Berlin",
    "cadence": "every 3 days at 19:00",
    "events": [
        {"type": "session", "at": "2026-01-05T15:00:00+01:00"},
        {"type": "checkin_sent", "id": "k1", "at": "2026-01-06T19:00:00+01:00"},
        {
            "type": "answer",
            "checkin": "k1",
            "at": "2026-01-06T19:42:00+01:00",
            "scores": {"heard": 9, "goals": 8, "approach": 8, "overall": 9, "wellbeing": 6},
            "comment": "good session",
        },
        {"type": "checkin_sent", "id": "k2", "at": "2026-01-09T19:00:00+01:00"},
        {"type": "checkin_missed", "checkin": "k2", "at": "2026-01-12T19:00:00+01:00"},
        {"type": "checkin_sent", "id": "k3", "at": "2026-01-12T19:00:00+01:00"},
        {
            "type": "answer",
            "checkin": "k3",
            "at": "2026-01-13T08:00:00+01:00",
            "scores": {"heard": 7},
            "partial": True,
            "tension": True,
            "talked_through": False,
        },
        {"type": "checkin_sent", "id": "k4", "at": "2026-01-15T19:00:00+01:00"},
        {"type": "paused", "at": "2026-01-16T10:00:00+01:00"},
        {"type": "blocked", "at": "2026-01-20T10:00:00+01:00"},
        {"type": "mystery", "at": "2026-01-20T10:00:00+01:00"},
    ],
    "label": {"dropout": True, "at": "2026-02-02T00:00:00+01:00"},
}


def test_the_design_example_parses() -> None:
    history, label = history_from_backtest_line(json.loads(json.dumps(EXAMPLE)))
    assert history.client == "c17" and history.alias == "c17"
    assert history.cadence_days == 3.0
    assert [c.id for c in history.checkins] == ["k1", "k2", "k3", "k4"]
    k1, k2, k3, k4 = history.checkins
    assert k1.status == "answered"
    assert k1.sent_at == datetime(2026, 1, 6, 18, 0, tzinfo=UTC)
    assert k1.answered_at == datetime(2026, 1, 6, 18, 42, tzinfo=UTC)
    assert k1.completed_at == k1.answered_at
    assert k1.scores["heard"] == 9 and k1.comment == "good session"
    assert k2.status == "missed" and k2.expired_at == datetime(2026, 1, 12, 18, tzinfo=UTC)
    assert k3.status == "partial" and k3.completed_at is None
    assert k3.tension is True and k3.talked_through is False
    assert k4.status == "open"
    assert [e.kind for e in history.events] == ["paused", "blocked"]
    assert history.sessions == (datetime(2026, 1, 5, 14, tzinfo=UTC),)
    assert label is not None and label.dropout is True
    assert label.at == datetime(2026, 2, 1, 23, tzinfo=UTC)


def test_a_line_without_a_label_has_none() -> None:
    line = {key: value for key, value in EXAMPLE.items() if key != "label"}
    _, label = history_from_backtest_line(line)
    assert label is None


def test_naive_times_are_read_in_the_client_zone() -> None:
    line = {
        "client": "c1",
        "timezone": "Europe/Berlin",
        "events": [{"type": "checkin_sent", "id": "k1", "at": "2026-07-01T19:00:00"}],
    }
    history, _ = history_from_backtest_line(line)
    assert history.checkins[0].sent_at == datetime(2026, 7, 1, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"events": []}, "client"),
        (
            {"client": "c1", "events": [{"type": "checkin_sent", "at": "2026-01-01T00:00:00Z"}]},
            "event 0",
        ),
        ({"client": "c1", "events": [{"type": "session", "at": "yesterday"}]}, "bad date-time"),
        (
            {
                "client": "c1",
                "events": [
                    {
                        "type": "answer",
                        "checkin": "k",
                        "at": "2026-01-01T00:00:00Z",
                        "scores": {"heard": "nine"},
                    }
                ],
            },
            "score",
        ),
        ({"client": "c1", "events": [], "label": {"dropout": "yes"}}, "label"),
    ],
)
def test_malformed_lines_are_refused_with_a_reason(line: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        history_from_backtest_line(line)


@pytest.mark.parametrize(
    ("spec", "days"),
    [
        ("every 3 days at 19:00", 3.0),
        ("every day at 09:00", 1.0),
        ("weekdays mon,thu at 18:00", 3.5),
        ("weekdays wed at 12:30", 7.0),
        ("every 7 days at 10:00 + every 7 days at 18:00", 3.5),
        ("every 2 days at 10:00; weekdays sat at 11:00", 1.0 / (1 / 2 + 1 / 7)),
        ("Every 3 Days at 19:00", 3.0),
        ("weekdays mon, thu at 18:00", 3.5),
        ("weekdays monday,thursday at 9:00", 3.5),
        ("weekdays mon,monday at 9:00", 7.0),  # one day, written twice
        ("every 1 day at 08:00", 1.0),
    ],
)
def test_cadence_from_the_spec(spec: str, days: float) -> None:
    assert cadence_days_from_spec(spec, [], []) == pytest.approx(days)


SESSIONS = [datetime(2026, 1, d, 15, tzinfo=UTC) for d in (5, 12, 19)]
SENDS = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 3, 5, 9)]


@pytest.mark.parametrize(
    ("spec", "days"),
    [
        ("after-session 24h", 7.0),
        ("before-session 2h", 7.0),
        ("midway", 7.0),
        ("after-session 24h + before-session 2h", 3.5),
        ("after-session 24h + every 7 days at 18:00", 3.5),
    ],
)
def test_session_bound_cadences_follow_the_sessions(spec: str, days: float) -> None:
    assert needs_sessions(spec)
    assert cadence_days_from_spec(spec, SENDS, SESSIONS) == pytest.approx(days)


@pytest.mark.parametrize(
    "spec",
    [
        "off",  # no schedule: the gaps between sends tell
        "every 3 days",  # not the grammar (no time): the gaps between sends tell
        "every 3.5 days at 10:00",
        "fortnightly",
        "",
    ],
)
def test_cadence_the_grammar_does_not_give_falls_back_to_the_sends(spec: str) -> None:
    assert not needs_sessions(spec)
    assert cadence_days_from_spec(spec, SENDS, SESSIONS) == 2.0


def test_only_session_bound_rules_need_the_sessions() -> None:
    assert not needs_sessions("every 3 days at 19:00 + weekdays mon at 09:00")
    assert not needs_sessions(None)


def test_cadence_from_the_sends_when_there_is_no_spec() -> None:
    sends = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 3, 5, 9)]
    assert cadence_days_from_spec(None, sends, []) == 2.0
    assert cadence_days_from_spec("after-session 2h", [], sends) == 2.0
    assert cadence_days_from_spec(None, [], []) == 7.0


def test_thresholds_from_mapping_and_files(tmp_path: Path) -> None:
    th = Thresholds.from_mapping({"thresholds": {"silence_missed_alert": 4, "cutoff": 35}})
    assert th.silence_missed_alert == 4 and th.cutoff == 35.0
    toml = tmp_path / "t.toml"
    toml.write_text("[thresholds]\nslowing_ratio = 2.5\ncombine_across_groups = true\n")
    loaded = Thresholds.from_file(toml)
    assert loaded.slowing_ratio == 2.5 and loaded.combine_across_groups is True
    js = tmp_path / "t.json"
    js.write_text(json.dumps({"engage_h": 5}))
    assert Thresholds.from_file(js).engage_h == 5.0
    assert Thresholds.from_mapping(Thresholds().to_dict()) == Thresholds()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"no_such_threshold": 1}, "unknown threshold"),
        ({"silence_missed_alert": 2.5}, "whole number"),
        ({"slowing_ratio": "high"}, "number"),
        ({"combine_across_groups": 1}, "true or false"),
        ({"silence_missed_watch": 4, "silence_missed_alert": 3}, "silence_missed_alert"),
        ({"slowing_ratio": 1.0}, "slowing_ratio"),
    ],
)
def test_bad_thresholds_are_refused(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Thresholds.from_mapping(values)
