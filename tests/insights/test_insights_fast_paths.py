"""The backtest's shortcuts give exactly what the obvious computations give.

The backtest carries state from event to event, keeps running sums, re-runs only the rules an
event can change, reads lines with its own fast reader and converts times with its own
arithmetic. Each shortcut is held here to the straightforward version, to the bit.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insights import backtest, lexicon, scenarios
from insights.backtest import findings_by_replay, first_appearances, output_line
from insights.cusum import WindowCusum
from insights.history import history_from_backtest_line, posix
from insights.line_stream import stream_from_line
from insights.state import observations
from insights.synthetic import generate
from insights.thresholds import Thresholds

ALTERNATIVE = Thresholds.from_mapping(
    {
        "combine_across_groups": True,
        "low_alert_in_row": 3,
        "item_alert_in_row": 2,
        "rupture_alert_count": 2,
        "baseline_max": 3,
        "falling_noise_z": 0,
        "engage_k": 1.0,
        "slowing_window": 2,
        "partial_watch": 1,
    }
)


def _compare(clients: list[dict[str, object]], th: Thresholds) -> int:
    """How many clients' output lines differ between the two evaluations (replay read slowly)."""
    differing = 0
    for obj in clients:
        fast = stream_from_line(obj)
        history, _ = history_from_backtest_line(obj)
        slow = findings_by_replay(observations(history), history.cadence_days, th)
        quick = first_appearances(fast.stream, fast.cadence_days, th)
        if output_line(fast, quick) != output_line(fast, slow):
            differing += 1
    return differing


def test_the_incremental_backtest_equals_replaying_every_event_from_scratch() -> None:
    clients = list(generate(300, seed=21))
    assert sum(len(c["events"]) for c in clients) > 300 * 20
    assert _compare(clients, Thresholds()) == 0


def test_it_does_so_under_other_thresholds_too() -> None:
    assert _compare(list(generate(80, seed=22)), ALTERNATIVE) == 0


def test_it_does_so_when_silence_depends_on_the_sessions() -> None:
    """Sessions are in both readers' streams; holidays skip them (abrupt), and with these
    settings a skipped session and a session held while silent change the silence signal."""
    th = replace(
        Thresholds(), silence_session_alert=2, pattern_needs_session=True, away_is_watch=True
    )
    clients = list(scenarios.generate("abrupt", 120, seed=24))
    assert _compare(clients, th) == 0
    reasons = set()
    for obj in clients:
        fast = stream_from_line(obj)
        history, _ = history_from_backtest_line(obj)
        assert [o[:2] for o in fast.stream] == [o[:2] for o in observations(history)]
        for (code, _), (_, hit) in first_appearances(fast.stream, fast.cadence_days, th).items():
            if code == "silence":
                reasons.add(hit.evidence["reason"])
    assert "sessions" in reasons


def test_it_does_so_when_a_habitual_misser_s_pattern_needs_a_partner() -> None:
    """A pattern left at watch and escalated beside slowing or unfinished check-ins (fading)."""
    th = replace(Thresholds(), pattern_habit_after=6)
    clients = list(scenarios.generate("fading", 80, seed=23))
    assert _compare(clients, th) == 0
    escalated = 0
    for obj in clients:
        fast = stream_from_line(obj)
        for (code, severity), (_, hit) in first_appearances(
            fast.stream, fast.cadence_days, th
        ).items():
            if code == "silence" and severity == 2 and hit.evidence.get("reason") == "pattern":
                escalated += "with" in hit.evidence
    assert escalated > 0


def test_the_replay_reference_is_not_vacuous() -> None:
    """The reference does find signals, at several severities, on these clients."""
    found = set()
    for obj in generate(40, seed=21):
        history, _ = history_from_backtest_line(obj)
        found |= set(findings_by_replay(observations(history), history.cadence_days, Thresholds()))
    assert {severity for _, severity in found} == {0, 1, 2}
    assert len({code for code, _ in found}) >= 8


def _window_cusum(steps: list[float], start: int, k: float) -> tuple[float, int]:
    score, first = 0.0, start
    for index in range(start, len(steps)):
        score = max(0.0, score + steps[index] - k)
        if score <= 0:
            first = index + 1
    return score, first


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=40),
    window=st.integers(1, 12),
    k=st.floats(0, 2),
    rekey=st.integers(0, 40),
    asked=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_the_running_cusum_equals_summing_the_window_each_time(
    steps: list[float], window: int, k: float, rekey: int, asked: list[bool]
) -> None:
    """Also when it is not asked at every check-in: it then catches up several steps at once."""
    cusum = WindowCusum()
    for end in range(1, len(steps) + 1):
        start = max(0, end - window)
        key = "after" if end > rekey else "before"
        if asked[end - 1] or end == len(steps):
            expected = _window_cusum(steps[:end], start, k)
            assert cusum.over(key, start, end, steps.__getitem__, k) == expected


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2100, 1, 1)),
    zone=st.one_of(
        st.just(UTC),
        st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
        st.integers(-50_000, 50_000).map(lambda s: timezone(timedelta(seconds=s))),
        st.just(ZoneInfo("Europe/Moscow")),
        st.just(ZoneInfo("America/Los_Angeles")),
    ),
)
def test_posix_is_timestamp_to_the_bit(moment: datetime, zone: timezone) -> None:
    aware = moment.replace(tzinfo=zone)
    assert posix(aware) == aware.timestamp()


@pytest.mark.parametrize(
    "text",
    [
        "this is a waste of time",
        "not a waste of time at all",
        "You don't listen",
        "you never listen!",
        "no, it's fine",
        "Pérdida de tiempo",
        "не помогает",
        "pointless-ish",
        "ok",
        "",
    ],
)
def test_the_first_word_filter_agrees_with_the_full_match(text: str) -> None:
    assert lexicon.is_confrontational(text) == _full_match(text)


def _full_match(text: str) -> bool:
    """The lexicon's rule without the first-word filter: every phrase match, negation-checked."""
    plain = lexicon.normalise(text)
    return any(
        not any(
            word in lexicon._NEGATIONS
            for word in lexicon._WORD.findall(plain[: m.start()])[-lexicon._NEGATION_REACH :]
        )
        for m in lexicon._pattern().finditer(plain)
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "not",
                "you",
                "don't",
                "listen",
                "a",
                "waste",
                "of",
                "time",
                "no",
                "point",
                "it's",
                "helping",
                "never",
                "—",
                "Inútil",
                "useless.",
                "'going",
                "nowhere'",
            ]
        ),
        max_size=8,
    )
)
def test_the_first_word_filter_never_hides_a_match(words: list[str]) -> None:
    text = " ".join(words)
    assert lexicon.is_confrontational(text) == _full_match(text)


def test_a_short_input_stays_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> int:
        raise AssertionError("asked how many processes for a short input")

    monkeypatch.setattr(backtest, "auto_workers", refuse)
    lines = [json.dumps(c) for c in generate(30, seed=23)]
    assert len(list(backtest.run_backtest(lines))) == 31


def test_a_busy_machine_gets_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backtest.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(backtest.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert backtest.auto_workers() == 1
    monkeypatch.setattr(backtest.os, "getloadavg", lambda: (0.3, 1.0, 1.0))
    assert backtest.auto_workers() == 2
