"""Crisis and self-harm language in free text (English, Spanish, Russian).

The lexicon aims at first-person statements of wanting to die, to kill or hurt oneself, and at
unambiguous self-harm, and prefers recall for those: a false alarm costs the therapist a message,
a miss can cost far more. It avoids the everyday idioms that share words with them ("this traffic
is killing me", "me muero de risa", "умираю со смеху") by matching whole phrases at word
boundaries on normalised text (case, accents, ё/е, apostrophes and spacing folded). A few phrases
are ignored when a negation sits right before them ("I'm not suicidal", "no me quiero morir").

Nothing here logs or keeps the text; a match reports only its category and language.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

CATEGORIES = ("suicide", "death_wish", "self_harm")

_APOSTROPHES = re.compile("[’‘`´ʼ]")
_DROPPED = re.compile("[\u00ad\u200c\u200d\u2060\ufeff\u0300-\u036f]")  # invisible, accents
_WORD = re.compile(r"\w+")


def normalise(text: str, *, zero_width_space: str = " ") -> str:
    """Lower-case, accent-free, single-spaced text; ё->е and й->и fold with the accents.
    Invisible format characters (bidi overrides, zero-width marks) are dropped, so they cannot
    hide a word; a zero-width space becomes `zero_width_space`."""
    text = text.casefold()
    if not text.isascii():
        text = _APOSTROPHES.sub("'", text).replace("\u200b", zero_width_space)
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
        text = unicodedata.normalize("NFKD", text)
        text = _DROPPED.sub("", text)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class CrisisMatch:
    """What kind of statement was found; deliberately not the text itself."""

    category: str
    language: str


@dataclass(frozen=True, slots=True)
class _Rule:
    category: str
    language: str
    pattern: re.Pattern[str]
    negatable: bool


# (category, pattern, negatable, stems). A rule is tried only when the text has a word starting
# with one of its stems, every match of the pattern contains such a word, and that keeps the
# common case (no stem at all) to a dictionary lookup per word.
_Spec = tuple[str, str, bool, tuple[str, ...]]
_STEM_PREFIX = 3

_NEGATORS = {
    "en": frozenset({"not", "never", "don't", "dont", "doesn't", "didn't", "no", "won't", "wont"}),
    "es": frozenset({"no", "nunca", "jamas"}),
    "ru": frozenset({"не", "никогда"}),
}
_CLAUSE_BREAK = re.compile(r"[.,;:!?\n()\"]")

# English ---------------------------------------------------------------------------------------
_EN_NOT_A_PLACE = r"(?!\s+(?:in|with|here|there|at|near|on|by|abroad|together|alone|next|close))"
_EN: list[_Spec] = [
    (
        "suicide",
        r"\b(?:kill|killing|hang|hanging|shoot|shooting|drown|drowning|poison|poisoning"
        r"|off|offing)\s+my\s?self\b",
        False,
        ("myself", "self"),
    ),
    ("suicide", r"\bkms\b", False, ("kms",)),
    ("suicide", r"\bsuicidal\b", True, ("suicid",)),
    (
        "suicide",
        r"\b(?:commit|committing|attempt|attempted|attempting|consider|considering"
        r"|contemplate|contemplating|think about|thinking about|thought about|thoughts of"
        r"|thoughts about|plan|planning)\s+(?:of\s+)?suicide\b",
        True,
        ("suicid",),
    ),
    ("suicide", r"\bsuicide\s+(?:attempt|plan|note|thoughts?)\b", False, ("suicid",)),
    ("suicide", r"\b(?:end|ending|take|taking|took)\s+my\s+(?:own\s+)?life\b", True, ("life",)),
    ("suicide", r"\bend(?:ing)?\s+it\s+all\b", True, ("end",)),
    ("suicide", r"\bend(?:ing)?\s+(?:it|things)\s+(?:tonight|for good)\b", True, ("end",)),
    ("suicide", r"\b(?:take|taking|took)\s+(?:an\s+)?overdose\b", True, ("overdos",)),
    ("suicide", r"\boverdos(?:e|ing)\s+on\b", True, ("overdos",)),
    ("suicide", r"\bslit(?:ting)?\s+my\s+wrists?\b", True, ("slit",)),
    (
        "death_wish",
        r"\b(?:want|wanna|wanted|wish|going|gonna|ready|deserve|hope|need)\s+(?:to\s+)?"
        r"die\b",
        True,
        ("die",),
    ),
    ("death_wish", r"\bwish\s+(?:that\s+)?i\s+(?:was|were|could be)\s+dead\b", False, ("dead",)),
    (
        "death_wish",
        r"\bwish\s+(?:that\s+)?i\s+(?:was|were|had)\s+never\s+(?:been\s+)?born\b",
        False,
        ("born",),
    ),
    (
        "death_wish",
        r"\bwish\s+i\s+(?:could\s+)?(?:just\s+)?(?:disappear|not\s+wake\s+up|die)\b",
        False,
        ("wish",),
    ),
    ("death_wish", r"\bbetter\s+off\s+(?:dead|without\s+me)\b", True, ("better",)),
    (
        "death_wish",
        r"\b(?:no|any)\s+(?:reason|point)\s+(?:to|in)\s+(?:living|live|go on|going on)"
        r"\b",
        False,
        ("reason", "point"),
    ),
    ("death_wish", r"\bnothing\s+(?:left\s+)?to\s+live\s+for\b", False, ("nothing",)),
    (
        "death_wish",
        r"\b(?:life|living)\s+(?:is\s+not|isn't|isnt|is\s+no\s+longer|not)\s+worth\s+"
        r"(?:living|it)\b",
        False,
        ("worth",),
    ),
    (
        "death_wish",
        r"\b(?:do\s+not|don't|dont|no\s+longer|never)\s+(?:really\s+)?want\s+to\s+"
        r"(?:live|be\s+alive|exist|wake\s+up|go\s+on\s+living)\b" + _EN_NOT_A_PLACE,
        False,
        ("want",),
    ),
    ("death_wish", r"\bcan't\s+(?:go\s+on|keep)\s+living\b", False, ("living",)),
    ("death_wish", r"\bcant\s+(?:go\s+on|keep)\s+living\b", False, ("living",)),
    (
        "death_wish",
        r"\b(?:don't|dont|do\s+not)\s+want\s+to\s+be\s+(?:here|alive|around)\s+"
        r"any\s?more\b",
        False,
        ("any",),
    ),
    (
        "self_harm",
        r"\b(?:cutting|hurting|harming|burning|injuring|starving|punishing|scratching)"
        r"\s+my\s?self\b",
        True,
        ("myself", "self"),
    ),
    (
        "self_harm",
        r"\b(?:want|wanna|going|gonna|urge|urges|need|needed|tempted|like|started|"
        r"keep)\s+(?:to\s+)?(?:cut|hurt|harm|burn|injure)\s+my\s?self\b",
        True,
        ("myself", "self"),
    ),
    ("self_harm", r"\bcut\s+my\s?self\s+again\b", False, ("myself", "self")),
    ("self_harm", r"\bcut\s+my\s+(?:wrists?|arms?|legs?|thighs?)\b", False, ("cut",)),
    ("self_harm", r"\bself[\s-]?harm(?:ing|ed)?\b", True, ("self",)),
    ("self_harm", r"\bself[\s-]?injur(?:y|ing|e|ed)\b", True, ("self",)),
]

# Spanish (accents are folded: "daño" -> "dano", "suicidaré" -> "suicidare") ----------------------
_ES_NOT_A_PLACE = r"(?!\s+(?:en|con|aqui|alli|ahi|cerca|juntos|juntas|lejos))"
_ES: list[_Spec] = [
    ("death_wish", r"\bme\s+quiero\s+morir\b", True, ("morir",)),
    ("death_wish", r"\bquiero\s+(?:morir|morirme)\b", True, ("morir",)),
    ("death_wish", r"\bme\s+(?:quisiera|gustaria)\s+morir\b", True, ("morir",)),
    (
        "death_wish",
        r"\bojala\s+(?:me\s+muriera|estuviera\s+muert[oa]|no\s+hubiera\s+nacido"
        r"|no\s+despertar(?:a)?)\b",
        False,
        ("ojala",),
    ),
    ("death_wish", r"\bestaria\s+mejor\s+muert[oa]\b", False, ("muert",)),
    (
        "death_wish",
        r"\b(?:ya\s+)?no\s+quiero\s+(?:seguir\s+)?(?:vivir|viviendo|existir|despertar)"
        r"\b" + _ES_NOT_A_PLACE,
        False,
        ("quiero",),
    ),
    (
        "death_wish",
        r"\bno\s+tengo\s+(?:ganas|razones|motivos)\s+(?:de|para)\s+(?:vivir|seguir)"
        r"\b",
        False,
        ("tengo",),
    ),
    ("death_wish", r"\bno\s+vale\s+la\s+pena\s+(?:vivir|seguir\s+viviendo)\b", False, ("pena",)),
    (
        "death_wish",
        r"\b(?:todos|todo\s+el\s+mundo)\s+estarian\s+mejor\s+sin\s+mi\b",
        False,
        ("estarian",),
    ),
    ("suicide", r"\bme\s+quiero\s+(?:matar|suicidar)\b", True, ("quiero",)),
    ("suicide", r"\bquiero\s+(?:matarme|suicidarme|quitarme\s+la\s+vida)\b", True, ("quiero",)),
    ("suicide", r"\bsuicidarme\b", True, ("suicid",)),
    (
        "suicide",
        r"\bme\s+(?:voy\s+a\s+)?(?:suicido|suicidare|suicidar|matare)\b",
        True,
        ("suicid", "matare"),
    ),
    ("suicide", r"\bvoy\s+a\s+(?:matarme|quitarme\s+la\s+vida)\b", True, ("voy",)),
    ("suicide", r"\bquitarme\s+la\s+vida\b", True, ("quitarme",)),
    ("suicide", r"\b(?:acabar|terminar)\s+con\s+mi\s+vida\b", True, ("vida",)),
    ("suicide", r"\bquiero\s+(?:acabar|terminar)\s+con\s+todo\b", True, ("quiero",)),
    (
        "suicide",
        r"\b(?:pienso|pensando|pense|penso)\s+en\s+(?:el\s+)?suicid(?:io|arme)\b",
        True,
        ("suicid",),
    ),
    (
        "suicide",
        r"\b(?:ideas|pensamientos|intento)\s+(?:suicidas?|de\s+suicidio)\b",
        True,
        ("suicid",),
    ),
    ("suicide", r"\bintentar\s+suicidarme\b", True, ("suicid",)),
    (
        "self_harm",
        r"\b(?:quiero\s+|voy\s+a\s+)?(?:hacerme\s+dano|lastimarme|autolesionarme)\b",
        True,
        ("hacerme", "lastimarme", "autolesion"),
    ),
    (
        "self_harm",
        r"\bme\s+(?:hago|estoy\s+haciendo|he\s+hecho)\s+dano\s+(?:a\s+proposito|"
        r"a\s+mi\s+mism[oa]|otra\s+vez)\b",
        False,
        ("dano",),
    ),
    (
        "self_harm",
        r"\bme\s+(?:lastimo|autolesiono|corto\s+los\s+brazos|corto\s+las\s+venas)\b",
        True,
        ("lastimo", "autolesion", "corto"),
    ),
    (
        "self_harm",
        r"\bcortarme\s+(?:los\s+brazos|las\s+venas|las\s+munecas|las\s+piernas)\b",
        True,
        ("cortarme",),
    ),
    (
        "self_harm",
        r"\bme\s+he\s+(?:vuelto\s+a\s+)?cortado\s+(?:los\s+brazos|las\s+venas|"
        r"las\s+munecas|las\s+piernas|otra\s+vez)\b",
        False,
        ("cortado",),
    ),
    ("self_harm", r"\bautolesion(?:es|arme|o|ando)?\b", True, ("autolesion",)),
]

# Russian (ё and й fold to е and и in the patterns as in the text) ------------------------------
_RU_NOT_A_PLACE = r"(?!\s+(?:в|во|с|со|у|здесь|тут|там|одна|один|вместе|рядом|так\s+далеко))"
_RU: list[_Spec] = [
    (
        "death_wish",
        r"\b(?:хочу|хочется|хотелось\s+бы|хотел\s+бы|хотела\s+бы)\s+(?:просто\s+)?"
        r"(?:умереть|сдохнуть|исчезнуть\s+навсегда|не\s+проснуться)\b",
        True,
        ("умер", "сдох", "исчез", "просну"),
    ),
    (
        "death_wish",
        r"\bне\s+(?:хочу|хочется)\s+(?:больше\s+|уже\s+)?жить\b" + _RU_NOT_A_PLACE,
        False,
        ("жить",),
    ),
    ("death_wish", r"\bжить\s+(?:больше\s+)?не\s+(?:хочу|хочется)\b", False, ("жить",)),
    ("death_wish", r"\b(?:незачем|нет\s+смысла|не\s+вижу\s+смысла)\s+жить\b", False, ("жить",)),
    ("death_wish", r"\bне\s+вижу\s+смысла\s+в\s+жизни\b", False, ("жизн",)),
    (
        "death_wish",
        r"\bлучше\s+бы\s+(?:я\s+)?(?:умер|умерла|не\s+родился|не\s+родилась|"
        r"меня\s+не\s+было)\b",
        False,
        ("лучше",),
    ),
    (
        "death_wish",
        r"\bвсем\s+(?:будет|было\s+бы|станет)\s+лучше\s+без\s+меня\b",
        False,
        ("лучше",),
    ),
    ("suicide", r"\b(?:покончить|покончу|покончила?)\s+с\s+собой\b", True, ("поконч",)),
    ("suicide", r"\b(?:убить|убью)\s+себя\b", True, ("себя",)),
    ("suicide", r"\bсебя\s+убью\b", True, ("себя",)),
    (
        "suicide",
        r"\b(?:хочу\s+|хочется\s+)?(?:повеситься|повешусь|отравиться)\b",
        True,
        ("повес", "повеш", "отрав"),
    ),
    (
        "suicide",
        r"\b(?:выпрыгнуть|выпрыгну|спрыгнуть|спрыгну|прыгнуть|прыгну|выброситься|"
        r"выброшусь)\s+(?:из\s+окна|с\s+крыши|с\s+моста)\b",
        True,
        ("окна", "крыши", "моста"),
    ),
    ("suicide", r"\bсамоубийств\w*", True, ("самоубий",)),
    ("suicide", r"\bсуицид\w*", True, ("суицид",)),
    ("suicide", r"\bналожить\s+на\s+себя\s+руки\b", True, ("руки", "себя")),
    ("self_harm", r"\b(?:режу|резать|порезать|порезала?|резала?)\s+себя\b", True, ("себя",)),
    ("self_harm", r"\bсебя\s+(?:режу|порезала?|резала?)\b", True, ("себя",)),
    (
        "self_harm",
        r"\b(?:наношу|нанесла?|наносить|нанести)\s+себе\s+(?:порезы|вред|травмы|"
        r"повреждения)\b",
        True,
        ("себе",),
    ),
    (
        "self_harm",
        r"\b(?:причиняю|причинить|причинила?|причинять)\s+себе\s+(?:боль|вред)\b",
        True,
        ("себе",),
    ),
    ("self_harm", r"\bсамоповрежд\w*", True, ("самоповрежд",)),
    ("self_harm", r"\bселф\s?харм\w*", True, ("селф",)),
]


def _compile() -> tuple[tuple[_Rule, ...], dict[str, tuple[tuple[str, frozenset[int]], ...]]]:
    rules: list[_Rule] = []
    by_stem: dict[str, set[int]] = {}
    for language, specs in (("en", _EN), ("es", _ES), ("ru", _RU)):
        for category, pattern, negatable, stems in specs:
            for stem in stems:
                folded = normalise(stem)
                if len(folded) < _STEM_PREFIX:
                    raise ValueError(f"crisis stem {stem!r} is shorter than {_STEM_PREFIX}")
                by_stem.setdefault(folded, set()).add(len(rules))
            rules.append(_Rule(category, language, re.compile(normalise(pattern)), negatable))
    by_prefix: dict[str, list[tuple[str, frozenset[int]]]] = {}
    for stem, indices in by_stem.items():
        by_prefix.setdefault(stem[:_STEM_PREFIX], []).append((stem, frozenset(indices)))
    return tuple(rules), {prefix: tuple(pairs) for prefix, pairs in by_prefix.items()}


_RULES, _BY_PREFIX = _compile()


def _candidates(folded: str) -> list[int]:
    """Indices of the rules whose stems occur in the text, in lexicon order."""
    found: set[int] = set()
    for word in _WORD.findall(folded):
        pairs = _BY_PREFIX.get(word[:_STEM_PREFIX])
        if pairs:
            for stem, indices in pairs:
                if word.startswith(stem):
                    found |= indices
    return sorted(found)


def _negated(text: str, start: int, language: str) -> bool:
    """A negation among the two words right before `start`, within the same clause."""
    before = _CLAUSE_BREAK.split(text[:start])[-1].split()[-2:]
    return any(word in _NEGATORS[language] for word in before)


def _first_match(folded: str, indices: list[int] | range) -> CrisisMatch | None:
    for index in indices:
        rule = _RULES[index]
        for found in rule.pattern.finditer(folded):
            if rule.negatable and _negated(folded, found.start(), rule.language):
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
