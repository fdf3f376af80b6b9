"""Message catalogs: three languages with the same keys and placeholders, plural choices with the
categories of each language's rule, dates in each language's words, and every key the flows use
exists."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import parse_pattern

from flows import i18n
from flows.i18n import (
    CATALOGS,
    LANGUAGES,
    format_specs,
    load_catalog,
    locale,
    placeholders,
    plural_category,
    plural_choice,
    supported_language,
    t,
)
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
    """Client, therapist and digest texts alike: no key is English-only, none is extra."""
    english, other = CATALOGS["en"], CATALOGS[lang]
    assert {key.split(".", 1)[0] for key in english} >= {"checkin", "staff", "insights"}
    assert sorted(set(english) - set(other)) == []
    assert sorted(set(other) - set(english)) == []
    for key, text in english.items():
        assert placeholders(other[key]) == placeholders(text), key


def categories_in_use(lang: str) -> set[str]:
    """The plural categories a count up to 1,000 or a decimal fraction can fall in."""
    return {plural_category(lang, n) for n in [*range(1001), "1.5", "2.5", "0.1"]}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_plural_choices_name_the_categories_of_the_language_s_rule(lang: str) -> None:
    """Russian needs one, few, many and other (1 день, 2 дня, 5 дней, 2,5 дня); English and
    Spanish one and other. A category the language does not have is a typo."""
    known = set(locale(lang).plural_form.tags) | {"other"}
    needed = categories_in_use(lang)
    choices = 0
    for key, text in CATALOGS[lang].items():
        for name, spec in format_specs(text):
            choice = plural_choice(spec)
            if choice is None:
                continue
            choices += 1
            assert set(choice) <= known, (key, name)
            assert set(choice) >= needed, (key, name)
            assert all(word.strip() for word in choice.values()), (key, name)
    assert choices > 5


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_other_format_spec_is_a_date_pattern(lang: str) -> None:
    moment = datetime(2026, 3, 12, 9, 5, tzinfo=UTC)
    for key, text in CATALOGS[lang].items():
        for name, spec in format_specs(text):
            if plural_choice(spec) is None:
                assert parse_pattern(spec).apply(moment, locale(lang)), (key, name)
                assert "{" not in t(lang, key, **dict.fromkeys(placeholders(text), moment))


def test_plural_words_in_the_client_and_therapist_texts() -> None:
    def link(lang: str, days: int) -> str:
        return t(lang, "staff.invite_created", alias="AB", days=days, link="L")

    assert "valid 1 day)" in link("en", 1) and "valid 14 days)" in link("en", 14)
    assert "válido 1 día)" in link("es", 1) and "válido 3 días)" in link("es", 3)
    assert [link("ru", n).split("действует ")[1].split(")")[0] for n in (1, 3, 14, 21)] == [
        "1 день",
        "3 дня",
        "14 дней",
        "21 день",
    ]


def test_plural_choice_parsing() -> None:
    assert plural_choice("one=day|other=days") == {"one": "day", "other": "days"}
    assert plural_choice("one=day") is None  # no 'other': not a choice
    assert plural_choice("d MMMM") is None
    assert plural_choice("one=a|some=b|other=c") is None


@pytest.mark.parametrize(
    ("lang", "shown"),
    [("en", "12 March 2026"), ("es", "12 de marzo de 2026"), ("ru", "12 марта 2026")],
)
def test_dates_in_the_client_s_language(lang: str, shown: str) -> None:
    """The month in the form that follows a day number (Russian genitive: 'марта')."""
    assert t(lang, "date.format", date=date(2026, 3, 12)) == shown


def test_one_instant_in_two_zones_is_two_wall_times() -> None:
    """Written dates are remembered; equal instants in other zones must not share an entry."""
    utc = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    moscow = utc.astimezone(ZoneInfo("Europe/Moscow"))
    assert i18n.format_date(utc, "d MMM HH:mm", "en") == "10 Mar 23:30"
    assert i18n.format_date(moscow, "d MMM HH:mm", "en") == "11 Mar 02:30"


def test_babel_locales_are_parsed_once() -> None:
    assert locale("ru") is locale("ru")
    assert str(locale("en")) == "en_GB" and str(locale("xx")) == "en_GB"


def test_numbers_and_lists_in_each_language() -> None:
    assert [i18n.number(2.5, lang) for lang in LANGUAGES] == ["2.5", "2,5", "2,5"]
    assert [i18n.join(["a", "b", "c"], lang) for lang in LANGUAGES] == [
        "a, b and c",
        "a, b y c",
        "a, b и c",
    ]
    assert i18n.join(["a"], "ru") == "a" and i18n.join([], "en") == ""


def test_a_key_in_two_files_of_a_language_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "xx.yaml").write_text('button:\n  "yes": "Ja"\n', encoding="utf-8")
    (tmp_path / "staff.xx.yaml").write_text('button:\n  "yes": "Jawohl"\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "LOCALES_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"button\.yes"):
        i18n._catalog("xx")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_catalog_text_is_empty(lang: str) -> None:
    assert all(text.strip() for text in CATALOGS[lang].values())


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in FLOWS.glob("*.py"):
        for match in _KEY_USE.finditer(path.read_text(encoding="utf-8")):
            keys.add(match.group(1) or match.group(2))
    keys |= {f"zone.{zone}" for zone in ALL_SUGGESTED}
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


WEB = FLOWS.parent / "web"
_CONSOLE_KEY = re.compile(r"""(?:\btr|\bt)\(\s*(?:[a-z_.'"]+,\s*)?["']([a-z_]+\.[a-z_.]+)["']""")
_CONSOLE_FAMILY = re.compile(r"""["']((?:console|therapist)\.[a-z_.]+\.)["']\s*~""")


def console_sources() -> list[str]:
    files = [*WEB.glob("*.py"), *(WEB / "templates").glob("*.html")]
    return [path.read_text(encoding="utf-8") for path in files]


def test_every_key_the_console_uses_exists_and_every_console_key_is_used() -> None:
    """The console's pages (`web/`): each literal key, and each family a template builds a key
    of (`"console.status." ~ status`) for every value it can meet; no console key left over."""
    from app.console import Role
    from flows.crisis import CATEGORIES
    from flows.statuses import CheckinStatus, ClientStatus
    from insights import config
    from insights.signals import CODES, SEVERITY_RANK

    sources = console_sources()
    literal = {m for text in sources for m in _CONSOLE_KEY.findall(text) if not m.endswith(".")}
    families = {m for text in sources for m in _CONSOLE_FAMILY.findall(text)}
    values = {
        "console.status.": [s.value for s in ClientStatus],
        "console.checkin_status.": [s.value for s in CheckinStatus],
        "console.signal.": CODES,
        "console.severity.": list(SEVERITY_RANK),
        "console.item.": config.ALLIANCE_ITEMS,
        "console.language.": LANGUAGES,
        "console.role.": [r.value for r in Role],
        "console.alerted.": ["therapist", "safety_contact", "nobody", "other"],
        "therapist.crisis_kind.": [*CATEGORIES, "other"],
    }
    assert families == set(values)  # a new family needs its values listed here
    built = {prefix + value for prefix, names in values.items() for value in names}
    assert len(literal) > 150
    missing = sorted(key for key in literal | built if key not in CATALOGS["en"])
    assert missing == []
    unused = sorted(
        key for key in CATALOGS["en"] if key.startswith("console.") and key not in literal | built
    )
    assert unused == []
