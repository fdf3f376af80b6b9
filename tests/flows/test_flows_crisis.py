"""The crisis lexicon: genuine first-person statements are caught, everyday idioms are not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.crisis import (
    CATEGORIES,
    detect_crisis,
    match_crisis,
    match_crisis_exhaustively,
    normalise,
)

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
    assert normalise("I’m") == "i'm"
    assert normalise("wo\u200brds") == "wo rds"


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
