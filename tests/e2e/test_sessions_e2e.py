"""Sessions end to end: the digest before each session, exactly once and never in the therapist's
quiet hours, and what moving or cancelling a session does to its digest and to the check-ins tied
to it. Same method as `test_scheduling`: the real bot, the sandbox, a SQLite file, and a clock
that stops at every due instant."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from app import admin, calendar_sync, heartbeat
from insights.texts import text as therapist_text
from storage.models import Client, TherapySession
from tests.e2e.harness import Person, World
from tests.e2e.test_scheduling import (
    BERLIN,
    MONDAY,
    NEW_YORK,
    D,
    MakeWorld,
    aware,
    is_quiet,
    join,
    run_until,
    sent_at,
    wall,
)
from tests.e2e.test_scheduling import make_world as make_world  # the fixture

DIGEST = therapist_text("en", "digest.title", alias="\0", finding="").split("\0")[0]


def digests_received(therapist: Person, zone: str) -> list[tuple[datetime, str]]:
    """(local time, title up to the finding: 'Digest for A.S.') of each digest text received."""
    return [
        (wall(sent_at(m), zone), m["text"].splitlines()[0].split(": ", 1)[0])
        for m in therapist.user.inbox
        if (m.get("text") or "").startswith(DIGEST)
    ]


async def alias_of(world: World, client_id: int) -> str:
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None
        return client.alias


async def next_checkin(world: World, client_id: int) -> datetime | None:
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None
        return client.next_checkin_at


async def session_row(world: World, session_id: int) -> TherapySession:
    async with world.rt.sessions() as s:
        session = await s.get(TherapySession, session_id)
        assert session is not None
        return session


async def crowded_passes(world: World, at: datetime) -> None:
    """Several heartbeat passes at once at `at`, and more over the next two hours, as replicas
    and a restarted process would run them."""
    world.clock.set(at)
    await asyncio.gather(*(heartbeat.run_pass(world.rt) for _ in range(3)))
    await world.drain()
    await world.advance(hours=2, step=timedelta(minutes=20))


async def test_the_digest_comes_3h_before_each_session_exactly_once(make_world: MakeWorld) -> None:
    world = await make_world(MONDAY, cadence="off")
    dana = await world.join_therapist("Dana Lee", BERLIN)
    noor = await world.join_therapist("Noor Haddad", NEW_YORK)
    alice = await join(world, dana, "Alice Smith", BERLIN)
    bob = await join(world, noor, "Bob Jones", BERLIN)
    afternoon = await admin.add_session(world.rt, alice.id, aware(D(2026, 1, 7, 15, 0), BERLIN))
    morning = await admin.add_session(world.rt, alice.id, aware(D(2026, 1, 8, 10, 0), BERLIN))
    bobs = await admin.add_session(world.rt, bob.id, aware(D(2026, 1, 8, 15, 0), BERLIN))

    # 3 h before, unless that is in the therapist's quiet hours: then 20:55 the evening before.
    # Bob's session is 15:00 in Berlin but 09:00 for Noor in New York: 06:00 there is quiet.
    plan = {
        afternoon["id"]: aware(D(2026, 1, 7, 12, 0), BERLIN),
        morning["id"]: aware(D(2026, 1, 7, 20, 55), BERLIN),
        bobs["id"]: aware(D(2026, 1, 7, 20, 55), NEW_YORK),
    }
    for session in (afternoon, morning, bobs):
        assert datetime.fromisoformat(session["digest_at"]) == plan[session["id"]]

    for due in sorted(plan.values()):
        await run_until(world, due - timedelta(seconds=1))
        await crowded_passes(world, due)
    await run_until(world, MONDAY + timedelta(days=4))

    alice_title = DIGEST + await alias_of(world, alice.id)
    assert digests_received(dana, BERLIN) == [
        (D(2026, 1, 7, 12, 0), alice_title),
        (D(2026, 1, 7, 20, 55), alice_title),
    ]
    assert digests_received(noor, NEW_YORK) == [
        (D(2026, 1, 7, 20, 55), DIGEST + await alias_of(world, bob.id))
    ]
    for session_id, due in plan.items():
        assert (await session_row(world, session_id)).digest_sent_at == due
    for therapist, zone in ((dana, BERLIN), (noor, NEW_YORK)):
        for message in therapist.user.inbox:
            assert not is_quiet(wall(sent_at(message), zone)), zone


async def test_moving_a_session_moves_its_digest_and_checkin_and_cancelling_drops_them(
    make_world: MakeWorld,
) -> None:
    world = await make_world(MONDAY, nudge_after="off", expire_after="1d")
    dana = await world.join_therapist("Dana Lee", BERLIN)
    carol = await join(world, dana, "Carol White", BERLIN, cadence="after-session 24h")
    moved = await admin.add_session(world.rt, carol.id, aware(D(2026, 1, 7, 15, 0), BERLIN))
    dropped = await admin.add_session(world.rt, carol.id, aware(D(2026, 1, 13, 15, 0), BERLIN))
    assert await next_checkin(world, carol.id) == aware(D(2026, 1, 8, 15, 50), BERLIN)

    view = await calendar_sync.move_session(
        world.rt, moved["id"], aware(D(2026, 1, 9, 16, 0), BERLIN)
    )
    assert datetime.fromisoformat(view["digest_at"]) == aware(D(2026, 1, 9, 13, 0), BERLIN)
    assert await next_checkin(world, carol.id) == aware(D(2026, 1, 10, 16, 50), BERLIN)
    await calendar_sync.cancel_session(world.rt, dropped["id"])

    await run_until(world, MONDAY + timedelta(days=10))

    title = DIGEST + await alias_of(world, carol.id)
    assert digests_received(dana, BERLIN) == [(D(2026, 1, 9, 13, 0), title)]
    assert carol.checkins_received() == [D(2026, 1, 10, 16, 50)]
    gone = await session_row(world, dropped["id"])
    assert gone.cancelled and gone.digest_sent_at is None


async def test_a_new_digest_lead_moves_digests_already_planned(make_world: MakeWorld) -> None:
    world = await make_world(MONDAY, cadence="off")
    dana = await world.join_therapist("Dana Lee", BERLIN)
    alice = await join(world, dana, "Alice Smith", BERLIN)
    session = await admin.add_session(world.rt, alice.id, aware(D(2026, 1, 7, 15, 0), BERLIN))
    assert datetime.fromisoformat(session["digest_at"]) == aware(D(2026, 1, 7, 12, 0), BERLIN)

    await admin.practice_set(world.rt, digest_lead="1h")
    await run_until(world, MONDAY + timedelta(days=3))

    title = DIGEST + await alias_of(world, alice.id)
    assert digests_received(dana, BERLIN) == [(D(2026, 1, 7, 14, 0), title)]
