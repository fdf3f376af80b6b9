"""parse_mode=HTML as Telegram reads it: the supported tags only, balanced, entities decoded."""

from __future__ import annotations

import re
from dataclasses import dataclass

from devtools.sandbox.formatting.spans import EntityParseError, Span, byte_offset

_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre",
    "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}  # fmt: skip
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]{2,6});")
_NAME_CHARS = re.compile(r"[a-zA-Z0-9-]*")


def _decode_entity(src: str, i: int) -> tuple[str, int] | None:
    match = _ENTITY_RE.match(src, i)
    if not match:
        return None
    body = match.group(1)
    if body.startswith("#x"):
        code = int(body[2:], 16)
    elif body.startswith("#"):
        code = int(body[1:])
    else:
        named = _NAMED_ENTITIES.get(body.lower())
        return (named, match.end() - i) if named else None
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end() - i


def _decode_attr(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        decoded = _decode_entity(value, i) if value[i] == "&" else None
        if decoded:
            out.append(decoded[0])
            i += decoded[1]
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


@dataclass
class _OpenTag:
    name: str
    span: Span
    attrs: dict[str, str]


def parse_html(src: str) -> tuple[str, list[Span]]:
    out: list[str] = []
    length = 0
    stack: list[_OpenTag] = []
    spans: list[Span] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch == "&":
            decoded = _decode_entity(src, i)
            text, step = decoded if decoded else ("&", 1)
            out.append(text)
            length += len(text)
            i += step
            continue
        if ch != "<":
            out.append(ch)
            length += 1
            i += 1
            continue
        if i + 1 < n and src[i + 1] == "/":
            i = _close_html_tag(src, i, stack, spans, length)
        else:
            i = _open_html_tag(src, i, stack, length)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return "".join(out), spans


def _open_html_tag(src: str, i: int, stack: list[_OpenTag], length: int) -> int:
    offset = byte_offset(src, i)
    name_match = _NAME_CHARS.match(src, i + 1)
    assert name_match is not None  # the pattern matches the empty string
    name = name_match.group(0).lower()
    if name not in _HTML_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
    j = name_match.end()
    attrs: dict[str, str] = {}
    n = len(src)
    while True:
        while j < n and src[j].isspace():
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
        if src[j] == ">":
            j += 1
            break
        attr_match = _NAME_CHARS.match(src, j)
        assert attr_match is not None
        attr = attr_match.group(0).lower()
        if not attr:
            raise EntityParseError(
                f'Empty attribute name in the tag "{name}" at byte offset {offset}'
            )
        j = attr_match.end()
        while j < n and src[j].isspace():
            j += 1
        if j < n and src[j] != "=":
            attrs[attr] = ""
            continue
        j += 1
        while j < n and src[j].isspace():
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
        if src[j] in "\"'":
            quote = src[j]
            end = src.find(quote, j + 1)
            if end == -1:
                raise EntityParseError(
                    f'Unclosed value of the attribute "{attr}" in the tag "{name}" '
                    f"at byte offset {offset}"
                )
            attrs[attr] = _decode_attr(src[j + 1 : end])
            j = end + 1
        else:
            start = j
            while j < n and not src[j].isspace() and src[j] != ">":
                j += 1
            attrs[attr] = _decode_attr(src[start:j])
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
    if name == "tg-emoji" and not attrs.get("emoji-id"):
        raise EntityParseError(
            f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {offset}'
        )
    stack.append(_OpenTag(name, Span(_HTML_TAGS[name], length), attrs))
    return j


def _close_html_tag(src: str, i: int, stack: list[_OpenTag], spans: list[Span], length: int) -> int:
    offset = byte_offset(src, i)
    end = src.find(">", i)
    if end == -1:
        raise EntityParseError(f"Unclosed end tag at byte offset {offset}")
    name = src[i + 2 : end].strip().lower()
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {offset}")
    top = stack.pop()
    if name != top.name:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {offset}, expected "</{top.name}>", '
            f'found "</{name}>"'
        )
    span = top.span
    span.end = length
    if top.name == "a":
        href = top.attrs.get("href", "")
        if not href:
            return end + 1
        span.extra["url"] = href
    elif top.name == "tg-emoji":
        span.extra["custom_emoji_id"] = top.attrs["emoji-id"]
    elif top.name == "blockquote" and "expandable" in top.attrs:
        span.type = "expandable_blockquote"
    elif top.name == "code" and stack and stack[-1].name == "pre":
        language = top.attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1].span.extra["language"] = language[len("language-") :]
            return end + 1
    spans.append(span)
    return end + 1
