"""Therapist-facing wording: signal explanations, digest lines and session openings.

The texts are the `insights.` part of the one message catalog (`flows/locales/insights.<lang>.yaml`,
read through `flows.i18n`, which brings each language's plural rule, month and weekday names,
decimal separator and list joining from CLDR). English is the reference; a language missing a key,
or a language not listed, falls back to English. This module decides which sentence a signal gets
and fills it in with the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Final

from flows import i18n
from flows.i18n import join, number
from insights import config

PREFIX: Final = "insights."
"""Where the therapist's wording sits in the catalog."""


def text(lang: str, key: str, **values: object) -> str:
    """The catalog entry `insights.<key>` in `lang` (English when missing), filled in."""
    return i18n.t(lang, PREFIX + key, **values)


def has_key(key: str) -> bool:
    return i18n.has_key(PREFIX + key)


def short_date(moment: datetime, zone: tzinfo, lang: str = "en") -> str:
    """'12 Mar' ('12 de marzo', '12 марта') in the reader's time zone."""
    return text(lang, "date.day_month", date=moment.astimezone(zone).date())


def date_time(moment: datetime, zone: tzinfo, lang: str = "en") -> str:
    """'Tue 14 Mar, 18:00' ('martes 14 de marzo, 18:00') in the reader's time zone."""
    return text(lang, "date.weekday_day_time", at=moment.astimezone(zone))


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


def names(codes: str, lang: str) -> str:
    """'slowing,falling_alliance' → 'slower replies and a falling alliance rating'."""
    return join((signal_name(code, lang) for code in codes.split(",") if code), lang)


def signal_name(code: str, lang: str = "en") -> str:
    """'falling_alliance' → 'a falling alliance rating': what a person reads instead of a code."""
    return text(lang, f"name.{code}") if has_key(f"name.{code}") else code.replace("_", " ")


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
        if reason == "sessions":
            return text(
                lang,
                "silence.sessions",
                missed=e["missed_in_row"],
                sessions=e["sessions"],
                since=day,
            )
        if reason == "quiet":
            cadence = float(raw.get("cadence_days", 1)) or 1.0
            cadences = float(raw.get("days_since_reply", 0)) / cadence
            return text(lang, "silence.quiet", days=e["days_since_reply"], cadences=int(cadences))
        counts = _named(e, "answered", "window")
        return text(lang, "silence.rate", rate_before=e["rate_before_pct"], **counts)
    if code == "slowing":
        return text(
            lang,
            "slowing",
            recent=duration(float(raw["median_delay_hours"]), lang),
            base=duration(float(raw["baseline_delay_hours"]), lang),
        )
    if code == "low_alliance":
        key = "low_alliance.run" if int(raw.get("in_row", 1)) > 1 else "low_alliance"
        return text(lang, key, max=config.TOTAL_MAX, **_named(e, "total", "cutoff", "in_row"))
    if code == "falling_alliance":
        if reason == "trend":
            return text(lang, "falling_alliance.trend", **_named(e, "window", "first", "total"))
        key = (
            "falling_alliance.sustained"
            if int(raw.get("sustained", 1)) > 1
            else "falling_alliance.baseline"
        )
        return text(lang, key, max=config.TOTAL_MAX, **e)
    if code == "item_drop":
        key = f"item.{raw['item']}"
        item = text(lang, key) if has_key(key) else e["item"]
        domain = text(lang, f"domain.{raw['domain']}")
        if "baseline" in e and float(raw.get("drop", 0)) > 0:
            return text(
                lang, "item_drop", item=item, domain=domain, **_named(e, "value", "baseline")
            )
        return text(lang, "item_drop.low", item=item, domain=domain, value=e["value"])
    if code == "partial":
        if int(raw.get("count", 1)) <= 1:
            return text(lang, "partial.one")
        return text(lang, "partial", **_named(e, "count", "window"))
    if code == "terse":
        if reason == "shrinking":
            return text(lang, "terse.shrinking", **_named(e, "chars_recent", "chars_before"))
        return text(lang, "terse.stopped", window=e["window"], rate_before=e["rate_before_pct"])
    if code == "ceiling":
        return text(lang, "ceiling", in_row=e["in_row"])
    if code == "rupture_reported":
        if raw.get("talked_through") == "yes":
            return text(lang, "rupture_reported.resolved", since=day)
        return _once_or_more(lang, code, int(raw.get("unresolved_recent", 1)), day)
    if code == "confrontation":
        return _once_or_more(lang, code, int(raw.get("count_recent", 1)), day)
    if has_key(code):
        return text(lang, code, since=day)
    return code.replace("_", " ")


def _named(e: dict[str, str], *names: str) -> dict[str, str]:
    """The evidence a sentence shows under the evidence's own names."""
    return {name: e[name] for name in names}


def _once_or_more(lang: str, key: str, count: int, day: str) -> str:
    """`key`, or `key.repeated` with the count when it happened more than once lately."""
    if count > 1:
        return text(lang, f"{key}.repeated", count=count, since=day)
    return text(lang, key, since=day)
