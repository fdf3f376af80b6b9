"""What the sender writes back (`storage.outbox`), on every backend: claims given back, attempts
that failed (due again later, or failed for good), rows still wanted, a moved chat's messages."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from storage import outbox
from storage.models import OutboxMessage

LEASE = timedelta(minutes=1)


async def queue(sessions, cipher, clock, *chats: int) -> list[int]:
    async with sessions() as s, s.begin():
        return [
            (
                await outbox.queue_message(
                    s, cipher, chat_id=chat, kind="text", payload={"text": "x"}, now=clock.now()
                )
            )[0]
            for chat in chats
        ]


async def claim(sessions, clock, limit: int = 10) -> list[int]:
    async with sessions() as s, s.begin():
        rows = await outbox.claim_rows(s, now=clock.now(), lease=LEASE, worker="w", limit=limit)
        return [row.id for row in rows]


async def test_a_released_claim_is_due_again_at_once(sessions, cipher, clock) -> None:
    first, second = await queue(sessions, cipher, clock, 1, 2)
    assert await claim(sessions, clock) == [first, second]
    assert await claim(sessions, clock) == []  # claimed: nobody else gets them within the lease
    async with sessions() as s, s.begin():
        await outbox.release_claims(s, [second])
        await outbox.release_claims(s, [])
    assert await claim(sessions, clock) == [second]


async def test_a_failed_attempt_waits_or_fails_for_good(sessions, cipher, clock) -> None:
    retried, given_up = await queue(sessions, cipher, clock, 1, 2)
    assert await claim(sessions, clock) == [retried, given_up]
    later = clock.now() + timedelta(seconds=30)
    seen: list[int] = []

    def retry_at(attempts: int) -> datetime:
        seen.append(attempts)
        return later

    async with sessions() as s, s.begin():
        row = await outbox.record_attempt(s, retried, "TimedOut", retry_at)
        assert row is not None and row.status == "pending"
        row = await outbox.record_attempt(s, given_up, "forbidden: blocked", lambda _: None)
        assert row is not None and row.status == "failed"
        assert await outbox.record_attempt(s, 999, "gone", retry_at) is None  # erased meanwhile
    assert seen == [1]
    async with sessions() as s:
        stored = {m.id: m for m in await s.scalars(select(OutboxMessage))}
        assert (stored[retried].attempts, stored[retried].error) == (1, "TimedOut")
        assert stored[retried].claimed_at is None and stored[retried].not_before == later
        assert (stored[given_up].attempts, stored[given_up].error) == (1, "forbidden: blocked")
    assert await claim(sessions, clock) == []  # not before its time
    clock.advance(timedelta(seconds=30))
    assert await claim(sessions, clock) == [retried]


async def test_rows_still_wanted_and_a_moved_chats_messages(sessions, cipher, clock) -> None:
    sent, erased, waiting, other = await queue(sessions, cipher, clock, 1, 2, 3, 4)
    async with sessions() as s, s.begin():
        await outbox.mark_sent(s, [(sent, 42)], clock.now())
        row = await s.get(OutboxMessage, erased)
        await s.delete(row)
    async with sessions() as s, s.begin():
        ids = [sent, erased, waiting, other]
        assert await outbox.still_pending(s, ids) == {waiting, other}
        assert await outbox.still_pending(s, []) == set()
        assert await outbox.pending_count(s) == 2
        assert await outbox.cancel_pending(s, 3) == 1
        assert await outbox.cancel_pending(s, 1) == 0  # sent already: nothing to cancel
        assert await outbox.cancel_pending(s, None) == 0
    async with sessions() as s:
        assert await outbox.still_pending(s, ids) == {other}
        cancelled = await s.get(OutboxMessage, waiting)
        assert cancelled is not None
        assert (cancelled.status, cancelled.error) == ("failed", outbox.MOVED_ERROR)
