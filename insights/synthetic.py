"""A seeded generator of realistic, labelled client histories in the backtest format.

    python -m insights.synthetic --clients 400 --seed 7 --out clients.jsonl

Each client follows one archetype over an 8–16 week window, with weekly sessions and check-ins on a
cadence in their own time zone ("every 3 days at 19:00", "weekdays mon,thu at 18:00", ...):

=====================  ======  ===========================================================
archetype              label   what happens
=====================  ======  ===========================================================
engaged                stays   high, slightly noisy ratings; quick replies; a few misses
noisy                  stays   the same level, but large swings from one check-in to the next
ceiling                stays   10/10 on everything, fast, never a comment
pothole                stays   one bad week: scores dip sharply once or twice, then recover
rupture_repair         stays   tension reported (often not talked through, sometimes with a
                               sharp comment), a dip, then repair over 1–2 check-ins
late_joiner            stays   joins in the last 1–3 weeks: too little data to judge
silent_withdrawal      drops   over the last 2–4 weeks replies slow down (up to ~10×), comments
                               thin out and shorten, misses and unfinished check-ins grow,
                               ratings drift down a little; then 5–14 days of (near) silence
                               before the first missed session
falling_alliance       drops   over the last 2–4 weeks ratings fall 8–16 points (mostly on one
                               domain; the ceiling at 10 hides part of it), tension and critical
                               comments appear, replies slow a little
sudden                 drops   no warning at all (moved away, money, a new job)
=====================  ======  ===========================================================

Noise that fools simple rules is there on purpose, because it is there in practice: item scores
carry a day-to-day mood shock and item noise and are clipped at 10 (so stayers regularly score
under 36 or one point lower than last time); reply delays are log-normal (median 20 minutes to 10
hours per client); every client misses some check-ins, one in seven has a busy spell of one or
two weeks with most check-ins missed and slower replies, some pause for a holiday; 2% of
check-ins report tension at random. A check-in expires after 4 days, at the next session or at
the next check-in, whichever comes first; a reply that would come later is a miss. Drop-outs
get the label `at` = the first session they do not attend; the bot keeps sending check-ins for
a while after that, and some drop-outs stop or block the bot around that date. Each client is
drawn from its own random stream (`seed`, index), so any slice of a data set can be generated in
parallel and is reproducible.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, Final, TextIO
from zoneinfo import ZoneInfo

import typer

from flows.cadence import EveryNDays, Weekdays, parse_cadence
from insights import config

START: Final = date(2026, 1, 5)
"""The Monday the observation window of every generated practice starts on."""

ARCHETYPES: Final[tuple[tuple[str, float, bool], ...]] = (
    ("engaged", 0.22, False),
    ("noisy", 0.12, False),
    ("ceiling", 0.08, False),
    ("pothole", 0.10, False),
    ("rupture_repair", 0.08, False),
    ("late_joiner", 0.06, False),
    ("silent_withdrawal", 0.15, True),
    ("falling_alliance", 0.14, True),
    ("sudden", 0.05, True),
)
"""(name, share of clients, drops out)."""

TIMEZONES: Final[tuple[str, ...]] = (
    "Europe/Berlin",
    "Europe/London",
    "Europe/Madrid",
    "Europe/Moscow",
    "America/New_York",
    "America/Mexico_City",
    "America/Los_Angeles",
    "Australia/Sydney",
)
_HEARD, _GOALS, _APPROACH, _OVERALL = config.ALLIANCE_ITEMS
"""The instrument's alliance items (bond, goals, approach, overall) by the part each plays here."""

CADENCES: Final[tuple[tuple[str, float], ...]] = (
    ("every 3 days at 19:00", 0.30),
    ("every 4 days at 20:00", 0.10),
    ("weekdays mon,thu at 18:00", 0.25),
    ("weekdays tue,fri at 19:30", 0.10),
    ("every 7 days at 18:30", 0.15),
    ("weekdays wed at 12:30", 0.10),
)

