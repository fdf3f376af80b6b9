"""The chart on a phone: portrait size, labels clear of the data, equal item scores all visible,
numbered sessions, wellbeing in its own panel, tension and urgent alerts marked, the finding as
title."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise

from PIL import Image

from insights import chart
from insights.chart import render_chart
from insights.digest import build_digest
from insights.history import CrisisEvent
from tests.insights.builders import after_last, answered, build, missed


def _template() -> chart._Template:
    template = chart._local.template
    assert isinstance(template, chart._Template)
    return template


def _history() -> object:
    steps = [answered(36, wellbeing=w) for w in (6, 5, 7)]
    steps += [answered(30, tension=True, talked_through=False, wellbeing=2), missed()]
    history = build(steps, sessions=[-1, 6, 13])
    return replace(history, crises=(CrisisEvent(history.checkins[3].sent_at),))


def test_portrait_phone_size_with_the_finding_as_title() -> None:
    history = _history()
    data = render_chart(history, after_last(history), finding="Alliance down from 36 to 30")  # type: ignore[arg-type]
    assert Image.open(io.BytesIO(data)).size == (900, 1200)
    assert _template().title.get_text() == "A.B.: Alliance down from 36 to 30"
    render_chart(history, after_last(history), finding="word " * 60)  # type: ignore[arg-type]
    assert len(_template().title.get_text().splitlines()) == 2  # wrapped, never three lines


def test_the_cut_off_label_sits_beside_the_panel_where_no_data_can_cross_it() -> None:
    history = build([answered(36), answered(36), answered(37)])
    render_chart(history, after_last(history))
    template = _template()
    renderer = template.canvas.get_renderer()
    label = template.cutoff_label.get_window_extent(renderer)
    panel = template.top.get_window_extent(renderer)
    assert label.x0 > panel.x1 and panel.y0 < (label.y0 + label.y1) / 2 < panel.y1


def test_equal_item_scores_are_drawn_side_by_side() -> None:
    history = build([answered(36) for _ in range(4)])  # every item 9 every time
    render_chart(history, after_last(history))
    template = _template()
    transform = template.bottom.transData
    for index in range(4):
        points = [
            transform.transform((line.get_xdata()[index], line.get_ydata()[index]))  # type: ignore[index]
            for line in template.items.values()
        ]
        xs = sorted(p[0] for p in points)
        assert all(b - a >= 8 for a, b in pairwise(xs)), xs
        assert len({round(p[1]) for p in points}) == 1  # same score, same height


def test_sessions_are_numbered_and_events_marked_and_wellbeing_has_its_panel() -> None:
    history = _history()
    now = after_last(history)  # type: ignore[arg-type]
    render_chart(history, now)  # type: ignore[arg-type]
    template = _template()
    assert [t.get_text() for t in template.session_labels] == ["S1", "S2", "S3"]
    assert list(template.wellbeing.get_ydata()) == [6, 5, 7, 2]  # type: ignore[arg-type]
    assert len(template.tension.get_xdata()) == 1  # type: ignore[arg-type]
    assert len(template.crises.get_xdata()) == 1 and len(template.missed.get_xdata()) == 1  # type: ignore[arg-type]
    legend = template.legend.get_text()
    for key in ("urgent alert", "tension reported", "missed", "sessions"):
        assert key in legend.replace("\u00a0", " ")
    assert template.measure.get_text() == "Rapport's brief alliance check (not validated)"
    render_chart(history, now, lang="ru")  # type: ignore[arg-type]
    assert [t.get_text() for t in _template().session_labels] == ["С1", "С2", "С3"]
    earlier = render_chart(history, now - timedelta(days=8))  # type: ignore[arg-type]
    assert earlier.startswith(b"\x89PNG") and len(_template().session_labels) == 2


def test_an_alias_with_dollars_and_invisible_characters_prints_as_written() -> None:
    history = replace(build([answered(36)]), alias="A$B^\u202e$.")
    data = render_chart(history, after_last(history), finding="wellbeing 2/10")
    assert data.startswith(b"\x89PNG")
    assert _template().title.get_text() == "A$B^$.: wellbeing 2/10"


def test_phq9_and_gad7_are_drawn_beside_wellbeing_with_totals_and_the_latest_band() -> None:
    from tests.insights.test_insights_outcomes import phq

    gad = {f"gad7_{n}": 2 for n in range(1, 8)}  # 14
    steps = [answered(36, wellbeing=6, extra=phq(8) | gad), answered(35, wellbeing=5)]
    steps += [answered(33, wellbeing=4, extra=phq(16)), answered(30, wellbeing=3, extra=phq(17))]
    history = build(steps, sessions=[-1, 6, 13])
    now = after_last(history)
    digest = build_digest(history, now, None)
    data = render_chart(history, now, outcomes=digest.outcomes)
    assert data.startswith(b"\x89PNG")
    template = _template()
    by_title = {trend.title: trend for trend in digest.outcomes}
    assert set(by_title) == {"PHQ-9 (depression)", "GAD-7 (anxiety)"}
    drawn = {tuple(line.get_ydata()) for line in template.outcomes}  # type: ignore[arg-type]
    assert drawn == {(8, 16, 17), (14,)}
    names = [label.get_text().replace("\n", " ") for label in template.outcome_names]
    assert any(n.startswith("★ GAD-7 14/21") and "moderate" in n for n in names)
    assert any(n.startswith("✚ PHQ-9 17/27") and "moderately severe" in n for n in names)
    assert sorted(label.get_text() for label in template.outcome_values) == ["14", "16", "17", "8"]
    renderer = template.canvas.get_renderer()
    panel = template.middle.get_window_extent(renderer)
    boxes = [label.get_window_extent(renderer) for label in template.outcome_names]
    for box in boxes:  # in the margin, never over the data, within the panel's height
        assert box.x0 > panel.x1 and box.x1 <= 900
        assert box.y0 >= panel.y0 - 5 and box.y1 <= panel.y1 + 5
    assert not boxes[0].overlaps(boxes[1])
    # a chart without them clears them
    render_chart(history, now)
    assert all(len(line.get_xdata()) == 0 for line in _template().outcomes)  # type: ignore[arg-type]
    assert _template().outcome_values == []
