"""Message catalogs: every sentence a client or a therapist reads lives in `locales/*.yaml`.

One catalog per language, merged from `<lang>.yaml` (the client's conversation),
`staff.<lang>.yaml` (therapist commands, data rights), `insights.<lang>.yaml` (the digest, the
signal explanations and the chart, under `insights.`) and `console.<lang>.yaml` (the practice
console's pages, under `console.`); a key in two files is an error. Nested YAML
is flattened to dotted keys (`checkin.thanks`). A key missing from a language falls back to
English, so a half-translated catalog degrades instead of failing; a key missing from English is a
programming error and raises.

Templates are `str.format` templates. The language's grammar comes from CLDR through Babel, asked
for by a placeholder's format spec:

    {n:one=day|other=days}    the word that goes with `n` under the language's plural rule;
                              categories are CLDR's (zero, one, two, few, many, other) and one
                              that is not listed reads `other`
    {at:d MMMM}               a date or date-time in a CLDR pattern, with the language's month
                              and weekday names ('12 March', '12 de marzo', '12 марта')

`{n}` alone shows the value as given; `number` writes a decimal with the language's separator and
`join` a list with its "and".
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any, Final

import yaml
from babel import Locale
from babel.dates import parse_pattern
from babel.lists import format_list
from babel.numbers import get_decimal_symbol

LANGUAGES: tuple[str, ...] = ("en", "es", "ru")
DEFAULT_LANGUAGE = "en"
LOCALES_DIR = Path(__file__).with_name("locales")
CATALOG_PARTS: Final = ("", "staff.", "insights.", "console.")
"""The files of a language's catalog: `<lang>.yaml`, `staff.<lang>.yaml`, `insights.<lang>.yaml`,
`console.<lang>.yaml`."""

CLDR_LOCALES: Final[dict[str, str]] = {"en": "en_GB", "es": "es", "ru": "ru"}
"""Whose conventions each language follows: English as written in Britain, as the catalogs are
(day before month: '12 Mar'; no comma before the last "and")."""

PLURAL_CATEGORIES: Final = ("zero", "one", "two", "few", "many", "other")


def _flatten(prefix: str, node: Any, out: dict[str, str], source: Path) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise ValueError(f"{source.name}: {prefix}: key {key!r} must be text (quote it)")
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out, source)
    elif isinstance(node, str):
        out[prefix] = node
    else:
        raise ValueError(f"{source.name}: {prefix}: expected text, got {type(node).__name__}")


def load_catalog(path: Path) -> dict[str, str]:
    """Read one catalog file into a flat key -> text mapping."""
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    flat: dict[str, str] = {}
    _flatten("", data, flat, path)
    return flat


def _catalog(lang: str) -> dict[str, str]:
    """Every file of `lang`'s catalog merged into one mapping; no key may be in two files."""
    merged: dict[str, str] = {}
    for part in CATALOG_PARTS:
        path = LOCALES_DIR / f"{part}{lang}.yaml"
        if not path.exists():
            continue
        extra = load_catalog(path)
        clash = sorted(set(extra) & set(merged))
        if clash:
            raise ValueError(f"{path.name}: keys also in another {lang} file: {', '.join(clash)}")
        merged.update(extra)
    return merged


CATALOGS: dict[str, dict[str, str]] = {lang: _catalog(lang) for lang in LANGUAGES}
_ENGLISH: Final = CATALOGS[DEFAULT_LANGUAGE]


def format_specs(text: str) -> list[tuple[str, str]]:
    """(placeholder, format spec) of every `{…}` in a catalog text that has a spec."""
    return [(name, spec) for _, name, spec, _ in string.Formatter().parse(text) if name and spec]


@cache
def locale(lang: str) -> Locale:
    """The CLDR locale of one of our languages (English's for any other code)."""
    return Locale.parse(CLDR_LOCALES.get(lang, CLDR_LOCALES[DEFAULT_LANGUAGE]))


_MEMO_SIZE: Final = 4096


def _keep(memo: dict[Any, str], key: object, value: str) -> str:
    """Remember `value` under `key`, starting afresh when the memo is full: it only saves work."""
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value
    return value


_CATEGORIES: dict[tuple[str, object], str] = {}
"""Plural categories already worked out: counts repeat, and Babel's rule takes microseconds."""


def plural_category(lang: str, value: object) -> str:
    """The CLDR plural category ('one', 'few', 'other'…) of `value` (21, 2.5, '2,5') in `lang`.

    A float with nothing after the point counts as a whole number (5.0 is '5 days'); a text keeps
    its written decimals ('5,0' has one, as CLDR's rules want). Text that is not a number reads
    'other'.
    """
    key = (lang, value)
    category = _CATEGORIES.get(key)
    if category is None:
        category = _keep(_CATEGORIES, key, _category(lang, value))
    return category


def _category(lang: str, value: object) -> str:
    number: int | Decimal
    if isinstance(value, bool | int):
        number = abs(int(value))
    elif isinstance(value, float):
        number = abs(int(value)) if value.is_integer() else abs(Decimal(repr(value)))
    else:
        try:
            number = abs(Decimal(str(value).strip().replace(",", ".")))
        except InvalidOperation:
            return "other"
        if not number.is_finite():
            return "other"
    return str(locale(lang).plural_form(number))


