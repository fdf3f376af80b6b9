"""The check-in, step by step: taps, typed answers, prefer-not, comment, stale taps, crisis,
nudge and expiry."""

from __future__ import annotations

import pytest

from flows.checkin import COMMENT_LIMIT
from flows.i18n import t
from flows.intents import (
    DiscardCheckin,
    FinishCheckin,
    RecordAnswer,
    RecordComment,
    Reply,
    SetLanguage,
    ShowMyData,
)
from tests.flows.testkit import (
    RESOURCES,
    Client,
    alerts,
    all_text,
    idle_client,
    last_keyboard_data,
    make_ctx,
    notices,
    of_type,
    replies,
)

ITEMS = ["heard", "goals", "approach", "overall", "wellbeing", "tension", "talked", "comment"]
ALREADY = t("en", "checkin.already_answered")
INACTIVE = t("en", "chat.button_inactive")
CLOSED = t("en", "checkin.closed")


def opened(checkin_id: int = 7, **ctx: object) -> Client:
    client = idle_client(make_ctx(**ctx))
    client.open(checkin_id)
    return client


def answer_scales(client: Client, checkin_id: int = 7) -> None:
    for index, value in enumerate((9, 8, 7, 9, 6)):
        client.tap(f"c:{checkin_id}:{index}:{value}")


def recorded(intents: list) -> list[tuple[str, int | None]]:
    return [(a.item, a.value) for a in of_type(intents, RecordAnswer)]


def test_opening_introduces_and_asks_the_first_item() -> None:
    client = idle_client()
    intents = client.open(7)
    intro, question = replies(intents)
    assert intro.text == t("en", "checkin.intro", therapist="Dr. Lee")
    assert question.text.startswith("1/7. In your last session")
    assert "Dr. Lee" in question.text and "0 = not at all … 10 = completely" in question.text
    rows = [[b.label for b in row] for row in question.buttons]
    assert rows == [
        ["0", "1", "2", "3", "4", "5"],
        ["6", "7", "8", "9", "10"],
        [t("en", "button.prefer_not")],
    ]
    assert question.buttons[0][3].data == "c:7:0:3"
    assert question.buttons[2][0].data == "c:7:0:n"
    state = client.state
    assert state["machine"] == "checkin" and state["state"] == "asking"
    assert state["checkin"] == {
        "id": 7,
        "items": ITEMS,
        "index": 0,
        "answers": {},
        "moment": "session",
        "measures": [],
    }


def test_a_tap_edits_the_question_records_and_asks_the_next_item() -> None:
    client = opened()
    intents = client.tap("c:7:0:8")
    ack, nxt = replies(intents)
    assert ack.edit and ack.buttons == ()
    assert ack.text.startswith("1/7. In your last session") and ack.text.endswith("✓ 8")
    assert of_type(intents, RecordAnswer) == [RecordAnswer(7, "heard", 8, client.at)]
    assert not nxt.edit and nxt.text.startswith("2/7.")
    assert last_keyboard_data(intents)[0] == "c:7:1:0"
    assert (
        intents.index(ack) < intents.index(of_type(intents, RecordAnswer)[0]) < intents.index(nxt)
    )


def test_full_check_in_with_a_rupture_and_a_comment() -> None:
    client = opened()
    answer_scales(client)
    intents = client.tap("c:7:5:1")  # tension: yes
    assert recorded(intents) == [("tension", 1)]
    assert replies(intents)[-1].text == "7/8. Did you get to talk it through together?"
    assert last_keyboard_data(intents) == ["c:7:6:1", "c:7:6:0", "c:7:6:n"]
    intents = client.tap("c:7:6:0")
    assert recorded(intents) == [("talked", 0)]
    assert client.state["state"] == "commenting"
    assert last_keyboard_data(intents) == ["c:7:7:s"]
    intents = client.text("  The end felt rushed.  ")
    assert of_type(intents, RecordComment) == [RecordComment(7, "The end felt rushed.", client.at)]
    assert of_type(intents, FinishCheckin) == [FinishCheckin(7, client.at, True, 7)]
    assert replies(intents)[-1].text == t("en", "checkin.thanks", therapist="Dr. Lee")
    state = client.state
    assert state["machine"] == "idle" and state["checkin"] is None and state["last_closed"] == 7


