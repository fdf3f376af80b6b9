"""The crisis lexicon: genuine first-person statements are caught, everyday idioms are not.

The measured bar (recall and false fires per language) is in test_flows_crisis_cases.py; this
module holds the mechanics: normalisation, the fast path, the loader, speed on any input.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows import crisis
from flows.crisis import (
    CATEGORIES,
    detect_crisis,
    match_crisis,
    match_crisis_exhaustively,
    normalise,
)
from tests.flows.test_flows_crisis_cases import LANGUAGES, load_cases

GENUINE = [
    "I want to kill myself",
    "I don't want to live anymore",
    "i dont want to live any more",
    "thinking about ending it all",
    "I've been cutting myself again",
    "I’ve been hurting myself",
    "I feel suicidal",
    "Sometimes I think about suicide",
    "everyone would be better off without me",
    "I wish I was dead",
    "I don't know, I want to die",
    "I want to end my life",
    "I took an overdose last year and I'm thinking about it again",
    "I have the urge to hurt myself",
    "self-harm is back",
    "There's no reason to live",
    "me quiero morir",
    "Quiero suicidarme",
    "ya no quiero vivir",
    "No quiero vivir así",
    "pienso en el suicidio",
    "me estoy haciendo daño otra vez",
    "Quiero quitarme la vida",
    "хочу умереть",
    "Не хочу жить",
    "жить не хочется",
    "Я думаю о самоубийстве",
    "хочу покончить с собой",
    "Я режу себя",
    "Мне хочется просто умереть",
    "ёлки, не хочу больше жить",
]

EVERYDAY = [
    "this traffic is killing me",
    "I killed it at work today",
    "dying to see the new film",
    "that joke killed me",
    "I could kill for a coffee",
    "I'm dead tired",
    "the cake was to die for",
    "skill",
    "Suicide Squad was a fun film",
    "I'm not suicidal, just tired",
    "I don't want to die",
    "I don't want to live in London any more",
    "I cut myself shaving",
    "me muero de risa",
    "me muero de ganas de verte",
    "no me quiero morir",
    "no quiero vivir con mis padres",
    "me corto el pelo mañana",
    "умираю со смеху",
    "не хочу умереть",
    "не хочу жить в Москве",
    "The session felt rushed at the end but it helped.",
    "",
]


@pytest.mark.parametrize("text", GENUINE)
def test_genuine_statements_are_detected(text: str) -> None:
    found = match_crisis(text)
    assert found is not None and found.category in CATEGORIES
    assert detect_crisis(text) is True


@pytest.mark.parametrize("text", EVERYDAY)
def test_everyday_language_is_not(text: str) -> None:
    assert detect_crisis(text) is False


@pytest.mark.parametrize("text", GENUINE + EVERYDAY)
def test_the_fast_path_agrees_with_trying_every_rule(text: str) -> None:
    assert match_crisis(text) == match_crisis_exhaustively(text)


def test_categories_and_language_are_reported_not_the_text() -> None:
    found = match_crisis("I've been cutting myself")
    assert found is not None
    assert (found.category, found.language) == ("self_harm", "en")
    assert "cutting" not in repr(found)
    found = match_crisis("хочу умереть")
    assert found is not None and (found.category, found.language) == ("death_wish", "ru")


def test_normalisation() -> None:
    assert normalise("  ÉL  Ñandú\tЁЛКА  ") == "el nandu елка"
    assert normalise("I’m") == normalise("I'm") == normalise("Im") == "im"
    assert normalise("wo\u200brds") == "wo rds"


def test_look_alike_letters_read_in_the_script_of_their_word() -> None:
    """Latin letters inside a Cyrillic word and the reverse, as the eye reads them."""
    assert normalise("убить сeбя") == "убить себя"  # a Latin e
    assert normalise("хoчу умeрeть") == "хочу умереть"
    assert normalise("i want tо diе") == "i want to die"  # a Cyrillic о and е
    assert normalise("покончить c собой") == "покончить с собои"  # a lone Latin c
    assert normalise("УБИТЬ CEБЯ") == "убить себя"
    assert normalise("ok, такси") == "ок, такси"  # look-alikes only: the message's script
    assert normalise("taxi такси") == "taxi такси"  # whole words of one script stay
    for text in ("убить сeбя", "хoчу сдoхнуть", "cуицид", "i want to kill mysеlf"):
        assert detect_crisis(text), text


def test_digits_and_repeated_letters_read_as_letters() -> None:
    assert normalise("k1ll mys3lf") == normalise("kill myself") == "kil myself"
    assert normalise("$uicide") == "suicide"
    assert normalise("killlll myself") == normalise("kil myself")
    assert normalise("i want to diiie") == "i want to die"
    assert normalise("7") == "7" and normalise("5 kms") == "5 kms"  # numbers stay numbers
    for text in ("k1ll myself", "su1c1de", "i wanna diiieee", "killlll myself", "kil myself"):
        assert detect_crisis(text), text
    assert not detect_crisis("ran 5 kms today")


def test_marks_between_words_are_spaces() -> None:
    assert normalise("self-harm") == "self harm"
    assert normalise("kill_myself") == normalise("kill*myself*") == "kil myself"
    assert normalise("tired.i want to die") == "tired.i want to die"
    for text in ("kill_myself", "want-to-die", "i'm fine.i want to die", "#suicide", "killmyself"):
        assert detect_crisis(text), text


INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u202a\u2066\u200e\u200f\u061c"


@settings(max_examples=300, deadline=None)
@given(
    text=st.sampled_from(GENUINE),
    inserts=st.lists(st.tuples(st.integers(0, 200), st.sampled_from(INVISIBLE)), max_size=6),
)
def test_invisible_characters_cannot_hide_crisis_words(
    text: str, inserts: list[tuple[int, str]]
) -> None:
    """A zero-width or bidi character inside a word leaves it the same word to the eye."""
    hidden = text
    for position, char in inserts:
        at = position % (len(hidden) + 1)
        hidden = hidden[:at] + char + hidden[at:]
    assert detect_crisis(hidden), repr(hidden)


def all_cases() -> list[str]:
    return [c.text for language in LANGUAGES for group in load_cases(language) for c in group]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_fast_path_agrees_on_every_labelled_case(language: str) -> None:
    """Every match contains a word starting with one of its rule's stems: skipping the rules
    without one changes nothing."""
    positives, near_misses = load_cases(language)
    differ = [
        c.id
        for c in positives + near_misses
        if match_crisis(c.text) != match_crisis_exhaustively(c.text)
    ]
    assert not differ, f"a rule lacks a stem for: {differ}"


WORDS = sorted({word for text in all_cases() for word in text.split()})
CASE_WORDS = [text.split() for text in all_cases()]


@st.composite
def spliced(draw: st.DrawFn) -> str:
    """Slices of labelled cases joined: near-phrases that reach every rule's patterns."""
    words: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        case = draw(st.sampled_from(CASE_WORDS))
        start = draw(st.integers(0, len(case) - 1))
        words += case[start : draw(st.integers(start + 1, len(case)))]
    return " ".join(words)


