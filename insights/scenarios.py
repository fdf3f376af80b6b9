"""Labelled histories from generators that disagree with `insights.synthetic` on purpose.

The detector's thresholds were fitted to one generator, so a score on its data says little about
a practice whose clients leave differently. Each generator here makes other assumptions about how
clients who leave behave and, as important, about what clients who stay do that looks like it:

==========  ====================================================  ==============================
name        drop-outs                                             stayers that look alike
==========  ====================================================  ==============================
gradual     every item slides 6–14 points over 4–8 weeks, replies  slow dips of 2–6 points that
            stay prompt; misses only in the last week or two       recover; clients who start
                                                                   low and stay low; a narrow
                                                                   scale (5–8)
abrupt      good or ceiling scores to the end, then silence for    1–3 week holidays with no
            5–18 days before the first missed session; no          pause (every check-in missed),
            decline, no comments                                   then back as before
fading      replies slow 3–20×, comments shorten and stop,         everyone's replies slow and
            unfinished check-ins grow, scores flat; misses come    comments thin as the novelty
            in runs                                                wears off; misses in runs
styles      one domain falls (goals or approach) while the rest    acquiescent (9–10), extreme
            holds, or tension left unresolved, or a mix of slow    (0/10) and midpoint (5–7)
            replies and misses; one client in ten never rates one  responders; a life event (a
            item (no total)                                        bad week with misses and low
                                                                   wellbeing) then recovery
==========  ====================================================  ==============================

About 30% of clients drop out in every generator. A drop-out's label `at` is the first session
not attended; sessions are weekly (fortnightly for a quarter of `abrupt` clients). Check-ins
expire as in `insights.synthetic` (after 4 days, at the next check-in or session). Each client is
drawn from its own stream (generator, seed, index), so any slice is reproducible.

`GENERATORS` names every generator, `insights.synthetic` included as `project`; `TUNING` and
`HELD_OUT` are the split the thresholds and the learned model are allowed to see and not.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from insights import config, synthetic
from insights.synthetic import _local, _sends, backtest_line, expires_at

_ITEMS: Final = config.ALLIANCE_ITEMS
_HEARD, _GOALS, _APPROACH, _OVERALL = _ITEMS
_EXPIRY: Final = timedelta(days=config.CHECKIN_EXPIRY_DAYS)
DROPOUT_SHARE: Final = 0.3

Answer = tuple[timedelta, dict[str, Any]] | None
"""A reply: its delay after sending and the answer's fields; None for no reply."""


@dataclass
class Course:
    """The calendar of one client's course: sessions, check-ins, the drop-out if any."""

    rng: random.Random
    zone: tzinfo
    tz_name: str
    cadence: str
    sessions: list[datetime]
    end: datetime
    dropout_at: datetime | None = None
    onset: datetime | None = None
    quiet_from: datetime | None = None
    away: list[tuple[datetime, datetime]] = field(default_factory=list)
    """Spells with no reply and no session (holidays without a pause)."""
    events: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)

    def progress(self, sent: datetime) -> float:
        """How far a drop-out's decline has gone at `sent`: 0 before the onset, 1 at the end."""
        until = self.quiet_from or self.dropout_at
        if self.onset is None or until is None or sent <= self.onset:
            return 0.0
        span = (until - self.onset).total_seconds()
        return min(1.0, (sent - self.onset).total_seconds() / span) if span > 0 else 1.0

    def is_away(self, moment: datetime) -> bool:
        return any(start <= moment < stop for start, stop in self.away)


def _course(
    rng: random.Random,
    dropout: bool,
    onset_days: tuple[float, float],
    quiet_days: tuple[float, float] = (0.0, 0.0),
    fortnightly: float = 0.0,
) -> Course:
    tz_name = rng.choice(synthetic.TIMEZONES)
    zone = ZoneInfo(tz_name)
    cadence = synthetic._pick(rng, synthetic.CADENCES)
    start = synthetic.START + timedelta(days=rng.randrange(7))
    window_end = start + timedelta(weeks=rng.randint(8, 16))
    day = start + timedelta(days=rng.randrange(5))
    while day.weekday() >= 5:
        day += timedelta(days=1)
    at = time(rng.randint(9, 17), rng.choice((0, 30)))
    step = timedelta(weeks=2 if rng.random() < fortnightly else 1)
    sessions: list[datetime] = []
    while day <= window_end:
        sessions.append(_local(day, at, zone))
        day += step
    end = _local(window_end, time(23, 59), zone)
    course = Course(rng, zone, tz_name, cadence, sessions, end)
    candidates = [s for s in sessions[3:] if s <= end - timedelta(days=3)]
    if dropout and len(sessions) > 4 and candidates:
        course.dropout_at = dropout_at = rng.choice(candidates)
        floor = sessions[1] + timedelta(days=3)
        course.onset = max(floor, dropout_at - timedelta(days=rng.uniform(*onset_days)))
        if quiet_days[1] > 0:
            quiet = dropout_at - timedelta(days=rng.uniform(*quiet_days))
            course.quiet_from = max(quiet, course.onset)
    return course


