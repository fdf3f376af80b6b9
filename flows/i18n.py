"""Message catalogs: every client- and therapist-facing sentence lives in `locales/<lang>.yaml`.

Catalogs are nested YAML flattened to dotted keys (`checkin.thanks`). A key missing from a
language falls back to English, so a half-translated catalog degrades instead of failing; a key
missing from English is a programming error and raises.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

LANGUAGES: tuple[str, ...] = ("en", "es", "ru")
DEFAULT_LANGUAGE = "en"
LOCALES_DIR = Path(__file__).with_name("locales")


def _flatten(prefix: str, node: Any, out: dict[str, str], source: Path) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise ValueError(f"{source.name}: {prefix}: key {key!r} must be text (quote it)")
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out, source)
    elif isinstance(node, str):
        out[prefix] = node
    else:
        raise ValueError(f"{source.name}: {prefix}: expected text, got {type(node).__name__}")


def load_catalog(path: Path) -> dict[str, str]:
    """Read one catalog file into a flat key -> text mapping."""
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    flat: dict[str, str] = {}
    _flatten("", data, flat, path)
    return flat


def _catalog(lang: str) -> dict[str, str]:
    """The client catalog `<lang>.yaml` merged with the therapist-side `staff.<lang>.yaml`."""
    merged = load_catalog(LOCALES_DIR / f"{lang}.yaml")
    staff = LOCALES_DIR / f"staff.{lang}.yaml"
    if staff.exists():
        extra = load_catalog(staff)
        clash = sorted(set(extra) & set(merged))
        if clash:
            raise ValueError(f"{staff.name}: keys also in {lang}.yaml: {', '.join(clash)}")
        merged.update(extra)
    return merged


CATALOGS: dict[str, dict[str, str]] = {lang: _catalog(lang) for lang in LANGUAGES}


def t(lang: str, key: str, **params: object) -> str:
    """The text for `key` in `lang` (English if missing there), formatted with `params`."""
    text = CATALOGS.get(lang, CATALOGS[DEFAULT_LANGUAGE]).get(key)
    if text is None:
        text = CATALOGS[DEFAULT_LANGUAGE][key]
    return text.format_map(params) if params and "{" in text else text


def placeholders(text: str) -> frozenset[str]:
    """The `{names}` a catalog text expects."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


def supported_language(code: str | None) -> str | None:
    """Map a Telegram `language_code` such as "es-MX" to one of ours, or None."""
    if not code:
        return None
    base = code.replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else None


def words(lang: str, key: str) -> frozenset[str]:
    """A comma-separated catalog list (accepted replies such as "yes,yeah") as a set."""
    return frozenset(w.strip().casefold() for w in t(lang, key).split(",") if w.strip())
