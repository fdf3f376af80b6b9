"""The items the signals, the digest and the chart speak of are the default instrument's: its ids,
domains (subscales), scale and scoring are read from its YAML, and every one of them has a name in
every language and a session opening."""

from __future__ import annotations

import pytest

from flows.i18n import CATALOGS, LANGUAGES
from flows.instruments import DEFAULT_INSTRUMENT, load_instrument
from insights import config, digest
from insights.texts import PREFIX, has_key, text

BRIEF = load_instrument(DEFAULT_INSTRUMENT)


def test_scoring_comes_from_the_instrument() -> None:
    assert config.ALLIANCE_ITEMS == ("heard", "goals", "approach", "overall")
    assert config.ITEM_DOMAINS == {
        "heard": "bond",
        "goals": "goals",
        "approach": "approach",
        "overall": "overall",
    }
    assert config.WELLBEING_ITEM == "wellbeing"
    assert (config.ITEM_MIN, config.ITEM_MAX, config.TOTAL_MAX) == (0, 10, 40)
    assert (config.CUTOFF, config.ITEM_FLAG, config.RELIABLE_CHANGE) == (36, 7, 5.0)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_alliance_item_and_domain_has_its_words(lang: str) -> None:
    for item in config.ALLIANCE_ITEMS:
        for key in (f"item.{item}", f"chart.item.{item}", f"domain.{config.ITEM_DOMAINS[item]}"):
            assert has_key(key) and text(lang, key).strip(), key


def test_no_words_for_items_the_instrument_does_not_have() -> None:
    named = {
        key.removeprefix(f"{PREFIX}{kind}.")
        for key in CATALOGS["en"]
        for kind in ("item", "chart.item")
        if key.startswith(f"{PREFIX}{kind}.")
    }
    assert named == set(config.ALLIANCE_ITEMS)


def test_every_domain_has_a_session_opening() -> None:
    domains = set(config.ITEM_DOMAINS.values())
    assert domains <= set(digest._OPENINGS_BY_DOMAIN)
    assert all(has_key(key) for key in digest._OPENINGS_BY_DOMAIN.values())
