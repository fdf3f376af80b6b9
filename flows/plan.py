"""What one check-in asks, resolved once and shared: the items in order (those that fit the
moment, `flows.moments`), which follow-up hangs on which probe, and the pieces of text and
keyboards that do not depend on the client. Check-ins are the hot path, so everything that can
be is computed here once per instrument (and language) instead of once per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from flows.i18n import t
from flows.instruments import SAFETY_INSTRUMENT, Instrument, Item, load_instrument
from flows.keyboards import PREFER_NOT, SKIP
from flows.moments import SESSION, Moment

SAFETY = load_instrument(SAFETY_INSTRUMENT)
ROW_LIMIT = 6  # buttons in one row before a scale splits into two rows
_CACHE_LIMIT = 512

# (label, value part of the callback data), row by row
KeyboardTemplate = tuple[tuple[tuple[str, str], ...], ...]


def plan_items(
    instrument: Instrument,
    safety_item: bool,
    moment: Moment = SESSION,
    measures: Sequence[Instrument] = (),
) -> list[str]:
    """Item ids in asking order: the instrument's items asked at this moment (a follow-up with
    its parent), then the safety item if on, then the outcome measures due (`flows.moments.
    measures_due`), comments last. An id is asked once: with the safety item on it keeps its
    place even when a due measure holds it too (PHQ-9 item 9 is it), so a client who drifts off
    inside the measure has still been asked it. The check-in's own items and the safety item
    thus all come before the measures, so a client who stops inside a measure has answered
    them (`Plan.owed`)."""
    flat: list[Item] = []
    for item in instrument.items:
        if item.asked_at(moment):
            flat += [item] if item.follow_up is None else [item, item.follow_up]
    items = [item.id for item in flat if item.kind != "text"]
    if safety_item:
        items += [item.id for item in SAFETY.flat_items() if item.id not in items]
    extra: list[str] = []
    for measure in measures:
        if measure is not instrument:
            asked = (i for i in measure.flat_items() if i.asked_at(moment) and i.kind != "text")
            extra += [i.id for i in asked if i.id not in items and i.id not in extra]
    items += extra
    items += [item.id for item in flat if item.kind == "text"]
    return items


@dataclass(frozen=True, slots=True)
class Step:
    """One position of the plan."""

    item: Item | None  # None when the instrument no longer has this item: it is skipped
    parent: str | None  # a follow-up is asked only after its parent got "yes" (1)
    measured: bool = False  # an outcome measure's item, not the check-in's own


@dataclass(slots=True)
class Plan:
    ids: tuple[str, ...]
    steps: tuple[Step, ...]
    moment: Moment = SESSION
    parents: tuple[str, ...] = ()  # the probes whose "yes" brings a follow-up in
    _positions: dict[tuple[int, tuple[bool, ...]], tuple[int, int]] = field(default_factory=dict)
    _questions: dict[tuple[int, str, int, int], str] = field(default_factory=dict)
    _anchors: dict[tuple[int, str], str] = field(default_factory=dict)
    _keyboards: dict[tuple[int, str], KeyboardTemplate] = field(default_factory=dict)

    def _asked(self, index: int, answers: dict[str, int | None]) -> bool:
        step = self.steps[index]
        return step.item is not None and (step.parent is None or answers.get(step.parent) == 1)

    def upcoming(self, start: int, answers: dict[str, int | None]) -> int:
        """The next index after `start` that will be asked (len when none is left)."""
        for index in range(start + 1, len(self.steps)):
            if self._asked(index, answers):
                return index
        return len(self.steps)

    def item(self, index: int) -> Item | None:
        return self.steps[index].item if 0 <= index < len(self.steps) else None

    def owed(self, index: int) -> bool:
        """Whether the check-in is unfinished while this item is unanswered: the one rule for
        "complete". The check-in's own items are owed; optional ones (the comment) are not, nor
        an outcome measure's: a client who stops inside the PHQ-9 after every alliance and
        wellbeing item has answered the check-in, and the measure's unanswered items are simply
        missing (its total is then not scored, `flows.instruments.score_outcome`)."""
        step = self.steps[index] if 0 <= index < len(self.steps) else None
        return (
            step is not None and step.item is not None and not (step.item.optional or step.measured)
        )

    def position(self, index: int, answers: dict[str, int | None]) -> tuple[int, int]:
        """(n, total) for the counter: every question counts, the comment and a follow-up too
        (one is counted once its probe got the "yes" that brings it in), so the counter never
        reads "6/6" with more to come."""
        flags = tuple(answers.get(parent) == 1 for parent in self.parents)
        key = (index, flags)
        found = self._positions.get(key)
        if found is None:
            n = total = 0
            for i in range(len(self.steps)):
                if i == index or self._asked(i, answers):
                    total += 1
                    n += i <= index
            found = self._positions[key] = (n, total)
        return found

    def question(self, index: int, lang: str, answers: dict[str, int | None] | None = None) -> str:
        """The question with its number ("3/7. ..."), `{therapist}` still to be filled in;
        `answers` so far decide whether a follow-up counts."""
        n, total = self.position(index, answers or {})
        key = (index, lang, n, total)
        text = self._questions.get(key)
        if text is None:
            step = self.steps[index]
            assert step.item is not None
            question = step.item.question(lang, self.moment)
            text = t(lang, "checkin.numbered", n=n, total=total, question=question)
            self._questions[key] = text
        return text

    def prompt(self, index: int, lang: str, answers: dict[str, int | None] | None = None) -> str:
        """The question as asked: with the scale's anchors when the buttons are bare numbers."""
        key = (index, lang)
        anchors = self._anchors.get(key)
        if anchors is None:
            item = self.steps[index].item
            assert item is not None
            anchors = ""
            if item.kind == "scale" and item.anchors is not None and item.choices is None:
                anchors = t(
                    lang,
                    "checkin.anchors",
                    low=item.low,
                    low_label=item.anchors.min.get(lang) or item.anchors.min["en"],
                    high=item.high,
                    high_label=item.anchors.max.get(lang) or item.anchors.max["en"],
                )
            self._anchors[key] = anchors
        text = self.question(index, lang, answers)
        return f"{text}\n{anchors}" if anchors else text

    def keyboard(self, index: int, lang: str) -> KeyboardTemplate:
        key = (index, lang)
        template = self._keyboards.get(key)
        if template is None:
            item = self.steps[index].item
            assert item is not None
            template = _keyboard_template(item, lang)
            self._keyboards[key] = template
        return template


