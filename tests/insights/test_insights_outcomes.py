"""PHQ-9 and GAD-7 in the digest: the latest total with its band, the reliable change since the
first, in the text, the headline when reliably worse, and the JSON."""

from __future__ import annotations

import json

from flows.instruments import load_instrument
from insights.digest import build_digest, render_text, to_json
from insights.outcomes import outcome_trends
from tests.insights.builders import after_last, answered, build

PHQ_ITEMS = [*(f"phq9_{n}" for n in range(1, 9)), "phq9_item9"]


def phq(total: int) -> dict[str, int | None]:
    values = ([3] * (total // 3) + [total % 3] + [0] * 9)[:9]
    return dict(zip(PHQ_ITEMS, values, strict=True))


def test_a_reliably_worse_phq9_is_in_the_headline_and_the_text() -> None:
    steps = [answered(38, extra=phq(8)), answered(38), answered(38, extra=phq(15))]
    history = build(steps, sessions=[-1])
    now = after_last(history)
    digest = build_digest(history, now, None)
    (text,) = render_text(digest)
    assert text.startswith("Digest for A.B.: No signs of withdrawal")
    assert "; PHQ-9 reliably worse (8 → 15)" in text.splitlines()[0]
    assert (
        "PHQ-9 (depression), 11 Jan: 15/27, moderately severe; "
        "8 on 5 Jan: reliably worse (by 6 or more)"
    ) in text
    data = to_json(digest)
    json.dumps(data)
    (phq9,) = data["outcomes"]
    assert phq9["instrument"] == "phq-9" and phq9["total"] == 15 and phq9["change"] == "worse"
    assert phq9["band"] == "moderately severe" and phq9["count"] == 2


def test_a_change_under_the_reliable_change_says_so_and_stays_out_of_the_headline() -> None:
    history = build([answered(38, extra=phq(8)), answered(38, extra=phq(12))], sessions=[-1])
    (text,) = render_text(build_digest(history, after_last(history), None))
    assert "PHQ" not in text.splitlines()[0]
    assert "12/27, moderate; 8 on 5 Jan: no reliable change (under 6 points)" in text


def test_an_incomplete_phq9_is_not_scored_and_nothing_is_shown_without_one() -> None:
    partial = phq(20) | {"phq9_4": None}
    history = build([answered(38, extra=partial), answered(38)], sessions=[-1])
    assert outcome_trends(history, after_last(history)) == ()
    (text,) = render_text(build_digest(history, after_last(history), None))
    assert "PHQ" not in text and "GAD" not in text


def test_outcomes_in_russian_and_for_one_instrument_only() -> None:
    history = build([answered(38, extra=phq(4))], sessions=[-1])
    digest = build_digest(history, after_last(history), None, lang="ru")
    (text,) = render_text(digest)
    assert "PHQ-9 (депрессия), 5 января: 4/27, минимальная" in text
    only_gad = outcome_trends(history, after_last(history), instruments=[load_instrument("gad-7")])
    assert only_gad == ()


def test_a_checkin_stopped_inside_the_phq9_is_answered_and_the_phq9_unscored() -> None:
    """Every alliance and wellbeing item answered, then the PHQ-9 left part-way (the flow closes
    such a check-in as answered, `flows.plan.Plan.owed`): no disengagement, the check-in counts in
    the digest, and the PHQ-9's unanswered items are missing, so its total is not scored."""
    stopped = {item: 2 for item in PHQ_ITEMS[:4]}  # items 5 to 9 never reached
    steps = [answered(38, extra=phq(8))] + [answered(38, extra=stopped) for _ in range(3)]
    history = build(steps, sessions=[-1])
    now = after_last(history)
    digest = build_digest(history, now, None)
    assert not [s for s in digest.signals if s.code in ("partial", "silence", "terse")]
    assert digest.answered == digest.sent == 4 and digest.answered_total == 4
    (trend,) = outcome_trends(history, now)
    assert (trend.count, trend.latest_total) == (1, 8), "only the complete PHQ-9 is scored"
    assert [total for _, total in trend.series] == [8]
    # the same history with those check-ins closed as partial is the disengagement it is not
    as_partial = build([answered(38, extra=phq(8))] + [answered(38, partial=True)] * 3)
    codes = {s.code for s in build_digest(as_partial, after_last(as_partial), None).signals}
    assert "partial" in codes
