"""What a check-in opening now should ask, at the database: the latest ended session, whether one
is still to come, and when the client last rated a session. Run against every backend."""

from __future__ import annotations

from datetime import timedelta

from app.clock import ManualClock
from storage import checkins, people
from tests.storage.builders import make_client

RATING = ("heard", "goals", "approach", "overall")


async def test_sessions_and_the_last_rating(sessions, cipher, clock: ManualClock) -> None:
    therapist_id, alice = await make_client(sessions, cipher, clock)
    now = clock.now()
    day = timedelta(days=1)
    async with sessions() as s, s.begin():
        bob = (
            await people.add_client(s, cipher, therapist_id=therapist_id, name="Bo B", now=now)
        ).id
        carol = (
            await people.add_client(s, cipher, therapist_id=therapist_id, name="Ca C", now=now)
        ).id
        # Alice: two sessions behind her (one cancelled, later), one ahead.
        first = await people.add_session(
            s, client_id=alice, starts_at=now - 3 * day, minutes=50, now=now
        )
        dropped = await people.add_session(
            s, client_id=alice, starts_at=now - day, minutes=50, now=now
        )
        dropped.cancelled = True
        await people.add_session(s, client_id=alice, starts_at=now + 2 * day, minutes=50, now=now)
        # Bob: only a session ahead. Carol: none.
        await people.add_session(s, client_id=bob, starts_at=now + day, minutes=50, now=now)
        # Alice rated a session two days ago; a check-in with only wellbeing since does not count.
        rated = await checkins.open_checkin(s, client_id=alice, instrument="x", now=now - 2 * day)
        await checkins.record_answer(
            s, cipher, checkin_id=rated.id, item="heard", value=None, at=now
        )
        later = await checkins.open_checkin(s, client_id=alice, instrument="x", now=now - day)
        await checkins.record_answer(
            s, cipher, checkin_id=later.id, item="wellbeing", value=5, at=now
        )
        first_end = first.ends_at
    async with sessions() as s:
        facts = await checkins.asking_facts(s, [alice, bob, carol], RATING, now)
        none = await checkins.asking_facts(s, [], RATING, now)
    assert none == {}
    assert facts[alice] == checkins.AskingFacts(first_end, True, now - 2 * day)
    assert facts[bob] == checkins.AskingFacts(None, True, None)
    assert facts[carol] == checkins.AskingFacts(None, False, None)
