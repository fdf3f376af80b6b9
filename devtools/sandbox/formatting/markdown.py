"""parse_mode=MarkdownV2 (reserved characters must be escaped) and the legacy Markdown."""

from __future__ import annotations

from dataclasses import dataclass

from devtools.sandbox.formatting.spans import EntityParseError, Span, byte_offset

_RESERVED_V2 = frozenset("_*[]()~`>#+-=|{}.!")
_V2_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline",
    "strikethrough": "Strikethrough", "spoiler": "Spoiler", "text_link": "TextUrl",
    "code": "Code", "pre": "Pre",
}  # fmt: skip


@dataclass
class _OpenV2:
    span: Span
    src_index: int


def _v2_closes(kind: str, src: str, i: int) -> int:
    """How many source characters close the innermost open entity here (0 if none)."""
    ch = src[i]
    nxt = src[i + 1] if i + 1 < len(src) else ""
    rules = {
        "bold": 1 if ch == "*" else 0,
        "italic": 1 if ch == "_" and nxt != "_" else 0,
        "underline": 2 if ch == "_" and nxt == "_" else 0,
        "strikethrough": 1 if ch == "~" else 0,
        "spoiler": 2 if ch == "|" and nxt == "|" else 0,
        "text_link": 1 if ch == "]" else 0,
    }
    return rules.get(kind, 0)


def _v2_opens(src: str, i: int) -> tuple[str, int] | None:
    ch = src[i]
    nxt = src[i + 1] if i + 1 < len(src) else ""
    if ch == "_":
        return ("underline", 2) if nxt == "_" else ("italic", 1)
    if ch == "*":
        return "bold", 1
    if ch == "~":
        return "strikethrough", 1
    if ch == "|" and nxt == "|":
        return "spoiler", 2
    if ch == "[":
        return "text_link", 1
    return None


def parse_markdown_v2(src: str) -> tuple[str, list[Span]]:
    out: list[str] = []
    spans: list[Span] = []
    stack: list[_OpenV2] = []
    quote: Span | None = None
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        at_line_start = i == 0 or src[i - 1] == "\n"
        if ch == "\\" and i + 1 < n and 0 < ord(src[i + 1]) <= 126:
            out.append(src[i + 1])
            i += 2
            continue
        top = stack[-1].span.type if stack else ""
        if top in ("code", "pre"):
            closing = "```" if top == "pre" else "`"
            if src.startswith(closing, i):
                span = stack.pop().span
                span.end = len(out)
                spans.append(span)
                i += len(closing)
            else:
                out.append(ch)
                i += 1
            continue
        if ch == "\n" and quote is not None and not src.startswith(">", i + 1):
            quote.end = len(out)
            spans.append(quote)
            quote = None
        if ch == ">" and at_line_start:
            if quote is None:
                quote = Span("blockquote", len(out))
            i += 1
            continue
        if ch == "`":
            if src.startswith("```", i):
                i = _open_pre(src, i, out, stack)
            else:
                stack.append(_OpenV2(Span("code", len(out)), i))
                i += 1
            continue
        closes = _v2_closes(top, src, i) if stack else 0
        if closes:
            opened = stack.pop()
            span = opened.span
            span.end = len(out)
            i += closes
            if span.type == "text_link":
                i = _read_link_url(src, i, span)
                if not span.extra.get("url"):
                    continue
            spans.append(span)
            continue
        opens = _v2_opens(src, i)
        if opens:
            kind, size = opens
            stack.append(_OpenV2(Span(kind, len(out)), i))
            i += size
            continue
        if ch in _RESERVED_V2:
            raise EntityParseError(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        out.append(ch)
        i += 1
    if stack:
        opened = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_V2_NAMES[opened.span.type]} entity at byte offset "
            f"{byte_offset(src, opened.src_index)}"
        )
    if quote is not None:
        quote.end = len(out)
        spans.append(quote)
    return "".join(out), spans


def _open_pre(src: str, i: int, out: list[str], stack: list[_OpenV2]) -> int:
    start = i
    i += 3
    j = i
    while j < len(src) and not src[j].isspace() and src[j] != "`":
        j += 1
    span = Span("pre", len(out))
    if j > i and j < len(src) and src[j] != "`":
        span.extra["language"] = src[i:j]
        i = j
    if i < len(src) and src[i] in "\r\n":
        i += 1
    span.start = len(out)
    stack.append(_OpenV2(span, start))
    return i


def _read_link_url(src: str, i: int, span: Span) -> int:
    """After `]`: read `(url)`, where only `)` and `\\` need escaping."""
    if i >= len(src) or src[i] != "(":
        return i
    url: list[str] = []
    j = i + 1
    while j < len(src) and src[j] != ")":
        if src[j] == "\\" and j + 1 < len(src) and 0 < ord(src[j + 1]) <= 126:
            j += 1
        url.append(src[j])
        j += 1
    if j >= len(src):
        raise EntityParseError(f"Can't find end of a url at byte offset {byte_offset(src, i)}")
    span.extra["url"] = "".join(url)
    return j + 1


# --- legacy Markdown ----------------------------------------------------------------------------

_LEGACY_TYPES = {"*": "bold", "_": "italic", "`": "code", "[": "text_link"}


def parse_markdown(src: str) -> tuple[str, list[Span]]:
    out: list[str] = []
    length = 0
    spans: list[Span] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.append(src[i + 1])
            length += 1
            i += 2
            continue
        if ch not in _LEGACY_TYPES:
            out.append(ch)
            length += 1
            i += 1
            continue
        begin = i
        closing = "]" if ch == "[" else ch
        kind = _LEGACY_TYPES[ch]
        if src.startswith("```", i):
            kind, closing = "pre", "```"
        i += len(closing) if kind == "pre" else 1
        end = src.find(closing, i)
        if end == -1:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {byte_offset(src, begin)}"
            )
        span = Span(kind, length, length + (end - i))
        out.append(src[i:end])
        length += end - i
        i = end + len(closing)
        if kind == "text_link":
            i = _read_link_url(src, i, span)
            if not span.extra.get("url"):
                continue
        spans.append(span)
    return "".join(out), spans
