"""Turning what a client types or taps into an IANA time zone, and showing local time back.

Accepted: an IANA name ("Europe/Berlin", any case, spaces for underscores), a city that is the
last part of a zone name ("berlin", "new york", "Buenos Aires"), a few common local spellings
("Москва", "Ciudad de México", "Mumbai"), or an offset from UTC ("+3", "UTC-5", "GMT+5:30").
A whole-hour offset becomes a fixed `Etc/GMT∓N` zone (POSIX sign: UTC+3 is `Etc/GMT-3`). An
offset that is not a whole number of hours becomes the best-known zone that keeps that offset
(UTC+5:30 -> Asia/Kolkata); the client sees the result and the local time and can choose again.
Every result is a name `zoneinfo.ZoneInfo` loads, because the scheduler keeps using it.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

SUGGESTED_ZONES: dict[str, tuple[str, ...]] = {
    "en": (
        "Europe/London",
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Los_Angeles",
    ),
    "es": (
        "Europe/Madrid",
        "America/Mexico_City",
        "America/Bogota",
        "America/Lima",
        "America/Santiago",
        "America/Argentina/Buenos_Aires",
    ),
    "ru": (
        "Europe/Kaliningrad",
        "Europe/Moscow",
        "Europe/Samara",
        "Asia/Yekaterinburg",
        "Asia/Novosibirsk",
        "Asia/Krasnoyarsk",
        "Asia/Irkutsk",
        "Asia/Vladivostok",
    ),
}
ALL_SUGGESTED: tuple[str, ...] = tuple(z for zones in SUGGESTED_ZONES.values() for z in zones)

_AREAS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
    }
)

# Offsets that are not whole hours, mapped to a zone that uses them (no better fixed zone exists).
_FRACTIONAL_OFFSETS: dict[tuple[int, int], str] = {
    (1, 330): "Asia/Kolkata",
    (1, 345): "Asia/Kathmandu",
    (1, 210): "Asia/Tehran",
    (1, 270): "Asia/Kabul",
    (1, 390): "Asia/Yangon",
    (1, 525): "Australia/Eucla",
    (1, 570): "Australia/Darwin",
    (1, 630): "Australia/Lord_Howe",
    (1, 765): "Pacific/Chatham",
    (-1, 210): "America/St_Johns",
    (-1, 570): "Pacific/Marquesas",
}

# Spellings people type that are not the last part of a zone name.
_CITY_ALIASES: dict[str, str] = {
    # Russian
    "москва": "Europe/Moscow",
    "мск": "Europe/Moscow",
    "санкт-петербург": "Europe/Moscow",
    "петербург": "Europe/Moscow",
    "питер": "Europe/Moscow",
    "спб": "Europe/Moscow",
    "калининград": "Europe/Kaliningrad",
    "самара": "Europe/Samara",
    "екатеринбург": "Asia/Yekaterinburg",
    "челябинск": "Asia/Yekaterinburg",
    "омск": "Asia/Omsk",
    "новосибирск": "Asia/Novosibirsk",
    "красноярск": "Asia/Krasnoyarsk",
    "иркутск": "Asia/Irkutsk",
    "владивосток": "Asia/Vladivostok",
    "казань": "Europe/Moscow",
    "нижний новгород": "Europe/Moscow",
    "ростов-на-дону": "Europe/Moscow",
    "краснодар": "Europe/Moscow",
    "уфа": "Asia/Yekaterinburg",
    "пермь": "Asia/Yekaterinburg",
    "минск": "Europe/Minsk",
    "киев": "Europe/Kyiv",
    "алматы": "Asia/Almaty",
    "ташкент": "Asia/Tashkent",
    "тбилиси": "Asia/Tbilisi",
    "ереван": "Asia/Yerevan",
    "баку": "Asia/Baku",
    "рига": "Europe/Riga",
    "таллин": "Europe/Tallinn",
    "вильнюс": "Europe/Vilnius",
    "кишинев": "Europe/Chisinau",
    "берлин": "Europe/Berlin",
    "лондон": "Europe/London",
    "париж": "Europe/Paris",
    "прага": "Europe/Prague",
    "варшава": "Europe/Warsaw",
    "стамбул": "Europe/Istanbul",
    "белград": "Europe/Belgrade",
    "тель-авив": "Asia/Jerusalem",
    "иерусалим": "Asia/Jerusalem",
    "нью-йорк": "America/New_York",
    "дубай": "Asia/Dubai",
    "бишкек": "Asia/Bishkek",
    "астана": "Asia/Almaty",
    # Spanish
    "ciudad de mexico": "America/Mexico_City",
    "cdmx": "America/Mexico_City",
    "mexico": "America/Mexico_City",
    "guadalajara": "America/Mexico_City",
    "monterrey": "America/Monterrey",
    "barcelona": "Europe/Madrid",
    "sevilla": "Europe/Madrid",
    "valencia": "Europe/Madrid",
    "bilbao": "Europe/Madrid",
    "malaga": "Europe/Madrid",
    "zaragoza": "Europe/Madrid",
    "palma": "Europe/Madrid",
    "las palmas": "Atlantic/Canary",
    "tenerife": "Atlantic/Canary",
    "canarias": "Atlantic/Canary",
    "medellin": "America/Bogota",
    "cali": "America/Bogota",
    "quito": "America/Guayaquil",
    "santiago de chile": "America/Santiago",
    "cordoba": "America/Argentina/Cordoba",
    "rosario": "America/Argentina/Buenos_Aires",
    "nueva york": "America/New_York",
    "londres": "Europe/London",
    "paris": "Europe/Paris",
    "berlin": "Europe/Berlin",
    "moscu": "Europe/Moscow",
    "los angeles": "America/Los_Angeles",
    "miami": "America/New_York",
    "san juan": "America/Puerto_Rico",
    "san jose": "America/Costa_Rica",
    "la paz": "America/La_Paz",
    "ciudad de guatemala": "America/Guatemala",
    "guatemala": "America/Guatemala",
    "san salvador": "America/El_Salvador",
    "tegucigalpa": "America/Tegucigalpa",
    "managua": "America/Managua",
    "ciudad de panama": "America/Panama",
    "santo domingo": "America/Santo_Domingo",
    "la habana": "America/Havana",
    # English
    "washington": "America/New_York",
    "boston": "America/New_York",
    "atlanta": "America/New_York",
    "philadelphia": "America/New_York",
    "houston": "America/Chicago",
    "dallas": "America/Chicago",
    "austin": "America/Chicago",
    "seattle": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles",
    "san diego": "America/Los_Angeles",
    "portland": "America/Los_Angeles",
    "las vegas": "America/Los_Angeles",
    "salt lake city": "America/Denver",
    "manchester": "Europe/London",
    "birmingham": "Europe/London",
    "glasgow": "Europe/London",
    "edinburgh": "Europe/London",
    "cardiff": "Europe/London",
    "belfast": "Europe/London",
    "mumbai": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "beijing": "Asia/Shanghai",
    "munich": "Europe/Berlin",
    "hamburg": "Europe/Berlin",
    "frankfurt": "Europe/Berlin",
    "milan": "Europe/Rome",
    "geneva": "Europe/Zurich",
    "ottawa": "America/Toronto",
    "montreal": "America/Toronto",
    "tel aviv": "Asia/Jerusalem",
    "cape town": "Africa/Johannesburg",
}

_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+\-−])\s*(\d{1,2})(?:\s*[:.h]?\s*(\d{2}))?$")
_UTC_NAMES = frozenset({"utc", "gmt", "z", "zulu", "utc+0", "utc-0", "gmt+0", "gmt-0"})


def _fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive form used for matching (ё/е and й/и fold too)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.replace("_", " ").split())


@cache
def _zone_names() -> dict[str, str]:
    """Folded full names and folded city parts -> canonical zone name (built once)."""
    names: dict[str, str] = {}
    cities: dict[str, str] = {}
    for zone in sorted(available_timezones()):
        names[_fold(zone)] = zone
        parts = zone.split("/")
        if parts[0] not in _AREAS or len(parts) < 2:
            continue
        city = _fold(parts[-1])
        # Prefer the deeper, current name (America/Argentina/Buenos_Aires over a legacy link).
        if city not in cities or len(parts) > len(cities[city].split("/")):
            cities[city] = zone
    for alias, zone in _CITY_ALIASES.items():
        cities.setdefault(_fold(alias), zone)
    return {**cities, **names}


def zone_from_offset(sign: int, minutes: int) -> str | None:
    """A loadable zone for a UTC offset, or None if no zone keeps that offset."""
    if minutes == 0:
        return "Etc/UTC"
    hours, rest = divmod(minutes, 60)
    if rest == 0:
        if sign > 0 and hours <= 14:
            return f"Etc/GMT-{hours}"
        if sign < 0 and hours <= 12:
            return f"Etc/GMT+{hours}"
        return None
    return _FRACTIONAL_OFFSETS.get((sign, minutes))


def parse_zone(text: str) -> str | None:
    """The zone a client means, or None if it cannot be recognised."""
    folded = _fold(text.strip().strip(".!"))
    if not folded or len(folded) > 64:
        return None
    if folded in _UTC_NAMES:
        return "Etc/UTC"
    match = _OFFSET.match(folded.replace(" ", ""))
    if match:
        sign = -1 if match.group(1) in "-−" else 1
        hours = int(match.group(2))
        minutes = int(match.group(3) or 0)
        if minutes >= 60:
            return None
        return zone_from_offset(sign, hours * 60 + minutes)
    zone = _zone_names().get(folded)
    if zone is None:
        return None
    try:
        ZoneInfo(zone)
    except (KeyError, ValueError):  # pragma: no cover - a broken tz database
        return None
    return zone


def is_zone(name: str) -> bool:
    """True if `name` is an IANA zone this system can load."""
    if not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return False
    return True


def local_time(zone: str, at: datetime) -> str:
    """The wall-clock time (24-hour HH:MM) in `zone` at the instant `at`."""
    return at.astimezone(ZoneInfo(zone)).strftime("%H:%M")


def display_zone(zone: str) -> str:
    """A zone name as a person reads it: "UTC+3" for Etc/GMT-3, "New York" spelled out."""
    if zone in ("Etc/UTC", "UTC", "Etc/GMT"):
        return "UTC"
    if zone.startswith("Etc/GMT") and len(zone) > len("Etc/GMT"):
        offset = zone[len("Etc/GMT") :]
        flipped = offset.replace("-", "+") if offset.startswith("-") else offset.replace("+", "-")
        return f"UTC{flipped}"
    return zone.replace("_", " ")