def test_no_tension_skips_the_follow_up_and_skip_ends_without_a_comment() -> None:
    client = opened()
    answer_scales(client)
    intents = client.tap("c:7:5:0")
    assert client.state["state"] == "commenting"
    assert last_keyboard_data(intents) == ["c:7:7:s"]
    intents = client.tap("c:7:7:s")
    assert replies(intents)[0].edit and replies(intents)[0].text.endswith("✓ skipped")
    assert of_type(intents, RecordComment) == []
    assert of_type(intents, FinishCheckin) == [FinishCheckin(7, client.at, True, 6)]


def test_prefer_not_to_answer_records_none() -> None:
    client = opened()
    intents = client.tap("c:7:0:n")
    assert recorded(intents) == [("heard", None)]
    assert replies(intents)[0].text.endswith("✓ prefer not to answer")
    client.tap("c:7:1:5")
    client.tap("c:7:2:5")
    client.tap("c:7:3:5")
    client.tap("c:7:4:5")
    intents = client.tap("c:7:5:n")  # prefer not to say about tension: no follow-up
    assert recorded(intents) == [("tension", None)]
    assert client.state["state"] == "commenting"


@pytest.mark.parametrize(
    ("typed", "value"), [("7", 7), (" 10 ", 10), ("0", 0), ("7/10", 7), ("8.", 8)]
)
def test_typed_numbers_in_range_are_answers(typed: str, value: int) -> None:
    client = opened()
    intents = client.text(typed)
    assert recorded(intents) == [("heard", value)]
    assert [r.edit for r in replies(intents)] == [False]  # no tapped message to edit
    assert client.state["checkin"]["index"] == 1


@pytest.mark.parametrize("typed", ["11", "-1", "seven", "7.5", "", "42", "🙂"])
def test_other_text_during_a_scale_gets_a_hint_and_changes_nothing(typed: str) -> None:
    client = opened()
    before = client.state
    intents = client.text(typed)
    assert replies(intents) == [Reply(t("en", "checkin.tap_hint", low=0, high=10))]
    assert client.state == before


def test_typed_yes_and_no_answer_yes_no_items() -> None:
    client = opened()
    answer_scales(client)
    assert recorded(client.text("Yes")) == [("tension", 1)]
    assert recorded(client.text("no")) == [("talked", 0)]
    client2 = opened()
    answer_scales(client2)
    before = client2.state
    assert replies(client2.text("sort of")) == [Reply(t("en", "checkin.choice_hint"))]
    assert client2.state == before


def test_long_comments_are_kept_up_to_the_limit_and_the_client_is_told() -> None:
    client = opened()
    answer_scales(client)
    client.tap("c:7:5:0")
    intents = client.text("x" * (COMMENT_LIMIT + 500))
    (comment,) = of_type(intents, RecordComment)
    assert len(comment.text) == COMMENT_LIMIT
    assert t("en", "checkin.comment_truncated", therapist="Dr. Lee", limit="2,000") in all_text(
        intents
    )
    assert of_type(intents, FinishCheckin)[0].complete