def _emit(
    course: Course, client: str, archetype: str, respond: Callable[[datetime, float], Answer]
) -> dict[str, Any]:
    """Sessions, check-ins and their answers or misses, the ending; one backtest line."""
    rng, zone, dropout_at = course.rng, course.zone, course.dropout_at
    events = course.events
    history_end = course.end
    if dropout_at is not None:
        history_end = min(history_end, dropout_at + timedelta(days=rng.uniform(3.0, 14.0)))
        roll = rng.random()
        if roll < 0.25:
            kind = "stopped" if roll < 0.15 else "blocked"
            ending = dropout_at + timedelta(days=rng.uniform(-2.0, 4.0))
            events.append((ending, 9, {"type": kind}))
            history_end = min(history_end, ending)
    attended = [
        s
        for s in course.sessions
        if (dropout_at is None or s < dropout_at) and s <= history_end and not course.is_away(s)
    ]
    events.extend((s, 0, {"type": "session"}) for s in attended)
    first = course.sessions[0].astimezone(zone).date() + timedelta(days=1)
    last = course.end.astimezone(zone).date()
    sends = [s for s in _sends(course.cadence, first, last, zone) if s < history_end]
    for number, sent in enumerate(sends, start=1):
        expiry = expires_at(sends, number, attended)
        checkin = f"k{number}"
        events.append((sent, 1, {"type": "checkin_sent", "id": checkin}))
        gone = dropout_at is not None and sent >= dropout_at
        quiet = course.quiet_from is not None and sent >= course.quiet_from
        silent = gone or course.is_away(sent) or (quiet and rng.random() < 0.95)
        answer = None if silent else respond(sent, course.progress(sent))
        if answer is not None and sent + answer[0] < expiry:
            delay, fields = answer
            events.append((sent + delay, 2, {"type": "answer", "checkin": checkin, **fields}))
        elif expiry <= history_end:
            events.append((expiry, 3, {"type": "checkin_missed", "checkin": checkin}))
    return backtest_line(client, course.tz_name, course.cadence, archetype, events, dropout_at)


def _start(name: str, seed: int, index: int, **shape: Any) -> tuple[random.Random, Course, bool]:
    """The client's own random stream, its course, and whether it drops out."""
    rng = random.Random(f"rapport-{name}:{seed}:{index}")
    wants = rng.random() < DROPOUT_SHARE
    course = _course(rng, wants, **shape)
    return rng, course, course.dropout_at is not None


def _clip(value: float, low: int = 0, high: int = 10) -> int:
    return int(min(high, max(low, round(value))))


def _scores(
    rng: random.Random, means: dict[str, float], noise: float, wellbeing: float
) -> dict[str, int | None]:
    shock = rng.gauss(0.0, noise / 2)
    scores: dict[str, int | None] = {
        item: _clip(means[item] + shock + rng.gauss(0.0, noise)) for item in _ITEMS
    }
    scores[config.WELLBEING_ITEM] = _clip(wellbeing + rng.gauss(0.0, 1.0) + min(0.0, shock))
    return scores


def _delay(rng: random.Random, median_h: float, sigma: float) -> timedelta:
    return timedelta(hours=median_h * math.exp(rng.gauss(0.0, sigma)))


def _comment(rng: random.Random, rate: float, pool: tuple[str, ...]) -> dict[str, str]:
    return {"comment": rng.choice(pool)} if rng.random() < rate else {}


