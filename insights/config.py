"""Scoring constants of the default alliance check-in, kept here so `insights` stands on its own.

They mirror the defaults of Rapport's brief alliance check-in (see the project design): four 0–10
alliance items, a wellbeing item, a total out of 40 with the PCOMS-style cut-off of 36, any item at
7 or below flagged, a reliable change of 5 points, and a personal baseline taken from the first
2–4 answered check-ins. A practice that uses another instrument overrides them through
`insights.thresholds.Thresholds`.
"""

from __future__ import annotations

from typing import Final

ALLIANCE_ITEMS: Final[tuple[str, ...]] = ("heard", "goals", "approach", "overall")
"""The four alliance items, in the order they are asked and drawn."""

WELLBEING_ITEM: Final = "wellbeing"

ITEM_DOMAINS: Final[dict[str, str]] = {
    "heard": "bond",
    "goals": "goals",
    "approach": "approach",
    "overall": "overall",
}
"""Which part of the alliance (after Bordin: bond, goals, tasks) each item speaks to."""

ITEM_MIN: Final = 0
ITEM_MAX: Final = 10
TOTAL_MAX: Final = ITEM_MAX * len(ALLIANCE_ITEMS)
CUTOFF: Final = 36
"""A total below this is a low alliance rating."""
ITEM_FLAG: Final = 7
"""Any item at or below this is flagged in the digest."""
RELIABLE_CHANGE: Final = 5.0
"""A change in the total at least this large is more than measurement noise."""
BASELINE_MIN: Final = 2
BASELINE_MAX: Final = 4
"""A personal baseline is the mean of the first 2–4 answered check-ins."""

CHECKIN_EXPIRY_DAYS: Final = 4.0
"""An unanswered check-in counts as missed this long after it was sent, if no time was recorded."""
