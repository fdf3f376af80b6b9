"""Text as a person may see it: invisible and reordering characters go, readable text stays."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.visible import ZWJ, ZWNJ, visible_text

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
ZERO_WIDTH = "\u200b\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e"
EMOJI = [
    "🙂",
    "👍🏽",
    "🇩🇪",
    "👨‍👩‍👧",
    "❤️‍🔥",
    "🏳️‍🌈",
    "🧑🏽‍💻",
    "🏃‍♀️",
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England's flag
]
SCRIPTS = ["Привет, как дела?", "مرحبا بك", "שלום עולם", "日本語", "Ça va, señor? 42 %!"]


def odd(ch: str) -> bool:
    """What must never come out, wherever it stood."""
    category = unicodedata.category(ch)
    if ch in "\n\t" or ch in (ZWJ, ZWNJ) or "\U000e0020" <= ch <= "\U000e007f":
        return False
    return category in ("Cc", "Cf") or ch in "\u2028\u2029"


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        ("I am fine\u202e\u2066 honestly", "I am fine honestly"),
        ("pay\u200bpal", "paypal"),
        ("\ufeffhello\u00ad world\u2060", "hello world"),
        ("line\r\nnext\rthird\u2028fourth\u2029", "line\nnext\nthird\nfourth\n"),
        ("bell\x07 nul\x00 esc\x1b tab\tkept", "bell nul esc tab\tkept"),
        ("a\u200db \u200d x\u200c\u200cy", "ab  xy"),  # joiners between Latin letters go
        ("می\u200cخواهم", "می\u200cخواهم"),  # Persian needs its non-joiner
        ("क्\u200dष", "क्\u200dष"),  # Devanagari half-form
        ("\u200d👍", "👍"),  # a joiner with nothing to join
    ],
)
def test_invisible_characters_go_and_readable_text_stays(raw: str, seen: str) -> None:
    assert visible_text(raw) == seen


@pytest.mark.parametrize("text", EMOJI + SCRIPTS)
def test_emoji_sequences_and_scripts_are_unchanged(text: str) -> None:
    assert visible_text(text) == text


@given(st.text())
def test_any_text_comes_out_without_invisible_characters_and_stays_so(text: str) -> None:
    seen = visible_text(text)
    assert not [ch for ch in seen if odd(ch)]
    assert visible_text(seen) == seen


@given(st.text(st.sampled_from(BIDI + ZERO_WIDTH + "\r\n\t\x00\u2028" + ZWJ + ZWNJ + "aمक्👍🏽")))
def test_mixtures_of_joiners_and_invisibles_settle_in_one_pass(text: str) -> None:
    seen = visible_text(text)
    assert visible_text(seen) == seen
    assert not set(seen) & set(BIDI + ZERO_WIDTH + "\r\x00\u2028")


ordinary = st.lists(
    st.one_of(
        st.text(st.characters(categories=["L", "N", "P", "Zs", "Sm", "Sc"]), min_size=1),
        st.sampled_from(EMOJI + SCRIPTS),
    )
).map(" ".join)


@given(ordinary)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert visible_text(text) == text
