"""Settings mean what they say: a value that cannot be stored as given is refused in one line that
names the option, with nothing stored (`--retention 1h` once became 0 days and housekeeping then
deleted every answer within a minute)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_cli import rapport as rapport  # the fixtures
from tests.e2e.test_cli import rapport_before_start as rapport_before_start

DEFAULTS = {
    "retention_days": 730,
    "nudge_after_hours": 48,
    "expire_after_hours": 96,
    "digest_lead_minutes": 180,
    "name": "Practice",
}


def practice(rapport) -> dict[str, object]:  # type: ignore[no-untyped-def]
    shown = json.loads(rapport("practice", "show", "--json"))
    return {key: shown[key] for key in DEFAULTS}


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--retention", "1h"), "--retention"),
        (("--retention", "23h59m"), "--retention"),
        (("--retention", "36h"), "--retention"),
        (("--retention", "1d12h"), "--retention"),
        (("--retention", "0d"), "--retention"),
        (("--nudge-after", "90m"), "--nudge-after"),
        (("--expire-after", "4d3m"), "--expire-after"),
        (("--nudge-after", "5d", "--expire-after", "4d"), "--nudge-after"),
        (("--nudge-after", "4d"), "--nudge-after"),  # the stored expiry is 4d
        (("--expire-after", "1d"), "--expire-after 1d"),  # the stored nudge is 2d
        (("--digest-lead", "30d"), "--digest-lead"),
        (("--digest-lead", "-3h"), "--digest-lead"),
        (("--digest-lead", "0m"), "--digest-lead"),
        (("--name", ""), "--name"),
        (("--name", "   "), "--name"),
        (("--name", "\u200b\u202e\ufeff"), "--name"),
        (("--name", "x" * 101), "--name"),
        (("--outcome", "phq-9:3d"), "--outcome"),
        (("--outcome", "phq-9"), "--outcome"),
        (("--outcome", "rapport-brief:14d"), "--outcome"),
        (("--outcome", "phq-9:14d", "--outcome", "PHQ-9:28d"), "--outcome"),
        (("--outcome", ""), "--outcome"),
    ],
)
def test_a_setting_that_cannot_be_honoured_is_refused_and_nothing_is_stored(  # type: ignore[no-untyped-def]
    rapport, args: tuple[str, ...], option: str
) -> None:
    before = practice(rapport)
    out = rapport("practice", "set", *args, "--cadence", "every 3 days at 18:00", code=1)
    assert out.count("\n") == 1 and out.startswith("rapport: ") and option in out, out
    assert "Traceback" not in out
    assert practice(rapport) == before == DEFAULTS
    assert json.loads(rapport("practice", "show", "--json"))["cadence"] != "every 3 days at 18:00"


def test_values_in_whole_units_are_stored_exactly(rapport) -> None:  # type: ignore[no-untyped-def]
    rapport(
        "practice",
        "set",
        "--retention",
        "30d",
        "--nudge-after",
        "36h",
        "--expire-after",
        "3d",
        "--digest-lead",
        "1h30m",
        "--name",
        " Praxis \u200bam  Park\u202e ",
    )
    assert practice(rapport) == {
        "retention_days": 30,
        "nudge_after_hours": 36,
        "expire_after_hours": 72,
        "digest_lead_minutes": 90,
        "name": "Praxis am Park",
    }
    # Moving both together is judged on the new pair, not on the stored one.
    rapport("practice", "set", "--nudge-after", "4d", "--expire-after", "6d")
    assert practice(rapport)["nudge_after_hours"] == 96


def test_outcome_measures_are_stored_in_one_spelling(rapport) -> None:  # type: ignore[no-untyped-def]
    def shown() -> object:
        return json.loads(rapport("practice", "show", "--json"))["outcomes"]

    assert shown() == "off"
    rapport("practice", "set", "--outcome", "PHQ-9:14d", "--outcome", "gad-7:28d")
    assert shown() == "phq-9:14d,gad-7:28d"
    rapport("therapist", "add", "--name", "Dana Lee")
    rapport("client", "add", "--therapist", "1", "--name", "Alice Smith")
    assert (
        json.loads(rapport("client", "set", "1", "--outcome", "off", "--json"))["outcomes"] == "off"
    )
    client = json.loads(rapport("client", "set", "1", "--outcome", "default", "--json"))
    assert client["outcomes"] is None  # the practice's again
    rapport("practice", "set", "--outcome", "off")
    assert shown() == "off"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("therapist", "add", "--name", ""), "--name"),
        (("therapist", "add", "--name", "\u200b\u2066"), "--name"),
        (("client", "add", "--therapist", "1", "--name", " \u200d "), "--name"),
        (("client", "add", "--therapist", "1", "--name", "Alice", "--alias", "\u200f"), "--alias"),
        (("client", "add", "--therapist", "1", "--name", "Alice", "--timezone", ""), "time zone"),
        (("client", "add", "--therapist", "1", "--name", "Alice", "--language", ""), "language"),
        (("client", "add", "--therapist", "1", "--name", "Alice", "--cadence", ""), "cadence"),
        (("client", "set", "1", "--timezone", ""), "time zone"),
        (("client", "set", "1", "--language", ""), "language"),
        (("client", "set", "1", "--cadence", ""), "cadence"),
        (("client", "set", "1", "--quiet-hours", ""), "quiet hours"),
        (("client", "set", "1", "--outcome", "gad-7:1d"), "--outcome"),
    ],
)
def test_people_need_visible_names_and_real_settings(  # type: ignore[no-untyped-def]
    rapport, args: tuple[str, ...], option: str
) -> None:
    if args[0] == "client":
        rapport("therapist", "add", "--name", "Dana Lee")
    if args[:2] == ("client", "set"):
        rapport("client", "add", "--therapist", "1", "--name", "Alice Smith")
    before = rapport("client", "list", "--json"), rapport("therapist", "list", "--json")
    out = rapport(*args, code=1)
    assert out.count("\n") == 1 and out.startswith("rapport: ") and option in out, out
    assert (rapport("client", "list", "--json"), rapport("therapist", "list", "--json")) == before


def test_names_are_stored_as_they_will_be_seen(rapport) -> None:  # type: ignore[no-untyped-def]
    rapport("therapist", "add", "--name", "Dana\u202e  Lee\u200b")
    rapport(
        "client", "add", "--therapist", "1", "--name", "Ali\u00adce Smith", "--alias", "A\u200b.S."
    )
    [therapist] = json.loads(rapport("therapist", "list", "--json"))
    [client] = json.loads(rapport("client", "list", "--json"))
    assert (therapist["name"], client["name"], client["alias"]) == (
        "Dana Lee",
        "Alice Smith",
        "A.S.",
    )


def test_no_nudge_is_said_explicitly(rapport) -> None:  # type: ignore[no-untyped-def]
    rapport("practice", "set", "--nudge-after", "off", "--expire-after", "20h")
    assert practice(rapport)["nudge_after_hours"] == 0
    assert practice(rapport)["expire_after_hours"] == 20
