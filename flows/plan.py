"""What one check-in asks, resolved once and shared: the items in order, which follow-up
hangs on which probe, question numbering, and the pieces of text and keyboards that do not
depend on the client. Check-ins are the hot path, so everything that can be is computed here
once per instrument (and language) instead of once per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.i18n import t
from flows.instruments import SAFETY_INSTRUMENT, Instrument, Item, load_instrument
from flows.keyboards import PREFER_NOT, SKIP

SAFETY = load_instrument(SAFETY_INSTRUMENT)
ROW_LIMIT = 6  # buttons in one row before a scale splits into two rows
_CACHE_LIMIT = 512

# (label, value part of the callback data), row by row
KeyboardTemplate = tuple[tuple[tuple[str, str], ...], ...]


def plan_items(instrument: Instrument, safety_item: bool) -> list[str]:
    """Item ids in asking order: instrument items, then the safety item if on, comments last."""
    flat = instrument.flat_items()
    items = [item.id for item in flat if item.kind != "text"]
    if safety_item:
        items += [item.id for item in SAFETY.flat_items() if item.id not in items]
    items += [item.id for item in flat if item.kind == "text"]
    return items


@dataclass(frozen=True, slots=True)
class Step:
    """One position of the plan."""

    item: Item | None  # None when the instrument no longer has this item: it is skipped
    parent: str | None  # a follow-up is asked only after its parent got "yes" (1)
    number: int | None  # 1-based among the main questions; None for follow-ups and comments


@dataclass(slots=True)
class Plan:
    ids: tuple[str, ...]
    steps: tuple[Step, ...]
    total: int
    _questions: dict[tuple[int, str], str] = field(default_factory=dict)
    _prompts: dict[tuple[int, str], str] = field(default_factory=dict)
    _keyboards: dict[tuple[int, str], KeyboardTemplate] = field(default_factory=dict)

    def upcoming(self, start: int, answers: dict[str, int | None]) -> int:
        """The next index after `start` that will be asked (len when none is left)."""
        for index in range(start + 1, len(self.steps)):
            step = self.steps[index]
            if step.item is None or (step.parent is not None and answers.get(step.parent) != 1):
                continue
            return index
        return len(self.steps)

    def item(self, index: int) -> Item | None:
        return self.steps[index].item if 0 <= index < len(self.steps) else None

    def question(self, index: int, lang: str) -> str:
        """The question with its number ("3/6. ..."), `{therapist}` still to be filled in."""
        key = (index, lang)
        text = self._questions.get(key)
        if text is None:
            step = self.steps[index]
            assert step.item is not None
            text = step.item.question(lang)
            if step.number is not None:
                text = t(lang, "checkin.numbered", n=step.number, total=self.total, question=text)
            self._questions[key] = text
        return text

    def prompt(self, index: int, lang: str) -> str:
        """The question as asked: with the scale's anchors when the buttons are bare numbers."""
        key = (index, lang)
        text = self._prompts.get(key)
        if text is None:
            text = self.question(index, lang)
            item = self.steps[index].item
            assert item is not None
            if item.kind == "scale" and item.anchors is not None and item.choices is None:
                anchors = t(
                    lang,
                    "checkin.anchors",
                    low=item.low,
                    low_label=item.anchors.min.get(lang) or item.anchors.min["en"],
                    high=item.high,
                    high_label=item.anchors.max.get(lang) or item.anchors.max["en"],
                )
                text = f"{text}\n{anchors}"
            self._prompts[key] = text
        return text

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


def _build(instrument: Instrument, ids: tuple[str, ...]) -> Plan:
    steps: list[Step] = []
    total = 0
    for item_id in ids:
        item = instrument.find(item_id) or SAFETY.find(item_id)
        parent = instrument.parent_of(item_id) or SAFETY.parent_of(item_id)
        number = None
        if item is not None and item.kind != "text" and parent is None:
            total += 1
            number = total
        steps.append(Step(item, parent, number))
    return Plan(ids, tuple(steps), total)


_PLANS: dict[tuple[int, tuple[str, ...]], tuple[Instrument, Plan]] = {}


def plan_for(instrument: Instrument, ids: list[str]) -> Plan:
    """The shared plan for these item ids under this instrument."""
    key = (id(instrument), tuple(ids))
    cached = _PLANS.get(key)
    if cached is not None and cached[0] is instrument:
        return cached[1]
    if len(_PLANS) >= _CACHE_LIMIT:
        _PLANS.clear()
    plan = _build(instrument, key[1])
    _PLANS[key] = (instrument, plan)  # holding the instrument keeps its id from being reused
    return plan
