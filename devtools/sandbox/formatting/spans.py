"""Spans while parsing and their conversion to Telegram entities (UTF-16 offsets, trimmed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class EntityParseError(ValueError):
    """Malformed markup; the message is Telegram's text after "can't parse entities: "."""


@dataclass
class Formatted:
    """Plain text and its entities, offsets and lengths in UTF-16 code units like Telegram's."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Span:
    """An entity while parsing, in code-point offsets of the output text."""

    type: str
    start: int
    end: int = -1
    extra: dict[str, Any] = field(default_factory=dict)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


def entity_extra(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k not in ("type", "offset", "length")}


def finish(text: str, spans: list[Span], *, offsets_in_utf16: bool) -> Formatted:
    """Trim surrounding whitespace as Telegram does and convert spans to UTF-16 entities."""
    if offsets_in_utf16:
        spans = [Span(s.type, _cp_index(text, s.start), _cp_index(text, s.end), s.extra)
                 for s in spans]  # fmt: skip
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    units = _utf16_prefix(stripped)
    result: list[dict[str, Any]] = []
    for span in spans:
        start = max(0, span.start - lead)
        end = min(len(stripped), span.end - lead)
        if end <= start:
            continue
        entity: dict[str, Any] = {
            "offset": units[start],
            "length": units[end] - units[start],
            "type": span.type,
        }
        entity.update(span.extra)
        result.append(entity)
    result.sort(key=lambda e: (e["offset"], -e["length"]))
    return Formatted(stripped, result)


def _utf16_prefix(text: str) -> list[int]:
    prefix = [0]
    for ch in text:
        prefix.append(prefix[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return prefix


def _cp_index(text: str, utf16_offset: int) -> int:
    units = 0
    for index, ch in enumerate(text):
        if units >= utf16_offset:
            return index
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)
