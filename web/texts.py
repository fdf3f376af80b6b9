"""The console's words and dates in the viewer's language: the catalogue's `t`
(`flows/locales/console.*.yaml`) and moments in the viewer's zone with CLDR's names of days and
months. The templates see them as `tr` and `local`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache, partial
from zoneinfo import ZoneInfo

from flows.i18n import DEFAULT_LANGUAGE, format_date, t

FULL = "EEE dd MMM yyyy HH:mm"
"""How a moment is shown unless a page asks for less (a CLDR pattern)."""


def local(moment: datetime | None, zone: str, fmt: str = FULL, lang: str = DEFAULT_LANGUAGE) -> str:
    """`moment` in `zone`, by the CLDR pattern `fmt`, with `lang`'s names of days and months."""
    if moment is None:
        return "—"
    return format_date(moment.astimezone(ZoneInfo(zone)), fmt, lang)


@cache
def localizer(lang: str) -> Callable[..., str]:
    """`local` for one language (the templates' `local`)."""
    return partial(local, lang=lang)


@cache
def translator(lang: str) -> Callable[..., str]:
    """The catalogue's `t` for one language (the templates' `tr`)."""
    return partial(t, lang)
