"""Therapist-facing wording: signal explanations, digest lines and session openings, per language.

Everything a therapist reads from `insights` comes from `CATALOG[lang]` (the modules in
`insights/locales/`), with the month and weekday names, decimal separator, plural rule and list
joiner of that language. English is the reference; a language missing a key, or a language not
listed, falls back to English, so a translation can grow one line at a time.

A template picks the word that goes with a number through its format spec: `{n:день|дня|дней}`
shows the form for `n` under the language's plural rule (the CLDR categories one/few/many for
Russian, one/other for English and Spanish), and `{n}` shows the number itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Final

from insights import config
from insights.locales import en, es, ru

_LOCALES: Final = {"en": en, "es": es, "ru": ru}
LANGUAGES: Final = tuple(_LOCALES)

CATALOG: Final[dict[str, dict[str, str]]] = {
    lang: module.CATALOG for lang, module in _LOCALES.items()
}
MONTHS: Final[dict[str, tuple[str, ...]]] = {
    lang: module.MONTHS for lang, module in _LOCALES.items()
}
"""Month names as they follow a day number in a sentence ('12 Mar', '12 de marzo', '12 марта')."""
MONTHS_SHORT: Final[dict[str, tuple[str, ...]]] = {
    lang: module.MONTHS_SHORT for lang, module in _LOCALES.items()
}
"""Month names under the chart's date ticks ('12 Mar', '12 mar', '12 мар')."""
WEEKDAYS: Final[dict[str, tuple[str, ...]]] = {
    lang: module.WEEKDAYS for lang, module in _LOCALES.items()
}
DECIMAL: Final[dict[str, str]] = {lang: module.DECIMAL for lang, module in _LOCALES.items()}


def _one_other(whole: int, fraction: bool) -> int:
    """English and Spanish: 'one' (0) for exactly 1, else 'other' (1)."""
    return 0 if whole == 1 and not fraction else 1


def _russian(whole: int, fraction: bool) -> int:
    """Russian: one (0) for 1, 21, 31…; few (1) for 2–4, 22–24…; many (2) for 0, 5–20, 25…

    A decimal fraction takes CLDR's 'other', whose word form is the genitive singular, the same
    as 'few' for the nouns used here (2,5 дня, 1,5 часа): so it reads the 'few' form.
    """
    if fraction:
        return 1
    if whole % 10 == 1 and whole % 100 != 11:
        return 0
    if 2 <= whole % 10 <= 4 and not 12 <= whole % 100 <= 14:
        return 1
    return 2


PluralRule = Callable[[int, bool], int]
PLURAL_RULES: Final[dict[str, PluralRule]] = {"en": _one_other, "es": _one_other, "ru": _russian}
PLURAL_FORMS: Final[dict[str, int]] = {"en": 2, "es": 2, "ru": 3}
"""How many forms a `{n:…|…}` choice lists in each language."""


def plural_form(lang: str, value: object) -> int:
    """The index of the form that goes with `value` ('2,5', 21, 5.0…) in `lang`."""
    rule = PLURAL_RULES.get(lang, _one_other)
    if isinstance(value, bool):
        return rule(int(value), False)
    if isinstance(value, int):
        return rule(abs(value), False)
    if isinstance(value, float):
        return rule(abs(int(value)), not value.is_integer())
    whole, _, decimals = str(value).strip().replace(",", ".").partition(".")
    try:
        return rule(abs(int(whole or "0")), bool(decimals))  # '5,0' counts as a fraction
    except ValueError:
        return rule(0, True)


class _Counted:
    """A template value: `{n}` shows it, `{n:form|form|form}` shows the form that goes with it."""

    __slots__ = ("lang", "value")

    def __init__(self, value: object, lang: str) -> None:
        self.value = value
        self.lang = lang

    def __format__(self, spec: str) -> str:
        if "|" not in spec:
            return format(self.value, spec)
        forms = spec.split("|")
        return forms[min(plural_form(self.lang, self.value), len(forms) - 1)]


def text(lang: str, key: str, **values: object) -> str:
    """The catalog entry for `key` in `lang` (English when missing), filled in."""
    template = CATALOG.get(lang, {}).get(key) or CATALOG["en"][key]
    if not values:
        return template
    if "|" in template:
        return template.format(**{name: _Counted(v, lang) for name, v in values.items()})
    return template.format(**values)


def has_key(lang: str, key: str) -> bool:
    return key in CATALOG.get(lang, {}) or key in CATALOG["en"]


def short_date(moment: datetime, zone: tzinfo, lang: str = "en") -> str:
    """'12 Mar' ('12 de marzo', '12 марта') in the reader's time zone."""
    local = moment.astimezone(zone)
    months = MONTHS.get(lang, MONTHS["en"])
    return text(lang, "date.day_month", day=local.day, month=months[local.month - 1])


def date_time(moment: datetime, zone: tzinfo, lang: str = "en") -> str:
    """'Tue 14 Mar, 18:00' ('martes 14 de marzo, 18:00') in the reader's time zone."""
    local = moment.astimezone(zone)
    days = WEEKDAYS.get(lang, WEEKDAYS["en"])
    return text(
        lang,
        "date.weekday_day_time",
        weekday=days[local.weekday()],
        date=short_date(local, zone, lang),
        time=f"{local:%H:%M}",
    )


