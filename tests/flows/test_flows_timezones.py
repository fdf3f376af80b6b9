"""Recognising time zones from names, cities and offsets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.timezones import ALL_SUGGESTED, display_zone, is_zone, local_time, parse_zone


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/BERLIN", "Europe/Berlin"),
        ("America/New York", "America/New_York"),
        ("berlin", "Europe/Berlin"),
        ("New York", "America/New_York"),
        ("buenos aires", "America/Argentina/Buenos_Aires"),
        ("Bogotá", "America/Bogota"),
        ("Москва", "Europe/Moscow"),
        ("екатеринбург", "Asia/Yekaterinburg"),
        ("Ciudad de México", "America/Mexico_City"),
        ("+3", "Etc/GMT-3"),
        ("UTC-5", "Etc/GMT+5"),
        ("utc +10", "Etc/GMT-10"),
        ("GMT+5:30", "Asia/Kolkata"),
        ("+0545", "Asia/Kathmandu"),
        ("−4", "Etc/GMT+4"),
        ("UTC", "Etc/UTC"),
        ("+0", "Etc/UTC"),
    ],
)
def test_recognised(text: str, zone: str) -> None:
    assert parse_zone(text) == zone
    assert is_zone(zone)


@pytest.mark.parametrize("text", ["", "abc", "+15", "-13", "+3:75", "+2:15", "my house", "x" * 80])
def test_not_recognised(text: str) -> None:
    assert parse_zone(text) is None


def test_display_and_local_time() -> None:
    assert display_zone("Etc/GMT-3") == "UTC+3"
    assert display_zone("Etc/GMT+5") == "UTC-5"
    assert display_zone("Etc/UTC") == "UTC"
    assert display_zone("America/New_York") == "America/New York"
    at = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert local_time("Europe/Berlin", at) == "14:00"
    assert local_time("Etc/GMT-3", at) == "15:00"


def test_suggested_zones_all_load() -> None:
    assert all(is_zone(zone) for zone in ALL_SUGGESTED)
