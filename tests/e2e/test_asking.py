"""Asking what fits, end to end: the real bot, the sandbox, a SQLite file and a clock that stops
at every due instant (`test_scheduling.run_until`).

With the README's cadence `weekdays tue,fri` and Monday sessions: before the first session the
check-ins ask about expectations and goals, never "in your last session"; each Monday session is
rated once (on Tuesday), and Friday asks about the time since; the counter counts every question.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from app import admin
from flows.i18n import t
from flows.instruments import load_instrument
from storage.models import Answer, Checkin
from tests.e2e.harness import World
from tests.e2e.test_scheduling import (
    BERLIN,
    MONDAY,
    D,
    MakeWorld,
    Member,
    answer_checkin,
    aware,
    join,
    run_until,
    sent_at,
    unjoined_therapist,
    wall,
)
from tests.e2e.test_scheduling import make_world as make_world  # the fixture

BRIEF = load_instrument("rapport-brief")
SESSION_ITEMS = set(BRIEF.session_items)
INTROS = {
    "session": t("en", "checkin.intro").split("{")[0],
    "between": t("en", "checkin.intro_between").split("{")[0],
    "first": t("en", "checkin.intro_first").split("{")[0],
}
SESSION_QUESTIONS = [
    BRIEF.find(item).question("en").split("{")[0]  # type: ignore[union-attr]
    for item in BRIEF.session_items
]
COUNTER = re.compile(r"^(\d+)/(\d+)\. ")


async def rated_checkins(world: World, client_id: int) -> list[tuple[datetime, set[str]]]:
    """(opened, answered items) of each check-in, oldest first."""
    async with world.rt.sessions() as s:
        rows = (
            await s.execute(
                select(Checkin.opened_at, Answer.item)
                .join(Answer, Answer.checkin_id == Checkin.id)
                .where(Checkin.client_id == client_id)
                .order_by(Checkin.id)
            )
        ).all()
    found: dict[datetime, set[str]] = {}
    for opened, item in rows:
        found.setdefault(opened, set()).add(item)
    return list(found.items())


def kinds(member: Member) -> list[tuple[str, str]]:
    """(local day, moment) of each check-in the client was introduced to."""
    out = []
    for message in member.later_messages():
        text = message.get("text") or ""
        for moment, intro in INTROS.items():
            if text.startswith(intro):
                out.append((wall(sent_at(message), BERLIN).strftime("%a %d"), moment))
    return out


async def test_twice_weekly_check_ins_ask_what_fits(make_world: MakeWorld) -> None:
    world = await make_world(
        MONDAY, cadence="weekdays tue,fri at 18:00", expire_after="20h", nudge_after="off"
    )
    therapist = await unjoined_therapist(world)
    alice = await join(world, therapist, "Alice Smith", BERLIN)
    # Sessions on Mondays 12 and 19 January, 15:00 in Berlin; none before.
    for day in (12, 19):
        await admin.add_session(world.rt, alice.id, aware(D(2026, 1, day, 15, 0), BERLIN))
    end = aware(D(2026, 1, 24, 12, 0), BERLIN)
    read: list[list[str]] = []  # what the client read in each check-in, question by question
    while world.clock.now() < end:
        before = len(alice.person.user.inbox)
        await run_until(world, min(end, world.clock.now() + timedelta(hours=12)))
        fresh = [m.get("text") or "" for m in alice.person.user.inbox[before:]]
        if any(x.startswith(tuple(INTROS.values())) for x in fresh):
            read.append(await answer_checkin(world, alice, value=7))
    seen = kinds(alice)
    assert seen == [
        ("Tue 06", "first"),
        ("Fri 09", "first"),
        ("Tue 13", "session"),  # Monday 12's session, rated once
        ("Fri 16", "between"),
        ("Tue 20", "session"),  # Monday 19's
        ("Fri 23", "between"),
    ]
    checkins = await rated_checkins(world, alice.id)
    assert len(checkins) == 6
    rated = [bool(items & SESSION_ITEMS) for _, items in checkins]
    assert rated == [False, False, True, False, True, False]  # one rating per session
    assert all("wellbeing" in items for _, items in checkins)
    assert {"expectations", "hope"} <= checkins[0][1] and "tension" not in checkins[0][1]
    assert {"between_work", "tension"} <= checkins[3][1]
    assert len(read) == len(seen)
    for (_, moment), texts in zip(seen, read, strict=True):
        said = " ".join(texts)
        if moment == "first":  # no "last session" before the first session
            assert "last session" not in said.casefold() and "that session" not in said
        if moment != "session":
            assert not any(question in said for question in SESSION_QUESTIONS)
        else:
            assert all(question in said for question in SESSION_QUESTIONS)
        # The counter counts every question: 1, 2, 3 ... up to n/n, the last one asked.
        counters = sorted({(int(m[1]), int(m[2])) for x in texts if (m := COUNTER.match(x))})
        assert [n for n, _ in counters] == list(range(1, len(counters) + 1))
        assert counters[-1][0] == counters[-1][1]
