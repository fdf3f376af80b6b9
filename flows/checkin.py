r"""A check-in: a short intro, then one item at a time, then an optional comment and thanks.

    new -> asking (one item at a time) -> commenting -> finished
             \------------------------------------------> expired (time ran out, /pause, /stop)

Which items are asked is fixed when the check-in opens (the instrument's items, the safety item
if the practice switched it on, the outcome measures due, the comment last) and kept in the state,
so a change of settings mid-check-in cannot shift the questions under the client. A follow-up is
asked only after its parent got "yes". A tap counts only for the open check-in and the item
currently asked; typed numbers count for scale items. An expired check-in closes quietly: the
client already had one reminder, and a "you missed it" message would read as a reproach. It is
complete when nothing owed was left (`flows.plan.Plan.owed`), e.g. only a measure's last items.
"""

from __future__ import annotations

from typing import Any

from transitions import EventData

from flows.instruments import Item
from flows.intents import (
    Button,
    DiscardCheckin,
    FinishCheckin,
    Keyboard,
    RecordAnswer,
    RecordComment,
)
from flows.keyboards import CHECKIN, DIALOG, PREFER_NOT, SKIP
from flows.machinery import TurnModel, build_machine, can_fire, fire
from flows.measures import measure_instruments
from flows.moments import BETWEEN, FIRST, SESSION, Moment
from flows.parsing import typed_number, yes_or_no
from flows.plan import Plan, answer_label, plan_for, plan_items
from flows.state import CheckinData
from flows.turn import Turn
from flows.visible import visible_text

COMMENT_LIMIT = 2000
INTRO_KEYS: dict[Moment, str] = {
    SESSION: "checkin.intro",
    BETWEEN: "checkin.intro_between",
    FIRST: "checkin.intro_first",
}

_OPEN = ["asking", "commenting"]
_Route = dict[str, Any]
# Moving on to the next question is an internal transition (the phase stays "asking", only the
# item index moves), which keeps the most frequent event the cheapest one.
_NEXT: list[_Route] = [
    {"source": "asking", "dest": None, "conditions": "next_is_question", "after": "ask_current"},
    {"source": "commenting", "dest": "asking", "conditions": "next_is_question"},
    {"source": _OPEN, "dest": "commenting", "conditions": "next_is_comment"},
    {"source": _OPEN, "dest": "finished"},
]
_BEGIN: list[_Route] = [
    {"dest": "asking", "conditions": "next_is_question"},
    {"dest": "commenting", "conditions": "next_is_comment"},
    {"dest": "finished"},
]

MACHINE = build_machine(
    "checkin",
    ["new", "asking", "commenting", "finished", "expired"],
    [
        *(
            {
                "trigger": "begin",
                "source": "new",
                "prepare": "plan_next",
                "before": "introduce",
                **route,
            }
            for route in _BEGIN
        ),
        *(
            {"trigger": "answer", "prepare": "plan_next", "before": "record", **route}
            for route in _NEXT
        ),
        {"trigger": "close", "source": _OPEN, "dest": "expired"},
        {"trigger": "nudge", "source": _OPEN, "dest": None, "after": "remind"},
        {"trigger": "reask", "source": _OPEN, "dest": None, "after": "ask_current"},
    ],
)
MACHINE.get_state("asking").add_callback("enter", "ask_current")
MACHINE.get_state("commenting").add_callback("enter", "ask_current")
MACHINE.get_state("finished").add_callback("enter", "finish")
MACHINE.get_state("expired").add_callback("enter", "close_quietly")


