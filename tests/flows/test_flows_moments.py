"""Asking what fits: the session items only when there is a session to rate, the time since
otherwise, expectations before the first session; a counter that counts every question."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from flows.i18n import LANGUAGES, t
from flows.instruments import load_instrument
from flows.intents import FinishCheckin, RecordAnswer
from flows.moments import BETWEEN, FIRST, MOMENTS, SESSION, moment_for
from flows.plan import plan_items
from flows.state import load
from tests.flows.testkit import idle_client, last_keyboard_data, make_ctx, of_type, replies

T0 = datetime(2027, 1, 11, 16, 0, tzinfo=UTC)  # a Monday session ends
DAY = timedelta(days=1)
BRIEF = load_instrument("rapport-brief")


def test_the_rule() -> None:
    assert moment_for(None, True, None) == FIRST  # a first session ahead, none yet
    assert moment_for(None, False, None) == SESSION  # no sessions on record: as always
    assert moment_for(T0, False, None) == SESSION  # a session, never rated
    assert moment_for(T0, True, T0 + DAY) == BETWEEN  # Tuesday rated Monday's session
    assert moment_for(T0 + 7 * DAY, True, T0 + DAY) == SESSION  # the next Monday's session
    assert moment_for(T0, True, T0 - DAY) == SESSION  # rated the one before
    # an instrument without session-only items asks everything every time
    assert moment_for(None, True, None, rates_sessions=False) == SESSION
    assert moment_for(T0, True, T0 + DAY, rates_sessions=False) == SESSION


def test_session_items_only_at_a_session() -> None:
    assert BRIEF.session_items == ("heard", "goals", "approach", "overall")
    between = plan_items(BRIEF, False, BETWEEN)
    first = plan_items(BRIEF, True, FIRST)
    assert not set(BRIEF.session_items) & (set(between) | set(first))
    assert between == ["between_work", "wellbeing", "tension", "talked", "comment"]
    assert first == ["expectations", "hope", "wellbeing", "phq9_item9", "comment"]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("moment", [BETWEEN, FIRST])
def test_no_last_session_wording_outside_a_session(lang: str, moment: str) -> None:
    client = idle_client(make_ctx(language=lang))
    said = [r.text for r in replies(client.open(7, moment))]  # type: ignore[arg-type]
    index = 0
    while client.state["machine"] == "checkin":
        item = client.state["checkin"]["items"][client.state["checkin"]["index"]]
        said += [
            r.text for r in replies(client.tap(f"c:7:{index}:{'s' if item == 'comment' else 0}"))
        ]
        index = client.state["checkin"]["index"] if client.state["checkin"] else index
    session_words = [BRIEF.find(i).question(lang) for i in BRIEF.session_items]  # type: ignore[union-attr]
    for text in said:
        assert not any(words in text for words in session_words)
    assert said[0] == t(lang, f"checkin.intro_{moment}", therapist="Dr. Lee")
    if moment == FIRST:
        tension = BRIEF.find("tension")
        assert tension is not None
        assert not any(tension.question(lang) in text for text in said)


def _counters(texts: list[str]) -> list[tuple[int, int]]:
    found = [re.match(r"(\d+)/(\d+)\. ", text) for text in texts]
    return [(int(m[1]), int(m[2])) for m in found if m]


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("tension", [0, 1])
def test_the_counter_counts_every_question(moment: str, tension: int) -> None:
    """Each question asked carries n/total; n runs 1, 2, 3 ... and the last one asked is
    total/total, whatever the answers (a "yes" to the tension probe brings its follow-up in)."""
    client = idle_client(make_ctx(safety_item=True))
    asked = [r.text for r in replies(client.open(7, moment)) if not r.edit]  # type: ignore[arg-type]
    while (checkin := client.state["checkin"]) is not None:
        index = checkin["index"]
        item = checkin["items"][index]
        value = "s" if item == "comment" else (tension if item == "tension" else 0)
        asked += [r.text for r in replies(client.tap(f"c:7:{index}:{value}")) if not r.edit]
    counters = _counters(asked)
    assert [n for n, _ in counters] == list(range(1, len(counters) + 1))
    assert counters[-1][0] == counters[-1][1]
    assert all(n <= total for n, total in counters)
    # the total may only grow by the follow-up a "yes" brings in, never shrink
    totals = [total for _, total in counters]
    assert totals == sorted(totals) and totals[-1] - totals[0] <= 1


def test_the_acknowledged_question_keeps_its_number() -> None:
    client = idle_client()
    client.open(7)
    for index in range(5):
        client.tap(f"c:7:{index}:5")
    intents = client.tap("c:7:5:1")  # tension: yes
    ack = replies(intents)[0]
    assert ack.edit and ack.text.startswith("6/7. ")
    assert replies(intents)[-1].text.startswith("7/8. ")
    assert last_keyboard_data(intents)[0] == "c:7:6:1"


def test_between_check_in_records_and_finishes() -> None:
    client = idle_client()
    client.open(9, BETWEEN)
    intents = [*client.tap("c:9:0:4"), *client.tap("c:9:1:6"), *client.tap("c:9:2:0")]
    intents += client.tap("c:9:4:s")
    assert [(a.item, a.value) for a in of_type(intents, RecordAnswer)] == [
        ("between_work", 4),
        ("wellbeing", 6),
        ("tension", 0),
    ]
    assert of_type(intents, FinishCheckin) == [FinishCheckin(9, client.at, True, 3)]


def test_a_state_stored_before_moments_reads_as_a_session() -> None:
    client = idle_client()
    client.open(7)
    stored = client.state
    del stored["checkin"]["moment"]
    loaded = load(stored)
    assert loaded is not None and loaded["checkin"] is not None
    assert loaded["checkin"]["moment"] == SESSION
