"""Outcome measures beside the alliance check: the setting's grammar, the due rule, and a
check-in that asks a due measure after the alliance and wellbeing items."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from flows.events import OpenCheckin
from flows.instruments import INSTRUMENTS_DIR, load_instrument
from flows.intents import CrisisAlert, FinishCheckin, RecordAnswer
from flows.measures import Measure, format_measures, parse_measures, stored_measures
from flows.moments import BETWEEN, SESSION, measures_due
from flows.plan import plan_items
from flows.state import load
from tests.flows.testkit import idle_client, make_ctx, of_type, replies

BRIEF = load_instrument("rapport-brief")
PHQ9 = load_instrument("phq-9")
GAD7 = load_instrument("gad-7")
BERLIN = "Europe/Berlin"
DAY = timedelta(days=1)
T0 = datetime(2027, 1, 12, 17, 0, tzinfo=UTC)  # Tuesday 18:00 in Berlin
COUNTER = re.compile(r"^(\d+)/(\d+)\. ")


# --- the grammar ------------------------------------------------------------------------------


def test_the_setting_reads_and_writes_one_way() -> None:
    both = parse_measures(["phq-9:14d", "GAD-7:28d"])  # as one `--outcome` each
    assert both == (Measure("phq-9", 14), Measure("gad-7", 28))
    assert format_measures(parse_measures("phq-9:14d, gad-7:28d")) == "phq-9:14d,gad-7:28d"
    assert parse_measures(format_measures(parse_measures("phq-9:14d"))) == (Measure("phq-9", 14),)
    assert parse_measures("off") == parse_measures(["OFF"]) == ()
    assert format_measures(()) == "off"
    assert stored_measures("phq-9:14d,nosuch:14d") == (Measure("phq-9", 14),)  # file removed
    assert stored_measures(None) == stored_measures("off") == ()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "give NAME:INTERVAL"),
        (" , ", "give NAME:INTERVAL"),
        ("off,phq-9:14d", "expected NAME:INTERVAL"),
        ("phq-9", "expected NAME:INTERVAL"),
        (":14d", "expected NAME:INTERVAL"),
        ("phq-9:14", "add a unit"),
        ("phq-9:fortnight", "expected a duration"),
        ("phq-9:36h", "not whole days"),
        ("phq-9:3d", "outside 7d to 365d"),
        ("phq-9:400d", "outside 7d to 365d"),
        ("rapport-brief:14d", "scores no outcome"),
        ("no-such-thing:14d", "no such instrument file"),
        ("phq-9:14d,phq-9:28d", "given twice"),
        ("phq-9\u200b:14d", "not an instrument name"),
        ("OWN", "item id 'wellbeing' is the alliance check's"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_option(spec: str, says: str, tmp_path: Path) -> None:
    if spec == "OWN":
        spec = str(_own_measure_with_a_wellbeing_item(tmp_path)) + ":14d"
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        parse_measures(spec)
    message = str(caught.value)
    assert message.startswith("--outcome: ") and "\n" not in message


def _own_measure_with_a_wellbeing_item(folder: Path) -> Path:
    """A practice's own measure file whose one item reuses the alliance check's `wellbeing` id."""
    data = {
        "id": "own",
        "version": "1",
        "items": [
            {
                "id": "wellbeing",
                "subscale": "own",
                "kind": "scale",
                "min": 0,
                "max": 3,
                "anchors": {"min": {"en": "no"}, "max": {"en": "yes"}},
                "text": {"en": "How often?"},
            }
        ],
        "scoring": {
            "outcome": {
                "items": ["wellbeing"],
                "total_max": 3,
                "reliable_change": 1,
                "bands": [{"min": 0, "label": {"en": "any"}}],
            }
        },
    }
    path = folder / "own.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# --- the due rule -----------------------------------------------------------------------------


def test_a_measure_is_due_when_never_given_or_its_days_have_passed() -> None:
    every_two_weeks = (Measure("phq-9", 14),)
    assert measures_due(every_two_weeks, {}, T0, BERLIN) == ("phq-9",)
    given = {"phq-9": T0}
    assert measures_due(every_two_weeks, given, T0 + 7 * DAY, BERLIN) == ()
    assert measures_due(every_two_weeks, given, T0 + 13 * DAY, BERLIN) == ()
    assert measures_due(every_two_weeks, given, T0 + 14 * DAY, BERLIN) == ("phq-9",)
    # local days, not hours: opening ten minutes earlier in the day two weeks on is still due
    assert measures_due(every_two_weeks, given, T0 + 14 * DAY - timedelta(minutes=10), BERLIN) == (
        "phq-9",
    )
    assert measures_due(every_two_weeks, given, T0 + 21 * DAY, BERLIN) == ("phq-9",)


def test_each_measure_keeps_its_own_interval_and_days_are_the_clients() -> None:
    schedule = (Measure("phq-9", 14), Measure("gad-7", 28))
    given = {"phq-9": T0, "gad-7": T0}
    assert measures_due(schedule, given, T0 + 14 * DAY, BERLIN) == ("phq-9",)
    assert measures_due(schedule, given, T0 + 28 * DAY, BERLIN) == ("phq-9", "gad-7")
    # 23:30 in Berlin, then 00:30 seven days later: a new local day there, not yet in New York
    late = datetime(2027, 1, 12, 22, 30, tzinfo=UTC)
    weekly = (Measure("gad-7", 7),)
    assert measures_due(weekly, {"gad-7": late}, late + 7 * DAY + timedelta(hours=1), BERLIN)
    assert (
        measures_due(
            weekly, {"gad-7": late}, late + 6 * DAY + timedelta(hours=1), "America/New_York"
        )
        == ()
    )


# --- what a check-in asks ---------------------------------------------------------------------


def test_a_due_measure_comes_after_the_alliance_and_wellbeing_items() -> None:
    session = plan_items(BRIEF, False, SESSION, (PHQ9,))
    start = session.index("phq9_1")
    # the alliance, wellbeing and tension items as always, then the PHQ-9, the comment last
    assert session[:start] == plan_items(BRIEF, False, SESSION)[:-1]
    assert session[start:] == [item.id for item in PHQ9.items] + ["comment"]
    # the safety item is PHQ-9 item 9: asked once
    with_safety = plan_items(BRIEF, True, BETWEEN, (PHQ9, GAD7))
    assert with_safety.count("phq9_item9") == 1
    assert with_safety.index("gad7_1") > with_safety.index("phq9_item9")
    # ... in its own place, before the measures, so drifting off inside one skips it never
    assert with_safety.index("phq9_item9") < with_safety.index("phq9_1")
    # a practice whose instrument is the PHQ-9 is not asked it twice
    assert plan_items(PHQ9, False, SESSION, (PHQ9,)) == plan_items(PHQ9, False, SESSION)


def _answer_all(client: object, checkin_id: int, value_of: dict[str, int]) -> list[object]:
    said: list[object] = []
    while client.state["machine"] == "checkin":  # type: ignore[attr-defined]
        checkin = client.state["checkin"]  # type: ignore[attr-defined]
        item = checkin["items"][checkin["index"]]
        value = "s" if item == "comment" else str(value_of.get(item, 1))
        said += client.tap(f"c:{checkin_id}:{checkin['index']}:{value}")  # type: ignore[attr-defined]
    return said


def test_a_checkin_with_the_phq9_counts_every_question_and_item_9_is_the_safety_net() -> None:
    client = idle_client(make_ctx(safety_item=True))
    said = client.send(OpenCheckin(client.tick(), 4, SESSION, ("phq-9",)))
    asked = client.state["checkin"]["items"]
    assert client.state["checkin"]["measures"] == ["phq-9"]
    said += _answer_all(client, 4, {"phq9_item9": 2, "tension": 0})  # no follow-up then
    recorded = {a.item: a.value for a in of_type(said, RecordAnswer)}
    assert {item.id for item in PHQ9.items} <= recorded.keys()
    assert recorded["phq9_item9"] == 2
    assert [a.source for a in of_type(said, CrisisAlert)] == ["safety_item"]
    # each question is shown, then edited to show the answer: the same counter twice
    counters = sorted(
        {(int(m[1]), int(m[2])) for r in replies(said) if (m := COUNTER.match(r.text))}
    )
    shown = len(asked) - 1  # all but the follow-up to a tension there was not
    totals = {total for _, total in counters}
    assert totals == {shown}, "the counter counts every question, the PHQ-9's too"
    assert [n for n, _ in counters] == list(range(1, shown + 1))
    finished = of_type(said, FinishCheckin)
    assert finished and finished[0].complete


def test_a_setting_too_long_for_its_column_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 200) / ("e" * 200)
    deep.mkdir(parents=True)
    own = _own_measure_with_a_wellbeing_item(deep)
    own.write_text(own.read_text(encoding="utf-8").replace("wellbeing", "often"), "utf-8")
    assert len(f"{own}:14d") > 400
    with pytest.raises(ValueError, match="--outcome: longer than 400 characters"):
        parse_measures(f"{own}:14d")


def test_a_state_stored_before_measures_reads_as_asking_none() -> None:
    client = idle_client()
    client.open(3)
    raw = client.state
    del raw["checkin"]["measures"]
    state = load(raw)
    assert state is not None and state["checkin"] is not None
    assert state["checkin"]["measures"] == []
    raw["checkin"]["measures"] = "phq-9"  # not a list: ignored, never a crash
    state = load(raw)
    assert state is not None and state["checkin"]["measures"] == []  # type: ignore[index]


def test_a_measure_file_gone_mid_checkin_skips_its_items() -> None:
    client = idle_client()
    client.send(OpenCheckin(client.tick(), 5, SESSION, ("no-such-measure",)))
    assert client.state["checkin"]["items"] == plan_items(BRIEF, False, SESSION)
    said = _answer_all(client, 5, {})
    assert of_type(said, FinishCheckin)


# --- when a check-in with a measure counts as complete ------------------------------------------


def _tap_until(client: object, checkin_id: int, stop_at: str, value_of: dict[str, int]) -> None:
    """Answer every question before `stop_at` (never the comment), then leave it unanswered."""
    while True:
        checkin = client.state["checkin"]  # type: ignore[attr-defined]
        item = checkin["items"][checkin["index"]]
        if item == stop_at:
            return
        value = str(value_of.get(item, 1))
        client.tap(f"c:{checkin_id}:{checkin['index']}:{value}")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("measures", "safety", "stop_at", "complete"),
    [
        (("phq-9",), False, "phq9_1", True),  # every own item answered, none of the PHQ-9
        (("phq-9",), False, "phq9_5", True),  # part-way through the PHQ-9
        (("phq-9",), True, "phq9_5", True),  # item 9 was asked in its own place, before
        (("phq-9",), True, "phq9_item9", False),  # ... where it is owed, PHQ-9 due or not
        (("gad-7",), True, "gad7_3", True),  # the safety item came before the GAD-7
        (("phq-9", "gad-7"), False, "gad7_1", True),  # between two measures
        (("phq-9",), False, "wellbeing", False),  # one of the check-in's own items left
        (("gad-7",), True, "phq9_item9", False),  # the safety item is the check-in's own
        ((), True, "phq9_item9", False),  # as before measures: the safety item is owed
    ],
)
def test_stopping_inside_a_measure_after_the_own_items_is_a_complete_checkin(
    measures: tuple[str, ...], safety: bool, stop_at: str, complete: bool
) -> None:
    client = idle_client(make_ctx(safety_item=safety))
    client.send(OpenCheckin(client.tick(), 6, SESSION, measures))
    _tap_until(client, 6, stop_at, {"tension": 0})
    recorded = client.state["checkin"]["answers"]
    finished = of_type(client.expire(), FinishCheckin)
    assert [(f.complete, f.answered) for f in finished] == [(complete, len(recorded))]
    assert client.state["checkin"] is None


def test_own_items_all_come_before_the_measures() -> None:
    """The rule above rests on this order: whatever is owed is asked before any measure."""
    for safety in (False, True):
        for measures in ((PHQ9,), (GAD7,), (PHQ9, GAD7), (GAD7, PHQ9)):
            ids = plan_items(BRIEF, safety, SESSION, measures)
            own = plan_items(BRIEF, safety, SESSION)
            measured = {i.id for m in measures for i in m.flat_items()}
            asked_own = [i for i in ids if i not in measured]
            assert asked_own == [i for i in own if i not in measured]
            last_own = max(ids.index(i) for i in asked_own if i != "comment")
            assert all(ids.index(i) > last_own for i in ids if i in measured)
    with_gad = plan_items(BRIEF, True, SESSION, (GAD7,))
    assert with_gad.index("phq9_item9") < with_gad.index("gad7_1")


def test_a_file_is_kept_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path typed at the terminal names the same file for a bot started elsewhere."""
    shutil.copy(INSTRUMENTS_DIR / "gad-7.yaml", tmp_path / "own.yaml")
    monkeypatch.chdir(tmp_path)
    (measure,) = parse_measures("own.yaml:28d")
    assert measure.name == str(tmp_path / "own.yaml")
    assert parse_measures("PHQ-9:14d")[0].name == "phq-9"
    monkeypatch.chdir(INSTRUMENTS_DIR.parent)
    assert stored_measures(format_measures((measure,))) == (measure,)