class CheckinModel(TurnModel):
    """The check-in's model: the open check-in and its plan besides the turn."""

    __slots__ = ("checkin", "next_index", "plan")

    def __init__(self, turn: Turn) -> None:
        super().__init__(turn)
        checkin = turn.state["checkin"]
        assert checkin is not None, "only built in the check-in machine, which has one"
        self.checkin: CheckinData = checkin
        measures = measure_instruments(checkin["measures"])
        self.plan: Plan = plan_for(
            turn.ctx.instrument, checkin["items"], checkin["moment"], measures
        )
        self.next_index = 0

    def current_item(self) -> Item | None:
        return self.plan.item(self.checkin["index"])

    # conditions ----------------------------------------------------------------------------
    def plan_next(self, event: EventData) -> None:
        """Where the answer being given leads (a "yes" to a probe brings its follow-up in)."""
        answers = self.checkin["answers"]
        if "value" in event.kwargs and (item := self.current_item()) is not None:
            answers = {**answers, item.id: event.kwargs["value"]}
        self.next_index = self.plan.upcoming(self.checkin["index"], answers)

    def next_is_question(self, _: EventData) -> bool:
        item = self.plan.item(self.next_index)
        return item is not None and item.kind != "text"

    def next_is_comment(self, _: EventData) -> bool:
        item = self.plan.item(self.next_index)
        return item is not None and item.kind == "text"

    # actions -------------------------------------------------------------------------------
    def introduce(self, _: EventData) -> None:
        self.turn.say(self.turn.text(INTRO_KEYS[self.checkin["moment"]]))
        self.checkin["index"] = self.next_index

    def record(self, event: EventData) -> None:
        turn, checkin, item = self.turn, self.checkin, self.current_item()
        tapped = bool(event.kwargs.get("tapped"))
        if item is not None and item.kind == "text":
            # Stored as a person may see it: no bidi overrides or zero-width characters.
            comment = visible_text(str(event.kwargs.get("comment") or "")).strip()
            if tapped:
                turn.ack(question_text(turn, self.plan, checkin), turn.text("checkin.skipped"))
            if comment:
                turn.emit(RecordComment(checkin["id"], comment[:COMMENT_LIMIT], turn.at))
                if len(comment) > COMMENT_LIMIT:
                    turn.say(turn.text("checkin.comment_truncated", limit=f"{COMMENT_LIMIT:,}"))
        elif item is not None:
            value: int | None = event.kwargs.get("value")
            if tapped:
                label = answer_label(item, value, turn.lang)
                turn.ack(question_text(turn, self.plan, checkin), label)
            turn.emit(RecordAnswer(checkin["id"], item.id, value, turn.at))
            checkin["answers"][item.id] = value
            if item.is_crisis(value):
                turn.crisis(words=None)  # the safety item
        checkin["index"] = self.next_index

    def ask_current(self, _: EventData) -> None:
        if self.current_item() is not None:
            ask(self.turn, self.plan, self.checkin)

    def remind(self, event: EventData) -> None:
        self.turn.say(self.turn.text("checkin.nudge"))
        self.ask_current(event)

    def finish(self, _: EventData) -> None:
        turn, checkin = self.turn, self.checkin
        turn.emit(FinishCheckin(checkin["id"], turn.at, True, len(checkin["answers"])))
        turn.say(turn.text("checkin.thanks"), talk_button(turn))
        _clear(turn)

    def close_quietly(self, _: EventData) -> None:
        turn, checkin = self.turn, self.checkin
        complete = _nothing_owed_left(self.plan, checkin)
        turn.emit(FinishCheckin(checkin["id"], turn.at, complete, len(checkin["answers"])))
        _clear(turn)


def talk_button(turn: Turn) -> Keyboard:
    """Under the thanks: a way to ask for a talk about how the work is going (`flows.dialogs`)."""
    return ((Button(turn.text("talk.button"), f"{DIALOG}:talk:ask"),),)


def _clear(turn: Turn) -> None:
    checkin = turn.state["checkin"]
    assert checkin is not None
    closed, last = checkin["id"], turn.state["last_closed"]
    turn.state["last_closed"] = closed if last is None else max(closed, last)
    turn.state["checkin"] = None
    turn.switch("idle", "idle")


def _nothing_owed_left(plan: Plan, checkin: CheckinData) -> bool:
    """True when nothing still to ask is owed (`Plan.owed`): the client stopped at the comment,
    or inside an outcome measure after the check-in's own items. Items are asked in order, so
    everything before the current one was answered ("prefer not" counts)."""
    index = checkin["index"]
    while plan.item(index) is not None:
        if plan.owed(index):
            return False
        index = plan.upcoming(index, checkin["answers"])
    return True


# rendering -----------------------------------------------------------------------------------
def question_text(turn: Turn, plan: Plan, checkin: CheckinData) -> str:
    """The current question in the client's language, numbered."""
    text = plan.question(checkin["index"], turn.lang, checkin["answers"])
    return text.replace("{therapist}", turn.therapist)


def prompt_text(turn: Turn, plan: Plan, checkin: CheckinData) -> str:
    """The current question as asked, anchors included."""
    text = plan.prompt(checkin["index"], turn.lang, checkin["answers"])
    return text.replace("{therapist}", turn.therapist)


def data_prefix(checkin: CheckinData) -> str:
    """How the current question's buttons' data starts."""
    return f"{CHECKIN}:{checkin['id']}:{checkin['index']}:"


def keyboard(turn: Turn, plan: Plan, checkin: CheckinData) -> Keyboard:
    prefix = data_prefix(checkin)
    return tuple(
        [
            tuple([Button(label, prefix + value) for label, value in row])
            for row in plan.keyboard(checkin["index"], turn.lang)
        ]
    )


def shown(turn: Turn, checkin: CheckinData) -> bool:
    """Whether the client sees the current question: a number or a yes/no typed while the edit
    that asks it is on its way was meant for the question before it (answered by a tap
    already), so it counts for neither. (Words are kept as the comment all the same.)"""
    prefix = data_prefix(checkin)
    return not any(data.startswith(prefix) for data in turn.ctx.on_its_way)