def test_stale_double_and_forged_taps_are_refused_without_change() -> None:
    client = opened()
    client.tap("c:7:0:8")
    client.tap("c:7:1:8")
    before = client.state
    cases = {
        "c:7:0:8": ALREADY,  # tapped twice / old message
        "c:7:1:3": ALREADY,
        "c:7:3:5": INACTIVE,  # a question not asked yet
        "c:6:2:5": CLOSED,  # another check-in
        "c:7:2:11": INACTIVE,  # out of range
        "c:7:2:x": INACTIVE,
        "c:7:2:s": INACTIVE,  # skip is only for the comment
        "c:7:x:1": INACTIVE,
        "c:7:2:5:9": INACTIVE,
        "c:-7:2:5": INACTIVE,
        "c:7:2:٣": INACTIVE,  # a non-ASCII digit
        "zz:top": INACTIVE,
        "": INACTIVE,
    }
    for data, notice in cases.items():
        intents = client.tap(data)
        assert notices(intents) == [notice], data
        assert replies(intents) == [] and of_type(intents, RecordAnswer) == []
        assert client.state == before, data


def test_taps_after_the_check_in_closed_are_refused() -> None:
    client = opened()
    client.expire()
    assert notices(client.tap("c:7:0:8")) == [CLOSED]
    assert client.state["machine"] == "idle"


def test_commands_mid_check_in_then_the_current_item_is_asked_again() -> None:
    client = opened()
    client.tap("c:7:0:8")
    intents = client.command("/help")
    assert "/pause" in replies(intents)[0].text
    assert replies(intents)[-1].text.startswith("2/7.")
    assert last_keyboard_data(intents)[0] == "c:7:1:0"
    intents = client.command("mydata")
    assert of_type(intents, ShowMyData) == [ShowMyData()]
    assert last_keyboard_data(intents)[0] == "c:7:1:0"
    intents = client.command("frobnicate")
    assert replies(intents)[0].text == t("en", "command.unknown")
    assert last_keyboard_data(intents)[0] == "c:7:1:0"
    assert recorded(client.tap("c:7:1:9")) == [("goals", 9)]  # and the check-in carries on


def test_language_change_mid_check_in_asks_the_item_again_in_the_new_language() -> None:
    client = opened()
    client.command("language")
    assert client.state["dialog"] == "language"
    intents = client.tap("d:lang:es")
    assert of_type(intents, SetLanguage) == [SetLanguage("es")]
    assert replies(intents)[-1].text.startswith("1/7. En tu última sesión")
    assert client.state["dialog"] is None and client.state["machine"] == "checkin"
    assert recorded(client.tap("c:7:0:4")) == [("heard", 4)]


def test_answer_buttons_keep_working_while_a_dialog_is_open() -> None:
    client = opened()
    client.command("stop")
    assert recorded(client.tap("c:7:0:4")) == [("heard", 4)]
    # Passed over: the dialog ends, so a later typed "yes" is the check-in's, never a stop.
    assert client.state["dialog"] is None


def test_crisis_language_mid_check_in_answers_at_once_and_the_flow_stays() -> None:
    client = opened()
    client.tap("c:7:0:8")
    before = client.state
    intents = client.text("I don't want to live anymore")
    assert alerts(intents) == [("text", client.at)]
    (reply,) = replies(intents)  # resources only: no "please tap a button" after it
    assert RESOURCES in reply.text and "Dr. Lee" in reply.text
    assert client.state == before
    assert recorded(client.tap("c:7:1:7")) == [("goals", 7)]


def test_crisis_language_in_the_comment_is_kept_and_alerted() -> None:
    client = opened()
    answer_scales(client)
    client.tap("c:7:5:0")
    intents = client.text("quiero suicidarme")
    assert alerts(intents) == [("text", client.at)]
    assert of_type(intents, RecordComment) == [RecordComment(7, "quiero suicidarme", client.at)]
    assert of_type(intents, FinishCheckin)[0].complete


def test_safety_item_when_switched_on() -> None:
    client = opened(safety_item=True)
    answer_scales(client)
    intents = client.tap("c:7:5:0")
    question = replies(intents)[-1]
    assert "better off dead" in question.text
    assert [b.label for row in question.buttons for b in row] == [
        "Not at all",
        "Several days",
        "More than half the days",
        "Nearly every day",
        t("en", "button.prefer_not"),
    ]
    assert last_keyboard_data(intents)[0] == "c:7:7:0"
    intents = client.tap("c:7:7:2")
    assert recorded(intents) == [("phq9_item9", 2)]
    assert replies(intents)[0].text.endswith("✓ More than half the days")
    assert alerts(intents) == [("safety_item", client.at)]
    assert RESOURCES in all_text(intents)
    assert client.state["state"] == "commenting"


