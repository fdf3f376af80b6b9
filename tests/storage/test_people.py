"""People and appointments (`storage.people`) on every backend: lookups, sessions, unbinding an
account, and the client who blocked the bot."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import checkins, outbox, people
from storage.models import Checkin, Client, Invite, OutboxMessage, TherapySession
from tests.storage.builders import make_client


async def test_lookups_and_lists(sessions, cipher, clock) -> None:
    therapist_id, client_id = await make_client(sessions, cipher, clock)
    now = clock.now()
    async with sessions() as s, s.begin():
        other = await people.add_therapist(s, cipher, name="Eli Moss", timezone="UTC", now=now)
        theirs = await people.add_client(s, cipher, therapist_id=other.id, name="Bo Li", now=now)
        paused = await people.add_client(
            s, cipher, therapist_id=therapist_id, name="Cy Ray", now=now
        )
        client = await people.client_by_id(s, client_id)
        assert client is not None
        client.status, paused.status, theirs.status = "active", "paused", "active"
        practice_id = client.practice_id
    async with sessions() as s:
        assert [t.id for t in await people.list_therapists(s)] == [therapist_id, other.id]
        therapist = await people.therapist_by_id(s, therapist_id)
        assert therapist is not None and cipher.decrypt(therapist.name_enc) == "Dana Lee"
        assert await people.therapist_by_id(s, 999) is None
        assert await people.client_by_id(s, 999) is None
        assert [c.id for c in await people.list_clients(s)] == [client_id, theirs.id, paused.id]
        assert [c.id for c in await people.list_clients(s, therapist_id)] == [client_id, paused.id]
        active = await people.active_clients(s, practice_id)
        assert sorted(c.id for c in active) == [client_id, theirs.id]
        assert await people.active_clients(s, practice_id + 1) == []


async def test_sessions_of_a_client(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    _, other_id = await make_client(sessions, cipher, clock)
    now = clock.now()
    day = timedelta(days=1)

    async def add(client: int, days: int, uid: str | None = None) -> TherapySession:
        async with sessions() as s, s.begin():
            return await people.add_session(
                s, client_id=client, starts_at=now + days * day, minutes=50, now=now, source_uid=uid
            )

    later = await add(client_id, 7, "ev-2")
    soon = await add(client_id, 2, "ev-1")
    gone = await add(client_id, 4)
    by_hand = await add(client_id, 5)
    elsewhere = await add(other_id, 3, "ev-9")
    async with sessions() as s, s.begin():
        cancelled = await people.session_by_id(s, gone.id)
        assert cancelled is not None
        cancelled.cancelled = True
    async with sessions() as s:
        assert await people.session_by_id(s, 999) is None
        # The client's own, by start; the live ones only, but for the full list.
        assert [x.id for x in await people.sessions_of(s, client_id)] == [
            soon.id,
            by_hand.id,
            later.id,
        ]
        assert [x.id for x in await people.list_sessions(s, client_id)] == [
            soon.id,
            gone.id,
            by_hand.id,
            later.id,
        ]
        assert [x.id for x in await people.list_sessions(s)] == [
            soon.id,
            elsewhere.id,
            gone.id,
            by_hand.id,
            later.id,
        ]
        upcoming = await people.next_session(s, client_id, now + 2 * day)
        assert upcoming is not None and upcoming.id == by_hand.id  # the cancelled one is skipped
        assert await people.next_session(s, client_id, now + 7 * day) is None
        assert await people.live_session_at(s, client_id, now + 4 * day) is None
        live = await people.live_session_at(s, client_id, now + 5 * day)
        assert live is not None and live.id == by_hand.id
        # From a calendar: only those with a source, of the clients asked for, by id.
        imported = await people.imported_sessions(s, [client_id])
        assert [x.id for x in imported] == [later.id, soon.id]
        both = await people.imported_sessions(s, [client_id, other_id])
        assert [x.source_uid for x in both] == ["ev-2", "ev-1", "ev-9"]
        assert await people.imported_sessions(s, []) == []


async def test_sessions_whose_digest_is_still_to_go(sessions, cipher, clock) -> None:
    therapist_id, client_id = await make_client(sessions, cipher, clock)
    now = clock.now()
    async with sessions() as s, s.begin():
        made = [
            await people.add_session(
                s, client_id=client_id, starts_at=now + timedelta(hours=h), minutes=50, now=now
            )
            for h in (-2, 5, 30, 50, 70)
        ]
        past, digested, cancelled, due, last = made
        digested.digest_sent_at = now
        cancelled.cancelled = True
        practice_id = (await people.get_practice(s, now)).id
    async with sessions() as s:
        rows = await people.undigested_sessions(s, practice_id, now)
        assert [(x.id, t.id) for x, t in rows] == [(due.id, therapist_id), (last.id, therapist_id)]
        assert past.id not in [x.id for x, _ in rows]
        assert await people.undigested_sessions(s, practice_id + 1, now) == []


async def joined(s: AsyncSession, client_id: int, account: int) -> Client:
    """The client, bound to Telegram account `account` (chat `account` too) and active."""
    client = await people.client_by_id(s, client_id)
    assert client is not None
    client.telegram_user_id = client.chat_id = account
    client.status = "active"
    return client


async def test_unbinding_a_client_keeps_their_history(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    now = clock.now()
    async with sessions() as s, s.begin():
        client = await joined(s, client_id, 70)
        client.consent_at, client.consent_version = now, "v1"
        answered = await checkins.open_checkin(s, client_id=client_id, instrument="x", now=now)
        await checkins.record_answer(
            s, cipher, checkin_id=answered.id, item="heard", value=8, at=now
        )
        await outbox.enqueue(s, cipher, chat_id=70, kind="text", payload={"text": "a"}, now=now)
        await outbox.enqueue(s, cipher, chat_id=71, kind="text", payload={"text": "b"}, now=now)
        await people.create_invite(s, now=now, client_id=client_id)
    async with sessions() as s, s.begin():
        client = await people.client_by_id(s, client_id)
        assert client is not None
        cancelled = await people.unbind_client(s, client, now=now + timedelta(hours=1))
    assert cancelled == 1  # the old chat's one waiting message; another chat's stays
    async with sessions() as s:
        client = await people.client_by_id(s, client_id)
        assert client is not None
        assert (client.telegram_user_id, client.chat_id, client.status) == (None, None, "invited")
        assert client.consent_at is None and client.conversation is None
        rows = await checkins.checkins_of(s, client_id)
        assert [c.status for c in rows] == ["partial"]  # answered: kept, closed
        assert len(await checkins.answers_of(s, rows[0].id)) == 1
        rows = {m.chat_id: m for m in await s.scalars(select(OutboxMessage))}
        assert (rows[70].status, rows[70].error) == ("failed", outbox.MOVED_ERROR)
        assert rows[71].status == "pending"
        invite = await s.scalar(select(Invite).where(Invite.client_id == client_id))
        assert invite is not None and invite.expires_at <= now + timedelta(hours=1)


async def test_unbinding_voids_a_check_in_nothing_was_answered_in(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    now = clock.now()
    async with sessions() as s, s.begin():
        await joined(s, client_id, 80)
        await checkins.open_checkin(s, client_id=client_id, instrument="x", now=now)
    async with sessions() as s, s.begin():
        client = await people.client_by_id(s, client_id)
        assert client is not None
        assert await people.unbind_client(s, client, now=now) == 0
    async with sessions() as s:
        assert (await s.scalars(select(Checkin))).all() == []


async def test_unbinding_a_therapist(sessions, cipher, clock) -> None:
    therapist_id, _ = await make_client(sessions, cipher, clock)
    now = clock.now()
    async with sessions() as s, s.begin():
        therapist = await people.therapist_by_id(s, therapist_id)
        assert therapist is not None
        therapist.telegram_user_id, therapist.chat_id = 9, 90
        for text in ("digest", "alert"):
            await outbox.enqueue(
                s, cipher, chat_id=90, kind="text", payload={"text": text}, now=now
            )
        await people.create_invite(s, now=now, therapist_id=therapist_id)
        assert await people.therapist_by_user(s, 9) is therapist
    async with sessions() as s, s.begin():
        therapist = await people.therapist_by_id(s, therapist_id)
        assert therapist is not None
        assert await people.unbind_therapist(s, therapist, now=now) == 2
    async with sessions() as s, s.begin():
        assert await people.therapist_by_user(s, 9) is None
        assert await outbox.pending_count(s) == 0
        # Nothing left to revoke: the link was revoked with the binding.
        assert await people.revoke_invites(s, now=now, therapist_id=therapist_id) == 0
        await people.create_invite(s, now=now, therapist_id=therapist_id)
        assert await people.revoke_invites(s, now=now, therapist_id=therapist_id) == 1


async def test_a_client_found_unreachable_is_news_once(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    now = clock.now()
    async with sessions() as s, s.begin():
        assert await people.mark_unreachable(s, client_id, now)
        assert not await people.mark_unreachable(s, client_id, now + timedelta(hours=1))
        assert not await people.mark_unreachable(s, 999, now)
    async with sessions() as s:
        unreachable = await s.scalar(select(Client.unreachable_at).where(Client.id == client_id))
        assert unreachable == now
