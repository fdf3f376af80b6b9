"""Crisis and self-harm language in free text (English, Spanish, Russian).

The phrases are data, one file per language in `crisis_lexicon/` (its header says how to write
them), measured against a labelled set of positives and near misses in
`tests/flows/crisis_cases/`. The lexicon aims at explicit, passive and indirect ideation, plans and
means, and self-harm as people write them in chat, and prefers recall: a false alarm costs the
therapist a message, a miss can cost far more. It avoids the everyday idioms that share words with
them ("this traffic is killing me", "me muero de risa", "умираю со смеху") by matching whole phrases
at word boundaries on normalised text, by negations just before a phrase ("I'm not suicidal") and
by idioms that overlap a match ("a film about suicide").

Normalisation folds what the eye reads as the same word: case, accents, ё/е, apostrophes, spacing,
invisible characters, Latin look-alikes inside a Cyrillic word and the reverse, digits for letters
("k1ll") and doubled letters ("killlll", "diiie", "kil").

Nothing here logs or keeps the text; a match reports only its category and language.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CATEGORIES = ("suicide", "death_wish", "self_harm", "plan")
LANGUAGES = ("en", "es", "ru")
LEXICON_DIR = Path(__file__).with_name("crisis_lexicon")

_APOSTROPHES = re.compile("['’‘`´ʼ]")
_DROPPED = re.compile("[\u00ad\u200c\u200d\u2060\ufeff\u0300-\u036f]")  # invisible, accents
_WORD = re.compile(r"\w+")
_MARKS = re.compile(r"[^\w\s.,;:!?]|_")  # hyphens, slashes, emoji...: a space between words
_ASCII_MARKS = str.maketrans({ch: " " for ch in map(chr, range(128)) if _MARKS.match(ch)})
_DOUBLED = re.compile(r"([^\W\d_])\1+")
_LEET_CHARACTER = re.compile(r"[0134579@$]")
_LEET_NEAR_LETTER = re.compile(r"[a-z][0134579@$]|[0134579@$][a-z]")
_LEET_TOKEN = re.compile(r"[a-z0134579@$]+")
_LEET = str.maketrans("0134579@$", "oieastgas")
_CLAUSE_BREAK = re.compile(r"[.,;:!?]")
_CONTEXT = 120  # characters either side of a match searched for its negation or idiom
_STEM_PREFIX = 3

# Latin and Cyrillic letters that look alike, both cases.
_LATIN_LOOKS = "AaBCcEeHKkMOoPpTXxYy"
_CYRILLIC_LOOKS = "АаВСсЕеНКкМОоРрТХхУу"
_TO_CYRILLIC = str.maketrans(_LATIN_LOOKS, _CYRILLIC_LOOKS)
_TO_LATIN = str.maketrans(_CYRILLIC_LOOKS + "іјѕһ", _LATIN_LOOKS + "ijsh")
_LETTERS = re.compile(r"[^\W\d_]+")
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_LATIN = re.compile("[a-zA-Z]")


def _unconfuse(text: str) -> str:
    """Each word that mixes Latin and Cyrillic letters is written in its majority script (the
    message's on a tie), and a word made only of look-alikes takes the message's script: "сeбя"
    with a Latin e is "себя", "c" in "покончить c собой" is the Cyrillic "с"."""
    if not (_CYRILLIC.search(text) and _LATIN.search(text)):
        return text
    message_cyrillic = len(_CYRILLIC.findall(text)) >= len(_LATIN.findall(text))

    def fix(found: re.Match[str]) -> str:
        word = found.group()
        cyr = len(_CYRILLIC.findall(word))
        lat = len(_LATIN.findall(word))
        if cyr and lat:
            to_cyrillic = cyr > lat or (cyr == lat and message_cyrillic)
        elif lat and message_cyrillic and all(ch in _LATIN_LOOKS for ch in word):
            to_cyrillic = True
        else:
            return word
        return word.translate(_TO_CYRILLIC if to_cyrillic else _TO_LATIN)

    return _LETTERS.sub(fix, text)


def _unleet(text: str) -> str:
    """Digits and @/$ inside a Latin word read as letters: "k1ll" is "kill", "$uicide" "suicide"."""
    if not _LEET_CHARACTER.search(text) or not _LEET_NEAR_LETTER.search(text):
        return text
    return _LEET_TOKEN.sub(
        lambda m: m.group().translate(_LEET) if not m.group().isdigit() else m.group(), text
    )


def _fold_letters(text: str) -> str:
    """Case, accents (ё->е and й->и with them) and apostrophes folded: with `_undouble`, the
    part of `normalise` that patterns go through too."""
    text = text.casefold()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = _DROPPED.sub("", text)
    return _APOSTROPHES.sub("", text)


def normalise(text: str, *, zero_width_space: str = " ") -> str:
    """Lower-case, accent-free, single-spaced text without apostrophes, doubled letters or marks
    between words, in which look-alike letters and digits read as the letters they stand for.
    Invisible format characters (bidi overrides, zero-width marks) are dropped, so they cannot
    hide a word; a zero-width space becomes `zero_width_space`."""
    if not text.isascii():
        text = text.replace("\u200b", zero_width_space)
        if not text.isprintable():  # format characters are not printable: rare, and slow to find
            text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
        text = _unconfuse(text)
    text = _unleet(_fold_letters(text))
    text = text.translate(_ASCII_MARKS) if text.isascii() else _MARKS.sub(" ", text)
    return " ".join(_undouble(text).split())


def _undouble(text: str) -> str:
    """Each run of one letter written once ("killlll" and "kil" are "kil")."""
    parts: list[str] = []
    last = 0
    for run in _DOUBLED.finditer(text):
        parts.append(text[last : run.start() + 1])
        last = run.end()
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class CrisisMatch:
    """What kind of statement was found; deliberately not the text itself."""

    category: str
    language: str


@dataclass(frozen=True, slots=True)
class _Negation:
    words: frozenset[str]
    reach: int
    stop: frozenset[str]
    joins: frozenset[str]

    def before(self, text: str, start: int) -> bool:
        """A negation among the `reach` words right before `start`, in the same clause; a
        stop word ("i", "but") ends the search and a join ("or") lets it reach further."""
        clause = _CLAUSE_BREAK.split(text[max(0, start - _CONTEXT) : start])[-1]
        allowed = self.reach
        for word in reversed(clause.split()):
            if word in self.words:
                return True
            if word in self.stop:
                return False
            if word in self.joins:
                allowed += 3
                continue
            allowed -= 1
            if allowed < 0:
                return False
        return False


@dataclass(frozen=True, slots=True)
class _Rule:
    category: str
    language: str
    pattern: re.Pattern[str]
    negation: _Negation | None  # None: the rule cannot be negated
    idioms: re.Pattern[str] | None


_FRAGMENT = re.compile(r"\{([a-z_]+)\}")
_ESCAPE = re.compile(r"(\\.)")


def _fold_pattern(source: str) -> str:
    """A pattern's letters folded as the text's are; its escapes (\\b, \\W) are left alone."""
    return "".join(
        part if index % 2 else _undouble(_fold_letters(part))
        for index, part in enumerate(_ESCAPE.split(source))
    )


def _expand(source: str, fragments: dict[str, str], where: str) -> str:
    def insert(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in fragments:
            raise ValueError(f"{where}: unknown fragment {{{name}}}")
        return fragments[name]

    return _FRAGMENT.sub(insert, source)


def _compile(sources: Iterable[str], fragments: dict[str, str], where: str) -> re.Pattern[str]:
    expanded = [_fold_pattern(_expand(s, fragments, where)) for s in sources]
    try:
        return re.compile(r"\b(?:" + "|".join(f"(?:{s})" for s in expanded) + r")\b")
    except re.error as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _words(values: Any, where: str) -> frozenset[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where}: a list of words expected (quote no, yes, on, off)")
    return frozenset(normalise(v) for v in values)


def _load(path: Path, language: str) -> tuple[list[_Rule], list[tuple[str, ...]]]:
    """One language's rules, and the stems of each (validated: a broken lexicon fails at
    import, not silently at the first message)."""
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict) or data.get("language") != language:
        raise ValueError(f"{path.name}: language is not {language!r}")
    fragments: dict[str, str] = {}
    for name, source in (data.get("fragments") or {}).items():
        fragments[name] = _expand(str(source), fragments, f"{path.name} fragment {name}")
    neg = data["negation"]
    negation = _Negation(
        words=_words(neg["words"], f"{path.name} negation.words"),
        reach=int(neg["reach"]),
        stop=_words(neg.get("stop", []), f"{path.name} negation.stop"),
        joins=_words(neg.get("joins", []), f"{path.name} negation.joins"),
    )
    idioms = data.get("idioms") or []
    idiom_pattern = _compile(idioms, fragments, f"{path.name} idioms") if idioms else None
    rules: list[_Rule] = []
    stems: list[tuple[str, ...]] = []
    for number, spec in enumerate(data["rules"], 1):
        where = f"{path.name} rule {number}"
        if spec.get("category") not in CATEGORIES:
            raise ValueError(f"{where}: category must be one of {CATEGORIES}")
        patterns = spec.get("patterns")
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"{where}: patterns must be a list of strings")
        if not isinstance(spec.get("negatable"), bool):
            raise ValueError(f"{where}: negatable must be true or false")
        rule_stems = tuple(sorted(_words(spec["stems"], f"{where} stems")))
        if not rule_stems or any(not s or " " in s for s in rule_stems):
            raise ValueError(f"{where}: stems must be single words")
        rules.append(
            _Rule(
                category=spec["category"],
                language=language,
                pattern=_compile(patterns, fragments, where),
                negation=negation if spec["negatable"] else None,
                idioms=idiom_pattern,
            )
        )
        stems.append(rule_stems)
    return rules, stems


_Index = tuple[tuple[_Rule, ...], dict[str, tuple[tuple[str, frozenset[int]], ...]]]


def _index(directory: Path = LEXICON_DIR) -> _Index:
    """All rules in lexicon order, and the rules to try by the first letters of a word. A stem
    shorter than those letters stands for that whole word only ("sh")."""
    rules: list[_Rule] = []
    by_stem: dict[str, set[int]] = {}
    for language in LANGUAGES:
        language_rules, language_stems = _load(directory / f"{language}.yaml", language)
        for rule, stems in zip(language_rules, language_stems, strict=True):
            for stem in stems:
                by_stem.setdefault(stem, set()).add(len(rules))
            rules.append(rule)
    by_prefix: dict[str, list[tuple[str, frozenset[int]]]] = {}
    for stem, indices in by_stem.items():
        by_prefix.setdefault(stem[:_STEM_PREFIX], []).append((stem, frozenset(indices)))
    return tuple(rules), {prefix: tuple(pairs) for prefix, pairs in by_prefix.items()}


_RULES, _BY_PREFIX = _index()


def _candidates(folded: str) -> list[int]:
    """Indices of the rules whose stems occur in the text, in lexicon order."""
    found: set[int] = set()
    for word in _WORD.findall(folded):
        pairs = _BY_PREFIX.get(word[:_STEM_PREFIX])
        if pairs:
            for stem, indices in pairs:
                if word.startswith(stem) and (len(stem) >= _STEM_PREFIX or word == stem):
                    found |= indices
    return sorted(found)


def _in_idiom(rule: _Rule, folded: str, start: int, end: int) -> bool:
    if rule.idioms is None:
        return False
    return any(
        i.start() < end and start < i.end()
        for i in rule.idioms.finditer(folded, max(0, start - _CONTEXT), end + _CONTEXT)
    )


def _first_match(folded: str, indices: Iterable[int]) -> CrisisMatch | None:
    for index in indices:
        rule = _RULES[index]
        for found in rule.pattern.finditer(folded):
            if rule.negation is not None and rule.negation.before(folded, found.start()):
                continue
            if _in_idiom(rule, folded, found.start(), found.end()):
                continue
            return CrisisMatch(rule.category, rule.language)
    return None


def match_crisis(text: str) -> CrisisMatch | None:
    """The first crisis statement found in `text`, or None."""
    if not text:
        return None
    found = _match(normalise(text))
    if found is None and "\u200b" in text:  # "ki\u200bll": one word to the eye
        found = _match(normalise(text, zero_width_space=""))
    return found


def _match(folded: str) -> CrisisMatch | None:
    candidates = _candidates(folded)
    return _first_match(folded, candidates) if candidates else None


def match_crisis_exhaustively(text: str) -> CrisisMatch | None:
    """Like `match_crisis` but trying every rule, stems or not: the reference the fast path is
    tested against."""
    if not text:
        return None
    found = _first_match(normalise(text), range(len(_RULES)))
    if found is None and "\u200b" in text:
        found = _first_match(normalise(text, zero_width_space=""), range(len(_RULES)))
    return found


def detect_crisis(text: str) -> bool:
    """True when `text` contains crisis or self-harm language."""
    return match_crisis(text) is not None
