"""Detector thresholds: the design defaults, overridable from a dict, a TOML or a JSON file.

`rapport backtest --config FILE` loads one of these so a practice can try stricter or looser
settings on its own past data. Unknown keys are refused by name: a typo must not silently fall
back to a default.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from insights import config


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every number the signals use. Counts are check-ins, delays hours, times days."""

    # scoring of the instrument
    cutoff: float = float(config.CUTOFF)
    item_flag: int = config.ITEM_FLAG
    reliable_change: float = config.RELIABLE_CHANGE
    baseline_min: int = config.BASELINE_MIN
    baseline_max: int = config.BASELINE_MAX
    total_max: int = config.TOTAL_MAX
    item_max: int = config.ITEM_MAX
    # silence
    silence_missed_watch: int = 2
    silence_missed_alert: int = 3
    silence_session_alert: int = 0
    """Check-ins missed around a session the client attended that make an alert (0: a watch)."""
    silence_cadences: float = 2.0
    silence_rate_window: int = 4
    silence_rate_low: float = 0.5
    silence_rate_before: float = 0.8
    engage_k: float = 1.5
    engage_h: float = 4.0
    engage_missed: float = 3.5
    engage_partial: float = 1.5
    engage_cap: float = 4.0
    delay_sigma: float = 1.0
    pattern_habit_after: int = 0
    pattern_needs_session: bool = False
    """A pattern of misses with no late reply is a watch until the client comes to a session while
    silent (`silence_session_alert`) or misses `silence_missed_alert` in a row."""
    away_is_watch: bool = False
    """Missed check-ins are a watch, not an alert, while a session has been skipped during the
    silence: the therapist sees a missed session for themselves, and a holiday looks the same."""
    # slowing
    slowing_window: int = 3
    slowing_ratio: float = 3.0
    slowing_min_hours: float = 4.0
    # alliance
    low_alert_in_row: int = 0
    falling_k: float = 0.75
    falling_h: float = 3.0
    falling_cap: float = 1.5
    falling_noise_z: float = 1.0
    trend_window: int = 4
    trend_drop: float = 4.0
    item_drop_points: int = 3
    item_low: int = 5
    item_alert_in_row: int = 0
    # engagement
    partial_window: int = 4
    partial_watch: int = 2
    terse_window: int = 4
    terse_rate_before: float = 0.5
    terse_shrink: float = 0.34
    ceiling_in_row: int = 3
    # rupture and confrontation
    rupture_alert_count: int = 0
    confrontation_alert_count: int = 2
    recent_window: int = 3
    # the digest only: what a therapist should take up at the next session, whether or not it
    # predicts a drop-out (the backtest does not see these; see insights/README.md)
    digest_alert_drop: float = 2.0
    """A total this many reliable changes below the client's baseline is an alert in the digest."""
    digest_low_in_row: int = 4
    """A total under the cut-off this many check-ins running is an alert in the digest."""
    # combining watch signals into an alert
    combine_across_groups: bool = False
    combine_within_group: int = 3
    combine_low_in_row: int = 3
    combine_min_run: int = 2

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Thresholds:
        """Defaults overridden by `values`; a `[thresholds]` table is used when present."""
        table = values.get("thresholds", values)
        if not isinstance(table, Mapping):
            raise ValueError("'thresholds' must be a table of names and numbers")
        known = {f.name: f for f in fields(cls)}
        changes: dict[str, Any] = {}
        for name, value in table.items():
            if name not in known:
                raise ValueError(f"unknown threshold {name!r}")
            default = getattr(cls(), name)
            changes[name] = _coerce(name, value, default)
        result = replace(cls(), **changes)
        result.validate()
        return result

    @classmethod
    def from_file(cls, path: str | Path) -> Thresholds:
        """Read a `.toml` or `.json` file of overrides."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path.name}: expected a table of thresholds")
        return cls.from_mapping(data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Refuse settings that make the detector meaningless."""
        if not 1 <= self.baseline_min <= self.baseline_max:
            raise ValueError("baseline_min must be at least 1 and at most baseline_max")
        for name in (
            "silence_missed_watch",
            "silence_missed_alert",
            "slowing_window",
            "trend_window",
            "partial_window",
            "terse_window",
            "ceiling_in_row",
            "recent_window",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.silence_missed_alert < self.silence_missed_watch:
            raise ValueError("silence_missed_alert must not be below silence_missed_watch")
        if self.pattern_habit_after < 0:
            raise ValueError("pattern_habit_after must not be negative")
        if self.trend_window < 2:
            raise ValueError("trend_window must be at least 2")
        if self.slowing_ratio <= 1:
            raise ValueError("slowing_ratio must be above 1")


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"threshold {name!r} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"threshold {name!r} must be a number")
    if isinstance(default, int) and not isinstance(default, bool):
        if value != int(value):
            raise ValueError(f"threshold {name!r} must be a whole number")
        return int(value)
    return float(value)