def gradual(seed: int, index: int) -> dict[str, Any]:
    """Slow, steady decline of every item; prompt replies until the last week or two."""
    rng, course, dropout = _start("gradual", seed, index, onset_days=(28.0, 56.0))
    kind = rng.random()
    archetype = "decline" if dropout else "steady"
    level = rng.uniform(7.5, 9.6)
    noise = rng.uniform(0.4, 1.0)
    if not dropout and kind < 0.25:
        archetype, level = "low_steady", rng.uniform(5.0, 7.0)
    elif not dropout and kind < 0.35:
        archetype, level, noise = "narrow", rng.uniform(6.0, 7.5), 0.5
    fall = rng.uniform(1.5, 3.5) if dropout else 0.0
    dip_at = course.sessions[0] + timedelta(days=rng.uniform(14.0, 50.0))
    dip = rng.uniform(0.5, 1.5) if not dropout and rng.random() < 0.4 else 0.0
    offsets = {item: rng.gauss(0.0, 0.3) for item in _ITEMS}
    median_h = math.exp(rng.uniform(math.log(0.5), math.log(8.0)))
    miss_base = rng.uniform(0.03, 0.15)
    comment_rate = rng.uniform(0.0, 0.5)
    wellbeing = rng.gauss(5.5, 1.2)

    def respond(sent: datetime, p: float) -> Answer:
        late = max(0.0, p - 0.75) * 4  # the last quarter of the decline
        if rng.random() < miss_base + 0.5 * late:
            return None
        weeks = (sent - dip_at).total_seconds() / (7 * 86400)
        dent = dip * math.exp(-(weeks**2) / 2) if weeks > -2 else 0.0
        means = {item: level + offsets[item] - fall * p - dent for item in _ITEMS}
        scores = _scores(rng, means, noise, wellbeing - 1.5 * p)
        if archetype == "narrow":
            scores.update({i: min(8, max(5, v or 0)) for i, v in scores.items() if i in _ITEMS})
        pool = synthetic.CRITICAL if p > 0.5 and rng.random() < 0.5 else synthetic.NEUTRAL
        return _delay(rng, median_h, 0.9), {"scores": scores, **_comment(rng, comment_rate, pool)}

    return _emit(course, f"gradual-{index}", archetype, respond)


def abrupt(seed: int, index: int) -> dict[str, Any]:
    """Good or perfect scores, then silence; stayers go silent on holiday and come back."""
    rng, course, dropout = _start(
        "abrupt", seed, index, onset_days=(5.0, 18.0), quiet_days=(5.0, 18.0), fortnightly=0.25
    )
    ceiling = rng.random() < 0.35
    archetype = ("ceiling_gone" if ceiling else "silent") if dropout else "holiday"
    if not dropout:
        if rng.random() < 0.35:
            start = course.sessions[0] + timedelta(days=rng.uniform(10.0, 60.0))
            course.away.append((start, start + timedelta(days=rng.uniform(7.0, 21.0))))
        else:
            archetype = "ceiling" if ceiling else "engaged"
    level = rng.uniform(8.3, 9.8)
    median_h = math.exp(rng.uniform(math.log(0.3), math.log(6.0)))
    miss_base = rng.uniform(0.02, 0.10)
    comment_rate = 0.0 if ceiling else rng.uniform(0.05, 0.6)
    wellbeing = rng.gauss(6.5, 1.0)

    def respond(sent: datetime, p: float) -> Answer:
        if rng.random() < miss_base:
            return None
        if ceiling:
            scores: dict[str, int | None] = dict.fromkeys(_ITEMS, 10)
            scores[config.WELLBEING_ITEM] = _clip(wellbeing + rng.gauss(0.0, 1.0))
        else:
            scores = _scores(rng, dict.fromkeys(_ITEMS, level), 0.5, wellbeing)
        extra = _comment(rng, comment_rate, synthetic.POSITIVE)
        return _delay(rng, median_h, 0.8), {"scores": scores, **extra}

    return _emit(course, f"abrupt-{index}", archetype, respond)


def fading(seed: int, index: int) -> dict[str, Any]:
    """Replies slow and shorten before a drop-out; everyone slows a little as novelty wears off."""
    rng, course, dropout = _start(
        "fading", seed, index, onset_days=(14.0, 35.0), quiet_days=(3.0, 10.0)
    )
    archetype = "fading" if dropout else "habituating"
    level = rng.uniform(7.5, 9.5)
    median_h = math.exp(rng.uniform(math.log(0.3), math.log(6.0)))
    slow_to = rng.uniform(3.0, 20.0)
    wear = rng.uniform(1.0, 2.5)  # how much everyone slows over the course
    miss_base = rng.uniform(0.03, 0.12)
    run = rng.uniform(0.2, 0.5)  # a miss makes the next one likelier
    comment_rate = rng.uniform(0.2, 0.8)
    wellbeing = rng.gauss(6.0, 1.2)
    first = course.sessions[0]
    last_missed = [False]

    def respond(sent: datetime, p: float) -> Answer:
        age = min(1.0, (sent - first).total_seconds() / (84 * 86400))
        miss = miss_base + 0.45 * p + (run if last_missed[0] else 0.0)
        last_missed[0] = rng.random() < miss
        if last_missed[0]:
            return None
        slow = wear**age * slow_to**p
        scores = _scores(rng, dict.fromkeys(_ITEMS, level - 0.5 * p), 0.6, wellbeing - p)
        fields: dict[str, Any] = {"scores": scores}
        if rng.random() < 0.03 + 0.3 * p:
            fields["scores"] = {i: scores[i] for i in _ITEMS[: rng.randint(1, 3)]}
            fields["partial"] = True
        else:
            rate = comment_rate * (1.0 - 0.5 * age) * (1.0 - p) ** 2
            pool = synthetic.TERSE if rng.random() < p else synthetic.POSITIVE
            fields.update(_comment(rng, rate, pool))
        return _delay(rng, median_h * slow, 0.9), fields

    return _emit(course, f"fading-{index}", archetype, respond)


