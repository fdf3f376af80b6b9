"""Message catalogs: three languages with the same keys and placeholders, and every key the
flows use exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.i18n import CATALOGS, LANGUAGES, load_catalog, placeholders, supported_language, t
from flows.state import STATES
from flows.timezones import ALL_SUGGESTED

FLOWS = Path(__file__).resolve().parents[2] / "flows"
_KEY_USE = re.compile(
    r"""(?:\.text|\.notice|\bt)\(\s*(?:[a-z_.]+,\s*)?"([a-z_]+\.[a-z_.]+)"|hint_key="([a-z_.]+)\""""
)


def test_languages() -> None:
    assert LANGUAGES == ("en", "es", "ru")
    assert set(CATALOGS) == set(LANGUAGES)


@pytest.mark.parametrize("lang", ["es", "ru"])
def test_catalogs_have_the_same_keys_and_placeholders(lang: str) -> None:
    english, other = CATALOGS["en"], CATALOGS[lang]
    assert set(other) == set(english)
    for key, text in english.items():
        assert placeholders(other[key]) == placeholders(text), key


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_catalog_text_is_empty(lang: str) -> None:
    assert all(text.strip() for text in CATALOGS[lang].values())


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in FLOWS.glob("*.py"):
        for match in _KEY_USE.finditer(path.read_text(encoding="utf-8")):
            keys.add(match.group(1) or match.group(2))
    keys |= {f"zone.{zone}" for zone in ALL_SUGGESTED}
    keys |= {f"date.month.{month}" for month in range(1, 13)}
    keys |= {f"ended.{state}" for state in STATES["ended"]}
    return keys


def test_every_key_the_flows_use_exists() -> None:
    keys = used_keys()
    assert len(keys) > 60  # the scan found the uses, not nothing
    missing = sorted(key for key in keys if key not in CATALOGS["en"])
    assert missing == []


def test_strings_the_telegram_layer_needs_exist() -> None:
    for key in (
        "chat.invite_invalid",
        "chat.stranger",
        "chat.group",
        "chat.media",
        "chat.edited",
        "chat.button_inactive",
        "chat.button_not_yours",
        "chat.too_long",
        "help.client",
        "help.therapist",
        "chat.therapist_notified",
        "therapist.alert_crisis_text",
        "therapist.alert_crisis_safety",
    ):
        assert key in CATALOGS["en"], key
    assert "ask your practice for a new one" in t("en", "chat.invite_invalid")
    assert "private chats" in t("en", "chat.group")


def test_t_formats_and_falls_back_to_english() -> None:
    assert t("es", "chat.too_long", limit=4096) == (
        "Lo siento, ese mensaje es demasiado largo para mí. Intenta que tenga menos de 4096 "
        "caracteres."
    )
    assert t("de", "button.yes") == "Yes"
    with pytest.raises(KeyError):
        t("en", "no.such.key")


def test_missing_translations_fall_back_to_english(tmp_path: Path) -> None:
    partial = tmp_path / "xx.yaml"
    partial.write_text('button:\n  "yes": "Ja"\n', encoding="utf-8")
    assert load_catalog(partial) == {"button.yes": "Ja"}


def test_unquoted_yes_no_keys_are_caught(tmp_path: Path) -> None:
    broken = tmp_path / "xx.yaml"
    broken.write_text("button:\n  yes: Yes\n", encoding="utf-8")
    with pytest.raises(ValueError, match="quote it"):
        load_catalog(broken)


@pytest.mark.parametrize(
    ("code", "lang"),
    [("es-MX", "es"), ("ru", "ru"), ("EN_gb", "en"), ("de", None), (None, None), ("", None)],
)
def test_supported_language(code: str | None, lang: str | None) -> None:
    assert supported_language(code) == lang
