"""Understanding short typed replies: yes/no, a language by name, a number."""

from __future__ import annotations

import re

from flows.i18n import LANGUAGES, words

_NUMBER = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*\d{1,2}\s*)?[.!]?\s*$")


def _folded(text: str) -> str:
    return text.strip().strip(".!¡¿?").strip().casefold()


def yes_or_no(lang: str, text: str) -> bool | None:
    """True/False for a typed yes/no in `lang` (or English), else None."""
    folded = _folded(text)
    if folded in words(lang, "words.yes") or folded in words("en", "words.yes"):
        return True
    if folded in words(lang, "words.no") or folded in words("en", "words.no"):
        return False
    return None


def language_from_text(text: str) -> str | None:
    """A language the client typed by name ("español", "русский", "en"), if any."""
    folded = _folded(text)
    for code in LANGUAGES:
        if folded == code or folded in words(code, "language.aliases"):
            return code
    return None


def typed_number(text: str) -> int | None:
    """A whole number typed on its own ("7", " 7 ", "7/10", "7."), else None."""
    match = _NUMBER.match(text)
    return int(match.group(1)) if match else None


def is_number(text: str) -> bool:
    """Whether `text` is a whole number in ASCII digits, as a form, a command or a header gives
    one: `str.isdigit` alone also takes "²" or "①", which `int` refuses (a server error)."""
    return text.isascii() and text.isdigit()