POSITIVE: Final = (
    "good session",
    "helpful, thanks",
    "felt understood today",
    "the breathing exercise helped",
    "we made progress on the work stuff",
    "useful homework this time",
    "hard but helpful",
    "I liked how we talked about my sister",
    "feeling a bit more hopeful",
    "good to finally say it out loud",
    "clearer about my goals now",
    "thanks for listening",
)
NEUTRAL: Final = (
    "ok",
    "busy week",
    "tired",
    "fine",
    "same as usual",
    "work was stressful",
    "slept badly this week",
    "nothing special",
    "it was ok I guess",
    "a bit rushed today",
)
CRITICAL: Final = (
    "felt rushed",
    "didn't feel heard today",
    "the homework doesn't fit my life",
    "we keep circling the same topic",
    "not sure what we are working on",
    "I found the session frustrating",
    "I didn't like the exercise",
    "not sure this is the right approach for me",
)
CONFRONTATIONAL: Final = (
    "this is a waste of time",
    "you don't listen to me",
    "honestly it feels pointless",
    "it's not helping",
    "I don't see the point anymore",
)
BAD_WEEK: Final = (
    "rough week",
    "hard week at work",
    "family stuff, very low",
    "really bad few days",
    "not my best week",
)
TERSE: Final = ("ok", "fine", "-", "k", "idk", "meh")

_EXPIRY: Final = timedelta(days=config.CHECKIN_EXPIRY_DAYS)


@dataclass
class _Client:
    """A client's latent traits: what the generator draws once and then lives by."""

    archetype: str
    dropout: bool
    level: float
    offsets: dict[str, float]
    item_noise: float
    mood_noise: float
    wellbeing: float
    delay_median_h: float
    delay_sigma: float
    miss_base: float
    comment_rate: float
    decline_points: float
    decline_focus: str


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    roll = rng.random() * sum(w for _, w in weighted)
    for name, weight in weighted:
        roll -= weight
        if roll <= 0:
            return name
    return weighted[-1][0]


def _traits(rng: random.Random, archetype: str, dropout: bool) -> _Client:
    level = min(9.9, max(7.0, rng.gauss(9.0 if dropout else 9.3, 0.5)))
    item_noise = rng.uniform(0.4, 0.9)
    mood_noise = rng.uniform(0.3, 0.8)
    if archetype == "noisy":
        item_noise = rng.uniform(1.0, 1.6)
        mood_noise = rng.uniform(0.8, 1.3)
    comment_rate = 0.03 if rng.random() < 0.2 else rng.uniform(0.15, 0.75)
    if archetype == "ceiling":
        comment_rate = 0.0
    decline = 0.0
    if archetype == "falling_alliance":
        decline = rng.uniform(8.0, 16.0)
    elif archetype == "silent_withdrawal":
        decline = rng.uniform(0.0, 4.0)
    return _Client(
        archetype=archetype,
        dropout=dropout,
        level=level,
        offsets={item: rng.gauss(0.0, 0.35) for item in config.ALLIANCE_ITEMS},
        item_noise=item_noise,
        mood_noise=mood_noise,
        wellbeing=rng.gauss(6.0, 1.2),
        delay_median_h=math.exp(rng.uniform(math.log(0.33), math.log(10.0))),
        delay_sigma=rng.uniform(0.7, 1.3),
        miss_base=rng.uniform(0.02, 0.12),
        comment_rate=comment_rate,
        decline_points=decline,
        decline_focus=rng.choice((_GOALS, _APPROACH, _HEARD)),
    )