@settings(max_examples=500, deadline=None)
@given(st.one_of(spliced(), st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join)))
def test_the_fast_path_agrees_on_any_mix_of_lexicon_words(text: str) -> None:
    assert match_crisis(text) == match_crisis_exhaustively(text)


def test_negations_idioms_and_categories() -> None:
    assert detect_crisis("no i want to die")  # an interjection, not a negation
    assert not detect_crisis("i would never kill myself")
    assert not detect_crisis("no thoughts of suicide or self harm")  # reaches past "or"
    assert detect_crisis("no suicidal thoughts. i want to kill myself")  # a new clause
    assert detect_crisis("no aguanto mas quiero morirme")  # "no" belongs to "aguanto"
    assert not detect_crisis("me quiero morir de la verguenza")
    assert detect_crisis("a film about suicide made me think about killing myself")
    found = match_crisis("i have pills saved")
    assert found is not None and found.category == "plan" and "plan" in CATEGORIES


# Speed: any text, however long or hostile, is answered in well under a second of CPU time (no
# catastrophic backtracking: the phrases are bounded and negations and idioms are looked for in
# a window around a match, not in the whole text).
SPEED_LIMIT = {5_000: 0.25, 100_000: 1.0}  # seconds of CPU time; typically 20x and 3x less
HOSTILE = [
    " . ".join(all_cases()),
    " ".join(all_cases()),
    "im not suicidal ",
    "a film about suicide ",
    "i cant go on like this with ",
    "end life self my die dead can want out over stop quiero para voy хочу себя меня не могу ",
    "сeбя yбить k1ll ",
    "whats the point of ",
    "a",
    "ё",
    " \u200b\u202e",
]


def to_length(text: str, length: int) -> str:
    return (text * (length // len(text) + 1))[:length]


def cpu_seconds(text: str) -> float:
    began = time.process_time()
    match_crisis(text)
    return time.process_time() - began


@pytest.mark.parametrize("length", sorted(SPEED_LIMIT))
def test_hostile_long_texts_stay_fast(length: int) -> None:
    match_crisis("warm up")
    slow = {
        text[:30]: seconds
        for text in HOSTILE
        if (seconds := cpu_seconds(to_length(text, length))) > SPEED_LIMIT[length]
    }
    assert not slow, f"over {SPEED_LIMIT[length]} s at {length} characters: {slow}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(
        st.text(min_size=1, max_size=200),
        st.lists(st.sampled_from([*WORDS, ".", ",", "\u200b", "1", "ё"]), min_size=1).map(" ".join),
    ),
    length=st.sampled_from(sorted(SPEED_LIMIT)),
)
def test_any_text_never_crashes_and_stays_fast(text: str, length: int) -> None:
    long = to_length(text, length)
    seconds = cpu_seconds(long)
    assert seconds <= SPEED_LIMIT[length], f"{seconds:.2f} s for {long[:60]!r}..."
    found = match_crisis(text)
    assert found is None or (found.category in CATEGORIES and found.language in LANGUAGES)


# The loader: a broken lexicon fails at import with the file and rule, never silently.
LEXICON = Path(crisis.__file__).with_name("crisis_lexicon")


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("category: self_harm", "category: selfharm", "category must be one of"),
        ("{myself}", "{me_myself}", "unknown fragment"),
        ("negatable: true", "negatable: yes please", "negatable must be true or false"),
        ("'no', havent", "no, havent", "quote no"),
        ("patterns: ['kms']", "patterns: ['kms(']", "rule 2"),
    ],
)
def test_a_broken_lexicon_is_refused(tmp_path: Path, old: str, new: str, error: str) -> None:
    for path in LEXICON.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    english = tmp_path / "en.yaml"
    text = english.read_text(encoding="utf-8")
    assert old in text
    english.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ValueError, match=error):
        crisis._index(tmp_path)
    crisis._index(LEXICON)  # the real one loads
