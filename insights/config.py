"""Scoring constants of the default alliance check-in, read from its instrument definition.

Item ids, their domains (the instrument's subscales), the scale, the total, the cut-off, the item
flag and the reliable change all come from `flows/instruments/rapport-brief.yaml`, the one place
they are written; the rest (baseline window, expiry) is the design's. A practice that uses another
instrument overrides them through `insights.thresholds.Thresholds`.
"""

from __future__ import annotations

from typing import Final

from flows.instruments import DEFAULT_INSTRUMENT, WELLBEING, load_instrument

_BRIEF: Final = load_instrument(DEFAULT_INSTRUMENT)
_SCORING: Final = _BRIEF.scoring


def _required(value: int | None, what: str) -> int:
    if value is None:
        raise ValueError(f"{DEFAULT_INSTRUMENT}: scoring.{what} is needed by the signals")
    return value


def measure_title(lang: str) -> str:
    """What the alliance items are, as a reader should be told: "Rapport's brief alliance check
    (not validated)" (the instrument's own title)."""
    return _BRIEF.title_for(lang)


_ALLIANCE: Final = tuple(item for name in _SCORING.alliance if (item := _BRIEF.find(name)))
ALLIANCE_ITEMS: Final[tuple[str, ...]] = tuple(item.id for item in _ALLIANCE)
"""The alliance items, in the order they are asked and drawn."""

(_WELLBEING,) = _BRIEF.by_subscale(WELLBEING)
WELLBEING_ITEM: Final = _WELLBEING.id

ITEM_DOMAINS: Final[dict[str, str]] = {item.id: item.subscale for item in _ALLIANCE}
"""Which part of the alliance (after Bordin: bond, goals, tasks) each item speaks to."""

(ITEM_MIN,) = {item.low for item in _ALLIANCE}
(ITEM_MAX,) = {item.high for item in _ALLIANCE}
"""The alliance items share one scale (0–10)."""
TOTAL_MAX: Final = _required(_SCORING.total_max, "total_max")
CUTOFF: Final = _required(_SCORING.cutoff, "cutoff")
"""A total below this is a low alliance rating."""
ITEM_FLAG: Final = _required(_SCORING.item_flag, "item_flag")
"""Any item at or below this is flagged in the digest."""
RELIABLE_CHANGE: Final = float(_required(_SCORING.reliable_change, "reliable_change"))
"""A change in the total at least this large is more than measurement noise."""
BASELINE_MIN: Final = 2
BASELINE_MAX: Final = 4
"""A personal baseline is the mean of the first 2–4 answered check-ins."""

CHECKIN_EXPIRY_DAYS: Final = 4.0
"""An unanswered check-in counts as missed this long after it was sent, if no time was recorded."""
