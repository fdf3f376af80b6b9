"""The digest a therapist reads in 20 seconds: a headline with the finding, one dated line per
signal with its numbers, the latest answers with every item's value and wellbeing, nothing stale
or said twice, one message; the severities the digest adds (a steep fall, weeks under the
cut-off)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta

from insights.digest import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    build_digest,
    caption,
    needs_discussing,
    render_text,
    to_json,
)
from insights.history import CrisisEvent
from insights.signals import detect
from insights.texts import signal_name
from insights.thresholds import Thresholds
from tests.insights.builders import T0, after_last, answered, build, missed


def _text(history: object, **kwargs: object) -> tuple[str, object]:
    now = after_last(history)  # type: ignore[arg-type]
    digest = build_digest(history, now, None, **kwargs)  # type: ignore[arg-type]
    chunks = render_text(digest)
    assert len(chunks) == 1
    return chunks[0], digest


def test_a_fall_from_37_to_26_is_an_alert_in_the_digest() -> None:
    history = build([answered(37) for _ in range(3)] + [answered(26)], sessions=[-1])
    text, digest = _text(history)
    (fall,) = [s for s in digest.signals if s.code == "falling_alliance"]  # type: ignore[attr-defined]
    assert fall.severity == "alert" and digest.level == "alert"  # type: ignore[attr-defined]
    assert "‼ ALERT, 14 Jan: Alliance total 26/40, 11 points below" in text
    assert text.startswith("Digest for A.B.: Alliance down from 37 to 26")
    # the drop-out detector itself keeps one bad check-in at watch (see needs_discussing)
    raw = [s for s in detect(history, after_last(history)) if s.code == "falling_alliance"]
    assert [s.severity for s in raw] == ["watch"]


def test_a_fall_of_under_two_reliable_changes_stays_a_watch() -> None:
    history = build([answered(37) for _ in range(3)] + [answered(28)], sessions=[-1])
    _, digest = _text(history)
    assert {s.severity for s in digest.signals} == {"watch"}  # type: ignore[attr-defined]


def test_low_from_the_start_becomes_an_alert_after_four_check_ins_not_before() -> None:
    three = build([answered(30) for _ in range(3)], sessions=[-1])
    _, digest = _text(three)
    assert [(s.code, s.severity) for s in digest.signals] == [("low_alliance", "watch")]  # type: ignore[attr-defined]
    four = build([answered(30) for _ in range(4)], sessions=[-1])
    text, digest = _text(four)
    assert [(s.code, s.severity) for s in digest.signals] == [("low_alliance", "alert")]  # type: ignore[attr-defined]
    assert text.startswith("Digest for A.B.: Alliance below the cut-off 4 times running (30/40)")
    off = Thresholds(digest_low_in_row=0, digest_alert_drop=0)
    signals = detect(four, after_last(four))
    assert needs_discussing(signals, off) == signals


def test_wellbeing_is_in_the_text_the_headline_and_the_json() -> None:
    steps = [answered(38, wellbeing=7) for _ in range(3)] + [answered(38, wellbeing=2)]
    history = build(steps, sessions=[-1])
    text, digest = _text(history)
    assert text.startswith(
        "Digest for A.B.: No signs of withdrawal: 4 of 4 check-ins answered, alliance steady at "
        "38/40; wellbeing 2/10\n"
    )
    assert "\nWellbeing, 14 Jan: 2/10 (usually 7)\n" in text + "\n"
    data = to_json(digest)  # type: ignore[arg-type]
    json.dumps(data)
    assert data["wellbeing"]["latest"] == 2 and data["wellbeing"]["usual"] == 7.0
    assert [p["value"] for p in data["wellbeing"]["series"]] == [7, 7, 7, 2]
    assert data["headline"] == digest.headline  # type: ignore[attr-defined]


def test_an_ordinary_wellbeing_stays_out_of_the_headline_but_in_the_text() -> None:
    history = build([answered(38, wellbeing=6) for _ in range(3)], sessions=[-1])
    text, _ = _text(history)
    head = text.splitlines()[0]
    assert "ellbeing" not in head and "Wellbeing, 11 Jan: 6/10 (usually 6)" in text


def test_every_item_value_is_shown_dated_and_no_undated_total() -> None:
    items = {"heard": 9, "goals": 4, "approach": 8, "overall": 8}
    history = build([answered(38) for _ in range(3)] + [answered(29, items=items)])
    text, _ = _text(history)
    assert (
        "Latest answers, 14 Jan: alliance 29/40, below the cut-off of 36 "
        "(heard 9, goals 4, approach 8, overall 8)"
    ) in text
    assert "Latest alliance total" not in text and "Items at" not in text


def test_one_line_per_signal_each_dated_and_nothing_said_twice() -> None:
    steps = [answered(38, comment="helpful, we made progress") for _ in range(4)]
    steps += [answered(22, delay_hours=50.0), answered(20, delay_hours=60.0)]
    history = build(steps, sessions=[-1, 6])
    text, digest = _text(history)
    signal_lines = [line for line in text.splitlines() if line[:2] in ("‼ ", "• ", "· ")]
    assert len(signal_lines) == len(digest.signals)  # type: ignore[attr-defined]
    assert all(";" not in line for line in signal_lines)
    assert all(re.search(r"\b\d{1,2} Jan\b", line) for line in signal_lines)
    # the fall from the baseline says the total; a second "Alliance total 20/40" line would not
    assert sum("Alliance total 20/40" in line for line in signal_lines) == 1
    assert "below the cut-off of 36" in text  # said once, in the latest answers


def test_no_comments_lately_is_not_news_when_nothing_was_answered() -> None:
    steps = [answered(38, comment="a long and thoughtful comment") for _ in range(4)]
    steps += [missed(), missed(), missed(), missed()]
    history = build(steps, sessions=[-1, 12])
    text, digest = _text(history)
    assert "terse" not in {s.code for s in digest.signals}  # type: ignore[attr-defined]
    assert "No comments" not in text
    assert text.startswith("Digest for A.B.: 4 check-ins missed")


def test_blocking_is_listed_once_in_the_risk_block() -> None:
    history = build([answered(38) for _ in range(4)], events=[("blocked", 10.0)], sessions=[-1])
    text, digest = _text(history)
    _, *body = text.splitlines()  # the headline names it; the body lists it once
    assert sum("Blocked the bot" in line for line in body) == 1
    assert "unreachable" not in {s.code for s in digest.signals}  # type: ignore[attr-defined]
    assert text.startswith("Digest for A.B.: Blocked the bot 15 Jan")


def test_long_comments_keep_the_digest_to_one_message_and_the_caption_whole() -> None:
    steps = [answered(38, comment=("word " * 900).strip()) for _ in range(4)]
    steps += [answered(20, comment=("this is a waste of time " * 150).strip()) for _ in range(8)]
    history = build(steps)
    now = after_last(history)
    digest = build_digest(history, now, now + timedelta(hours=3))
    (text,) = render_text(digest)
    assert len(text) <= MESSAGE_LIMIT
    assert "Possible openings:" in text and "In the client's words:" in text
    assert "earlier comments in the export)" in text  # the oldest gave way, and it says so
    assert all(len(line) <= 700 for line in text.splitlines())
    cap = caption(digest)
    assert len(cap) <= CAPTION_LIMIT and cap.splitlines()[0] == text.splitlines()[0]


def test_signal_names_are_plain_words_in_every_language() -> None:
    assert signal_name("rupture_reported") == "reported tension"
    assert signal_name("item_drop", "es") != "item_drop"
    assert "_" not in signal_name("falling_alliance", "ru")
    assert signal_name("something_new") == "something new"


def test_the_latest_answers_are_one_check_in_s_never_a_mix() -> None:
    skipped = {"heard": None, "goals": 8, "approach": 8, "overall": 8}
    history = build([answered(38), answered(38), answered(30, items=skipped)])
    text, _ = _text(history)
    # the latest check-in had "prefer not to say" on one item: no total from an older one
    assert "Latest answers, 11 Jan: heard –, goals 8, approach 8, overall 8" in text
    assert "alliance 38/40" not in text


def test_a_check_in_without_alliance_items_does_not_blank_the_latest_answers() -> None:
    phq = {f"phq9_{n}": 1 for n in range(1, 9)} | {"phq9_item9": 0}
    only_phq = dict.fromkeys(("heard", "goals", "approach", "overall"))
    history = build([answered(38), answered(37), answered(0, items=only_phq, extra=phq)])
    text, _ = _text(history)
    assert "Latest answers, 8 Jan: alliance 37/40" in text and "heard –" not in text
    assert "PHQ-9 (depression), 11 Jan: 8/27, mild" in text


def test_dozens_of_urgent_alerts_still_make_one_message_with_the_latest_shown() -> None:
    history = build([answered(38) for _ in range(4)], sessions=[-1])
    alerts = tuple(
        CrisisEvent(T0 + timedelta(days=1, minutes=m), category="plan", alerted="therapist")
        for m in range(60)
    )
    history = replace(history, crises=alerts)
    digest = build_digest(history, after_last(history), None)
    (text,) = render_text(digest)
    lines = text.splitlines()
    assert lines[1] == "Since the last session:" and "earlier ones in the JSON digest" in lines[2]
    assert "Latest answers, " in text and "Wellbeing, " in text  # the rest is there
    assert sum(line.startswith("‼ Urgent alert") for line in lines) >= 10
    assert len(to_json(digest)["risks"]) == 60