_STYLES: Final = (("acquiescent", 0.3), ("midpoint", 0.2), ("extreme", 0.1), ("plain", 0.4))


def styles(seed: int, index: int) -> dict[str, Any]:
    """Different response styles and life events; drop-outs by one domain, tension or a mix."""
    rng, course, dropout = _start("styles", seed, index, onset_days=(14.0, 35.0))
    style = synthetic._pick(rng, _STYLES)
    level = {"acquiescent": 9.5, "midpoint": 6.0, "extreme": 9.0, "plain": 8.3}[style]
    level += rng.gauss(0.0, 0.4)
    mode = rng.choice(("domain", "tension", "mixed")) if dropout else "life_event"
    focus = rng.choice((_GOALS, _APPROACH))
    skips = _OVERALL if rng.random() < 0.1 else None
    median_h = math.exp(rng.uniform(math.log(0.5), math.log(12.0)))
    miss_base = rng.uniform(0.03, 0.15)
    comment_rate = rng.uniform(0.0, 0.6)
    wellbeing = rng.gauss(5.5, 1.5)
    event_at = course.sessions[0] + timedelta(days=rng.uniform(10.0, 60.0))
    has_event = not dropout and rng.random() < 0.4
    archetype = f"{style}_{mode}" if dropout or has_event else style

    def respond(sent: datetime, p: float) -> Answer:
        weeks = (sent - event_at).total_seconds() / (7 * 86400)
        hit = has_event and 0.0 <= weeks < 1.5
        miss = miss_base + (0.5 if hit else 0.0)
        if mode == "mixed":
            miss += 0.4 * p
        if rng.random() < miss:
            return None
        means = dict.fromkeys(_ITEMS, level)
        if mode == "domain":
            means[focus] -= 5.0 * p
        if mode in ("tension", "mixed"):
            means = {i: v - 1.5 * p for i, v in means.items()}
        scores = _scores(rng, means, 0.7, wellbeing - (3.0 if hit else 0.0))
        if style == "extreme":
            scores.update({i: 10 if (v or 0) >= 6 else 0 for i, v in scores.items() if i in _ITEMS})
        if hit:
            scores.update({i: _clip((v or 0) - 2) for i, v in scores.items() if i in _ITEMS})
        if skips:
            scores[skips] = None
        fields: dict[str, Any] = {"scores": scores}
        if mode == "tension" and rng.random() < 0.6 * p:
            fields.update({"tension": True, "talked_through": False})
        pool: tuple[str, ...] = synthetic.BAD_WEEK if hit else synthetic.POSITIVE
        if mode == "domain" and p > 0.3:
            pool = synthetic.CRITICAL
        slow = 4.0**p if mode == "mixed" else 1.0
        delay = _delay(rng, median_h * slow * (2.0 if hit else 1.0), 1.0)
        return delay, {**fields, **_comment(rng, comment_rate, pool)}

    return _emit(course, f"styles-{index}", archetype, respond)


Generator = Callable[[int, int], dict[str, Any]]

GENERATORS: Final[dict[str, Generator]] = {
    "project": synthetic.generate_client,
    "gradual": gradual,
    "abrupt": abrupt,
    "fading": fading,
    "styles": styles,
}
TUNING: Final = ("project", "fading")
"""What thresholds and the learned model may be fitted to."""
HELD_OUT: Final = ("gradual", "abrupt", "styles")
"""What they are judged on, and never fitted to."""


def generate(name: str, clients: int, seed: int, first: int = 0) -> Iterator[dict[str, Any]]:
    """Clients `first` .. `first + clients - 1` of generator `name` for `seed`."""
    make = GENERATORS[name]
    for index in range(first, first + clients):
        yield make(seed, index)
