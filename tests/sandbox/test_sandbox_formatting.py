"""parse_mode handling: plain text plus UTF-16 entities, and Telegram's refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.sandbox.formatting import EntityParseError, format_text, utf16_len
from devtools.sandbox.wire import detect_entities


def kinds(text: str, mode: str | None) -> tuple[str, list[tuple[str, int, int]]]:
    result = format_text(text, mode)
    return result.text, [(e["type"], e["offset"], e["length"]) for e in result.entities]


def test_plain_text_is_trimmed_and_has_no_entities() -> None:
    assert kinds("  hello <b>  ", None) == ("hello <b>", [])


def test_html_tags_become_entities() -> None:
    text, entities = kinds(
        "<b>bold</b> <i>it</i> <u>u</u> <s>s</s> <tg-spoiler>sp</tg-spoiler> <code>c</code>", "HTML"
    )
    assert text == "bold it u s sp c"
    assert entities == [
        ("bold", 0, 4),
        ("italic", 5, 2),
        ("underline", 8, 1),
        ("strikethrough", 10, 1),
        ("spoiler", 12, 2),
        ("code", 15, 1),
    ]


def test_html_links_languages_and_escapes() -> None:
    result = format_text(
        '<a href="https://example.org/?a=1&amp;b=2">site</a> &lt;3 '
        '<pre><code class="language-python">x = 1</code></pre>',
        "html",
    )
    assert result.text == "site <3 x = 1"
    assert result.entities[0] == {
        "offset": 0, "length": 4, "type": "text_link", "url": "https://example.org/?a=1&b=2"
    }  # fmt: skip
    assert result.entities[1] == {"offset": 8, "length": 5, "type": "pre", "language": "python"}


def test_offsets_count_utf16_units() -> None:
    result = format_text("🙂 <b>é🙂x</b>", "HTML")
    assert result.entities == [{"offset": 3, "length": 4, "type": "bold"}]
    assert utf16_len("🙂") == 2


@pytest.mark.parametrize(
    ("markup", "reason"),
    [
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("a</b>", "Unexpected end tag at byte offset 1"),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<b", "Unclosed start tag at byte offset 0"),
    ],
)
def test_html_errors(markup: str, reason: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        format_text(markup, "HTML")
    assert str(caught.value) == reason


def test_markdown_v2_entities_and_escapes() -> None:
    text, entities = kinds("*b* _i_ __u__ ~s~ ||sp|| [l](https://x.org) `c` 1\\.5\\!", "MarkdownV2")
    assert text == "b i u s sp l c 1.5!"
    assert [e[0] for e in entities] == [
        "bold", "italic", "underline", "strikethrough", "spoiler", "text_link", "code"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("markup", "reason"),
    [
        ("Done.", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("a-b", "Character '-' is reserved and must be escaped with the preceding '\\'"),
        ("*open", "Can't find end of Bold entity at byte offset 0"),
        ("é _x", "Can't find end of Italic entity at byte offset 3"),
    ],
)
def test_markdown_v2_errors(markup: str, reason: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        format_text(markup, "MarkdownV2")
    assert str(caught.value) == reason


def test_legacy_markdown() -> None:
    assert kinds("*b* _i_ `c` [l](https://x.org) a.b", "Markdown") == (
        "b i c l a.b",
        [("bold", 0, 1), ("italic", 2, 1), ("code", 4, 1), ("text_link", 6, 1)],
    )
    with pytest.raises(EntityParseError, match="byte offset 2"):
        format_text("a *b", "Markdown")


def test_explicit_entities_win_over_parse_mode() -> None:
    result = format_text("<b>x</b>", "HTML", [{"type": "italic", "offset": 0, "length": 3}])
    assert result.text == "<b>x</b>"
    assert result.entities == [{"offset": 0, "length": 3, "type": "italic"}]


def test_unknown_parse_mode_is_an_error() -> None:
    with pytest.raises(EntityParseError, match="Unsupported parse_mode"):
        format_text("x", "BBCode")


def test_user_text_entities() -> None:
    found = detect_entities(
        "/start abc then /help@rapport_bot, see https://x.org or @someone #mood"
    )
    assert [(e["type"], e["offset"], e["length"]) for e in found] == [
        ("bot_command", 0, 6),
        ("bot_command", 16, 17),
        ("url", 39, 13),
        ("mention", 56, 8),
        ("hashtag", 65, 5),
    ]


MARKUP_ALPHABET = st.sampled_from(
    [*list("ab <>/&;#*_~|[]()`\\.!-\n🙂é"), "<b>", "</b>", "&lt;", "<i>"]
)


@settings(max_examples=300, database=None)
@given(
    source=st.lists(MARKUP_ALPHABET, max_size=30).map("".join),
    mode=st.sampled_from(["HTML", "MarkdownV2", "Markdown", None]),
)
def test_any_text_parses_or_is_refused_cleanly(source: str, mode: str | None) -> None:
    try:
        result = format_text(source, mode)
    except EntityParseError:
        return
    size = utf16_len(result.text)
    assert result.text == result.text.strip()
    for entity in result.entities:
        assert entity["length"] > 0
        assert entity["offset"] >= 0 and entity["offset"] + entity["length"] <= size