@pytest.mark.parametrize("data", ["c:7:7:0", "c:7:7:n"])
def test_safety_item_not_at_all_or_not_answered_raises_no_alert(data: str) -> None:
    client = opened(safety_item=True)
    answer_scales(client)
    client.tap("c:7:5:0")
    intents = client.tap(data)
    assert alerts(intents) == []
    assert len(of_type(intents, RecordAnswer)) == 1


def test_nudge_reminds_once_with_the_current_item() -> None:
    client = opened()
    client.tap("c:7:0:8")
    before = client.state
    intents = client.nudge()
    reminder, question = replies(intents)
    assert reminder.text == t("en", "checkin.nudge")
    assert question.text.startswith("2/7.") and last_keyboard_data(intents)[0] == "c:7:1:0"
    assert client.state == before
    assert idle_client().nudge() == []


def test_expire_partial_and_missed_close_quietly() -> None:
    partial = opened()
    partial.tap("c:7:0:8")
    partial.tap("c:7:1:6")
    intents = partial.expire()
    assert intents == [FinishCheckin(7, partial.at, False, 2)]
    assert partial.state["machine"] == "idle" and partial.state["checkin"] is None
    missed = opened(8)
    assert missed.expire() == [FinishCheckin(8, missed.at, False, 0)]
    assert idle_client().expire() == []


def test_expire_at_the_optional_comment_counts_as_complete() -> None:
    client = opened()
    answer_scales(client)
    client.tap("c:7:5:0")
    assert client.expire() == [FinishCheckin(7, client.at, True, 6)]


def test_opening_twice_or_late_duplicates_change_nothing() -> None:
    client = opened()
    client.tap("c:7:0:8")
    before = client.state
    assert client.open(7) == []
    assert client.state == before
    client.expire()
    assert client.open(7) == [] and client.open(5) == []
    assert client.state["machine"] == "idle"


def test_a_new_check_in_closes_the_one_still_open() -> None:
    client = opened()
    client.tap("c:7:0:8")
    intents = client.open(9)
    assert of_type(intents, FinishCheckin) == [FinishCheckin(7, client.at, False, 1)]
    assert client.state["checkin"]["id"] == 9 and client.state["checkin"]["index"] == 0
    assert notices(client.tap("c:7:1:5")) == [CLOSED]


def test_media_and_edits_get_a_kind_reply_and_change_nothing() -> None:
    client = opened()
    before = client.state
    assert replies(client.media("voice")) == [Reply(t("en", "chat.media"))]
    assert replies(client.edited()) == [Reply(t("en", "chat.edited"))]
    assert client.state == before


def test_text_when_idle_explains_that_nobody_reads_the_chat() -> None:
    client = idle_client()
    intents = client.text("see you on Tuesday")
    assert replies(intents) == [Reply(t("en", "chat.idle_text", therapist="Dr. Lee"))]


def test_a_stopped_client_gets_no_check_ins() -> None:
    client = Client(make_ctx(), {**idle_client().state, "machine": "ended", "state": "stopped"})
    assert client.open(4) == [DiscardCheckin(4, client.at)]


def test_every_text_is_in_the_client_language() -> None:
    client = opened(language="ru")
    intents = client.tap("c:7:0:8")
    assert replies(intents)[-1].text.startswith("2/7. Насколько на сессии")
    assert "0 = совсем нет … 10 = полностью" in replies(intents)[-1].text
    assert t("ru", "button.prefer_not") in [
        b.label for row in replies(intents)[-1].buttons for b in row
    ]