def duration(hours: float, lang: str = "en") -> str:
    """A delay in the unit a person would use: minutes, hours, or days."""
    if hours < 1:
        return text(lang, "minutes", n=max(1, round(hours * 60)))
    if hours < 1.5:
        return text(lang, "hour")
    if hours < 36:
        return text(lang, "hours", n=round(hours))
    if lang == "en":
        return text(lang, "days", n=f"{hours / 24:.1f}")
    # '5 дней' rather than '5,0 дня': a whole number of days is written whole
    return text(lang, "days", n=number(round(hours / 24, 1), lang))


def number(value: float | int | str, lang: str = "en") -> str:
    """36.0 → '36', 37.5 → '37.5' (in Spanish and Russian '37,5')."""
    if type(value) is float:
        return str(int(value)) if value.is_integer() else decimal(str(value), lang)
    return str(value)


def decimal(shown: str, lang: str) -> str:
    """A number already written with a '.' ('35.5'), with the language's decimal separator."""
    separator = DECIMAL.get(lang, ".")
    return shown if separator == "." else shown.replace(".", separator)


def names(codes: str, lang: str) -> str:
    """'slowing,falling_alliance' → 'slower replies and a falling alliance rating'."""
    parts = [text(lang, f"name.{code}") for code in codes.split(",") if code]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + text(lang, "list.and") + parts[-1]


def together_tail(lang: str) -> str:
    """What `together` puts between a sentence and the names of the signals it came with."""
    template = text(lang, "together")
    return template.split("{text}", 1)[1].split("{others}", 1)[0]


def strip_together(sentence: str, lang: str) -> str:
    """The sentence without its 'together with …' tail (it has one at most)."""
    head, sep, _ = sentence.partition(together_tail(lang))
    return head if sep else sentence


def explain(
    code: str,
    severity: str,
    since: datetime,
    evidence: Mapping[str, float | int | str],
    zone: tzinfo,
    lang: str = "en",
) -> str:
    """One plain sentence a therapist understands, with the numbers."""
    e = {key: number(value, lang) for key, value in evidence.items()}
    day = short_date(since, zone, lang)
    sentence = _sentence(code, e, evidence, day, lang)
    others = str(evidence.get("with", ""))
    if others:
        sentence = text(lang, "together", text=sentence, others=names(others, lang))
    return sentence


def _sentence(
    code: str,
    e: dict[str, str],
    raw: Mapping[str, float | int | str],
    day: str,
    lang: str,
) -> str:
    reason = e.get("reason", "")
    if code == "silence":
        if reason == "missed":
            return text(lang, "silence.missed", missed=e["missed_in_row"], since=day)
        if reason == "pattern":
            return text(
                lang,
                "silence.pattern",
                since=day,
                window=e["window"],
                missed=e["missed_recent"],
                late=e["late_recent"],
            )
        if reason == "quiet":
            cadence = float(raw.get("cadence_days", 1)) or 1.0
            cadences = float(raw.get("days_since_reply", 0)) / cadence
            return text(lang, "silence.quiet", days=e["days_since_reply"], cadences=int(cadences))
        return text(
            lang,
            "silence.rate",
            answered=e["answered"],
            window=e["window"],
            rate_before=e["rate_before_pct"],
        )
    if code == "slowing":
        return text(
            lang,
            "slowing",
            recent=duration(float(raw["median_delay_hours"]), lang),
            base=duration(float(raw["baseline_delay_hours"]), lang),
        )
    if code == "low_alliance":
        key = "low_alliance.run" if int(raw.get("in_row", 1)) > 1 else "low_alliance"
        return text(
            lang,
            key,
            total=e["total"],
            max=config.TOTAL_MAX,
            cutoff=e["cutoff"],
            in_row=e["in_row"],
        )
    if code == "falling_alliance":
        if reason == "trend":
            return text(
                lang,
                "falling_alliance.trend",
                window=e["window"],
                first=e["first"],
                total=e["total"],
            )
        key = (
            "falling_alliance.sustained"
            if int(raw.get("sustained", 1)) > 1
            else "falling_alliance.baseline"
        )
        return text(lang, key, max=config.TOTAL_MAX, **e)
    if code == "item_drop":
        key = f"item.{raw['item']}"
        item = text(lang, key) if has_key(lang, key) else e["item"]
        domain = text(lang, f"domain.{raw['domain']}")
        if "baseline" in e and float(raw.get("drop", 0)) > 0:
            return text(
                lang,
                "item_drop",
                item=item,
                domain=domain,
                value=e["value"],
                baseline=e["baseline"],
            )
        return text(lang, "item_drop.low", item=item, domain=domain, value=e["value"])
    if code == "partial":
        if int(raw.get("count", 1)) <= 1:
            return text(lang, "partial.one")
        return text(lang, "partial", count=e["count"], window=e["window"])
    if code == "terse":
        if reason == "shrinking":
            return text(
                lang,
                "terse.shrinking",
                chars_recent=e["chars_recent"],
                chars_before=e["chars_before"],
            )
        return text(lang, "terse.stopped", window=e["window"], rate_before=e["rate_before_pct"])
    if code == "ceiling":
        return text(lang, "ceiling", in_row=e["in_row"])
    if code == "rupture_reported":
        if raw.get("talked_through") == "yes":
            return text(lang, "rupture_reported.resolved", since=day)
        count = int(raw.get("unresolved_recent", 1))
        if count > 1:
            return text(lang, "rupture_reported.repeated", count=count, since=day)
        return text(lang, "rupture_reported", since=day)
    if code == "confrontation":
        count = int(raw.get("count_recent", 1))
        if count > 1:
            return text(lang, "confrontation.repeated", count=count, since=day)
        return text(lang, "confrontation", since=day)
    if has_key(lang, code):
        return text(lang, code, since=day)
    return code.replace("_", " ")
