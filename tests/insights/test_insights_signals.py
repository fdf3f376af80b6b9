"""Each signal at, just below and just above its thresholds, on hand-built histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from insights import signals
from insights.signals import Signal, detect, is_alerting, rank_and_merge
from insights.thresholds import Thresholds
from tests.insights.builders import T0, after_last, answered, build, items_for, missed

TH = Thresholds()
QUIET = replace(TH, engage_h=0.0)
"""The defaults without the accumulated-disengagement alert, to test the other paths alone."""


def steady(n: int, total: int = 38, delay: float = 1.0) -> list:
    return [answered(total, delay_hours=delay) for _ in range(n)]


# --- silence -------------------------------------------------------------------------------


def test_one_missed_check_in_is_not_silence() -> None:
    history = build([*steady(4), missed()])
    assert signals.silence(history, after_last(history), QUIET) is None


def test_missed_in_a_row_at_the_watch_threshold_is_a_watch() -> None:
    n = QUIET.silence_missed_watch
    history = build([*steady(4), *[missed() for _ in range(n)]])
    found = signals.silence(history, after_last(history), QUIET)
    assert found is not None
    assert found.severity == "watch"
    assert found.evidence["missed_in_row"] == n
    assert found.since == history.checkins[4].sent_at
    assert f"{n} check-ins in a row unanswered" in found.explanation


def test_missed_in_a_row_at_the_alert_threshold_is_an_alert() -> None:
    n = QUIET.silence_missed_alert
    history = build([*steady(4), *[missed() for _ in range(n)]])
    found = signals.silence(history, after_last(history), QUIET)
    assert found is not None and found.severity == "alert"
    history = build([*steady(4), *[missed() for _ in range(n - 1)]])
    below = signals.silence(history, after_last(history), QUIET)
    assert below is not None and below.severity == "watch"


def test_an_answer_ends_the_run_of_missed_check_ins() -> None:
    history = build([*steady(4), missed(), missed(), answered()])
    found = signals.silence(history, after_last(history), QUIET)
    assert found is None or found.evidence["reason"] != "missed"
    history = build([*steady(8), missed(), missed(), answered(), answered(), answered()])
    assert signals.silence(history, after_last(history), QUIET) is None


def test_no_reply_for_longer_than_two_cadence_intervals() -> None:
    history = build([*steady(4), answered(open=True)])
    last_reply = history.checkins[3].answered_at
    assert last_reply is not None
    limit = last_reply + timedelta(days=QUIET.silence_cadences * history.cadence_days)
    assert signals.silence(history, limit, QUIET) is None
    found = signals.silence(history, limit + timedelta(minutes=1), QUIET)
    assert found is not None and found.severity == "watch"
    assert found.evidence["reason"] == "quiet"
    assert "No reply for 6 days" in found.explanation


def test_falling_response_rate() -> None:
    assert QUIET.silence_rate_window == 4 and QUIET.silence_rate_low == 0.5
    half = build([*steady(8), answered(), missed(), answered(), missed(), answered(open=True)])
    found = signals.silence(half, half.checkins[-1].sent_at, QUIET)
    assert found is not None and found.evidence["reason"] == "rate"
    assert found.evidence["answered"] == 2
    assert "Answered 2 of the last 4 check-ins, down from 100% before" in found.explanation
    three_quarters = build([*steady(8), answered(), answered(), answered(), missed()])
    assert signals.silence(three_quarters, after_last(three_quarters), QUIET) is None


def test_accumulated_disengagement_is_an_alert_but_one_miss_is_not() -> None:
    th = replace(TH, engage_k=1.0, engage_h=4.0, engage_missed=2.5, delay_sigma=1.0)
    one_miss = build([*steady(4), missed()])
    assert signals.silence(one_miss, after_last(one_miss), th) is None
    # two misses: 2 x (2.5 - 1.0) = 3.0 < 4.0; a slow reply (z = ln 100 > cap 3) adds 2.0 more
    two = build([*steady(4), missed(), missed()])
    found = signals.silence(two, after_last(two), th)
    assert found is None or found.evidence["reason"] != "pattern"
    drifting = build([*steady(4), missed(), answered(delay_hours=100.0), missed()])
    found = signals.silence(drifting, after_last(drifting), th)
    assert found is not None and found.severity == "alert"
    assert found.evidence["reason"] == "pattern"
    assert found.evidence["missed_recent"] == 2 and found.evidence["late_recent"] == 1
    assert "going quiet" in found.explanation


PATTERN = replace(
    TH, engage_k=1.0, engage_h=4.0, engage_missed=2.5, delay_sigma=1.0, pattern_habit_after=6
)
"""Two misses around one very slow reply make a disengagement pattern; a client's habit of
missing counts after six check-ins."""
HABIT = [*steady(4), missed(), *steady(3)]
"""Eight check-ins with one miss among them: a client known to miss now and then."""


def test_a_pattern_from_a_client_who_never_missed_is_an_alert() -> None:
    history = build([*steady(8), missed(), answered(delay_hours=100.0), missed()])
    found = signals.silence(history, after_last(history), PATTERN)
    assert found is not None and found.evidence["reason"] == "pattern"
    assert found.severity == "alert"


def test_a_pattern_from_a_client_who_misses_now_and_then_alone_is_a_watch() -> None:
    history = build([*HABIT, missed(), answered(delay_hours=100.0), missed()])
    now = after_last(history)
    found = signals.silence(history, now, PATTERN)
    assert found is not None and found.evidence["reason"] == "pattern"
    assert found.severity == "watch"
    assert not is_alerting(detect(history, now, PATTERN))
    assert set(found.evidence) == {
        "cadence_days",
        "reason",
        "missed_recent",
        "late_recent",
        "window",
        "score",
    }  # the evidence keeps its shape whatever the severity
    old = replace(PATTERN, pattern_habit_after=0)  # off (the default): every pattern alerts
    found = signals.silence(history, now, old)
    assert found is not None and found.severity == "alert"


def test_the_habit_counts_only_once_enough_check_ins_came_before_the_pattern() -> None:
    short = build(
        [*steady(2), missed(), *steady(2), missed(), answered(delay_hours=100.0), missed()]
    )
    found = signals.silence(short, after_last(short), PATTERN)
    assert found is not None and found.evidence["reason"] == "pattern"
    assert found.severity == "alert"  # 5 check-ins before the pattern: habit not known yet


def test_a_pattern_with_another_sign_of_disengagement_is_an_alert_for_anyone() -> None:
    steps = [*HABIT, missed(), answered(partial=True), answered(partial=True), missed()]
    history = build(steps)
    found = detect(history, after_last(history), PATTERN)
    by_code = {s.code: s for s in found}
    assert by_code["silence"].evidence["reason"] == "pattern"
    assert by_code["silence"].severity == "alert"
    assert by_code["partial"].severity == "alert"
    assert by_code["silence"].evidence["with"] == "partial"


def test_three_misses_in_a_row_stay_an_alert_for_a_client_who_misses_now_and_then() -> None:
    history = build([*HABIT, missed(), missed(), missed()])
    found = signals.silence(history, after_last(history), replace(TH, pattern_habit_after=6))
    assert found is not None and found.severity == "alert"


def test_silence_is_not_reported_while_paused() -> None:
    history = build([*steady(4), missed(), missed(), missed()], events=[("paused", 12.5)])
    now = after_last(history)
    assert signals.silence(history, now, QUIET) is None
    paused = signals.paused(history, now, QUIET)
    assert paused is not None and paused.severity == "watch"


# --- silent though sessions go on ----------------------------------------------------------

WEEKLY = [6.5, 13.5]
"""Two sessions a week apart (days after the first check-in) before the silence begins."""
LOUD = replace(QUIET, silence_session_alert=2)
"""Two check-ins missed around an attended session make an alert (by default only a watch)."""


def test_misses_on_both_sides_of_an_attended_session_are_silence_through_it() -> None:
    # check-ins on days 0, 3, ... 15 answered; days 18 and 21 missed; a session on day 20.5
    history = build([*steady(6), missed(), missed()], sessions=[*WEEKLY, 20.5])
    found = signals.silence(history, after_last(history), LOUD)
    assert found is not None and found.evidence["reason"] == "sessions"
    assert found.severity == "alert"
    assert found.evidence["sessions"] == 1 and found.evidence["missed_in_row"] == 2
    assert found.since == history.checkins[6].sent_at
    assert "2 check-ins unanswered since" in found.explanation
    assert "though 1 session was held in between" in found.explanation
    watch_only = signals.silence(history, after_last(history), QUIET)  # the default
    assert watch_only is not None and watch_only.severity == "watch"
    assert watch_only.evidence["reason"] == "sessions"


def test_the_same_misses_without_a_session_between_them_are_only_a_watch() -> None:
    history = build([*steady(6), missed(), missed()], sessions=[*WEEKLY, 23.5])
    found = signals.silence(history, after_last(history), LOUD)
    assert found is not None and found.evidence["reason"] == "missed"
    assert found.severity == "watch"


def test_a_miss_then_a_session_then_an_answer_is_nothing() -> None:
    history = build([*steady(6), missed(), answered()], sessions=[*WEEKLY, 20.5])
    assert signals.silence(history, after_last(history), LOUD) is None


def test_a_holiday_with_a_skipped_session_is_not_silence_through_a_session() -> None:
    # the session due on day 20.5 is not held; the client is back at the session of day 25.5
    history = build([*steady(6), missed(), missed(), missed(), missed()], sessions=[*WEEKLY, 25.5])
    found = signals.silence(history, after_last(history), LOUD)
    assert found is not None and found.evidence["reason"] == "missed"
    assert found.severity == "alert"  # three in a row
    away = signals.silence(history, after_last(history), replace(LOUD, away_is_watch=True))
    assert away is not None and away.severity == "watch"


def test_away_needs_a_skipped_session_not_just_misses() -> None:
    history = build([*steady(6), *[missed() for _ in range(3)]], sessions=[*WEEKLY, 20.5])
    found = signals.silence(history, after_last(history), replace(QUIET, away_is_watch=True))
    assert found is not None and found.severity == "alert"


def test_misses_only_make_a_pattern_that_waits_for_a_session() -> None:
    steps = [*steady(8), missed(), missed()]
    needs = replace(TH, pattern_needs_session=True, silence_session_alert=2)
    history = build(steps, sessions=[6.5, 13.5, 20.5])
    found = signals.silence(history, after_last(history), needs)
    assert found is not None and found.evidence["reason"] == "pattern"
    assert found.severity == "watch"
    history = build(steps, sessions=[6.5, 13.5, 20.5, 25.5])  # sent days 24 and 27
    found = signals.silence(history, after_last(history), needs)
    assert found is not None and found.evidence["reason"] == "sessions"
    assert found.severity == "alert"
    slow = build([*steady(8), missed(), answered(delay_hours=100.0), missed()])
    found = signals.silence(slow, after_last(slow), needs)
    assert found is not None and found.severity == "alert"  # a late reply is no holiday


# --- slowing -------------------------------------------------------------------------------


def test_slowing_at_and_below_the_ratio() -> None:
    th = replace(TH, slowing_ratio=3.0, slowing_min_hours=4.0, slowing_window=3)
    base = [answered(delay_hours=2.0), answered(delay_hours=2.0)]
    at = build([*base, *[answered(delay_hours=6.0) for _ in range(3)]])
    found = signals.slowing(at, after_last(at), th)
    assert found is not None and found.severity == "watch"
    assert found.evidence["ratio"] == 3.0
    assert "median 6 hours, up from 2 hours" in found.explanation
    below = build([*base, *[answered(delay_hours=5.9) for _ in range(3)]])
    assert signals.slowing(below, after_last(below), th) is None


def test_slowing_needs_a_meaningful_delay_not_just_a_ratio() -> None:
    th = replace(TH, slowing_ratio=3.0, slowing_min_hours=4.0)
    fast = build([*steady(2, delay=0.1), *[answered(delay_hours=3.9) for _ in range(3)]])
    assert signals.slowing(fast, after_last(fast), th) is None
    slower = build([*steady(2, delay=0.1), *[answered(delay_hours=4.0) for _ in range(3)]])
    assert signals.slowing(slower, after_last(slower), th) is not None


def test_slowing_uses_the_median_so_one_slow_reply_is_not_enough() -> None:
    th = replace(TH, slowing_ratio=3.0, slowing_min_hours=4.0)
    history = build([*steady(4), answered(delay_hours=48.0), answered(), answered()])
    assert signals.slowing(history, after_last(history), th) is None


# --- low alliance --------------------------------------------------------------------------


def test_low_alliance_at_the_cut_off() -> None:
    at_cutoff = build(steady(3, total=int(TH.cutoff)))
    assert signals.low_alliance(at_cutoff, after_last(at_cutoff), TH) is None
    below = build([*steady(2), answered(int(TH.cutoff) - 1)])
    found = signals.low_alliance(below, after_last(below), TH)
    assert found is not None and found.severity == "watch"
    assert "35/40, below the cut-off of 36" in found.explanation


def test_low_alliance_alert_only_when_configured_and_persistent() -> None:
    th = replace(TH, low_alert_in_row=3)
    two = build([*steady(2), answered(30), answered(30)])
    three = build([*steady(2), answered(30), answered(30), answered(30)])
    assert signals.low_alliance(two, after_last(two), th).severity == "watch"  # type: ignore[union-attr]
    found = signals.low_alliance(three, after_last(three), th)
    assert found is not None and found.severity == "alert"
    assert "for 3 check-ins in a row" in found.explanation
    never = signals.low_alliance(three, after_last(three), replace(TH, low_alert_in_row=0))
    assert never is not None and never.severity == "watch"


# --- falling alliance ----------------------------------------------------------------------


def test_a_single_reliable_drop_is_a_watch_and_one_point_less_is_nothing() -> None:
    change = int(TH.reliable_change)
    at = build([*steady(2, total=38), answered(38 - change)])
    found = signals.falling_alliance(at, after_last(at), TH)
    assert found is not None and found.severity == "watch"
    assert found.evidence["drop"] == change
    assert "5 points below the client's own baseline of 38" in found.explanation
    below = build([*steady(2, total=38), answered(38 - change + 1)])
    assert signals.falling_alliance(below, after_last(below), TH) is None


def test_a_sustained_fall_accumulates_to_an_alert() -> None:
    th = replace(TH, falling_k=0.5, falling_h=3.0, falling_cap=2.0, falling_noise_z=0.0)
    # each total 5 points under baseline adds min(5 / 2.5, 2) - 0.5 = 1.5
    two = build([*steady(4, total=38), answered(33), answered(33)])
    found = signals.falling_alliance(two, after_last(two), th)
    assert found is not None and found.severity == "alert"
    assert found.evidence["sustained"] == 2
    assert found.since == two.checkins[4].answered_at
    one = build([*steady(4, total=38), answered(33)])
    assert signals.falling_alliance(one, after_last(one), th).severity == "watch"  # type: ignore[union-attr]
    shallower = build([*steady(4, total=38), answered(34), answered(34)])
    found = signals.falling_alliance(shallower, after_last(shallower), th)
    assert found is None or found.severity != "alert"


def test_one_deep_pothole_cannot_make_an_alert_alone() -> None:
    th = replace(TH, falling_k=0.5, falling_h=3.0, falling_cap=2.0)
    history = build([*steady(4, total=38), answered(12)])
    found = signals.falling_alliance(history, after_last(history), th)
    assert found is not None and found.severity == "watch"


def test_a_noisy_client_needs_a_bigger_fall() -> None:
    th = replace(TH, falling_k=0.5, falling_h=3.0, falling_cap=2.0, falling_noise_z=1.0)
    swings = [38, 30, 38, 30, 38, 30, 38]
    noisy = build([answered(t) for t in [*swings, 33, 33]])
    quiet = build([answered(t) for t in [38, 38, 38, 38, 38, 38, 38, 33, 33]])
    assert signals.falling_alliance(quiet, after_last(quiet), th).severity == "alert"  # type: ignore[union-attr]
    found = signals.falling_alliance(noisy, after_last(noisy), th)
    assert found is None or found.severity != "alert"


def test_a_clear_downtrend_is_a_watch() -> None:
    th = replace(TH, trend_window=4, trend_drop=3.0)
    history = build([answered(t) for t in [36, 36, 40, 40, 38, 37, 36, 35]])
    found = signals.falling_alliance(history, after_last(history), th)
    assert found is not None and found.severity == "watch"
    assert found.evidence["reason"] == "trend"
    assert "falling over the last 4 check-ins: 38 → 35" in found.explanation
    wobbly = build([answered(t) for t in [36, 36, 40, 40, 38, 36, 37, 36]])
    assert signals.falling_alliance(wobbly, after_last(wobbly), th) is None


# --- item drop -----------------------------------------------------------------------------


def _with_goals(goals: int) -> dict[str, int | None]:
    return {"heard": 9, "goals": goals, "approach": 9, "overall": 9}


def test_item_drop_at_and_below_the_drop_threshold() -> None:
    points = TH.item_drop_points
    base = [answered(items=_with_goals(9)), answered(items=_with_goals(9))]
    at = build([*base, answered(items=_with_goals(9 - points))])
    found = signals.item_drop(at, after_last(at), TH)
    assert found is not None and found.severity == "watch"
    assert found.evidence["item"] == "goals" and found.evidence["domain"] == "goals"
    assert "'worked on what I wanted' (goals) at 6/10, down from a usual 9" in found.explanation
    below = build([*base, answered(items=_with_goals(9 - points + 1))])
    assert signals.item_drop(below, after_last(below), TH) is None


def test_item_at_or_below_the_low_mark_without_a_baseline() -> None:
    low = build([answered(items=_with_goals(TH.item_low))])
    found = signals.item_drop(low, after_last(low), TH)
    assert found is not None and found.evidence["value"] == TH.item_low
    above = build([answered(items=_with_goals(TH.item_low + 1))])
    assert signals.item_drop(above, after_last(above), TH) is None


def test_item_drop_names_the_bond_domain_for_feeling_heard() -> None:
    items = {"heard": 4, "goals": 9, "approach": 9, "overall": 9}
    history = build([*steady(2), answered(items=items)])
    found = signals.item_drop(history, after_last(history), TH)
    assert found is not None and found.evidence["domain"] == "bond"


# --- partial, terse, ceiling ---------------------------------------------------------------


def test_partial_single_is_a_note_and_repeated_is_a_watch() -> None:
    one = build([*steady(4), answered(partial=True)])
    found = signals.partial(one, after_last(one), TH)
    assert found is not None and found.severity == "info"
    two = build([*steady(4), answered(partial=True), answered(), answered(partial=True)])
    found = signals.partial(two, after_last(two), TH)
    assert found is not None and found.severity == "watch"
    assert found.evidence["count"] == 2
    assert "2 of the last 4 check-ins started but not finished" in found.explanation
    earlier = build([answered(partial=True), *steady(5)])
    assert signals.partial(earlier, after_last(earlier), TH) is None


def test_terse_after_commenting() -> None:
    window = TH.terse_window
    talky = [answered(comment="a long and thoughtful comment") for _ in range(4)]
    stopped = build([*talky, *[answered() for _ in range(window)]])
    found = signals.terse(stopped, after_last(stopped), TH)
    assert found is not None and found.severity == "watch"
    assert found.evidence["reason"] == "stopped"
    one_left = build([*talky, *[answered() for _ in range(window - 1)], answered(comment="ok")])
    found = signals.terse(one_left, after_last(one_left), TH)
    assert found is not None and found.evidence["reason"] == "shrinking"
    never = build([answered() for _ in range(4 + window)])
    assert signals.terse(never, after_last(never), TH) is None


def test_ceiling_needs_repeated_perfect_scores_without_comments() -> None:
    k = TH.ceiling_in_row
    perfect = build([answered(40) for _ in range(k)])
    found = signals.ceiling(perfect, after_last(perfect), TH)
    assert found is not None and found.severity == "info"
    short = build([answered(40) for _ in range(k - 1)])
    assert signals.ceiling(short, after_last(short), TH) is None
    said = build([*[answered(40) for _ in range(k - 1)], answered(40, comment="great")])
    assert signals.ceiling(said, after_last(said), TH) is None


# --- rupture, confrontation, life events ---------------------------------------------------


def test_rupture_reported_severity_depends_on_talking_it_through() -> None:
    not_talked = build([*steady(2), answered(tension=True, talked_through=False)])
    found = signals.rupture_reported(not_talked, after_last(not_talked), TH)
    assert found is not None and found.severity == "watch"
    assert "not talked through" in found.explanation
    talked = build([*steady(2), answered(tension=True, talked_through=True)])
    found = signals.rupture_reported(talked, after_last(talked), TH)
    assert found is not None and found.severity == "info"
    none = build([*steady(2), answered(tension=False)])
    assert signals.rupture_reported(none, after_last(none), TH) is None


def test_repeated_unresolved_ruptures_alert_when_configured() -> None:
    th = replace(TH, rupture_alert_count=2)
    twice = build(
        [
            answered(tension=True, talked_through=False),
            answered(),
            answered(tension=True, talked_through=False),
        ]
    )
    found = signals.rupture_reported(twice, after_last(twice), th)
    assert found is not None and found.severity == "alert"
    assert "2 times recently" in found.explanation


@pytest.mark.parametrize(
    "comment",
    [
        "This is a waste of time",
        "you don't listen",
        "pointless",
        "No me escucha",
        "терапия не помогает",
    ],
)
def test_confrontation_in_three_languages(comment: str) -> None:
    history = build([*steady(2), answered(comment=comment)])
    found = signals.confrontation(history, after_last(history), TH)
    assert found is not None and found.severity == "watch"


@pytest.mark.parametrize("comment", ["not a waste of time at all", "good session", "rough week"])
def test_no_confrontation_in_ordinary_comments(comment: str) -> None:
    history = build([*steady(2), answered(comment=comment)])
    assert signals.confrontation(history, after_last(history), TH) is None


def test_repeated_confrontation_is_an_alert() -> None:
    history = build([answered(comment="pointless"), answered(), answered(comment="useless")])
    found = signals.confrontation(history, after_last(history), TH)
    assert found is not None and found.severity == "alert"


def test_stopped_and_unreachable_are_alerts_and_clear_on_return() -> None:
    history = build(steady(3), events=[("stopped", 7.0), ("blocked", 7.5)])
    now = after_last(history)
    assert signals.stopped(history, now, TH).severity == "alert"  # type: ignore[union-attr]
    found = signals.unreachable(history, now, TH)
    assert found is not None and found.severity == "alert"
    assert "Blocked the bot on 13 Jan" in found.explanation
    back = build(steady(3), events=[("blocked", 7.0), ("unblocked", 7.5)])
    assert signals.unreachable(back, after_last(back), TH) is None
    resumed = build(steady(3), events=[("paused", 7.0), ("resumed", 7.5)])
    assert signals.paused(resumed, after_last(resumed), TH) is None


# --- detect, combine, rank -----------------------------------------------------------------


def test_detect_looks_only_at_data_up_to_now() -> None:
    history = build([*steady(4), missed(), missed(), missed(), missed()])
    early = history.checkins[3].answered_at
    assert early is not None
    assert detect(history, early + timedelta(hours=1), TH) == []
    late = detect(history, after_last(history), TH)
    assert is_alerting(late)
    assert {s.code for s in late} == {"silence"}


def test_detect_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        detect(build(steady(2)), T0.replace(tzinfo=None), TH)


def test_steady_client_has_no_signals() -> None:
    history = build(steady(10))
    assert detect(history, after_last(history), TH) == []


def test_watch_signals_of_two_kinds_combine_into_an_alert() -> None:
    th = replace(
        TH,
        combine_across_groups=True,
        engage_h=0.0,
        slowing_min_hours=4.0,
        slowing_ratio=3.0,
        falling_h=100.0,
    )
    steps = [*steady(4, total=38, delay=1.0)]
    steps += [answered(32, delay_hours=10.0) for _ in range(3)]
    history = build(steps)
    found = {s.code: s for s in detect(history, after_last(history), th)}
    assert found["slowing"].severity == "alert"
    assert found["falling_alliance"].severity == "alert"
    assert "falling_alliance" in str(found["slowing"].evidence["with"])
    assert "together with" in found["slowing"].explanation
    alone = replace(th, combine_across_groups=False, combine_within_group=99)
    found = {s.code: s for s in detect(history, after_last(history), alone)}
    assert found["slowing"].severity == "watch"


def test_a_single_dip_does_not_combine() -> None:
    th = replace(TH, combine_across_groups=True, engage_h=0.0)
    history = build([*steady(4), missed(), missed(), answered(30)])
    found = detect(history, after_last(history), th)
    assert not is_alerting(found)


def _signal(code: str, severity: str, day: int) -> Signal:
    return Signal(code, severity, T0 + timedelta(days=day), {"n": day}, f"{code} says {day}")  # type: ignore[arg-type]


def test_rank_and_merge_orders_by_severity_and_folds_families() -> None:
    ranked = rank_and_merge(
        [
            _signal("ceiling", "info", 1),
            _signal("item_drop", "watch", 5),
            _signal("low_alliance", "watch", 4),
            _signal("falling_alliance", "alert", 6),
            _signal("slowing", "watch", 2),
            _signal("silence", "watch", 3),
            _signal("stopped", "alert", 7),
        ]
    )
    assert [s.code for s in ranked] == ["stopped", "falling_alliance", "silence", "ceiling"]
    alliance = ranked[1]
    assert alliance.severity == "alert"
    assert alliance.merged == ("low_alliance", "item_drop")
    assert alliance.since == T0 + timedelta(days=4)
    assert alliance.evidence["n"] == 6 and alliance.evidence["item_drop.n"] == 5
    assert "low_alliance says 4" in alliance.explanation
    assert ranked[2].merged == ("slowing",)


def test_rank_and_merge_of_nothing() -> None:
    assert rank_and_merge([]) == []


def test_explanations_carry_numbers() -> None:
    history = build([*steady(4), answered(int(TH.cutoff) - 6), answered(int(TH.cutoff) - 6)])
    found = {s.code: s for s in detect(history, after_last(history), TH)}
    assert "30/40" in found["low_alliance"].explanation
    assert any(ch.isdigit() for s in found.values() for ch in s.explanation)
    assert items_for(38) == {"heard": 10, "goals": 10, "approach": 9, "overall": 9}
