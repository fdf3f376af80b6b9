"""The labelled crisis cases (tests/flows/crisis_cases/): recall and false fires per language.

Misses cost far more than false fires, so the bar is recall ≥ 0.95 with at most 10% of the near
misses firing. The figures are printed for every language, and a failure lists each miss and
false fire by id.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from flows.crisis import detect_crisis

CASES_DIR = Path(__file__).with_name("crisis_cases")
LANGUAGES = ("en", "es", "ru")
MIN_RECALL = 0.95
MAX_FALSE_FIRES = 0.10
MIN_POSITIVES, MIN_NEAR_MISSES = 80, 50


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    text: str


def load_cases(language: str) -> tuple[list[Case], list[Case]]:
    """The positives and the near misses of one language."""
    with (CASES_DIR / f"{language}.yaml").open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return tuple(  # type: ignore[return-value]
        [Case(str(c["id"]), str(c["kind"]), str(c["text"])) for c in data[key]]
        for key in ("positives", "near_misses")
    )


@dataclass(frozen=True)
class Score:
    language: str
    positives: int
    near_misses: int
    missed: list[str]
    fired: list[str]

    @property
    def recall(self) -> float:
        return 1 - len(self.missed) / self.positives

    @property
    def false_fires(self) -> float:
        return len(self.fired) / self.near_misses

    def __str__(self) -> str:
        return (
            f"{self.language}: recall {self.recall:.3f} ({self.positives - len(self.missed)}"
            f"/{self.positives}), false fires {self.false_fires:.1%} ({len(self.fired)}"
            f"/{self.near_misses}); missed: {', '.join(self.missed) or '-'}; fired: "
            f"{', '.join(self.fired) or '-'}"
        )


def score(language: str) -> Score:
    positives, near_misses = load_cases(language)
    return Score(
        language,
        len(positives),
        len(near_misses),
        missed=[c.id for c in positives if not detect_crisis(c.text)],
        fired=[c.id for c in near_misses if detect_crisis(c.text)],
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_labelled_set_is_large_enough_and_well_formed(language: str) -> None:
    positives, near_misses = load_cases(language)
    assert len(positives) >= MIN_POSITIVES and len(near_misses) >= MIN_NEAR_MISSES
    for field in ("id", "text"):
        values = Counter(getattr(c, field) for c in positives + near_misses)
        assert not [v for v, n in values.items() if n > 1], f"{field}s labelled twice"


@pytest.mark.parametrize("language", LANGUAGES)
def test_recall_and_false_fires(language: str) -> None:
    result = score(language)
    print(result)
    assert result.recall >= MIN_RECALL and result.false_fires <= MAX_FALSE_FIRES, str(result)