@cache
def plural_choice(spec: str) -> dict[str, str] | None:
    """`one=day|other=days` as {'one': 'day', 'other': 'days'}; None for any other spec."""
    choice: dict[str, str] = {}
    for part in spec.split("|"):
        category, sep, word = part.partition("=")
        if not sep or category not in PLURAL_CATEGORIES:
            return None
        choice[category] = word
    return choice if "other" in choice else None


_pattern: Final = cache(parse_pattern)
"""A CLDR pattern is parsed once (Babel caches it too, but not in every version we accept)."""

_DATES: dict[tuple[str, str, object, object], str] = {}
"""Dates already written: a digest or a backtest writes the same few days over and over."""


def format_date(value: date | time, pattern: str, lang: str) -> str:
    """`value` in the CLDR `pattern` ('d MMMM y'), with `lang`'s names for months and weekdays."""
    # Aware date-times at one instant are equal whatever their zone: the zone is in the key too.
    key = (lang, pattern, value, value.tzinfo if isinstance(value, datetime | time) else None)
    shown = _DATES.get(key)
    if shown is None:
        shown = _keep(_DATES, key, _pattern(pattern).apply(value, locale(lang)))
    return shown


_DATE_TYPES: Final = (date, time)  # a datetime is a date


@dataclass(frozen=True, slots=True)
class _Plan:
    """A text whose placeholders ask for grammar, rewritten once so that formatting it is a
    plain `format_map`: each `{name:spec}` became `{#i}`, filled in by `t` before formatting."""

    template: str
    slots: tuple[tuple[str, str, dict[str, str] | None, str], ...]  # slot, name, choice, spec


def _plan(text: str) -> _Plan | None:
    pieces: list[str] = []
    slots: list[tuple[str, str, dict[str, str] | None, str]] = []
    for literal, name, spec, conversion in string.Formatter().parse(text):
        pieces.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if spec:
            if conversion:
                raise ValueError(f"{text!r}: {{{name}!{conversion}:…}}: no conversion with grammar")
            slot = f"#{len(slots)}"
            slots.append((slot, name, plural_choice(spec), spec))
            pieces.append(f"{{{slot}}}")
        else:
            pieces.append(f"{{{name}{'!' + conversion if conversion else ''}}}")
    return _Plan("".join(pieces), tuple(slots)) if slots else None


_PLANS: Final[dict[str, _Plan]] = {
    text: plan
    for catalog in CATALOGS.values()
    for text in catalog.values()
    if (plan := _plan(text)) is not None
}
"""The catalog texts with plural choices or date patterns, keyed by the text itself."""


def _fill(plan: _Plan, lang: str, params: dict[str, object]) -> str:
    values = dict(params)
    for slot, name, choice, spec in plan.slots:
        value = params[name]
        if choice is not None:
            values[slot] = choice.get(plural_category(lang, value), choice["other"])
        elif isinstance(value, _DATE_TYPES):
            values[slot] = format_date(value, spec, lang)
        else:
            values[slot] = format(value, spec)
    return plan.template.format_map(values)


def t(lang: str, key: str, **params: object) -> str:
    """The text for `key` in `lang` (English if missing there), formatted with `params`."""
    text = CATALOGS.get(lang, _ENGLISH).get(key)
    if text is None:
        text = _ENGLISH[key]
    if not params or "{" not in text:
        return text
    plan = _PLANS.get(text)
    if plan is None:
        return text.format_map(params)
    return _fill(plan, lang, params)


def has_key(key: str) -> bool:
    """Whether the catalogs have `key` (every key is in English)."""
    return key in _ENGLISH


def placeholders(text: str) -> frozenset[str]:
    """The `{names}` a catalog text expects."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


@cache
def decimal_symbol(lang: str) -> str:
    return get_decimal_symbol(locale(lang))


def number(value: float | int | str, lang: str = DEFAULT_LANGUAGE) -> str:
    """36.0 → '36', 37.5 → '37.5' (in Spanish and Russian '37,5'); text is shown as it is."""
    if type(value) is float:
        return str(int(value)) if value.is_integer() else decimal(str(value), lang)
    return str(value)


def decimal(shown: str, lang: str) -> str:
    """A number already written with a '.' ('35.5'), with the language's decimal separator."""
    separator = decimal_symbol(lang)
    return shown if separator == "." else shown.replace(".", separator)


_JOINED: dict[tuple[str, tuple[str, ...]], str] = {}
"""Lists already joined: the same few signal names are joined again and again."""


def join(parts: Iterable[str], lang: str) -> str:
    """'a, b and c' ('a, b y c', 'a, b и c'): a list as the language writes it."""
    key = (lang, tuple(parts))
    joined = _JOINED.get(key)
    if joined is None:
        joined = _keep(_JOINED, key, format_list(list(key[1]), locale=locale(lang)))
    return joined


def supported_language(code: str | None) -> str | None:
    """Map a Telegram `language_code` such as "es-MX" to one of ours, or None."""
    if not code:
        return None
    base = code.replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else None


def words(lang: str, key: str) -> frozenset[str]:
    """A comma-separated catalog list (accepted replies such as "yes,yeah") as a set."""
    return frozenset(w.strip().casefold() for w in t(lang, key).split(",") if w.strip())
