"""Everyday date-times as therapists type them: `2026-03-02 15:00`, `tue 15:00`, `tomorrow 9:30`,
`today 18:00`, `mañana 9:30`, `вт 15:00`; read in the therapist's zone, returned as aware UTC.

A weekday means its next occurrence (today counts if the time is still ahead).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS: dict[str, int] = {}
for index, names in enumerate(
    (
        "mon monday lun lunes пн понедельник",
        "tue tues tuesday mar martes вт вторник",
        "wed wednesday mié mie miércoles miercoles ср среда",
        "thu thur thurs thursday jue jueves чт четверг",
        "fri friday vie viernes пт пятница",
        "sat saturday sáb sab sábado sabado сб суббота",
        "sun sunday dom domingo вс воскресенье",
    )
):
    for name in names.split():
        WEEKDAYS[name] = index

RELATIVE = {
    "today": 0, "hoy": 0, "сегодня": 0,
    "tomorrow": 1, "mañana": 1, "manana": 1, "завтра": 1,
}  # fmt: skip

_TIME = re.compile(r"^(\d{1,2})(?::|\.|h)?(\d{2})?$")


def _clock(text: str) -> time:
    match = _TIME.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a time such as 15:00")
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return time(hour, minute)


def _day(word: str, today: date) -> date:
    word = word.lower().rstrip(".,")
    if word in RELATIVE:
        return today + timedelta(days=RELATIVE[word])
    if word in WEEKDAYS:
        return today + timedelta(days=(WEEKDAYS[word] - today.weekday()) % 7)
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise ValueError(
            f"{word!r} is not a day: use a date (2026-03-02), a weekday (tue) or tomorrow"
        ) from None


def parse_when(text: str, *, now: datetime, tz: str) -> datetime:
    """Parse a session time typed in zone `tz`; raises ValueError saying what was expected."""
    try:
        return _parse(text, now, tz)
    except OverflowError:
        raise ValueError(f"{text!r} is too far from today") from None


def _parse(text: str, now: datetime, tz: str) -> datetime:
    text = " ".join(text.strip().split())
    if not text:
        raise ValueError("give a day and a time, e.g. tue 15:00 or 2026-03-02 15:00")
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is not None and ("T" in text or " " in text or ":" in text):
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return parsed.astimezone(ZoneInfo("UTC"))
    parts = text.split(" ")
    if len(parts) != 2:
        raise ValueError("give a day and a time, e.g. tue 15:00 or tomorrow 9:30")
    day, at = _day(parts[0], local_now.date()), _clock(parts[1])
    when = datetime.combine(day, at, tzinfo=zone)
    if parts[0].lower() in WEEKDAYS and when <= local_now:
        when += timedelta(days=7)
    # Normalise through UTC so a wall time in a DST gap lands on a real instant.
    return when.astimezone(ZoneInfo("UTC"))
