"""Questionnaires as data: `instruments/*.yaml`, validated on load, and their scoring.

A practice that holds a licence for another instrument drops its YAML beside ours; everything the
check-in needs (texts per language, scale, anchors, which items make up the alliance total) comes
from the file. Validation errors name the file and the field so a broken file is easy to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flows.moments import MOMENTS, SESSION, Moment

INSTRUMENTS_DIR = Path(__file__).with_name("instruments")
DEFAULT_INSTRUMENT = "rapport-brief"
SAFETY_INSTRUMENT = "safety-phq9-item9"
MAX_SCALE_STEPS = 11  # 0-10 fits two keyboard rows; longer scales would not
RUPTURE = "rupture"
"""The subscale of the tension probe and its follow-up."""
WELLBEING = "wellbeing"

LocalText = dict[str, str]


class InstrumentError(ValueError):
    """An instrument file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _needs_english(value: LocalText, where: str) -> None:
    if "en" not in value or not value["en"].strip():
        raise ValueError(f"{where}: needs an English ('en') text")


class Anchors(_Strict):
    """Labels for both ends of a scale, per language."""

    min: LocalText
    max: LocalText


class Item(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")
    subscale: str = Field(min_length=1)
    kind: Literal["scale", "yesno", "text"]
    text: LocalText
    min: int | None = None
    max: int | None = None
    anchors: Anchors | None = None
    choices: dict[int, LocalText] | None = None  # a label per value, shown on the buttons
    follow_up: Item | None = None  # asked only after a "yes"
    optional: bool = False
    crisis_above: int | None = None  # any answer above this is handled as a crisis
    # When it is asked (`flows.moments`): every check-in unless the file says otherwise.
    moments: tuple[Moment, ...] = MOMENTS
    text_at: dict[Moment, LocalText] | None = None  # other wording at a moment

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _needs_english(self.text, "text")
        if not self.moments:
            raise ValueError("moments: name at least one moment it is asked in")
        for moment, texts in (self.text_at or {}).items():
            if moment not in self.moments:
                raise ValueError(f"text_at.{moment}: the item is not asked then")
            _needs_english(texts, f"text_at.{moment}")
        if self.kind == "scale":
            if self.min is None or self.max is None:
                raise ValueError("min/max: a scale item needs both")
            if not 1 <= self.max - self.min < MAX_SCALE_STEPS:
                raise ValueError(f"max: a scale has 2 to {MAX_SCALE_STEPS} points")
            if self.anchors is None and self.choices is None:
                raise ValueError("anchors: a scale item needs anchors (or choices)")
            if self.anchors is not None:
                _needs_english(self.anchors.min, "anchors.min")
                _needs_english(self.anchors.max, "anchors.max")
            if self.choices is not None:
                if sorted(self.choices) != list(range(self.min, self.max + 1)):
                    raise ValueError("choices: need exactly one label per value from min to max")
                for value, labels in self.choices.items():
                    _needs_english(labels, f"choices.{value}")
        elif self.min is not None or self.max is not None or self.anchors or self.choices:
            raise ValueError(f"min/max/anchors/choices: a {self.kind} item cannot have them")
        if self.follow_up is not None:
            if self.kind != "yesno":
                raise ValueError("follow_up: only a yes/no item can have a follow-up")
            if self.follow_up.kind == "text" or self.follow_up.follow_up is not None:
                raise ValueError("follow_up: must be a single scale or yes/no item")
        if self.crisis_above is not None:
            low, high = (0, 1) if self.kind == "yesno" else (self.min, self.max)
            if self.kind == "text" or low is None or high is None:
                raise ValueError("crisis_above: only for scale or yes/no items")
            if not low <= self.crisis_above < high:
                raise ValueError("crisis_above: must lie within the scale")
        return self

    @property
    def low(self) -> int:
        """Smallest accepted value (yes/no is 0/1)."""
        return self.min if self.min is not None else 0

    @property
    def high(self) -> int:
        return self.max if self.max is not None else 1

    def localized(self, texts: LocalText, lang: str) -> str:
        return texts.get(lang) or texts["en"]

    def question(self, lang: str, moment: Moment = SESSION) -> str:
        texts = (self.text_at or {}).get(moment) or self.text
        return self.localized(texts, lang)

    def asked_at(self, moment: Moment) -> bool:
        return moment in self.moments

    def is_crisis(self, value: int | None) -> bool:
        return value is not None and self.crisis_above is not None and value > self.crisis_above


class Band(_Strict):
    """A published severity band: from `min` up to the next band's `min`."""

    min: int = Field(ge=0)
    label: LocalText


class Outcome(_Strict):
    """How an outcome measure (PHQ-9, GAD-7) is scored: the sum of `items`, its published
    severity bands, and the smallest change in the total that is more than measurement error
    (`reliable_change`, a reliable change index). Higher totals are worse."""

    items: list[str] = Field(min_length=1)
    total_max: int
    reliable_change: int = Field(gt=0)
    bands: list[Band] = Field(min_length=1)


class Scoring(_Strict):
    alliance: list[str] = Field(default_factory=list)
    total_max: int | None = None
    cutoff: int | None = None
    item_flag: int | None = None
    reliable_change: int | None = None
    outcome: Outcome | None = None


class Instrument(_Strict):
    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    title: LocalText | None = None
    items: list[Item] = Field(min_length=1)
    scoring: Scoring = Field(default_factory=Scoring)

    @model_validator(mode="before")
    @classmethod
    def _version_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("version"), int | float):
            data = {**data, "version": str(data["version"])}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        index: dict[str, Item] = {}
        for position, item in enumerate(self.items):
            for each in (item, item.follow_up):
                if each is None:
                    continue
                if each.id in index:
                    raise ValueError(f"items[{position}].id: {each.id!r} is used twice")
                index[each.id] = each
        for name in self.scoring.alliance:
            if name not in index:
                raise ValueError(f"scoring.alliance: no item {name!r}")
            if index[name].kind != "scale":
                raise ValueError(f"scoring.alliance: {name!r} is not a scale item")
        if self.scoring.outcome is not None:
            _check_outcome(self.scoring.outcome, index)
        if self.scoring.total_max is not None:
            possible = sum(index[name].high for name in self.scoring.alliance)
            if possible != self.scoring.total_max:
                raise ValueError(
                    f"scoring.total_max: is {self.scoring.total_max} but the alliance items "
                    f"add up to {possible}"
                )
        return self

    # Lookups are hot in the check-in flow; cached_property keeps them plain dict reads.
    @cached_property
    def _index(self) -> dict[str, Item]:
        return {item.id: item for item in self.flat_items()}

    @cached_property
    def _parents(self) -> dict[str, str]:
        return {i.follow_up.id: i.id for i in self.items if i.follow_up is not None}

    def find(self, item_id: str) -> Item | None:
        """The item (or follow-up) with this id, if this instrument has one."""
        return self._index.get(item_id)

    def parent_of(self, item_id: str) -> str | None:
        """For a follow-up, the yes/no item that must be answered "yes" before it is asked."""
        return self._parents.get(item_id)

    def flat_items(self) -> tuple[Item, ...]:
        """Every item in asking order, each follow-up right after its parent."""
        out: list[Item] = []
        for item in self.items:
            out.append(item)
            if item.follow_up is not None:
                out.append(item.follow_up)
        return tuple(out)

    @cached_property
    def session_items(self) -> tuple[str, ...]:
        """Ids of the items asked only about a session: an answer to one is a session rated."""
        return tuple(item.id for item in self.items if item.moments == (SESSION,))

    def by_subscale(self, subscale: str) -> tuple[Item, ...]:
        """The items (follow-ups too) of one subscale, in asking order."""
        return tuple(item for item in self.flat_items() if item.subscale == subscale)

    @cached_property
    def score_free_ids(self) -> frozenset[str]:
        """Ids whose answers are no scores: yes/no probes and free text."""
        return frozenset(item.id for item in self.flat_items() if item.kind != "scale")

    @cached_property
    def rupture_probe(self) -> tuple[str | None, str | None]:
        """(was there tension?, was it talked through?): the yes/no items of the `rupture`
        subscale in asking order, None where the instrument has no such item."""
        ids = [item.id for item in self.by_subscale(RUPTURE) if item.kind == "yesno"]
        return (ids[0] if ids else None, ids[1] if len(ids) > 1 else None)

    def title_for(self, lang: str) -> str:
        if self.title is None:
            return self.id
        return self.title.get(lang) or self.title.get("en") or self.id


