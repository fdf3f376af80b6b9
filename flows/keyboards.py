"""Callback data and the small keyboards shared by several steps.

Callback data is `<owner>:<field>:...`: "o" for onboarding, "d" for command dialogs, "c" for
check-in answers (`c:<checkin_id>:<item_index>:<value>`, value a number, "n" for prefer not to
answer, "s" for skip). Every tap is checked against the state before it counts, so old, doubled
or forged buttons change nothing.
"""

from __future__ import annotations

from flows.i18n import LANGUAGES, t
from flows.intents import Button, Keyboard

ONBOARDING = "o"
DIALOG = "d"
CHECKIN = "c"
PREFER_NOT = "n"
SKIP = "s"
OTHER_ZONE = "*"
YES = "y"
NO = "n"


def split_data(data: str) -> list[str]:
    """The colon-separated parts of callback data (zone names contain no colons)."""
    return data.split(":")


def language_keyboard(owner: str) -> Keyboard:
    """Each language named in itself, so anyone can find theirs."""
    return (tuple(Button(t(code, "language.name"), f"{owner}:lang:{code}") for code in LANGUAGES),)


def yes_no_keyboard(lang: str, owner: str, name: str, yes_key: str, no_key: str) -> Keyboard:
    return (
        (
            Button(t(lang, yes_key), f"{owner}:{name}:{YES}"),
            Button(t(lang, no_key), f"{owner}:{name}:{NO}"),
        ),
    )
