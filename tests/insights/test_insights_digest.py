"""The digest for each archetype: content, Telegram limits, JSON, and the chart PNG."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from flows.i18n import t
from insights.chart import render_chart
from insights.digest import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    FlagAcknowledged,
    build_digest,
    caption,
    render_text,
    split_message,
    to_json,
)
from insights.history import ClientHistory, history_from_backtest_line
from insights.synthetic import ARCHETYPES, generate
from tests.insights.builders import after_last, answered, build, missed

PNG = b"\x89PNG\r\n\x1a\n"


def _check_limits(chunks: list[str], cap: str) -> None:
    assert chunks and all(0 < len(chunk) <= MESSAGE_LIMIT for chunk in chunks)
    assert 0 < len(cap) <= CAPTION_LIMIT


def test_all_well_says_so_plainly() -> None:
    history = build([answered(38, comment="good session") for _ in range(3)], sessions=[-1])
    now = after_last(history)
    digest = build_digest(history, now, now + timedelta(hours=3))
    assert digest.all_well and not digest.too_little_data
    text = "\n".join(render_text(digest))
    assert text.startswith(
        "Digest for A.B.: No signs of withdrawal: 3 of 3 check-ins answered, "
        "alliance steady at 38/40"
    )
    assert "Check-ins since the last session: 3 of 3 answered" in text
    assert "“good session”" in text
    assert digest.openings == ()


def test_too_little_data_says_so() -> None:
    history = build([answered(38)])
    digest = build_digest(history, after_last(history), None)
    assert digest.too_little_data and not digest.all_well
    text = "\n".join(render_text(digest))
    assert "Too little data yet: 1 check-in answered so far" in text
    assert "No session booked" in text


def test_a_falling_client_gets_ranked_signals_numbers_and_openings() -> None:
    steps = [answered(38, comment="helpful, we made progress") for _ in range(4)]
    steps += [
        answered(
            30,
            items={"heard": 9, "goals": 5, "approach": 8, "overall": 8},
            comment="not sure what we are working on",
            delay_hours=30.0,
        ),
        answered(
            29,
            items={"heard": 9, "goals": 4, "approach": 8, "overall": 8},
            delay_hours=40.0,
            tension=True,
            talked_through=False,
        ),
        answered(28, items={"heard": 8, "goals": 4, "approach": 8, "overall": 8}, delay_hours=50.0),
        missed(),
        answered(27, items={"heard": 8, "goals": 4, "approach": 7, "overall": 8}, delay_hours=60.0),
    ]
    history = build(steps, sessions=[-1, 6, 13, 20])
    now = after_last(history)
    digest = build_digest(history, now, now + timedelta(hours=3))
    assert not digest.all_well and not digest.too_little_data
    assert digest.signals[0].severity == "alert"
    codes = {s.code for s in digest.signals} | {c for s in digest.signals for c in s.merged}
    assert {"falling_alliance", "item_drop", "slowing"} <= codes
    assert 2 <= len(digest.openings) <= 3
    text = "\n".join(render_text(digest, "Europe/Berlin"))
    assert "ALERT" in text and "27/40" in text
    assert "'worked on what I wanted' (goals) at 4/10" in text
    assert "Revisit the goals together" in text
    # every item's value, dated, instead of an undated total and a list of names
    assert "Latest answers, 1 Feb: alliance 27/40, below the cut-off of 36 " in text
    assert "(heard 8, goals 4, approach 7, overall 8)" in text
    assert "Latest alliance total" not in text and "Items at" not in text
    hidden = build_digest(history, now, None, include_comments=False)
    assert hidden.comments == () and "not sure what we are working on" not in "\n".join(
        render_text(hidden)
    )
    data = to_json(digest)
    json.dumps(data)
    assert data["signals"][0]["severity"] == "alert" and data["latest_total"] == 27


def test_the_digest_ignores_everything_after_now() -> None:
    history = build([answered(38), answered(38), answered(38), missed(), missed(), missed()])
    before = history.checkins[2].answered_at
    assert before is not None
    digest = build_digest(history, before + timedelta(hours=1), None)
    assert digest.all_well and digest.answered_total == 3


Case = tuple[ClientHistory, bool, datetime | None]


@pytest.fixture(scope="module")
def per_archetype() -> dict[str, Case]:
    found: dict[str, Case] = {}
    for client in generate(300, seed=21):
        if client["archetype"] in found:
            continue
        history, label = history_from_backtest_line(client)
        assert label is not None
        found[client["archetype"]] = (history, label.dropout, label.at)
    return found


@pytest.mark.parametrize("archetype", [name for name, _, _ in ARCHETYPES])
def test_a_digest_and_chart_for_every_archetype(
    archetype: str, per_archetype: dict[str, Case], tmp_path: Path
) -> None:
    history, dropout, at = per_archetype[archetype]
    now = at - timedelta(days=2) if dropout and at is not None else after_last(history)
    session = now + timedelta(hours=3)
    digest = build_digest(history, now, session)
    chunks = render_text(digest)
    _check_limits(chunks, caption(digest))
    text = "\n".join(chunks)
    assert text.startswith(f"Digest for {history.alias}: ")
    assert len(chunks) == 1, "one text message"
    assert f"{digest.answered} of {digest.sent} answered" in text or digest.sent == 0
    if digest.all_well:
        assert "No signs of withdrawal" in text
    elif digest.too_little_data:
        assert "Too little data yet" in text
    else:
        assert "What stands out:" in text and digest.openings
    for at_, comment in digest.comments:
        assert at_ <= now and comment in text
    buffer = io.BytesIO()
    data = render_chart(history, now, buffer)
    assert data.startswith(PNG) and buffer.getvalue() == data
    assert 20_000 <= len(data) <= 200_000
    path = tmp_path / "chart.png"
    render_chart(history, now, path)
    assert path.read_bytes().startswith(PNG)


def test_chart_is_a_phone_sized_png_even_without_data() -> None:
    history = build([])
    data = render_chart(history, after_last(history))
    assert data.startswith(PNG)
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert (width, height) == (900, 1200)


def test_split_message_keeps_lines_whole_and_within_the_limit() -> None:
    lines = [f"{n:04d} " + "x" * 60 for n in range(300)]
    chunks = split_message(lines, MESSAGE_LIMIT)
    assert len(chunks) > 1 and all(len(c) <= MESSAGE_LIMIT for c in chunks)
    assert "\n".join(chunks).split("\n") == lines
    giant = "word " * 3000
    pieces = split_message([giant.strip()], MESSAGE_LIMIT)
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces)
    assert " ".join(pieces).split() == giant.split()
    assert split_message(["y" * 5000], 4096) == ["y" * 4096, "y" * 904]


def test_the_caption_is_the_headline_and_the_session_never_a_cut_sentence() -> None:
    steps = [answered(38, comment="c" * 300) for _ in range(4)]
    steps += [answered(20, comment="this is a waste of time " * 10) for _ in range(4)]
    history = build(steps)
    digest = build_digest(history, after_last(history), None)
    cap = caption(digest)
    assert len(cap) <= CAPTION_LIMIT
    head, session = cap.split("\n")
    assert head == f"Digest for A.B.: {digest.headline}" and session == "No session booked"
    assert "…" not in cap and "Comments" not in cap and "waste" not in cap
    full = render_text(digest)
    assert len(full) == 1 and full[0].startswith(head + "\n")


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "✅ Flag acknowledged by Dana Lee, "),
        ("es", "✅ Señal confirmada por Dana Lee, "),
        ("ru", "✅ Сигнал подтверждён: Dana Lee, "),
    ],
)
def test_an_acknowledged_flag_is_one_line_after_the_signals(lang: str, expected: str) -> None:
    steps = [answered(38) for _ in range(4)] + [answered(20), answered(18)]
    history = build(steps, sessions=[-1])
    now = after_last(history)
    digest = build_digest(history, now, None, lang=lang)
    assert digest.alert_codes and set(digest.alert_codes) <= {s.code for s in digest.signals}
    assert all(s.severity == "alert" for s in digest.signals if s.code in digest.alert_codes)
    plain = "\n".join(render_text(digest, "Europe/Berlin"))
    ack = FlagAcknowledged(by="Dana Lee", at=now - timedelta(days=1), choice="not_concern")
    lines = "\n".join(render_text(replace(digest, flag_ack=ack), "Europe/Berlin")).splitlines()
    (line,) = [x for x in lines if x.startswith("✅")]
    assert line.startswith(expected) and line.endswith(t(lang, "alert.button_not_concern"))
    signal_lines = [i for i, x in enumerate(lines) if x.startswith("‼") or x.startswith("•")]
    assert lines.index(line) == max(signal_lines) + 1  # right after the signals
    assert [x for x in lines if x != line] == plain.splitlines()  # nothing else changes
    assert to_json(replace(digest, flag_ack=ack))["flag_acknowledged"]["choice"] == "not_concern"
    assert to_json(digest)["flag_acknowledged"] is None