def _check_outcome(outcome: Outcome, index: dict[str, Item]) -> None:
    for name in outcome.items:
        if name not in index or index[name].kind != "scale":
            raise ValueError(f"scoring.outcome.items: {name!r} is not a scale item")
    possible = sum(index[name].high for name in outcome.items)
    if possible != outcome.total_max:
        raise ValueError(
            f"scoring.outcome.total_max: is {outcome.total_max} but the items add up to {possible}"
        )
    starts = [band.min for band in outcome.bands]
    if starts[0] != 0 or starts != sorted(set(starts)) or starts[-1] > outcome.total_max:
        raise ValueError("scoring.outcome.bands: must start at 0 and rise within the total")
    for position, band in enumerate(outcome.bands):
        _needs_english(band.label, f"scoring.outcome.bands[{position}].label")


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "tagged-union", "literal[")):
            out += f".{part}" if out else part
    return out


def _explain(error: ValidationError, source: str) -> InstrumentError:
    first = error.errors()[0]
    where = _where(tuple(first["loc"]))
    message = str(first["msg"]).removeprefix("Value error, ")
    if where:
        return InstrumentError(f"{source}: {where}: {message}")
    return InstrumentError(f"{source}: {message}")


def parse_instrument(data: Any, source: str = "<instrument>") -> Instrument:
    """Validate already-parsed YAML; errors name `source` and the offending field."""
    if not isinstance(data, dict):
        raise InstrumentError(f"{source}: expected a mapping at the top level")
    try:
        return Instrument.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, source) from None


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    if not _NAME.match(text):
        raise InstrumentError(f"{text!r}: not an instrument name")
    return INSTRUMENTS_DIR / f"{text}.yaml"