def answer_label(item: Item, value: int | None, lang: str) -> str:
    """How an answer is shown back to the client."""
    if value is None:
        return t(lang, "checkin.prefer_not")
    if item.kind == "yesno":
        return t(lang, "button.yes" if value else "button.no")
    if item.choices is not None:
        labels = item.choices[value]
        return labels.get(lang) or labels["en"]
    return str(value)


def _keyboard_template(item: Item, lang: str) -> KeyboardTemplate:
    prefer_not = ((t(lang, "button.prefer_not"), PREFER_NOT),)
    if item.kind == "text":
        return (((t(lang, "button.skip"), SKIP),),)
    if item.kind == "yesno":
        return (((t(lang, "button.yes"), "1"), (t(lang, "button.no"), "0")), prefer_not)
    if item.choices is not None:
        rows = [((answer_label(item, v, lang), str(v)),) for v in sorted(item.choices)]
        return (*rows, prefer_not)
    values = list(range(item.low, item.high + 1))
    half = (len(values) + 1) // 2 if len(values) > ROW_LIMIT else len(values)
    rows_of_values = [row for row in (values[:half], values[half:]) if row]
    return (*(tuple((str(v), str(v)) for v in row) for row in rows_of_values), prefer_not)


def _build(
    instrument: Instrument, ids: tuple[str, ...], moment: Moment, measures: Sequence[Instrument]
) -> Plan:
    sources = (instrument, *measures, SAFETY)
    measured = {
        each.id
        for measure in measures
        if measure is not instrument
        for each in measure.flat_items()
        if instrument.find(each.id) is None
    }
    # The safety item asked in its own place, before every measure's other items, is the
    # check-in's own (owed); inside a measure it is that measure's.
    ahead = next((x for x in ids if x in measured and SAFETY.find(x) is None), None)
    own_place = ids[: ids.index(ahead)] if ahead is not None else ids
    measured -= {x for x in own_place if SAFETY.find(x) is not None}
    steps: list[Step] = []
    for item_id in ids:
        item = next((x for src in sources if (x := src.find(item_id)) is not None), None)
        parent = next((p for src in sources if (p := src.parent_of(item_id)) is not None), None)
        steps.append(Step(item, parent, item_id in measured))
    parents = tuple(dict.fromkeys(step.parent for step in steps if step.parent is not None))
    return Plan(ids, tuple(steps), moment, parents)


_PlanKey = tuple[tuple[int, ...], tuple[str, ...], Moment]
_PLANS: dict[_PlanKey, tuple[tuple[Instrument, ...], Plan]] = {}


def plan_for(
    instrument: Instrument,
    ids: list[str],
    moment: Moment = SESSION,
    measures: Sequence[Instrument] = (),
) -> Plan:
    """The shared plan for these item ids, asked at this moment, under this instrument and the
    outcome measures the check-in asks."""
    held = (instrument, *measures)
    key = (tuple(id(each) for each in held), tuple(ids), moment)
    cached = _PLANS.get(key)
    if cached is not None and all(a is b for a, b in zip(cached[0], held, strict=True)):
        return cached[1]
    if len(_PLANS) >= _CACHE_LIMIT:
        _PLANS.clear()
    plan = _build(instrument, key[1], moment, measures)
    _PLANS[key] = (held, plan)  # holding the instruments keeps their ids from being reused
    return plan
