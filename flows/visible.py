"""Text as a person may see it: what a client or an admin typed, without the invisible characters
that can reorder, hide or disguise it when it is shown back (in a digest, an export, a chart).

Removed: bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), zero-width
and other invisible format characters (U+200B, U+2060-U+2064, U+FEFF, the soft hyphen, every other
Unicode `Cf`) and control characters (`Cc`) except tab and newline. Line separators (CR LF, CR,
U+2028, U+2029, U+0085, vertical tab, form feed) become a newline.

Kept, because text is unreadable or wrong without them:

* ZERO WIDTH JOINER (U+200D) between two emoji parts (👨‍👩‍👧, ❤️‍🔥, 🧑🏽‍💻) or between two
  characters of a script that joins (Arabic and its neighbours, the Indic scripts);
* ZERO WIDTH NON-JOINER (U+200C) between two characters of such a script (Persian, Hindi);
* tag characters (U+E0020-U+E007F) inside a flag sequence that starts with 🏴 and ends with the
  cancel tag (🏴󠁧󠁢󠁥󠁮󠁧󠁿).

A joiner anywhere else (between Latin letters, next to a space, doubled) is removed. The function
is idempotent and never raises; ordinary text (letters, digits, punctuation, emoji, any script)
comes back unchanged.
"""

from __future__ import annotations

import unicodedata

ZWNJ = "\u200c"
ZWJ = "\u200d"
_BLACK_FLAG = "\U0001f3f4"
_CANCEL_TAG = "\U000e007f"
_LINE_BREAKS = dict.fromkeys("\r\u2028\u2029\x85\x0b\x0c", "\n")
_KEPT = frozenset((ZWJ, ZWNJ, "\n", "\t"))  # joiners are judged once the rest is gone
# Scripts whose letters join or reorder and use ZWJ/ZWNJ in ordinary writing: Arabic, Syriac,
# Thaana, NKo and the Arabic supplements and presentation forms; Devanagari to Sinhala.
_JOINING_SCRIPTS = (
    (0x0600, 0x08FF),
    (0x0900, 0x0DFF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFC),
)


def visible_text(text: str) -> str:
    """`text` without the invisible characters listed above (see the module's docstring)."""
    return _keep_needed_joiners(_without_invisibles(text.replace("\r\n", "\n")))


def _is_tag(ch: str) -> bool:
    return "\U000e0020" <= ch <= "\U000e007f"


def _without_invisibles(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == _BLACK_FLAG:
            j = i + 1
            while j < n and _is_tag(text[j]) and text[j] != _CANCEL_TAG:
                j += 1
            if j > i + 1 and j < n and text[j] == _CANCEL_TAG:  # a whole tag sequence
                out.append(text[i : j + 1])
                i = j + 1
                continue
            out.append(ch)
        elif ch in _LINE_BREAKS:
            out.append(_LINE_BREAKS[ch])
        elif ch in _KEPT or unicodedata.category(ch) not in ("Cf", "Cc"):
            out.append(ch)
        i += 1
    return "".join(out)


def _joining_script(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _JOINING_SCRIPTS)


def _emoji_part(ch: str) -> bool:
    """A pictograph, an emoji modifier (skin tones) or the emoji presentation selector."""
    return ch == "\ufe0f" or (ord(ch) >= 0x2000 and unicodedata.category(ch) in ("So", "Sk"))


def _keep_needed_joiners(text: str) -> str:
    if ZWJ not in text and ZWNJ not in text:
        return text
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in (ZWJ, ZWNJ):
            before = text[i - 1] if i > 0 else ""
            after = text[i + 1] if i < last else ""
            if not before or not after or before in (ZWJ, ZWNJ) or after in (ZWJ, ZWNJ):
                continue
            scripts = _joining_script(before) and _joining_script(after)
            emoji = ch == ZWJ and _emoji_part(before) and _emoji_part(after)
            if not (scripts or emoji):
                continue
        out.append(ch)
    return "".join(out)
