"""A small lexicon of strongly negative remarks about the therapy or the therapist (en, es, ru).

Confrontation ruptures are loud, so a short phrase list catches most of them; what matters is not
to cry wolf on "not a waste of time" or "rough week". Matching is on words, case- and
accent-insensitive, and a phrase preceded closely by a negation does not count.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final

_PHRASES: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "waste of time",
        "waste of money",
        "wasting my time",
        "you don't listen",
        "you do not listen",
        "you never listen",
        "you weren't listening",
        "you don't understand",
        "you don't get it",
        "you don't care",
        "not helping",
        "isn't helping",
        "doesn't help",
        "not working",
        "isn't working",
        "going nowhere",
        "pointless",
        "useless",
        "no point",
        "don't see the point",
        "makes it worse",
        "making it worse",
        "felt judged",
        "feel judged",
        "want to quit",
        "thinking of quitting",
        "want to stop therapy",
        "stop coming",
        "hate these sessions",
        "hate coming",
    ),
    "es": (
        "perdida de tiempo",
        "perder el tiempo",
        "no me escucha",
        "no me escuchas",
        "no me escuchan",
        "no me entiende",
        "no me entiendes",
        "no me ayuda",
        "no sirve",
        "no esta funcionando",
        "no funciona",
        "inutil",
        "no tiene sentido",
        "me siento juzgado",
        "me siento juzgada",
        "quiero dejar la terapia",
        "quiero dejarlo",
    ),
    "ru": (
        "не помогает",
        "трата времени",
        "потеря времени",
        "вы не слушаете",
        "ты не слушаешь",
        "меня не слышат",
        "вы меня не слышите",
        "вы не понимаете",
        "ты не понимаешь",
        "бесполезно",
        "бессмысленно",
        "не работает",
        "хочу бросить",
        "хочу прекратить",
        "не вижу смысла",
    ),
}

_NEGATIONS: Final[frozenset[str]] = frozenset(
    (
        "not",
        "never",
        "isn't",
        "wasn't",
        "isnt",
        "wasnt",
        "hardly",
        "nothing",
        "nunca",
        "никогда",
    )
)
_NEGATION_REACH = 4
"""How many words before a phrase a negation still turns it around ("not at all a waste")."""

_WORD = re.compile(r"[\w']+")


def normalise(text: str) -> str:
    """Lower-case, straight apostrophes, no accents: "Pérdida" and "perdida" read the same."""
    text = text.lower().replace("\u2019", "'").replace("\u02bc", "'")
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    phrases = sorted(
        {normalise(p) for group in _PHRASES.values() for p in group}, key=len, reverse=True
    )
    alternatives = "|".join(re.escape(p) for p in phrases)
    return re.compile(r"(?<![\w'])(?:" + alternatives + r")(?![\w'])")


@lru_cache(maxsize=1)
def _first_words() -> frozenset[str]:
    """The words phrases start with: a comment holding none of them cannot match."""
    return frozenset(_WORD.findall(normalise(p))[0] for group in _PHRASES.values() for p in group)


def is_confrontational(text: str | None) -> bool:
    """True when the comment holds a strongly negative remark about the therapy or therapist."""
    if not text:
        return False
    plain = normalise(text)
    words = _WORD.findall(plain)
    if _first_words().isdisjoint(words):
        return False
    for match in _pattern().finditer(plain):
        before = _WORD.findall(plain[: match.start()])[-_NEGATION_REACH:]
        if not any(word in _NEGATIONS for word in before):
            return True
    return False
