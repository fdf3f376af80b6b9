"""The demo's cast: one therapist and five clients, each with a story told through their answers.

A script says, for the k-th check-in of n, how long the client takes to reply and what they
answer, or None when they let it pass. Stories are laid out as fractions of the course so that a
shorter demo still shows each of them. The people and their words are invented; in the
transcript clients appear only by the alias the therapist would see.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

ENGAGED = "engaged"
WITHDRAWING = "withdrawing"
FALLING = "falling"
RUPTURE = "rupture"
CRISIS = "crisis"

CRISIS_COMMENT = "I don't want to live anymore."


@dataclass(frozen=True)
class Reply:
    """One client's answer to one check-in: when, the five scores, the probe, a comment.

    `stop_after` makes it an abandoned check-in: the client answers that many items and leaves.
    """

    delay: timedelta
    heard: int
    goals: int
    approach: int
    overall: int
    wellbeing: int
    tension: bool = False
    talked: bool | None = None
    comment: str | None = None
    stop_after: int | None = None

    @property
    def alliance(self) -> tuple[int, int, int, int]:
        return (self.heard, self.goals, self.approach, self.overall)

    def score_of(self, item: str) -> int:
        return int(getattr(self, item))


Script = Callable[[int, int, random.Random], Reply | None]


@dataclass(frozen=True)
class Persona:
    story: str
    title: str  # what the story is, for the summary
    name: str  # invented; stored encrypted like any client's name, never printed
    alias: str
    session_hour: int  # Mondays, the therapist's local time
    script: Script = field(repr=False)
    zone: str | None = "Europe/Berlin"  # set by the practice; None: the client picks a button
    zone_button: str = "Europe/London"
    types: bool = False  # types numbers and yes/no instead of tapping the buttons


def _hours(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=round(rng.uniform(low, high) * 60))


def _clamp(value: int, low: int = 0, high: int = 10) -> int:
    return max(low, min(high, value))


# --- 1. steadily engaged ----------------------------------------------------------------------

_ENGAGED_COMMENTS = (
    "Good session, the breathing exercise helps.",
    "Tried the journaling twice this week.",
    "Felt understood today.",
    "Work was calmer, thanks.",
    "Looking forward to Monday.",
)


def engaged(k: int, n: int, rng: random.Random) -> Reply:
    """Answers within a few hours, 8-10 throughout, a short comment every third time."""
    heard, goals, approach, overall = (rng.choice((9, 10, 10)) for _ in range(4))
    goals = _clamp(goals - rng.choice((0, 0, 1, 2)))
    while heard + goals + approach + overall < 37:
        goals = _clamp(goals + 1)
    comment = _ENGAGED_COMMENTS[(k // 3) % len(_ENGAGED_COMMENTS)] if k % 3 == 0 else None
    return Reply(
        delay=_hours(rng, 0.5, 3.0),
        heard=heard,
        goals=goals,
        approach=approach,
        overall=overall,
        wellbeing=rng.choice((6, 7, 7, 8)),
        comment=comment,
    )


# --- 2. silently withdrawing ------------------------------------------------------------------

_WITHDRAWING_COMMENTS = ("Helpful to talk about the job situation.", "A lot to think about.")


def withdrawal_phases(n: int) -> tuple[int, int]:
    """(first slow check-in, first ignored check-in) for a course of n check-ins."""
    slow = max(2, round(n * 0.34))
    quiet = max(slow + 1, round(n * 0.5))
    return slow, quiet


def withdrawing(k: int, n: int, rng: random.Random) -> Reply | None:
    """Polite scores all along; comments stop, replies slow to a day and more, then silence."""
    slow, quiet = withdrawal_phases(n)
    if k >= quiet:
        return None
    overall = rng.choice((9, 10))
    if k < slow:
        comment = _WITHDRAWING_COMMENTS[k] if k < len(_WITHDRAWING_COMMENTS) else None
        return Reply(_hours(rng, 1.0, 2.5), 9, 9, 9, overall, 6, comment=comment)
    if k == quiet - 1 and quiet - slow >= 2:  # only after the reminder, and gives up halfway
        return Reply(_hours(rng, 49.0, 50.0), 9, 9, 9, overall, 5, stop_after=3)
    return Reply(_hours(rng, 25.0, 30.0), 9, 9, 9, overall, 5)


# --- 3. falling alliance ----------------------------------------------------------------------

CRITICAL_COMMENT = (
    "Honestly I don't see the point of these exercises, it feels like we go round in circles."
)


def falling_start(n: int) -> int:
    return max(2, round(n * 0.25))


def falling(k: int, n: int, rng: random.Random) -> Reply:
    """Goals and approach slip first, then the rest; a critical comment on the way down."""
    start = falling_start(n)
    d = max(0, k - start + 1)
    slide = min(4.5, 0.9 * d)
    comment = None
    if k == 0:
        comment = "I like that we set goals in the first session."
    elif d == 2:
        comment = "Not sure we are working on the right things."
    elif d == 3:
        comment = CRITICAL_COMMENT
    return Reply(
        delay=_hours(rng, 1.0, 5.0),
        heard=_clamp(round(9 - max(0.0, slide - 2))),
        goals=_clamp(round(9 - 1.3 * slide)),
        approach=_clamp(round(10 - 1.4 * slide)),
        overall=_clamp(round(9 - 0.8 * slide)),
        wellbeing=_clamp(round(6 - slide / 2)),
        comment=comment,
    )


# --- 4. a rupture, reported and repaired --------------------------------------------------------


def rupture_at(n: int) -> int:
    return max(3, round(n * 0.42))


def rupture(k: int, n: int, rng: random.Random) -> Reply:
    """Steady, then tension not talked through with a dip, then repaired and recovering."""
    at = rupture_at(n)
    delay = _hours(rng, 1.0, 6.0)
    if k == at:
        return Reply(
            delay=delay, heard=6, goals=7, approach=6, overall=6, wellbeing=4,
            tension=True, talked=False,
            comment="I felt judged when we talked about my mother.",
        )  # fmt: skip
    if k == at + 1:
        return Reply(
            delay=delay, heard=8, goals=8, approach=8, overall=8, wellbeing=6,
            tension=True, talked=True,
            comment="We talked it through on Monday. That helped a lot.",
        )  # fmt: skip
    lift = 1 if k > at + 2 else 0
    return Reply(
        delay=delay,
        heard=9,
        goals=9,
        approach=_clamp(9 + lift * rng.choice((0, 1))),
        overall=9 + lift,
        wellbeing=6 + lift,
    )


# --- 5. a crisis ------------------------------------------------------------------------------

CRISIS_CHECKIN = 3  # the Friday of the second week
_RECOVERY_COMMENTS = (
    "A bit better this week.",
    "The safety plan is on my fridge.",
    "Slept better, went for walks.",
)


def crisis(k: int, n: int, rng: random.Random) -> Reply:
    """A good alliance and a hard time; one late Friday evening a comment that needs help."""
    if k == CRISIS_CHECKIN:  # the check-in opens at 18:00; the answer comes just after 23:00
        return Reply(
            delay=timedelta(hours=5, minutes=17), heard=9, goals=9, approach=9, overall=9,
            wellbeing=1, comment=CRISIS_COMMENT,
        )  # fmt: skip
    wellbeing = 3 if k < CRISIS_CHECKIN else min(6, 2 + k - CRISIS_CHECKIN)
    comment = None
    if k == 1:
        comment = "Hard week, but the session helped."
    elif k == CRISIS_CHECKIN + 1:
        comment = "Thank you for calling me after my message."
    elif k > CRISIS_CHECKIN + 1 and k % 2 == 0:
        comment = _RECOVERY_COMMENTS[(k // 2) % len(_RECOVERY_COMMENTS)]
    return Reply(
        delay=_hours(rng, 2.0, 4.0),
        heard=9,
        goals=9,
        approach=9,
        overall=rng.choice((9, 10)),
        wellbeing=wellbeing,
        comment=comment,
    )


THERAPIST_NAME = "Dr. Ines Vogel"
THERAPIST_ZONE = "Europe/Berlin"

CAST: tuple[Persona, ...] = (
    Persona(ENGAGED, "steadily engaged", "Mara Sommer", "M.S.", 13, engaged, types=True),
    Persona(WITHDRAWING, "silently withdrawing", "Tobias Brandt", "T.B.", 15, withdrawing),
    Persona(FALLING, "falling alliance", "Lena Voss", "L.V.", 16, falling, zone=None, types=True),
    Persona(RUPTURE, "rupture reported, then repaired", "Jonas Keller", "J.K.", 17, rupture),
    Persona(CRISIS, "crisis message in week 2", "Anna Reiter", "A.R.", 11, crisis, types=True),
)
