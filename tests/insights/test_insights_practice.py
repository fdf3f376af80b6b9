"""Learning from the practice's own history: labels from endings and acknowledgements, scores,
suggested thresholds and the plain report (`insights.practice`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from insights.heldout import Row, objective
from insights.history import ClientHistory, Label, LifeEvent, history_from_backtest_line
from insights.practice import (
    CLEARLY_BETTER,
    Acknowledgement,
    Labelling,
    ended_at,
    label_for,
    report,
    run,
)
from insights.synthetic import generate
from insights.thresholds import Thresholds

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KEEP = Labelling(lapse_weeks=52)
"""The generated courses end by May: count clients active until then as still in therapy."""


def practice(clients: int, seed: int = 41) -> list[tuple[ClientHistory, datetime | None]]:
    """Generated clients as the store would hold them: no labels, and a stop for every drop-out
    (recorded a day after the first session they missed)."""
    out = []
    for line in generate(clients, seed):
        history, label = history_from_backtest_line(line)
        assert label is not None
        if label.dropout and label.at is not None and not ended_at(history):
            stop = LifeEvent("stopped", label.at + timedelta(days=1))
            history = replace(history, events=(*history.events, stop))
        out.append((history, None))
    return out


@pytest.fixture(scope="module")
def histories() -> list[tuple[ClientHistory, datetime | None]]:
    return practice(300)


def one(histories: list[tuple[ClientHistory, datetime | None]], dropout: bool) -> ClientHistory:
    return next(h for h, _ in histories if bool(ended_at(h)) == dropout)


def test_an_ending_is_dated_at_the_first_session_after_the_last_reply(histories) -> None:  # type: ignore[no-untyped-def]
    history = one(histories, dropout=True)
    ending = ended_at(history)
    assert ending is not None
    label = label_for(history, ending, [], NOW)
    assert label is not None and label.dropout and label.at is not None
    last_reply = max(
        c.answered_at for c in history.checkins if c.answered_at and c.answered_at < ending
    )
    assert last_reply < label.at <= ending
    assert label.at == ending or label.at in history.sessions


def test_a_stop_undone_is_no_ending_and_an_earlier_store_ending_wins() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    history = ClientHistory(
        client="x",
        alias="x",
        timezone="UTC",
        cadence_days=7.0,
        checkins=(),
        events=(LifeEvent("stopped", t0), LifeEvent("resumed", t0 + timedelta(days=2))),
    )
    assert ended_at(history) is None
    assert ended_at(history, also=t0 + timedelta(days=9)) == t0 + timedelta(days=9)
    blocked = replace(history, events=(*history.events, LifeEvent("blocked", t0 + timedelta(5))))
    assert ended_at(blocked) == t0 + timedelta(days=5)
    assert ended_at(blocked, also=t0 + timedelta(days=1)) == t0 + timedelta(days=1)


def test_stayers_need_follow_up_or_a_not_a_concern(histories) -> None:  # type: ignore[no-untyped-def]
    def span(history: ClientHistory) -> timedelta:
        answered = [c.answered_at for c in history.checkins if c.answered_at]
        return max(answered) - min(c.sent_at for c in history.checkins)

    history = next(h for h, _ in histories if not ended_at(h) and span(h) > timedelta(weeks=10))
    first = min(c.sent_at for c in history.checkins)
    last = max(c.answered_at for c in history.checkins if c.answered_at)
    assert label_for(history, None, [], first + timedelta(weeks=9)) == Label(False)
    assert label_for(history, None, [], last + timedelta(weeks=3)) == Label(False)
    assert label_for(history, None, [], last + timedelta(weeks=5)) is None  # lapsed
    early = first + timedelta(weeks=3)
    assert label_for(history, None, [], early) is None
    concern = Acknowledgement(history.client, early, concern=True)
    assert label_for(history, None, [concern], early) is None
    fine = Acknowledgement(history.client, early, concern=False)
    label = label_for(history, None, [fine], early)
    assert label is not None and not label.dropout


def test_the_practice_is_scored_like_a_file_and_better_thresholds_are_suggested(histories) -> None:  # type: ignore[no-untyped-def]
    deaf = replace(Thresholds(), engage_h=40.0)  # current: hardly ever alerts on silence
    result = run(histories, [], NOW, deaf, settings=[deaf, Thresholds()], labelling=KEEP)
    assert result.clients == 300 and result.unlabelled == 0
    assert result.dropouts + result.stayers == 300 and result.dropouts > 50
    rapport = result.summary["rapport"]
    assert rapport["tp"] + rapport["fn"] == result.dropouts
    assert len(result.lines) == 300
    assert result.suggested is not None and result.suggested_summary is not None
    before = objective([Row.from_summary("p", "rapport", rapport)])
    after = objective([Row.from_summary("p", "rapport", result.suggested_summary)])
    assert after >= before + CLEARLY_BETTER
    assert result.suggested == {"engage_h": 4.0}
    text = "\n".join(report(result))
    assert "Suggested thresholds: engage_h = 4.0." in text
    assert f"{result.dropouts} ended their course" in text


def test_nothing_is_suggested_from_too_few_endings(histories) -> None:  # type: ignore[no-untyped-def]
    few = [pair for pair in histories if not ended_at(pair[0])][:40] + [
        pair for pair in histories if ended_at(pair[0])
    ][:3]
    result = run(few, [], NOW, labelling=KEEP)
    assert result.dropouts == 3 and result.suggested is None
    assert "too few labelled clients" in "\n".join(report(result))


def test_nothing_is_suggested_when_the_current_setting_is_already_best(histories) -> None:  # type: ignore[no-untyped-def]
    th = Thresholds()
    result = run(histories, [], NOW, th, settings=[th, replace(th, engage_h=40.0)], labelling=KEEP)
    assert result.suggested is None
    assert "no setting tried is clearly better" in "\n".join(report(result))


def test_acknowledged_alerts_are_counted(histories) -> None:  # type: ignore[no-untyped-def]
    th = Thresholds()
    first = run(histories, [], NOW, th, settings=[th], labelling=KEEP)
    alerted = [line for line in first.lines if line["first_alert_at"]][:3]
    acks = [Acknowledgement(line["client"], NOW, concern=n == 0) for n, line in enumerate(alerted)]
    never = next(line["client"] for line in first.lines if not line["first_alert_at"])
    acks.append(Acknowledgement(never, NOW, concern=False))  # no alert before it: not counted
    result = run(histories, acks, NOW, th, settings=[th], labelling=KEEP)
    assert (result.concern, result.not_a_concern) == (1, 2)
    assert "1 marked a concern, 2 marked not a concern" in "\n".join(report(result))


def test_an_empty_practice_says_so() -> None:
    result = run([], [], NOW)
    assert result.clients == 0
    assert report(result)[-1] == "Nothing to score yet."