@cache
def _load(path: Path) -> Instrument:
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise InstrumentError(f"{path.name}: no such instrument file ({path})") from None
    except OSError as exc:  # a directory, no permission: one line, never a traceback
        raise InstrumentError(f"{path.name}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise InstrumentError(f"{path.name}: not valid YAML ({exc})") from None
    return parse_instrument(data, path.name)


def stored_name(name_or_path: str) -> str:
    """How a setting keeps an instrument: a shipped name as it is, a file by its absolute path,
    so a relative path typed at the terminal still names the same file for a bot started from
    another directory."""
    path = _resolve(name_or_path)
    return name_or_path if path.parent == INSTRUMENTS_DIR else str(path.expanduser().resolve())


def load_instrument(name_or_path: str | Path) -> Instrument:
    """An instrument by name ("rapport-brief", from `flows/instruments/`) or by file path.

    Loaded instruments are cached and immutable, so every caller shares one object per file.
    """
    return _load(_resolve(name_or_path).resolve())


def available_instruments() -> tuple[str, ...]:
    """Names of the instruments shipped in `flows/instruments/`."""
    return tuple(sorted(p.stem for p in INSTRUMENTS_DIR.glob("*.yaml")))


@dataclass(frozen=True, slots=True)
class Scores:
    """One check-in scored. `total` is None unless every alliance item got a number;
    `by_subscale` sums the numeric answers of scale items; `below_cutoff` is total < cut-off;
    `flagged_items` are alliance items at or below the item flag."""

    total: int | None
    by_subscale: dict[str, int] = field(default_factory=dict)
    below_cutoff: bool = False
    flagged_items: tuple[str, ...] = ()


def score(instrument: Instrument, answers: dict[str, int | None]) -> Scores:
    """Score one check-in's answers (item id -> value, None = prefer not to answer)."""
    by_subscale: dict[str, int] = {}
    for item in instrument.flat_items():
        value = answers.get(item.id)
        if item.kind == "scale" and value is not None:
            by_subscale[item.subscale] = by_subscale.get(item.subscale, 0) + value
    rules = instrument.scoring
    values = [answers.get(name) for name in rules.alliance]
    total = sum(v for v in values if v is not None) if values and None not in values else None
    below = total is not None and rules.cutoff is not None and total < rules.cutoff
    flagged: tuple[str, ...] = ()
    if rules.item_flag is not None:
        flagged = tuple(
            name
            for name in rules.alliance
            if (v := answers.get(name)) is not None and v <= rules.item_flag
        )
    return Scores(total, by_subscale, below, flagged)


Change = Literal["better", "worse", "same"]


@dataclass(frozen=True, slots=True)
class OutcomeScore:
    """One outcome measure scored: the total and the index of its severity band."""

    total: int
    band: int

    def label(self, outcome: Outcome, lang: str) -> str:
        labels = outcome.bands[self.band].label
        return labels.get(lang) or labels["en"]


def score_outcome(instrument: Instrument, answers: Mapping[str, int | None]) -> OutcomeScore | None:
    """The instrument's outcome total and band, or None unless every item got a number (a
    total with items left out would read as less severe than it is)."""
    outcome = instrument.scoring.outcome
    if outcome is None:
        return None
    values = [answers.get(name) for name in outcome.items]
    if any(value is None for value in values):
        return None
    total = sum(value for value in values if value is not None)
    band = max(i for i, b in enumerate(outcome.bands) if b.min <= total)
    return OutcomeScore(total, band)


def reliable_change(outcome: Outcome, before: int, after: int) -> Change:
    """'better' or 'worse' when the totals differ by at least the reliable change, else 'same'."""
    if before - after >= outcome.reliable_change:
        return "better"
    if after - before >= outcome.reliable_change:
        return "worse"
    return "same"


def outcome_instruments(*also: str | Path | None) -> tuple[Instrument, ...]:
    """The shipped instruments that score an outcome (PHQ-9, GAD-7), and each of `also` (a
    practice's own instrument or measure, by name or path) that scores one too."""
    found = [load_instrument(name) for name in available_instruments()]
    for other in also:
        if other is None:
            continue
        own = load_instrument(other)
        if all(own is not shipped for shipped in found):
            found.append(own)
    return tuple(instrument for instrument in found if instrument.scoring.outcome is not None)
