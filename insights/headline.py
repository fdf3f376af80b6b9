"""The digest's headline: the finding in a few words ("Alliance falling for 3 weeks; 2 check-ins
missed"), so a therapist knows from the notification what the digest is about.

One short phrase per risk item and per signal, in the order the digest lists them, at most three,
the first capitalised and the rest joined after it. Phrases carry a number or a date, never a code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Final

from flows.i18n import number
from insights import config
from insights.texts import has_key, short_date, text

if TYPE_CHECKING:
    from insights.digest import RiskItem
    from insights.signals import Signal

MAX_PARTS: Final = 3
WEEK_DAYS: Final = 7


def risk_phrase(item: RiskItem, zone: tzinfo, lang: str) -> str:
    return text(lang, f"headline.{item.kind}", date=short_date(item.at, zone, lang))


def signal_phrase(signal: Signal, now: datetime, zone: tzinfo, lang: str) -> str:
    """A few words for one signal, with its main number."""
    e = signal.evidence
    code = signal.code
    date = short_date(signal.since, zone, lang)
    weeks = int((now - signal.since).days // WEEK_DAYS)
    if code == "silence":
        if e.get("reason") in ("missed", "sessions"):
            return text(lang, "headline.silence.missed", n=int(e["missed_in_row"]))
        return text(lang, "headline.silence", date=date)
    if code == "falling_alliance":
        if e.get("reason") == "trend":
            return text(lang, "headline.falling.trend", first=e["first"], total=e["total"])
        base = number(e["baseline"], lang)
        if weeks >= 2:
            return text(lang, "headline.falling.weeks", n=weeks, baseline=base, total=e["total"])
        return text(lang, "headline.falling", baseline=base, total=e["total"])
    if code == "low_alliance":
        n = int(e.get("in_row", 1))
        key = "headline.low.run" if n > 1 else "headline.low"
        return text(lang, key, n=n, total=e["total"], max=config.TOTAL_MAX)
    if code == "item_drop":
        item = str(e["item"])
        name = text(lang, f"chart.item.{item}") if has_key(f"chart.item.{item}") else item
        return text(lang, "headline.item_drop", item=name, value=e["value"])
    if code == "rupture_reported" and e.get("talked_through") == "yes":
        return text(lang, "headline.rupture_reported.resolved", date=date)
    key = f"headline.{code}"
    return text(lang, key, date=date) if has_key(key) else code


def outcome_phrase(instrument: str, first: int, latest: int, lang: str) -> str:
    """'PHQ-9 reliably worse (8 → 15)'."""
    return text(lang, "headline.outcome.worse", title=instrument.upper(), first=first, total=latest)


def wellbeing_phrase(value: int, lang: str) -> str:
    return text(lang, "headline.wellbeing", value=value, max=config.ITEM_MAX)


def join_phrases(phrases: Sequence[str], lang: str) -> str:
    """'Alliance falling for 3 weeks; 2 check-ins missed': distinct phrases, first capitalised."""
    kept: list[str] = []
    for phrase in phrases:
        if phrase and phrase not in kept:
            kept.append(phrase)
    kept = kept[:MAX_PARTS]
    if not kept:
        return ""
    first, *rest = kept
    return "; ".join([first[:1].upper() + first[1:], *(_lower_first(p) for p in rest)])


def _lower_first(phrase: str) -> str:
    """'Urgent alert' → 'urgent alert', but 'PHQ-9 …' stays as it is."""
    return phrase[:1].lower() + phrase[1:] if phrase[1:2].islower() else phrase