def ask(turn: Turn, plan: Plan, checkin: CheckinData) -> None:
    index = checkin["index"]
    if plan.item(index) is not None:
        turn.say(prompt_text(turn, plan, checkin), keyboard(turn, plan, checkin))


# entry points --------------------------------------------------------------------------------
def open_checkin(
    turn: Turn, checkin_id: int, moment: Moment = SESSION, measures: tuple[str, ...] = ()
) -> None:
    """The scheduler opened a check-in: close any older one, then introduce and ask what fits
    the moment, with the outcome measures due after the alliance check."""
    if turn.machine in ("onboarding", "ended"):
        turn.emit(DiscardCheckin(checkin_id, turn.at))
        return
    current: CheckinData | None = turn.state["checkin"]
    if current is not None and checkin_id <= current["id"]:
        return  # the open check-in delivered twice, or an older one arriving late
    last_closed = turn.state["last_closed"]
    if last_closed is not None and checkin_id <= last_closed:
        return  # a late duplicate of a check-in that is already over
    if current is not None:
        close(turn)
    # A dialog left open before now (an unanswered "delete everything?") is over: what the
    # client types from here belongs to the check-in, a "yes" to its question included.
    turn.state["dialog"] = None
    names = list(measures)
    items = plan_items(
        turn.ctx.instrument, turn.ctx.safety_item, moment, measure_instruments(names)
    )
    turn.state["checkin"] = CheckinData(
        id=checkin_id, items=items, index=-1, answers={}, moment=moment, measures=names
    )
    turn.switch("checkin", "new")
    fire(MACHINE, CheckinModel(turn), "begin")


def _fire_open(turn: Turn, trigger: str, **kwargs: object) -> bool:
    if turn.machine != "checkin":
        return False
    model = CheckinModel(turn)
    return can_fire(MACHINE, model, trigger) and fire(MACHINE, model, trigger, **kwargs)


def close(turn: Turn) -> None:
    """End the open check-in without a word (expiry, /pause, /stop)."""
    _fire_open(turn, "close")


def nudge(turn: Turn) -> None:
    _fire_open(turn, "nudge")


def reask(turn: Turn) -> None:
    """Ask the current item again as a new message (after a command interrupted the check-in)."""
    _fire_open(turn, "reask")


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _tapped_value(item: Item, raw: str) -> tuple[bool, int | None]:
    """(valid, value) for the value part of an answer button."""
    if raw == PREFER_NOT:
        return True, None
    if _is_number(raw) and item.low <= int(raw) <= item.high:
        return True, int(raw)
    return False, None


def on_tap(turn: Turn, parts: list[str]) -> None:
    """An answer button; stale, doubled and forged taps change nothing and get a notice."""
    if len(parts) != 4 or not (_is_number(parts[1]) and _is_number(parts[2])):
        turn.notice("chat.button_inactive")
        return
    checkin_id, index, raw = int(parts[1]), int(parts[2]), parts[3]
    checkin: CheckinData | None = turn.state["checkin"]
    if turn.machine != "checkin" or checkin is None or checkin["id"] != checkin_id:
        turn.notice("checkin.closed")
        return
    if index < checkin["index"]:
        turn.notice("checkin.already_answered")
        return
    model = CheckinModel(turn)
    item = model.current_item()
    if index != checkin["index"] or item is None:
        turn.notice("chat.button_inactive")
        return
    kwargs: dict[str, Any]
    if item.kind == "text":
        valid, kwargs = raw == SKIP, {"skip": True}
    else:
        valid, value = _tapped_value(item, raw)
        kwargs = {"value": value}
    if valid and can_fire(MACHINE, model, "answer"):
        fire(MACHINE, model, "answer", tapped=True, **kwargs)
    else:
        turn.notice("chat.button_inactive")


def on_text(turn: Turn, text: str, *, crisis: bool) -> None:
    """A typed answer or the comment. After crisis language no hint follows: the crisis reply
    was what mattered, and the question's buttons are still there."""
    model = CheckinModel(turn)
    item = model.current_item()
    if item is None:
        return
    if item.kind == "text":
        fire(MACHINE, model, "answer", comment=text)
        return
    value: int | None = None
    if not shown(turn, model.checkin):
        pass  # an answer to the question before, tapped already: the hint says how to answer
    elif item.kind == "yesno":
        answer = yes_or_no(turn.lang, text)
        value = None if answer is None else int(answer)
    elif (number := typed_number(text)) is not None and item.low <= number <= item.high:
        value = number
    if value is not None:
        fire(MACHINE, model, "answer", value=value)
    elif not crisis:
        if item.kind == "yesno":
            turn.say(turn.text("checkin.choice_hint"))
        else:
            turn.say(turn.text("checkin.tap_hint", low=item.low, high=item.high))