def _local(day: date, at: time, zone: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _sends(spec: str, first: date, last: date, zone: tzinfo) -> list[datetime]:
    """Check-in times for a cadence spec (every N days, or weekdays) between two local dates."""
    (rule,) = parse_cadence(spec).rules
    if isinstance(rule, EveryNDays):
        days = range(0, (last - first).days + 1, rule.days)
        return [_local(first + timedelta(days=n), rule.at, zone) for n in days]
    if isinstance(rule, Weekdays):
        span = (first + timedelta(days=n) for n in range((last - first).days + 1))
        return [_local(day, rule.at, zone) for day in span if day.weekday() in rule.days]
    raise ValueError(f"the synthetic clients use calendar cadences, not {spec!r}")


def _iso(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).replace(microsecond=0).isoformat()


def generate_client(seed: int, index: int) -> dict[str, Any]:
    """One labelled client in the backtest format, the same for the same (seed, index)."""
    rng = random.Random(f"rapport-synthetic:{seed}:{index}")
    archetype = _pick(rng, tuple((name, share) for name, share, _ in ARCHETYPES))
    dropout = next(drops for name, _, drops in ARCHETYPES if name == archetype)
    client = _traits(rng, archetype, dropout)
    tz_name = rng.choice(TIMEZONES)
    zone = ZoneInfo(tz_name)
    cadence = _pick(rng, CADENCES)

    window_start = START + timedelta(days=rng.randrange(7))
    window_end = window_start + timedelta(weeks=rng.randint(8, 16))
    first_day = window_start
    if archetype == "late_joiner":
        first_day = window_end - timedelta(days=rng.randint(7, 21))

    session_day = first_day + timedelta(days=rng.randrange(5))
    while session_day.weekday() >= 5:
        session_day += timedelta(days=1)
    session_time = time(rng.randint(9, 17), rng.choice((0, 30)))
    sessions: list[datetime] = []
    day = session_day
    while day <= window_end:
        sessions.append(_local(day, session_time, zone))
        day += timedelta(weeks=1)

    end = _local(window_end, time(23, 59), zone)
    dropout_at: datetime | None = None
    onset: datetime | None = None
    quiet_from: datetime | None = None
    if dropout and len(sessions) > 5:
        candidates = [s for s in sessions[4:] if s <= end - timedelta(days=3)]
        if candidates:
            dropout_at = rng.choice(candidates)
            onset = dropout_at - timedelta(days=rng.uniform(14.0, 28.0))
            onset = max(onset, sessions[1] + timedelta(days=3))
            if archetype == "silent_withdrawal":
                quiet_from = dropout_at - timedelta(days=rng.uniform(5.0, 14.0))
                quiet_from = max(quiet_from, onset + timedelta(days=7))
    if dropout_at is None:
        client.dropout = False
        if archetype in ("silent_withdrawal", "falling_alliance", "sudden"):
            client.archetype = archetype = "engaged"
            client.decline_points = 0.0

    events: list[tuple[datetime, int, dict[str, Any]]] = []
    history_end = end
    if dropout_at is not None:
        history_end = min(end, dropout_at + timedelta(days=rng.uniform(3.0, 14.0)))
        roll = rng.random()
        if roll < 0.2:
            stop_at = dropout_at + timedelta(days=rng.uniform(-1.0, 3.0))
            events.append((stop_at, 9, {"type": "stopped"}))
            history_end = min(history_end, stop_at)
        elif roll < 0.32:
            block_at = dropout_at + timedelta(days=rng.uniform(-4.0, 5.0))
            events.append((block_at, 9, {"type": "blocked"}))
            history_end = min(history_end, block_at)

    pause: tuple[datetime, datetime] | None = None
    if not client.dropout and archetype != "late_joiner" and rng.random() < 0.08:
        pause_start = sessions[0] + timedelta(days=rng.uniform(14.0, 42.0))
        pause = (pause_start, pause_start + timedelta(days=rng.uniform(7.0, 14.0)))
        events.append((pause[0], 9, {"type": "paused"}))
        events.append((pause[1], 9, {"type": "resumed"}))
    busy: tuple[datetime, datetime] | None = None
    busy_chance = 0.0 if archetype in ("ceiling", "late_joiner") else 0.15
    if rng.random() < busy_chance:
        busy_start = sessions[0] + timedelta(days=rng.uniform(7.0, 60.0))
        busy = (busy_start, busy_start + timedelta(days=rng.uniform(6.0, 14.0)))
        if onset is not None and busy[1] > onset:
            busy = None
    episode = _episode(rng, archetype, sessions)

    attended = [
        s
        for s in sessions
        if (dropout_at is None or s < dropout_at)
        and s <= history_end
        and not (pause and pause[0] <= s < pause[1])
    ]
    for s in attended:
        events.append((s, 0, {"type": "session"}))

    sends = [
        s
        for s in _sends(
            cadence, sessions[0].astimezone(zone).date() + timedelta(days=1), window_end, zone
        )
        if s < history_end and not (pause and pause[0] <= s < pause[1])
    ]
    for number, sent in enumerate(sends, start=1):
        expiry = expires_at(sends, number, attended)
        checkin_id = f"k{number}"
        events.append((sent, 1, {"type": "checkin_sent", "id": checkin_id}))
        progress = _progress(sent, onset, quiet_from or dropout_at)
        gone = (dropout_at is not None and sent >= dropout_at) or (
            quiet_from is not None and sent >= quiet_from and rng.random() < 0.95
        )
        in_busy = busy is not None and busy[0] <= sent < busy[1]
        answer = None if gone else _respond(rng, client, sent, progress, in_busy, episode)
        if answer is not None and sent + answer[0] < expiry:
            delay, fields = answer
            fields = {"type": "answer", "checkin": checkin_id, **fields}
            events.append((sent + delay, 2, fields))
        elif expiry <= history_end:
            events.append((expiry, 3, {"type": "checkin_missed", "checkin": checkin_id}))

    return backtest_line(f"c{index}", tz_name, cadence, client.archetype, events, dropout_at)


def backtest_line(
    client: str,
    tz_name: str,
    cadence: str,
    archetype: str,
    events: list[tuple[datetime, int, dict[str, Any]]],
    dropout_at: datetime | None,
) -> dict[str, Any]:
    """One labelled client in the backtest format from (moment, tie order, event) triples."""
    zone = ZoneInfo(tz_name)
    events.sort(key=lambda e: (e[0], e[1]))
    label: dict[str, Any] = {"dropout": dropout_at is not None}
    if dropout_at is not None:
        label["at"] = _iso(dropout_at, zone)
    return {
        "client": client,
        "timezone": tz_name,
        "cadence": cadence,
        "archetype": archetype,
        "events": [{**body, "at": _iso(moment, zone)} for moment, _, body in events],
        "label": label,
    }


def expires_at(sends: list[datetime], number: int, sessions: list[datetime]) -> datetime:
    """When check-in `number` (counted from 1) expires: after 4 days, or at the next check-in
    or session, whichever is first."""
    sent = sends[number - 1]
    next_send = sends[number] if number < len(sends) else sent + _EXPIRY
    next_session = next((s for s in sessions if s > sent), sent + _EXPIRY)
    return min(sent + _EXPIRY, next_send, next_session)


def _episode(
    rng: random.Random, archetype: str, sessions: list[datetime]
) -> tuple[datetime, datetime] | None:
    """The bad week of a pothole or the rupture of a rupture-repair client."""
    if archetype not in ("pothole", "rupture_repair") or len(sessions) < 5:
        return None
    start = sessions[0] + timedelta(days=rng.uniform(14.0, 7.0 * (len(sessions) - 3)))
    return (start, start + timedelta(days=rng.uniform(5.0, 8.0)))


def _progress(sent: datetime, onset: datetime | None, dropout_at: datetime | None) -> float:
    """How far a drop-out's decline has gone at `sent`: 0 before the onset, 1 at drop-out."""
    if onset is None or dropout_at is None or sent <= onset:
        return 0.0
    span = (dropout_at - onset).total_seconds()
    return min(1.0, (sent - onset).total_seconds() / span) if span > 0 else 1.0


def _respond(
    rng: random.Random,
    c: _Client,
    sent: datetime,
    p: float,
    busy: bool,
    episode: tuple[datetime, datetime] | None,
) -> tuple[timedelta, dict[str, Any]] | None:
    """How the client answers one check-in: (delay, answer fields), or None for no answer."""
    kind = c.archetype
    miss = c.miss_base
    delay_factor = 1.0
    partial_chance = 0.02
    if kind == "silent_withdrawal":
        miss += (0.7 - miss) * p
        delay_factor = math.exp(math.log(10.0) * p)
        partial_chance += 0.25 * p
    elif kind == "falling_alliance":
        miss += 0.35 * p**2
        delay_factor = math.exp(math.log(2.5) * p)
        partial_chance += 0.08 * p
    if busy:
        miss = max(miss, 0.6)
        delay_factor *= 2.0
    if kind == "ceiling":
        miss = min(miss, 0.04)
    if rng.random() < miss:
        return None
    in_episode = episode is not None and episode[0] <= sent < episode[1]
    delay_h = c.delay_median_h * delay_factor * math.exp(rng.gauss(0.0, c.delay_sigma))
    scores, tension, talked = _scores(rng, c, p, in_episode)
    fields: dict[str, Any] = {"scores": scores}
    if rng.random() < partial_chance:
        reached = rng.randint(1, 3)
        fields["scores"] = {item: scores[item] for item in config.ALLIANCE_ITEMS[:reached]}
        fields["partial"] = True
        return timedelta(hours=delay_h), fields
    if tension is not None:
        fields["tension"] = tension
        if tension:
            fields["talked_through"] = talked
    comment = _comment(rng, c, p, in_episode, scores)
    if comment:
        fields["comment"] = comment
    return timedelta(hours=delay_h), fields


def _scores(
    rng: random.Random, c: _Client, p: float, in_episode: bool
) -> tuple[dict[str, int | None], bool | None, bool]:
    kind = c.archetype
    tension: bool | None = rng.random() < 0.02
    talked = rng.random() < 0.6
    shock = rng.gauss(0.0, c.mood_noise)
    dip: dict[str, float] = dict.fromkeys(config.ALLIANCE_ITEMS, 0.0)
    if kind == "falling_alliance" and p > 0:
        share = {item: 0.5 if item == c.decline_focus else 0.5 / 3 for item in dip}
        for item in dip:
            dip[item] = c.decline_points * share[item] * p
        if rng.random() < 0.35 * p:
            tension, talked = True, rng.random() < 0.3
    elif kind == "silent_withdrawal" and p > 0:
        for item in dip:
            dip[item] = c.decline_points / 4 * p
    elif in_episode and kind == "pothole":
        shock -= rng.uniform(2.0, 4.0)
        if rng.random() < 0.2:
            tension = True
    elif in_episode and kind == "rupture_repair":
        dip[_HEARD] = rng.uniform(2.5, 5.0)
        dip[_APPROACH] = rng.uniform(1.5, 4.0)
        tension, talked = True, rng.random() < 0.35
    scores: dict[str, int | None] = {}
    for item in config.ALLIANCE_ITEMS:
        if kind == "ceiling":
            value = 10.0 if rng.random() > 0.02 else 9.0
        else:
            value = c.level + c.offsets[item] + shock + rng.gauss(0.0, c.item_noise) - dip[item]
        scores[item] = None if rng.random() < 0.01 else int(min(10, max(0, round(value))))
    wellbeing = c.wellbeing + rng.gauss(0.0, 1.2) + min(0.0, shock) - 2.0 * p
    scores[config.WELLBEING_ITEM] = int(min(10, max(0, round(wellbeing))))
    return scores, tension, talked


def _comment(
    rng: random.Random, c: _Client, p: float, in_episode: bool, scores: dict[str, int | None]
) -> str | None:
    kind = c.archetype
    rate = c.comment_rate
    if kind == "silent_withdrawal":
        rate *= (1.0 - p) ** 2
    if in_episode:
        rate = max(rate, 0.6)
    if rng.random() >= rate:
        return None
    if kind == "silent_withdrawal" and rng.random() < p:
        return rng.choice(TERSE)
    if in_episode and kind == "pothole":
        return rng.choice(BAD_WEEK)
    if in_episode and kind == "rupture_repair":
        return rng.choice(CONFRONTATIONAL if rng.random() < 0.4 else CRITICAL)
    if kind == "falling_alliance" and rng.random() < p:
        return rng.choice(CONFRONTATIONAL if rng.random() < 0.3 else CRITICAL)
    total = sum(v for k, v in scores.items() if k in config.ALLIANCE_ITEMS and v is not None)
    if total < 34 and rng.random() < 0.3:
        return rng.choice(CRITICAL)
    return rng.choice(POSITIVE if rng.random() < 0.6 else NEUTRAL)


def generate(clients: int, seed: int, first: int = 0) -> Iterator[dict[str, Any]]:
    """Clients `first` .. `first + clients - 1` of the data set for `seed`."""
    for index in range(first, first + clients):
        yield generate_client(seed, index)


def write(clients: int, seed: int, out: TextIO, first: int = 0) -> int:
    """Write clients as JSON Lines; returns how many were written."""
    count = 0
    for record in generate(clients, seed, first):
        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count


command = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@command.command(help="Write labelled synthetic client histories in the backtest format.")
def synthetic(
    clients: Annotated[int, typer.Option(min=0, help="how many clients")] = 400,
    seed: Annotated[int, typer.Option(help="data set seed")] = 7,
    out: Annotated[Path | None, typer.Option(help="output file (default stdout)")] = None,
) -> None:
    if out is None:
        write(clients, seed, sys.stdout)
    else:
        with out.open("w", encoding="utf-8") as file:
            write(clients, seed, file)


if __name__ == "__main__":
    command(prog_name="python -m insights.synthetic")
