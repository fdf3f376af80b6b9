"""Backtesting: the fixed output format, no look-ahead, the summary, and the acceptance figures."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from insights import rules
from insights.backtest import first_appearances, run_backtest, summarise
from insights.baseline_rule import baseline_alert_at, cutoff_alert_at, two_missed_alert_at
from insights.history import history_from_backtest_line
from insights.line_stream import stream_from_line
from insights.state import ANSWER, SENT, ClientState, Reply, observations, replay
from insights.synthetic import generate
from insights.thresholds import Thresholds
from tests.insights.builders import build, missed

SUMMARY_FIELDS = {"precision", "recall", "f1", "median_lead_days", "alerted_stayers_pct", "n"}


@pytest.fixture(scope="module")
def small_set() -> list[str]:
    return [json.dumps(client) for client in generate(60, seed=5)]


def test_output_lines_follow_the_fixed_format(small_set: list[str]) -> None:
    output = list(run_backtest(small_set))
    assert len(output) == len(small_set) + 1
    for line, source in zip(output[:-1], small_set, strict=True):
        assert set(line) == {"client", "signals", "first_alert_at"}
        assert line["client"] == json.loads(source)["client"]
        alerts = [s["at"] for s in line["signals"] if s["severity"] == "alert"]
        for signal in line["signals"]:
            assert {"code", "severity", "at", "since", "evidence", "explanation"} <= set(signal)
            assert signal["severity"] in ("info", "watch", "alert")
            assert signal["code"] in rules.RULES
            datetime.fromisoformat(signal["at"])
            assert signal["explanation"]
        if alerts:
            first = min(alerts, key=datetime.fromisoformat)
            assert datetime.fromisoformat(line["first_alert_at"]) == datetime.fromisoformat(first)
        else:
            assert line["first_alert_at"] is None
    json.dumps(output)
    summary = output[-1]["summary"]
    assert set(summary) == {"rapport", "baseline", "cutoff_only", "two_missed"}
    for method in summary.values():
        assert set(method) >= SUMMARY_FIELDS
        assert method["n"] == len(small_set)
        assert method["tp"] + method["fp"] + method["fn"] + method["tn"] == len(small_set)


def test_no_summary_without_labels(small_set: list[str]) -> None:
    unlabelled = []
    for text in small_set[:5]:
        obj = json.loads(text)
        obj.pop("label")
        unlabelled.append(json.dumps(obj))
    output = list(run_backtest(unlabelled))
    assert len(output) == 5 and all("summary" not in line for line in output)


def _silent_client(label_at: str) -> str:
    events: list[dict[str, object]] = []
    for day in range(1, 13):
        sent = f"2026-01-{day * 2:02d}T19:00:00+00:00"
        events.append({"type": "checkin_sent", "id": f"k{day}", "at": sent})
        if day <= 4:
            events.append(
                {
                    "type": "answer",
                    "checkin": f"k{day}",
                    "at": f"2026-01-{day * 2:02d}T20:00:00+00:00",
                    "scores": {"heard": 9, "goals": 9, "approach": 9, "overall": 9},
                }
            )
        else:
            events.append(
                {
                    "type": "checkin_missed",
                    "checkin": f"k{day}",
                    "at": f"2026-01-{day * 2 + 2:02d}T19:00:00+00:00",
                }
            )
    return json.dumps(
        {
            "client": "c1",
            "timezone": "UTC",
            "cadence": "every 2 days at 19:00",
            "events": events,
            "label": {"dropout": True, "at": label_at},
        }
    )


def test_an_alert_counts_only_before_the_drop_out() -> None:
    early = summarise([_silent_client("2026-01-31T00:00:00+00:00")])["rapport"]
    assert early["tp"] == 1 and early["median_lead_days"] is not None
    assert early["median_lead_days"] > 0
    late = summarise([_silent_client("2026-01-05T00:00:00+00:00")])["rapport"]
    assert late["tp"] == 0 and late["fn"] == 1 and late["median_lead_days"] is None


def test_a_malformed_line_names_its_number() -> None:
    with pytest.raises(ValueError, match="line 2"):
        list(run_backtest([_silent_client("2026-01-31T00:00:00+00:00"), '{"events": []}']))


def test_the_fast_reader_agrees_with_the_history_reader(small_set: list[str]) -> None:
    for text in small_set:
        obj = json.loads(text)
        fast = stream_from_line(obj)
        history, label = history_from_backtest_line(obj)
        slow = observations(history)
        assert fast.cadence_days == pytest.approx(history.cadence_days)
        assert fast.dropout == (label.dropout if label else None)
        assert [(t, k) for t, k, _ in fast.stream] == [(t, k) for t, k, _ in slow]
        for (_, _, a), (_, _, b) in zip(fast.stream, slow, strict=True):
            if isinstance(a, Reply) and isinstance(b, Reply):
                assert (a.sent, dict(a.scores), a.comment, a.partial, a.tension) == (
                    b.sent,
                    dict(b.scores),
                    b.comment,
                    b.partial,
                    b.tension,
                )
            else:
                assert a == b


def test_incremental_evaluation_matches_a_full_replay(small_set: list[str]) -> None:
    th = Thresholds()
    for text in small_set[:25]:
        history, _ = history_from_backtest_line(json.loads(text))
        state = ClientState(history.cadence_days)
        evaluator = rules.Evaluator(state, th)
        current: set[tuple[str, int]] = set()
        for t, kind, subject in observations(history):
            state.observe(t, kind, subject)
            hits = evaluator.after(kind, t)
            if hits is not None:
                current = {(h.code, h.severity) for h in hits}
            if kind == SENT:
                continue
            full = {(h.code, h.severity) for h in rules.evaluate(replay(history, t), t, th)}
            assert current == full, (history.client, t)


def test_first_appearances_do_not_look_ahead(small_set: list[str]) -> None:
    th = Thresholds()
    for text in small_set[:20]:
        obj = json.loads(text)
        stream = stream_from_line(obj).stream
        answers = [t for t, kind, _ in stream if kind == ANSWER]
        if len(answers) < 6:
            continue
        cut = answers[len(answers) // 2]
        whole = first_appearances(stream, stream_from_line(obj).cadence_days, th)
        head = first_appearances(
            [o for o in stream if o[0] <= cut], stream_from_line(obj).cadence_days, th
        )
        early = {key: t for key, (t, _) in whole.items() if t <= cut}
        assert early == {key: t for key, (t, _) in head.items()}


def test_workers_give_the_same_output_in_the_same_order(small_set: list[str]) -> None:
    assert list(run_backtest(small_set, workers=2)) == list(run_backtest(small_set))


def test_thresholds_change_the_outcome(small_set: list[str]) -> None:
    strict = Thresholds.from_mapping(
        {
            "silence_missed_alert": 99,
            "engage_h": 0,
            "falling_h": 99,
            "combine_within_group": 99,
            "confrontation_alert_count": 0,
        }
    )
    lenient = summarise(small_set)["rapport"]
    quiet = summarise(small_set, strict)["rapport"]
    assert quiet["tp"] + quiet["fp"] < lenient["tp"] + lenient["fp"]


def test_the_simple_rules_on_a_hand_built_history() -> None:
    from tests.insights.builders import answered

    history = build([answered(38), answered(38), answered(37), missed(), missed(), answered(30)])
    assert baseline_alert_at(history) == history.checkins[2].answered_at
    assert cutoff_alert_at(history) == history.checkins[5].answered_at
    assert two_missed_alert_at(history) == history.checkins[4].expired_at
    steady = build([answered(38), answered(39), answered(40)])
    assert baseline_alert_at(steady) is None and two_missed_alert_at(steady) is None


@pytest.fixture(scope="module")
def unseen() -> list[str]:
    """A data set the thresholds were not tuned on (they were tuned on seed 7)."""
    return [json.dumps(client) for client in generate(400, seed=12)]


def test_acceptance_rapport_beats_the_simple_rules_with_a_week_of_warning(
    unseen: list[str],
) -> None:
    """The issue's acceptance, on a data set the thresholds were not tuned on (seed 12)."""
    summary = summarise(unseen)
    rapport = summary["rapport"]
    for rule in ("baseline", "cutoff_only", "two_missed"):
        assert rapport["f1"] > summary[rule]["f1"], rule
    assert rapport["median_lead_days"] >= 7.0
    assert rapport["alerted_stayers_pct"] < summary["cutoff_only"]["alerted_stayers_pct"] / 3
    assert rapport["precision"] > summary["baseline"]["precision"] + 0.15


PRESET = Path(__file__).resolve().parents[2] / "insights" / "presets" / "fewer_alarms.toml"


def test_the_fewer_alarms_preset_trades_warning_time_for_fewer_false_alarms(
    unseen: list[str],
) -> None:
    default = summarise(unseen)["rapport"]
    summary = summarise(unseen, Thresholds.from_file(PRESET))
    quiet = summary["rapport"]
    assert quiet["alerted_stayers_pct"] < 15.0 < default["alerted_stayers_pct"]
    assert quiet["precision"] > default["precision"]
    assert quiet["median_lead_days"] < default["median_lead_days"]
    assert quiet["f1"] > summary["two_missed"]["f1"]
