"""Telegram's text formatting: `parse_mode` markup becomes plain text plus entities.

Telegram never stores markup: a message sent with `parse_mode="HTML"` comes back as plain text with
`entities` (offsets in UTF-16 code units), and malformed markup is refused with
"can't parse entities: ...". Bots that get this wrong in production fail on every send, so the
sandbox parses the way Telegram does and refuses the same mistakes (unbalanced or unknown tags,
unescaped MarkdownV2 reserved characters).
"""

from __future__ import annotations

from typing import Any

from devtools.sandbox.formatting.html import parse_html
from devtools.sandbox.formatting.markdown import parse_markdown, parse_markdown_v2
from devtools.sandbox.formatting.spans import (
    EntityParseError,
    Formatted,
    Span,
    entity_extra,
    finish,
    utf16_len,
)

__all__ = ["EntityParseError", "Formatted", "format_text", "utf16_len"]


def format_text(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None = None
) -> Formatted:
    """Parse `text` like Telegram: explicit entities win over parse_mode; whitespace is trimmed."""
    if entities is not None:
        spans = [
            Span(e["type"], e["offset"], e["offset"] + e["length"], entity_extra(e))
            for e in entities
        ]
        return finish(text, spans, offsets_in_utf16=True)
    mode = (parse_mode or "").strip().lower()
    if mode == "":
        return finish(text, [], offsets_in_utf16=False)
    if mode == "html":
        plain, spans = parse_html(text)
    elif mode == "markdownv2":
        plain, spans = parse_markdown_v2(text)
    elif mode == "markdown":
        plain, spans = parse_markdown(text)
    else:
        raise EntityParseError(f"Unsupported parse_mode {parse_mode!r}")
    return finish(plain, spans, offsets_in_utf16=False)
