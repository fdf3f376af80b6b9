"""PHQ-9 and GAD-7 as optional outcome measures: the published scoring, severity bands and
reliable change, PHQ-9 item 9 as the safety item, and clear errors for a broken outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.instruments import (
    SAFETY_INSTRUMENT,
    InstrumentError,
    load_instrument,
    outcome_instruments,
    reliable_change,
    score_outcome,
)
from flows.plan import plan_items

PHQ9 = load_instrument("phq-9")
GAD7 = load_instrument("gad-7")


def answers(instrument: str, values: list[int]) -> dict[str, int | None]:
    outcome = load_instrument(instrument).scoring.outcome
    assert outcome is not None
    return dict(zip(outcome.items, values, strict=True))


def test_both_are_shipped_as_outcome_measures_and_the_brief_is_not_one() -> None:
    assert [i.id for i in outcome_instruments()] == ["gad-7", "phq-9"]
    for instrument, n, top in ((PHQ9, 9, 27), (GAD7, 7, 21)):
        outcome = instrument.scoring.outcome
        assert outcome is not None and len(outcome.items) == n and outcome.total_max == top
        assert all(item.choices is not None and item.high == 3 for item in instrument.items)
        assert instrument.items[0].choices[3]["en"] == "Nearly every day"  # type: ignore[index]


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
     (14, "moderate"), (15, "moderately severe"), (19, "moderately severe"), (20, "severe"),
     (27, "severe")],
)  # fmt: skip
def test_phq9_bands_are_the_published_ones(total: int, band: str) -> None:
    outcome = PHQ9.scoring.outcome
    assert outcome is not None
    values = [3] * (total // 3) + [total % 3] + [0] * 9
    scored = score_outcome(PHQ9, answers("phq-9", values[:9]))
    assert scored is not None and scored.total == total
    assert scored.label(outcome, "en") == band
    assert scored.label(outcome, "ru") and scored.label(outcome, "es")


@pytest.mark.parametrize(
    ("total", "band"),
    [(4, "minimal"), (5, "mild"), (10, "moderate"), (14, "moderate"), (15, "severe"),
     (21, "severe")],
)  # fmt: skip
def test_gad7_bands_are_the_published_ones(total: int, band: str) -> None:
    outcome = GAD7.scoring.outcome
    assert outcome is not None
    values = ([3] * (total // 3) + [total % 3] + [0] * 7)[:7]
    scored = score_outcome(GAD7, answers("gad-7", values))
    assert scored is not None and (scored.total, scored.label(outcome, "en")) == (total, band)


def test_no_total_unless_every_item_has_a_number() -> None:
    partial = answers("phq-9", [1] * 9) | {"phq9_3": None}
    assert score_outcome(PHQ9, partial) is None
    assert score_outcome(PHQ9, {"phq9_1": 3}) is None
    assert score_outcome(load_instrument("rapport-brief"), {"heard": 3}) is None


def test_reliable_change_is_6_points_for_the_phq9_and_4_for_the_gad7() -> None:
    phq, gad = PHQ9.scoring.outcome, GAD7.scoring.outcome
    assert phq is not None and gad is not None
    assert (phq.reliable_change, gad.reliable_change) == (6, 4)
    assert reliable_change(phq, 8, 14) == "worse" and reliable_change(phq, 8, 13) == "same"
    assert reliable_change(phq, 14, 8) == "better" and reliable_change(phq, 14, 9) == "same"
    assert reliable_change(gad, 5, 9) == "worse" and reliable_change(gad, 5, 8) == "same"


def test_phq9_item_9_is_the_safety_item_and_asked_once() -> None:
    (safety,) = load_instrument(SAFETY_INSTRUMENT).items
    item9 = PHQ9.items[-1]
    assert item9.id == safety.id == "phq9_item9"
    assert [item9.is_crisis(v) for v in (None, 0, 1, 3)] == [False, False, True, True]
    asked = plan_items(PHQ9, safety_item=True)
    assert asked.count("phq9_item9") == 1 and len(asked) == 9


def test_a_practice_file_with_an_outcome_is_picked_up(tmp_path: Path) -> None:
    data = yaml.safe_load(Path(PHQ9_PATH).read_text(encoding="utf-8"))
    data["id"] = "our-phq"
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert [i.id for i in outcome_instruments(path)] == ["gad-7", "phq-9", "our-phq"]
    assert [i.id for i in outcome_instruments("phq-9")] == ["gad-7", "phq-9"]


PHQ9_PATH = Path(__file__).resolve().parents[2] / "flows" / "instruments" / "phq-9.yaml"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: o.update(total_max=30), "scoring.outcome.total_max"),
        (lambda o: o.update(items=["phq9_1", "nope"]), "scoring.outcome.items"),
        (lambda o: o["bands"].reverse(), "scoring.outcome.bands"),
        (lambda o: o["bands"][0].update(min=1), "scoring.outcome.bands"),
        (lambda o: o.update(reliable_change=0), "scoring.outcome.reliable_change"),
    ],
)
def test_a_broken_outcome_names_its_field(tmp_path: Path, change, field: str) -> None:
    data = yaml.safe_load(Path(PHQ9_PATH).read_text(encoding="utf-8"))
    change(data["scoring"]["outcome"])
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)
    assert str(caught.value).startswith("broken.yaml: ") and field in str(caught.value)
