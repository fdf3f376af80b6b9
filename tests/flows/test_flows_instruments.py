"""Instruments as YAML: the shipped ones, scoring, and clear errors for broken files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.i18n import LANGUAGES
from flows.instruments import (
    DEFAULT_INSTRUMENT,
    SAFETY_INSTRUMENT,
    InstrumentError,
    available_instruments,
    load_instrument,
    score,
)

BRIEF = load_instrument(DEFAULT_INSTRUMENT)


def valid_data() -> dict:
    return yaml.safe_load(Path(BRIEF_PATH).read_text(encoding="utf-8"))


BRIEF_PATH = Path(__file__).resolve().parents[2] / "flows" / "instruments" / "rapport-brief.yaml"


def write(tmp_path: Path, data: object, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_instruments_load_and_are_cached() -> None:
    assert set(available_instruments()) >= {DEFAULT_INSTRUMENT, SAFETY_INSTRUMENT}
    assert load_instrument(DEFAULT_INSTRUMENT) is BRIEF
    assert load_instrument(BRIEF_PATH) is BRIEF


def test_the_brief_check_in_has_the_agreed_shape() -> None:
    ids = [item.id for item in BRIEF.flat_items()]
    assert ids == [
        "heard",
        "goals",
        "approach",
        "overall",
        "expectations",
        "hope",
        "between_work",
        "wellbeing",
        "tension",
        "talked",
        "comment",
    ]
    subscales = {item.id: item.subscale for item in BRIEF.flat_items()}
    assert subscales["heard"] == "bond" and subscales["goals"] == "goals"
    assert subscales["approach"] == "approach" and subscales["overall"] == "overall"
    assert subscales["wellbeing"] == "wellbeing"
    assert BRIEF.parent_of("talked") == "tension" and BRIEF.parent_of("heard") is None
    tension = BRIEF.find("tension")
    assert tension is not None and tension.kind == "yesno"
    comment = BRIEF.find("comment")
    assert comment is not None and comment.kind == "text" and comment.optional
    rules = BRIEF.scoring
    assert (rules.total_max, rules.cutoff, rules.item_flag, rules.reliable_change) == (40, 36, 7, 5)
    assert rules.alliance == ["heard", "goals", "approach", "overall"]


def test_the_brief_check_in_names_its_probe_and_what_is_no_score() -> None:
    """The database reader and the signals take these from the instrument, not from copies."""
    assert BRIEF.rupture_probe == ("tension", "talked")
    assert BRIEF.score_free_ids == {"tension", "talked", "comment"}
    assert [item.id for item in BRIEF.by_subscale("rupture")] == ["tension", "talked"]
    safety = load_instrument(SAFETY_INSTRUMENT)
    assert safety.rupture_probe == (None, None) and safety.score_free_ids == frozenset()


@pytest.mark.parametrize("name", available_instruments())
def test_every_text_exists_in_every_language(name: str) -> None:
    for item in load_instrument(name).flat_items():
        for lang in LANGUAGES:
            assert item.text.get(lang, "").strip(), (item.id, lang)
            if item.anchors:
                assert item.anchors.min.get(lang) and item.anchors.max.get(lang), (item.id, lang)
            for labels in (item.choices or {}).values():
                assert labels.get(lang), (item.id, lang)


def test_safety_item_is_phq9_item_9_and_any_answer_above_zero_is_a_crisis() -> None:
    (item,) = load_instrument(SAFETY_INSTRUMENT).items
    assert (item.min, item.max) == (0, 3)
    assert item.choices is not None
    assert item.choices[0]["en"] == "Not at all" and item.choices[3]["en"] == "Nearly every day"
    assert [item.is_crisis(v) for v in (None, 0, 1, 2, 3)] == [False, False, True, True, True]


def test_score_a_complete_check_in() -> None:
    scores = score(
        BRIEF,
        {
            "heard": 9,
            "goals": 9,
            "approach": 7,
            "overall": 10,
            "wellbeing": 4,
            "tension": 1,
            "talked": 0,
        },
    )
    assert scores.total == 35
    assert scores.below_cutoff
    assert scores.flagged_items == ("approach",)
    assert scores.by_subscale == {
        "bond": 9,
        "goals": 9,
        "approach": 7,
        "overall": 10,
        "wellbeing": 4,
    }


def test_score_at_the_cut_off_is_not_below_it() -> None:
    scores = score(BRIEF, {"heard": 9, "goals": 9, "approach": 9, "overall": 9})
    assert (scores.total, scores.below_cutoff, scores.flagged_items) == (36, False, ())


def test_score_without_a_number_for_every_alliance_item_has_no_total() -> None:
    scores = score(BRIEF, {"heard": None, "goals": 3, "approach": 8, "overall": 9})
    assert scores.total is None and not scores.below_cutoff
    assert scores.flagged_items == ("goals",)
    assert "bond" not in scores.by_subscale


def test_a_valid_file_anywhere_loads(tmp_path: Path) -> None:
    data = valid_data()
    data["id"] = "copy"
    assert load_instrument(write(tmp_path, data, "copy.yaml")).id == "copy"


def mutate(change):
    def build() -> dict:
        data = valid_data()
        change(data)
        return data

    return build


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (mutate(lambda d: d.pop("id")), "id"),
        (mutate(lambda d: d["items"][1].pop("max")), "items[1]"),
        (mutate(lambda d: d["items"][0].update(kind="slider")), "items[0].kind"),
        (mutate(lambda d: d["items"][2].update(min=5, max=5)), "max"),
        (mutate(lambda d: d["items"][0].update(max="ten")), "items[0].max"),
        (mutate(lambda d: d["items"][3]["text"].pop("en")), "text"),
        (mutate(lambda d: d["items"][0].pop("anchors")), "anchors"),
        (mutate(lambda d: d["items"][0].update(colour="blue")), "items[0].colour"),
        (mutate(lambda d: d["items"][1].update(id="heard")), "items[1].id"),
        (mutate(lambda d: d["items"][1].update(id="Bad Id")), "items[1].id"),
        (mutate(lambda d: d["scoring"].update(alliance=["heard", "nope"])), "scoring.alliance"),
        (mutate(lambda d: d["scoring"].update(alliance=["heard", "tension"])), "scoring.alliance"),
        (mutate(lambda d: d["scoring"].update(total_max=50)), "scoring.total_max"),
        (mutate(lambda d: d["items"][0].update(follow_up=d["items"][8]["follow_up"])), "follow_up"),
        (mutate(lambda d: d["items"][4].update(crisis_above=10)), "crisis_above"),
        (mutate(lambda d: d.update(items=[])), "items"),
        (mutate(lambda d: d["items"][0].update(moments=[])), "moments"),
        (mutate(lambda d: d["items"][0].update(moments=["someday"])), "items[0].moments"),
        (mutate(lambda d: d["items"][0].update(text_at={"first": {"en": "x"}})), "text_at.first"),
        (mutate(lambda d: d["items"][7].update(text_at={"first": {"es": "x"}})), "text_at.first"),
    ],
)
def test_broken_instruments_name_the_file_and_the_field(tmp_path: Path, build, field: str) -> None:
    path = write(tmp_path, build())
    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)
    message = str(caught.value)
    assert message.startswith("broken.yaml: ")
    assert field in message


def test_invalid_yaml_and_missing_files_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(InstrumentError, match=r"^bad\.yaml: not valid YAML"):
        load_instrument(bad)
    with pytest.raises(InstrumentError, match="no such instrument"):
        load_instrument("does-not-exist")
    with pytest.raises(InstrumentError, match="expected a mapping"):
        load_instrument(write(tmp_path, ["a", "list"], "list.yaml"))


def test_no_licensed_instrument_wording_is_shipped() -> None:
    texts = " ".join(
        item.text["en"].casefold()
        for name in available_instruments()
        for item in load_instrument(name).flat_items()
    )
    # Phrases from licensed session-rating scales must not appear in our own items.
    for phrase in (
        "i felt heard, understood",
        "we worked on and talked about",
        "the therapist's approach is a good fit",
        "overall, today's session was right",
    ):
        assert phrase not in texts
