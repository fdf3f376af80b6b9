"""Scheduling end to end: the real bot against the sandbox, a SQLite file and a manual clock.

Time moves the way a heartbeat every few seconds sees it: `run_until` jumps the clock to each
instant something falls due (a check-in, a nudge, an expiry, a digest, the end of a pause), runs a
heartbeat pass there and lets the outbox drain, so every message carries the instant it was due.
The tests count what the sandbox user received (each message's date, read in the client's zone)
and what the database holds.

Where a test is about *when* check-ins open, the practice's expiry is shortened below the gap
between two check-ins: an unanswered check-in that is still open when the next one is due keeps
the next one from opening, and these tests count the schedule, not that rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Select, select

from app import admin, heartbeat
from app.clock import ManualClock
from flows.checkin import INTRO_KEYS
from flows.i18n import t
from storage.models import Answer, Checkin, Client, ClientEvent, TherapySession
from tests.conftest import TEST_KEY
from tests.e2e.harness import (
    Person,
    World,
    button_data,
    following,
    join_client,
    next_with_buttons,
    split_question,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
KOLKATA = "Asia/Kolkata"
CITY = {BERLIN: "Berlin", NEW_YORK: "New York", KOLKATA: "Kolkata"}
ZONES = (BERLIN, NEW_YORK, KOLKATA)

MONDAY = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
"""A winter Monday afternoon: 15:00 in Berlin, 09:00 in New York, 19:30 in Kolkata."""

QUIET_START, QUIET_END = time(21, 0), time(9, 0)  # the practice default

INTRO = t("en", "checkin.intro").split("{")[0]
INTROS = tuple(t("en", key).split("{")[0] for key in INTRO_KEYS.values())
"""Every check-in opens with one of these, whichever moment it asks about (`flows.moments`)."""
NUDGE = t("en", "checkin.nudge")
THANKS = t("en", "checkin.thanks").split("{")[0]
ZONE_SAVED = t("en", "timezone.saved").split("{")[0]

MakeWorld = Callable[..., Awaitable[World]]


# --- the world and its people ---------------------------------------------------------------


@pytest.fixture
async def make_world(sqlite_url: str) -> AsyncIterator[MakeWorld]:
    """A world whose clock starts at a chosen instant, with practice settings applied."""
    worlds: list[World] = []

    async def make(start: datetime, **practice: str) -> World:
        world = await World.start(sqlite_url, ManualClock(start), TEST_KEY)
        worlds.append(world)
        if practice:
            await admin.practice_set(world.rt, **practice)
        return world

    yield make
    for world in worlds:
        await world.stop()


def wall(instant: datetime, zone: str) -> datetime:
    """The local wall time (naive) of an instant in `zone`."""
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def sent_at(message: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(message["date"], UTC)


def aware(local: datetime, zone: str) -> datetime:
    """A local wall time in `zone` as a UTC instant."""
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def is_quiet(local: datetime) -> bool:
    return local.time() >= QUIET_START or local.time() < QUIET_END


@dataclass
class Member:
    """A client who finished onboarding; `onboarded` is how many messages that took."""

    person: Person
    zone: str
    onboarded: int

    @property
    def id(self) -> int:
        return self.person.id

    def later_messages(self) -> list[dict[str, Any]]:
        """Everything the bot sent after onboarding, in order."""
        return self.person.user.inbox[self.onboarded :]

    def received(self, prefix: str) -> list[datetime]:
        """Local wall times of the later messages whose text starts with `prefix`."""
        return [
            wall(sent_at(m), self.zone)
            for m in self.later_messages()
            if (m.get("text") or "").startswith(prefix)
        ]

    def checkins_received(self) -> list[datetime]:
        return [
            wall(sent_at(m), self.zone)
            for m in self.later_messages()
            if (m.get("text") or "").startswith(INTROS)
        ]


async def unjoined_therapist(world: World) -> Person:
    """A therapist who never opened the bot: clients can be added, and nothing (no digest with
    its chart) is sent to them, which keeps tests about client-side timing lean."""
    data = await admin.add_therapist(world.rt, "Dana Lee", BERLIN)
    return Person(data["id"], world.sandbox.user(first_name="Dana"))


async def join(world: World, therapist: Person, name: str, zone: str, **kwargs: Any) -> Member:
    person = await join_client(world, therapist, name, zone=CITY[zone], **kwargs)
    async with world.rt.sessions() as s:
        client = await s.get(Client, person.id)
        assert client is not None and client.timezone == zone
    return Member(person, zone, len(person.user.inbox))


# --- time -----------------------------------------------------------------------------------


def _earliest(column: Any, *conditions: Any) -> Select[Any]:
    return select(column).where(column.is_not(None), *conditions).order_by(column).limit(1)


async def next_due(world: World) -> datetime | None:
    """The earliest instant at which the heartbeat has something to do."""
    queries = [
        _earliest(Client.next_checkin_at, Client.status == "active"),
        _earliest(Client.paused_until, Client.status == "paused"),
        _earliest(Checkin.nudge_at, Checkin.status == "open", Checkin.nudged_at.is_(None)),
        _earliest(Checkin.expires_at, Checkin.status == "open"),
        _earliest(
            TherapySession.digest_at,
            TherapySession.digest_sent_at.is_(None),
            TherapySession.cancelled.is_(False),
        ),
    ]
    async with world.rt.sessions() as s:
        found = [await s.scalar(query) for query in queries]
    instants = [x for x in found if x is not None]
    return min(instants) if instants else None


async def run_until(world: World, end: datetime) -> None:
    """Move the clock to `end`, stopping at every due instant for a heartbeat pass and a drain.

    Something still due after three passes at the same instant was not handled: that fails.
    """
    passes_here = 0
    while True:
        now = world.clock.now()
        due = await next_due(world)
        if due is not None and due <= now:
            passes_here += 1
            if passes_here > 3:
                raise AssertionError(f"an item due at {due} is still due at {now}")
        else:
            target = end if due is None or due > end else due
            if target <= now:
                return
            world.clock.set(target)
            passes_here = 1
        await heartbeat.run_pass(world.rt)
        await world.drain()


# --- what a client does ---------------------------------------------------------------------


def checkin_buttons(message: dict[str, Any]) -> list[str]:
    return [d for d in button_data(message) if d.startswith("c:")]


def open_question(member: Member) -> dict[str, Any]:
    """The latest message in the chat that asks a check-in question."""
    return next(m for m in reversed(member.person.user.inbox) if checkin_buttons(m))


async def answer_checkin(
    world: World, member: Member, *, value: int = 8, items: int | None = None
) -> list[str]:
    """Tap through the open check-in (`value` on scales, "no" to yes/no, skip the comment);
    with `items`, stop after that many taps as a client who drifts off would. Returns what the
    client read: each question asked (asked in place, a question replaces the one before in the
    same message) and what followed the last tap."""
    user = member.person.user
    question = open_question(member)
    read = [split_question(str(question.get("text", "")))[1]]
    taps = 0
    while True:
        data = checkin_buttons(question)
        prefix = data[0].rsplit(":", 1)[0]
        choice = next(
            (f"{prefix}:{v}" for v in ("s", str(value), "0") if f"{prefix}:{v}" in data), data[0]
        )
        user.skip_to_end()
        await user.tap(question, choice)
        taps += 1
        # Wait for the reply, so the answer is stored at this instant of the manual clock.
        question = await following(user, question)
        read.append(str(question.get("text", "")))
        if not checkin_buttons(question) or (items is not None and taps >= items):
            break
    await world.drain()
    return read


async def change_zone(world: World, member: Member, zone: str) -> None:
    """/timezone, type the city, confirm."""
    user = member.person.user
    user.skip_to_end()
    await user.send("/timezone")
    await next_with_buttons(user)
    await user.send(CITY[zone])
    confirm = await next_with_buttons(user)
    await user.tap(confirm, "d:tzok:y")
    await user.next_message(predicate=lambda m: m["text"].startswith(ZONE_SAVED))
    await world.drain()
    member.zone = zone


# --- the database ---------------------------------------------------------------------------


async def checkins_of(world: World, client_id: int) -> list[Checkin]:
    async with world.rt.sessions() as s:
        return list(
            await s.scalars(
                select(Checkin).where(Checkin.client_id == client_id).order_by(Checkin.opened_at)
            )
        )


async def opened_locally(world: World, member: Member) -> list[datetime]:
    return [wall(c.opened_at, member.zone) for c in await checkins_of(world, member.id)]


async def client_row(world: World, client_id: int) -> Client:
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None
        return client


async def answers_of(world: World, checkin_id: int) -> dict[str, int | None]:
    async with world.rt.sessions() as s:
        rows = await s.scalars(select(Answer).where(Answer.checkin_id == checkin_id))
        return {a.item: a.value for a in rows}


# --- cadence forms --------------------------------------------------------------------------

D = datetime  # a naive local wall time in the tables below


def everywhere(*times: datetime) -> dict[str, list[datetime]]:
    """The same local wall times for a client in each zone."""
    return {zone: list(times) for zone in ZONES}


SESSIONS = (D(2026, 1, 8, 10, 0), D(2026, 1, 13, 10, 0))  # local, in each client's zone

CADENCES = [
    pytest.param(
        "every 3 days at 18:00",
        "practice",
        (),
        {
            **everywhere(
                D(2026, 1, 5, 18), D(2026, 1, 8, 18), D(2026, 1, 11, 18), D(2026, 1, 14, 18)
            ),
            # 18:00 on the day of joining had passed in Kolkata (joined at 19:30).
            KOLKATA: [D(2026, 1, 8, 18), D(2026, 1, 11, 18), D(2026, 1, 14, 18)],
        },
        id="every-3-days",
    ),
    pytest.param(
        "weekdays mon,thu at 19:15",
        "client",
        (),
        {
            BERLIN: [D(2026, 1, 5, 19, 15), D(2026, 1, 8, 19, 15), D(2026, 1, 12, 19, 15)],
            NEW_YORK: [D(2026, 1, 5, 19, 15), D(2026, 1, 8, 19, 15), D(2026, 1, 12, 19, 15)],
            KOLKATA: [D(2026, 1, 8, 19, 15), D(2026, 1, 12, 19, 15), D(2026, 1, 15, 19, 15)],
        },
        id="weekdays",
    ),
    pytest.param(
        "after-session 24h",
        "client",
        SESSIONS,
        everywhere(D(2026, 1, 9, 10, 50), D(2026, 1, 14, 10, 50)),
        id="after-session",
    ),
    pytest.param(
        "before-session 48h",
        "client",
        SESSIONS,
        everywhere(D(2026, 1, 6, 10, 0), D(2026, 1, 11, 10, 0)),
        id="before-session",
    ),
    pytest.param(
        "after-session 2h + midway at 18:00",
        "client",
        SESSIONS,
        # The gap from Thu 10:50 to Tue 10:00 has its middle on Sat 22:25: Sat 18:00 is nearest.
        everywhere(D(2026, 1, 8, 12, 50), D(2026, 1, 10, 18, 0), D(2026, 1, 13, 12, 50)),
        id="after-session-and-midway",
    ),
]


@pytest.mark.parametrize(("spec", "via", "sessions", "expected"), CADENCES)
async def test_each_cadence_form_asks_at_the_clients_local_times(
    make_world: MakeWorld,
    spec: str,
    via: str,
    sessions: tuple[datetime, ...],
    expected: dict[str, list[datetime]],
) -> None:
    practice = {"cadence": spec} if via == "practice" else {}
    world = await make_world(MONDAY, nudge_after="off", expire_after="1d", **practice)
    therapist = await unjoined_therapist(world)
    per_client = {"cadence": spec} if via == "client" else {}
    joined = await asyncio.gather(
        *(join(world, therapist, f"{CITY[z]} Client", z, **per_client) for z in ZONES)
    )
    members = {member.zone: member for member in joined}
    for member in joined:
        for start in sessions:
            await admin.add_session(world.rt, member.id, aware(start, member.zone))

    await run_until(world, MONDAY + timedelta(days=10))

    for zone, member in members.items():
        assert member.checkins_received() == expected[zone], zone
        assert await opened_locally(world, member) == expected[zone], zone
        # Each check-in is the intro and its first question, nothing more (nobody answered).
        questions = [m for m in member.later_messages() if checkin_buttons(m)]
        assert len(questions) == len(expected[zone]), zone


# --- daylight saving time -------------------------------------------------------------------

DST_CHANGES = [
    pytest.param(BERLIN, date(2026, 3, 29), timedelta(hours=23), id="berlin-spring"),
    pytest.param(BERLIN, date(2026, 10, 25), timedelta(hours=25), id="berlin-autumn"),
    pytest.param(NEW_YORK, date(2026, 3, 8), timedelta(hours=23), id="new-york-spring"),
    pytest.param(NEW_YORK, date(2026, 11, 1), timedelta(hours=25), id="new-york-autumn"),
]


@pytest.mark.parametrize(("zone", "change", "odd_gap"), DST_CHANGES)
async def test_a_daily_checkin_keeps_its_local_hour_across_a_dst_change(
    make_world: MakeWorld, zone: str, change: date, odd_gap: timedelta
) -> None:
    start = datetime.combine(change - timedelta(days=3), time(12, 0), tzinfo=UTC)
    world = await make_world(
        start, cadence="every day at 18:00", nudge_after="off", expire_after="20h"
    )
    therapist = await unjoined_therapist(world)
    member = await join(world, therapist, "Robin Client", zone)

    await run_until(world, start + timedelta(days=7))

    days = [change + timedelta(days=k) for k in range(-3, 4)]
    expected = [datetime.combine(day, time(18, 0)) for day in days]
    assert member.checkins_received() == expected  # one a day, none skipped, none shifted
    assert await opened_locally(world, member) == expected
    opened = [c.opened_at for c in await checkins_of(world, member.id)]
    # The clock really jumped: one interval is 23 h (spring) or 25 h (autumn), the rest 24 h.
    gaps = [later - earlier for earlier, later in pairwise(opened)]
    assert sorted(set(gaps)) == sorted({timedelta(hours=24), odd_gap})
    assert gaps.count(odd_gap) == 1


# --- quiet hours ----------------------------------------------------------------------------


async def test_a_late_evening_cadence_waits_for_the_morning(make_world: MakeWorld) -> None:
    world = await make_world(
        MONDAY, cadence="every day at 22:30", nudge_after="off", expire_after="20h"
    )
    therapist = await unjoined_therapist(world)
    members = await asyncio.gather(*(join(world, therapist, f"{CITY[z]} Client", z) for z in ZONES))
    for member in members:
        planned = (await client_row(world, member.id)).next_checkin_at
        assert planned is not None and wall(planned, member.zone) == D(2026, 1, 6, 9, 0)

    await run_until(world, MONDAY + timedelta(days=4))

    for member in members:
        assert member.checkins_received() == [D(2026, 1, d, 9, 0) for d in (6, 7, 8, 9)]
        later = member.later_messages()
        assert later, member.zone
        for message in later:
            local = wall(sent_at(message), member.zone)
            assert not is_quiet(local), (member.zone, local, message.get("text", "")[:30])


# --- nudge and expiry -----------------------------------------------------------------------

THURSDAY = datetime(2026, 3, 26, 12, 0, tzinfo=UTC)
"""Two days before Berlin moves its clocks forward (Sunday 2026-03-29, 02:00 -> 03:00)."""


async def test_one_nudge_out_of_quiet_hours_then_expiry_closes_the_checkin(
    make_world: MakeWorld,
) -> None:
    world = await make_world(THURSDAY)
    therapist = await unjoined_therapist(world)
    friday_evening = {"cadence": "weekdays fri at 20:30"}
    silent = await join(world, therapist, "Sam Silent", BERLIN, **friday_evening)
    partial = await join(world, therapist, "Pat Partial", BERLIN, **friday_evening)
    booked = await join(world, therapist, "Sky Booked", BERLIN, **friday_evening)
    plain = await join(world, therapist, "Nora Plain", NEW_YORK, cadence="weekdays fri at 18:00")
    session = await admin.add_session(world.rt, booked.id, aware(D(2026, 3, 28, 10, 0), BERLIN))

    # Friday 20:30 in Berlin: three check-ins open; Pat answers two questions and drifts off.
    await run_until(world, aware(D(2026, 3, 27, 20, 30), BERLIN))
    for member in (silent, partial, booked):
        assert member.checkins_received() == [D(2026, 3, 27, 20, 30)]
    await answer_checkin(world, partial, items=2)

    await run_until(world, aware(D(2026, 4, 1, 10, 0), BERLIN))

    # Sam: the nudge was due Sunday 21:30 (48 h, but the clocks went forward): quiet, so Monday
    # 09:00. Then nothing until the check-in closed, silently, 96 h after it opened.
    assert [(wall(sent_at(m), BERLIN), m["text"][:12]) for m in silent.later_messages()] == [
        (D(2026, 3, 27, 20, 30), INTRO[:12]),
        (D(2026, 3, 27, 20, 30), open_question(silent)["text"][:12]),
        (D(2026, 3, 30, 9, 0), NUDGE[:12]),
        (D(2026, 3, 30, 9, 0), open_question(silent)["text"][:12]),
    ]
    [sams] = await checkins_of(world, silent.id)
    assert sams.status == "missed"
    assert sams.nudged_at == aware(D(2026, 3, 30, 9, 0), BERLIN)
    assert sams.closed_at == sams.opened_at + timedelta(days=4)
    assert await answers_of(world, sams.id) == {}

    # Pat: nudged once like Sam; the check-in closed as partial with the two answers kept.
    assert partial.received(NUDGE) == [D(2026, 3, 30, 9, 0)]
    [pats] = await checkins_of(world, partial.id)
    assert pats.status == "partial"
    assert await answers_of(world, pats.id) == {"heard": 8, "goals": 8}

    # Sky: the session on Saturday 10:00 came before the 4 days were up: expired then, no nudge.
    [skys] = await checkins_of(world, booked.id)
    assert skys.status == "missed"
    assert skys.expires_at == skys.closed_at == datetime.fromisoformat(session["starts_at"])
    assert skys.nudge_at is None and skys.nudged_at is None
    assert booked.received(NUDGE) == []

    # Nora (New York, no DST change in between): the nudge exactly 48 h after, at 18:00.
    [noras] = await checkins_of(world, plain.id)
    assert noras.status == "missed"
    assert noras.nudged_at == noras.opened_at + timedelta(days=2)
    assert plain.received(NUDGE) == [D(2026, 3, 29, 18, 0)]

    # Pat answers after the close: a kind word, and nothing is stored.
    user = partial.person.user
    tap = await user.tap(open_question(partial), checkin_buttons(open_question(partial))[0])
    assert (await user.answer_to(tap))["text"] == t("en", "checkin.closed")
    user.skip_to_end()
    await user.send("7")
    await user.next_message()
    await world.drain()
    assert await answers_of(world, pats.id) == {"heard": 8, "goals": 8}
    assert [c.status for c in await checkins_of(world, partial.id)] == ["partial"]

    # The next Friday brings the next check-ins; there was never a second nudge.
    await run_until(world, aware(D(2026, 4, 4, 12, 0), BERLIN))
    assert silent.checkins_received() == [D(2026, 3, 27, 20, 30), D(2026, 4, 3, 20, 30)]
    assert plain.checkins_received() == [D(2026, 3, 27, 18, 0), D(2026, 4, 3, 18, 0)]
    for member in (silent, partial, booked, plain):
        assert len(member.received(NUDGE)) == (0 if member is booked else 1)
        for message in member.later_messages():
            assert not is_quiet(wall(sent_at(message), member.zone)), member.zone


# --- moving zone ----------------------------------------------------------------------------


async def test_a_new_zone_moves_the_next_checkin_without_a_double(make_world: MakeWorld) -> None:
    world = await make_world(
        MONDAY, cadence="every day at 18:00", nudge_after="off", expire_after="20h"
    )
    therapist = await unjoined_therapist(world)
    westward = await join(world, therapist, "Alex West", BERLIN)
    eastward = await join(world, therapist, "Eve East", NEW_YORK)

    # Eve moves to Berlin at 16:00 there, before that day's 18:00 in either zone.
    await run_until(world, MONDAY + timedelta(hours=1))
    await change_zone(world, eastward, BERLIN)
    planned = (await client_row(world, eastward.id)).next_checkin_at
    assert planned == aware(D(2026, 1, 5, 18, 0), BERLIN)

    # Alex answers Berlin's 18:00 check-in, then moves to New York at 19:30 Berlin time (13:30
    # there). 18:00 in New York that same day would be a second check-in 6 hours later.
    await run_until(world, aware(D(2026, 1, 5, 18, 0), BERLIN))
    await answer_checkin(world, westward)
    await run_until(world, aware(D(2026, 1, 5, 19, 30), BERLIN))
    await change_zone(world, westward, NEW_YORK)
    planned = (await client_row(world, westward.id)).next_checkin_at
    assert planned == aware(D(2026, 1, 6, 18, 0), NEW_YORK)

    await run_until(world, MONDAY + timedelta(days=3))

    alex = [sent_at(m) for m in westward.later_messages() if m["text"].startswith(INTROS)]
    assert alex == [
        aware(D(2026, 1, 5, 18, 0), BERLIN),
        aware(D(2026, 1, 6, 18, 0), NEW_YORK),
        aware(D(2026, 1, 7, 18, 0), NEW_YORK),
    ]
    assert eastward.checkins_received() == [D(2026, 1, d, 18, 0) for d in (5, 6, 7)]
    assert (await client_row(world, westward.id)).timezone == NEW_YORK
    assert (await client_row(world, eastward.id)).timezone == BERLIN
    assert len(await checkins_of(world, westward.id)) == 3
    assert len(await checkins_of(world, eastward.id)) == 3


@pytest.mark.parametrize("moved_by", ["client", "admin"])
async def test_a_new_zone_keeps_every_n_days_on_the_same_weekday(
    make_world: MakeWorld, moved_by: str
) -> None:
    """The phase of `every 7 days` is counted from the local date the client joined on. Joined
    at 00:30 on a Tuesday in Berlin, which is still Monday in New York: after moving there (the
    client through /timezone, or the admin through `rapport client set`) the check-ins stay on
    Tuesdays."""
    joined = aware(D(2026, 1, 6, 0, 30), BERLIN)
    world = await make_world(
        joined, cadence="every 7 days at 18:00", nudge_after="off", expire_after="20h"
    )
    therapist = await unjoined_therapist(world)
    stays = await join(world, therapist, "Sam Stay", BERLIN)
    moves = await join(world, therapist, "Max Move", BERLIN)
    if moved_by == "client":
        await change_zone(world, moves, NEW_YORK)  # 18:30 on Monday there
    else:
        await admin.client_set(world.rt, moves.id, timezone=NEW_YORK)
        moves.zone = NEW_YORK

    planned = (await client_row(world, moves.id)).next_checkin_at
    assert planned == aware(D(2026, 1, 6, 18, 0), NEW_YORK)
    await run_until(world, joined + timedelta(days=15))

    assert stays.checkins_received() == [D(2026, 1, d, 18, 0) for d in (6, 13, 20)]
    assert moves.checkins_received() == [D(2026, 1, d, 18, 0) for d in (6, 13, 20)]
    assert {day.weekday() for day in moves.checkins_received()} == {1}  # Tuesdays


# --- pausing --------------------------------------------------------------------------------


async def test_pause_for_three_days_holds_checkins_and_resumes_by_itself(
    make_world: MakeWorld,
) -> None:
    world = await make_world(
        MONDAY, cadence="every day at 18:00", nudge_after="off", expire_after="20h"
    )
    therapist = await world.join_therapist()
    member = await join(world, therapist, "Kim Pause", BERLIN)
    paused_at = MONDAY + timedelta(hours=1)  # 16:00 in Berlin, before the day's check-in

    await run_until(world, paused_at)
    user = member.person.user
    user.skip_to_end()
    therapist.user.skip_to_end()  # past the note that the client joined
    await user.send("/pause 3")
    await user.next_message()
    await world.drain()
    client = await client_row(world, member.id)
    note = await therapist.next_message()
    assert note["text"] == t(
        "en", "therapist.client_paused", client=client.alias, date="2026-01-08"
    )
    assert client.status == "paused" and client.paused_until == paused_at + timedelta(days=3)
    assert client.next_checkin_at is None

    await run_until(world, MONDAY + timedelta(days=5))

    assert member.checkins_received() == [D(2026, 1, 8, 18, 0), D(2026, 1, 9, 18, 0)]
    async with world.rt.sessions() as s:
        rows = await s.scalars(
            select(ClientEvent)
            .where(ClientEvent.client_id == member.id, ClientEvent.kind.in_(("paused", "resumed")))
            .order_by(ClientEvent.at)
        )
        events = [(e.kind, e.at) for e in rows]
    assert events == [("paused", paused_at), ("resumed", paused_at + timedelta(days=3))]
    assert (await client_row(world, member.id)).status == "active"


# --- changes after planning, and a heartbeat that was down ----------------------------------


async def test_a_zone_change_during_a_checkin_keeps_its_nudge_out_of_the_new_night(
    make_world: MakeWorld,
) -> None:
    world = await make_world(MONDAY)
    therapist = await unjoined_therapist(world)
    member = await join(world, therapist, "Ann Move", BERLIN)

    # The check-in opens at 18:00 in Berlin; its nudge is planned for 18:00 two days on. The
    # client moves to Kolkata with the check-in still open: that instant is 22:30 there.
    await run_until(world, aware(D(2026, 1, 5, 18, 0), BERLIN))
    await change_zone(world, member, KOLKATA)
    moved = len(member.person.user.inbox)
    await run_until(world, MONDAY + timedelta(days=5))

    assert member.received(NUDGE) == [D(2026, 1, 8, 9, 0)]
    since_the_move = member.person.user.inbox[moved:]
    assert since_the_move
    for message in since_the_move:
        assert not is_quiet(wall(sent_at(message), KOLKATA))


async def test_after_a_heartbeat_outage_due_items_wait_for_the_morning(
    make_world: MakeWorld,
) -> None:
    world = await make_world(MONDAY)
    therapist = await unjoined_therapist(world)
    evening = await join(world, therapist, "Eve Ning", BERLIN)  # every 7 days at 18:00
    late = await join(world, therapist, "Lee Late", BERLIN, cadence="weekdays tue at 20:00")

    # Nothing runs from 17:30 to 23:30: Eve's 18:00 check-in is overdue at night.
    await run_until(world, aware(D(2026, 1, 5, 17, 30), BERLIN))
    world.clock.set(aware(D(2026, 1, 5, 23, 30), BERLIN))
    # Lee's Tuesday 20:00 check-in opens on time; its nudge (Thursday 20:00) meets an outage
    # from 19:30 to 22:00.
    await run_until(world, aware(D(2026, 1, 8, 19, 30), BERLIN))
    world.clock.set(aware(D(2026, 1, 8, 22, 0), BERLIN))
    await run_until(world, MONDAY + timedelta(days=5))

    assert evening.checkins_received() == [D(2026, 1, 6, 9, 0)]
    assert late.checkins_received() == [D(2026, 1, 6, 20, 0)]
    assert late.received(NUDGE) == [D(2026, 1, 9, 9, 0)]
    for member in (evening, late):
        for message in member.later_messages():
            assert not is_quiet(wall(sent_at(message), BERLIN))


async def test_practice_changes_take_effect_for_clients_already_planned(
    make_world: MakeWorld,
) -> None:
    world = await make_world(
        MONDAY, cadence="weekdays fri at 18:00", nudge_after="off", expire_after="20h"
    )
    therapist = await unjoined_therapist(world)
    default = await join(world, therapist, "Dee Fault", BERLIN)
    owl = await join(world, therapist, "Olly Owl", BERLIN, cadence="every day at 21:30")
    assert (await client_row(world, default.id)).next_checkin_at == aware(
        D(2026, 1, 9, 18, 0), BERLIN
    )
    assert (await client_row(world, owl.id)).next_checkin_at == aware(D(2026, 1, 6, 9, 0), BERLIN)

    await run_until(world, aware(D(2026, 1, 5, 16, 0), BERLIN))
    await admin.practice_set(world.rt, cadence="every day at 19:00", quiet_hours="23:00-07:00")
    await run_until(world, MONDAY + timedelta(days=2))

    assert default.checkins_received() == [D(2026, 1, 5, 19, 0), D(2026, 1, 6, 19, 0)]
    assert owl.checkins_received() == [D(2026, 1, 5, 21, 30), D(2026, 1, 6, 21, 30)]
