"""The repository suite: one set of tests, run against every backend (see `db_url`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from storage import audit, checkins, due, outbox, people, retention
from storage.db import create_engine, session_factory
from storage.models import Client, Invite, OutboxMessage, Therapist
from tests.storage.builders import make_client


async def test_people_and_aliases(sessions, cipher, clock) -> None:
    therapist_id, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        twin = await people.add_client(
            s, cipher, therapist_id=therapist_id, name="Anna M. Pardo", now=clock.now()
        )
        client = await s.get(Client, client_id)
        assert client is not None
        assert client.alias == "A.M.P."
        assert twin.alias == "A.M.P.2"  # aliases stay unique per therapist
        assert cipher.decrypt(client.name_enc) == "Ana Maria Perez"
        assert b"Perez" not in client.name_enc
        found = await people.client_by_alias(s, therapist_id, "a.m.p.")
        assert found is not None and found.id == client_id
    with pytest.raises(LookupError):
        async with sessions() as s, s.begin():
            await people.add_client(s, cipher, therapist_id=999, name="X", now=clock.now())


async def test_invite_is_single_use_and_expires(sessions, cipher, clock) -> None:
    therapist_id, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        token = await people.create_invite(s, now=clock.now(), client_id=client_id)
        other = await people.add_client(
            s, cipher, therapist_id=therapist_id, name="Ben Ode", now=clock.now()
        )
        stale = await people.create_invite(
            s, now=clock.now(), client_id=other.id, ttl=timedelta(hours=1)
        )
    assert 40 <= len(token) <= 64
    async with sessions() as s, s.begin():
        stored = await s.scalar(text("SELECT token_hash FROM invite LIMIT 1"))
        assert token not in str(stored)
        assert (
            await people.redeem_invite(s, "nope", user_id=1, chat_id=1, now=clock.now())
        ).reason == "invalid"
        ok = await people.redeem_invite(s, token, user_id=42, chat_id=42, now=clock.now())
        assert ok.ok and ok.client is not None and ok.client.telegram_user_id == 42
    async with sessions() as s, s.begin():
        again = await people.redeem_invite(s, token, user_id=43, chat_id=43, now=clock.now())
        assert again.reason == "used"
        clock.advance(timedelta(hours=2))
        late = await people.redeem_invite(s, stale, user_id=44, chat_id=44, now=clock.now())
        assert late.reason == "expired"


async def test_a_new_invite_revokes_the_older_unused_ones(sessions, cipher, clock) -> None:
    therapist_id, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        first = await people.create_invite(s, now=clock.now(), client_id=client_id)
        for_therapist = await people.create_invite(s, now=clock.now(), therapist_id=therapist_id)
        second = await people.create_invite(s, now=clock.now(), client_id=client_id)
    async with sessions() as s, s.begin():
        old = await people.redeem_invite(s, first, user_id=7, chat_id=7, now=clock.now())
        assert (old.ok, old.reason) == (False, "expired")
        # A client's new invite leaves their therapist's alone.
        assert (
            await people.redeem_invite(s, for_therapist, user_id=8, chat_id=8, now=clock.now())
        ).ok
        assert (await people.redeem_invite(s, second, user_id=7, chat_id=7, now=clock.now())).ok


async def test_a_bound_client_is_never_rebound_by_a_link(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        token = await people.create_invite(s, now=clock.now(), client_id=client_id)
    async with sessions() as s, s.begin():
        assert (await people.redeem_invite(s, token, user_id=42, chat_id=42, now=clock.now())).ok
    async with sessions() as s, s.begin():
        # A link issued after joining (as the old `rapport invite` did), opened by a stranger.
        later = await people.create_invite(s, now=clock.now(), client_id=client_id)
    async with sessions() as s, s.begin():
        taken = await people.redeem_invite(s, later, user_id=43, chat_id=43, now=clock.now())
        assert (taken.ok, taken.reason) == (False, "taken")
        own = await people.redeem_invite(s, token, user_id=42, chat_id=42, now=clock.now())
        assert (own.ok, own.reason) == (False, "already_joined")
    async with sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None and (client.telegram_user_id, client.chat_id) == (42, 42)
        used = await s.scalar(text("SELECT count(*) FROM invite WHERE used_at IS NOT NULL"))
        assert used == 1  # the refused link was not spent either


async def test_a_link_of_the_other_role_is_refused(sessions, cipher, clock) -> None:
    therapist_id, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        for_therapist = await people.create_invite(s, now=clock.now(), therapist_id=therapist_id)
        for_client = await people.create_invite(s, now=clock.now(), client_id=client_id)
    async with sessions() as s, s.begin():
        assert (
            await people.redeem_invite(s, for_therapist, user_id=1, chat_id=1, now=clock.now())
        ).ok
    async with sessions() as s, s.begin():
        refused = await people.redeem_invite(s, for_client, user_id=1, chat_id=1, now=clock.now())
        assert (refused.ok, refused.reason) == (False, "therapist_account")
    async with sessions() as s, s.begin():
        other = await people.add_therapist(
            s, cipher, name="Lee Park", timezone="UTC", now=clock.now()
        )
        second = await people.create_invite(s, now=clock.now(), therapist_id=other.id)
    async with sessions() as s, s.begin():
        assert (await people.redeem_invite(s, for_client, user_id=2, chat_id=2, now=clock.now())).ok
    async with sessions() as s, s.begin():
        refused = await people.redeem_invite(s, second, user_id=2, chat_id=2, now=clock.now())
        assert (refused.ok, refused.reason) == (False, "client_account")
    async with sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None and client.telegram_user_id == 2
        assert await people.therapist_by_user(s, 2) is None
        assert (await people.therapist_by_user(s, 1)) is not None
        assert await people.client_by_user(s, 1) is None


RACE_TRIALS = 30


async def test_two_accounts_opening_one_link_at_once_bind_one(sessions, cipher, clock) -> None:
    """Two accounts open the same link at the same moment, each on its own connection and
    transaction: exactly one of them is bound, every time."""
    therapist_id, _ = await make_client(sessions, cipher, clock)
    for trial in range(RACE_TRIALS):
        async with sessions() as s, s.begin():
            client = await people.add_client(
                s, cipher, therapist_id=therapist_id, name=f"Race {trial}", now=clock.now()
            )
            token = await people.create_invite(s, now=clock.now(), client_id=client.id)
            client_id = client.id

        async def open_link(user_id: int, token: str = token) -> bool:
            async with sessions() as s, s.begin():
                redeemed = await people.redeem_invite(
                    s, token, user_id=user_id, chat_id=user_id, now=clock.now()
                )
                return redeemed.ok

        first, second = 1000 + 2 * trial, 1001 + 2 * trial
        won = await asyncio.gather(open_link(first), open_link(second))
        assert sorted(won) == [False, True], f"trial {trial}: {won}"
        async with sessions() as s:
            bound = await s.scalar(select(Client.telegram_user_id).where(Client.id == client_id))
        assert bound == (first if won[0] else second), f"trial {trial}"


async def test_two_links_for_one_client_opened_at_once_bind_one(sessions, cipher, clock) -> None:
    """Two live links for one client (as made before a new link revoked the older ones), opened
    by two accounts at once: each claims its own link, and only one of them is bound; the
    loser's link is left unspent."""
    therapist_id, _ = await make_client(sessions, cipher, clock)
    for trial in range(RACE_TRIALS):
        async with sessions() as s, s.begin():
            client = await people.add_client(
                s, cipher, therapist_id=therapist_id, name=f"Twin {trial}", now=clock.now()
            )
            links = [people.new_token(), people.new_token()]
            for token in links:
                s.add(
                    Invite(
                        token_hash=people.hash_token(token),
                        client_id=client.id,
                        expires_at=clock.now() + timedelta(days=1),
                        created_at=clock.now(),
                    )
                )
            client_id = client.id

        async def open_link(user_id: int, token: str) -> str:
            async with sessions() as s, s.begin():
                redeemed = await people.redeem_invite(
                    s, token, user_id=user_id, chat_id=user_id, now=clock.now()
                )
                return redeemed.reason

        users = (2000 + 2 * trial, 2001 + 2 * trial)
        reasons = await asyncio.gather(
            *(open_link(u, tok) for u, tok in zip(users, links, strict=True))
        )
        assert sorted(reasons) == ["ok", "taken"], f"trial {trial}: {reasons}"
        async with sessions() as s:
            bound = await s.scalar(select(Client.telegram_user_id).where(Client.id == client_id))
            spent = await s.scalar(
                select(func.count()).where(
                    Invite.client_id == client_id, Invite.used_at.is_not(None)
                )
            )
        assert bound == users[reasons.index("ok")] and spent == 1, f"trial {trial}"


async def test_answers_are_kept_once(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        checkin = await checkins.open_checkin(
            s, client_id=client_id, instrument="rapport-brief", now=clock.now()
        )
        first = clock.advance(timedelta(minutes=5))
        assert await checkins.record_answer(
            s, cipher, checkin_id=checkin.id, item="heard", value=8, at=first
        )
        assert not await checkins.record_answer(
            s,
            cipher,
            checkin_id=checkin.id,
            item="heard",
            value=2,
            at=clock.advance(timedelta(minutes=1)),
        )
        await checkins.record_answer(
            s,
            cipher,
            checkin_id=checkin.id,
            item="comment",
            value=None,
            at=clock.now(),
            text="felt rushed today",
        )
    async with sessions() as s:
        answers = await checkins.answers_of(s, checkin.id)
        assert [(a.item, a.value) for a in answers] == [("heard", 8), ("comment", None)]
        assert cipher.decrypt(answers[1].text_enc or b"") == "felt rushed today"
        refreshed = await checkins.checkins_of(s, client_id)
        assert refreshed[0].first_answer_at == first


async def test_duplicate_update_ids_are_detected(sessions, clock) -> None:
    async with sessions() as s, s.begin():
        assert await retention.mark_update_processed(s, 1001, clock.now())
        assert not await retention.mark_update_processed(s, 1001, clock.now())
        assert await retention.mark_update_processed(s, 1002, clock.now())
    async with sessions() as s, s.begin():
        assert not await retention.mark_update_processed(s, 1002, clock.now())
        removed = await retention.forget_processed_updates(s, clock.now() + timedelta(seconds=1))
        assert removed == 2


async def test_a_message_queued_with_a_clients_columns_stores_both_and_nothing_else(
    sessions, cipher, clock
) -> None:
    """`outbox.queue_message(along=...)`: the message and the client's columns (one statement on
    PostgreSQL). The message's own columns (chat, status, therapist, time) share names with the
    client's and must not reach the client's row; the row claims itself as any other."""
    therapist_id, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s:
        before = await s.get(Client, client_id)
        assert before is not None
        kept = (before.status, before.chat_id, before.therapist_id, before.created_at)
    state = {"machine": "idle", "note": "ñ ✓"}
    for n, along in enumerate(({"conversation": state}, {"conversation": None, "language": "es"})):
        async with sessions() as s, s.begin():
            row_id, claimed = await outbox.queue_message(
                s, cipher, claim_by="w1", along=[due.client_write(client_id, along)],
                chat_id=77 + n, therapist_id=therapist_id, kind="text",
                payload={"text": f"hello {n}"}, now=clock.now() + timedelta(hours=1),
            )  # fmt: skip
        assert claimed
        async with sessions() as s:
            client = await s.get(Client, client_id)
            assert client is not None
            assert client.conversation == along["conversation"]
            assert (client.status, client.chat_id, client.therapist_id, client.created_at) == kept
            message = await s.get(OutboxMessage, row_id)
            assert message is not None
            assert (message.chat_id, message.status, message.claimed_by) == (
                77 + n,
                "pending",
                "w1",
            )
            assert outbox.payload_of(cipher, message) == {"text": f"hello {n}"}
    async with sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None and client.language == "es"
    with pytest.raises(RuntimeError):  # both or neither
        async with sessions() as s, s.begin():
            await outbox.queue_message(
                s, cipher, along=[due.client_write(client_id, {"conversation": state})],
                chat_id=99, kind="text", payload={"text": "lost"}, now=clock.now(),
            )  # fmt: skip
            raise RuntimeError("crash before the commit")
    async with sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None and client.conversation is None
        assert await s.scalar(select(func.count()).where(OutboxMessage.chat_id == 99)) == 0


async def test_outbox_claims_are_exclusive_and_ordered_per_chat(sessions, cipher, clock) -> None:
    async with sessions() as s, s.begin():
        for i in range(3):
            await outbox.enqueue(
                s, cipher, chat_id=7, kind="text", payload={"text": f"a{i}"}, now=clock.now()
            )
        await outbox.enqueue(
            s, cipher, chat_id=8, kind="text", payload={"text": "b0"}, now=clock.now()
        )
    lease = timedelta(minutes=1)

    async def claim(worker: str) -> list[int]:
        async with sessions() as s, s.begin():
            rows = await outbox.claim(s, now=clock.now(), lease=lease, worker=worker, limit=10)
            return [r.id for r in rows]

    got = await asyncio.gather(claim("w1"), claim("w2"))
    claimed = sorted(got[0] + got[1])
    # only the head of each chat's queue, and never by both workers
    assert claimed == [1, 4]
    assert not set(got[0]) & set(got[1])
    assert await claim("w3") == []  # both heads are leased
    clock.advance(lease + timedelta(seconds=1))
    async with sessions() as s, s.begin():
        taken = await outbox.claim(s, now=clock.now(), lease=lease, worker="w4", limit=10)
        assert sorted(r.id for r in taken) == [1, 4]  # a dead worker's lease is taken over
        for row in taken:
            assert outbox.payload_of(cipher, row)["text"] in ("a0", "b0")
            row.status = "sent"
    assert await claim("w5") == [2]


async def test_erase_leaves_nothing_of_the_client(sessions, cipher, clock) -> None:
    therapist_id, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        checkin = await checkins.open_checkin(
            s, client_id=client_id, instrument="x", now=clock.now()
        )
        await checkins.record_answer(
            s,
            cipher,
            checkin_id=checkin.id,
            item="comment",
            value=None,
            at=clock.now(),
            text="private words",
        )
        await checkins.add_event(s, client_id=client_id, kind="paused", at=clock.now())
        await people.add_session(
            s, client_id=client_id, starts_at=clock.now(), minutes=50, now=clock.now()
        )
        await people.create_invite(s, now=clock.now(), client_id=client_id)
        await outbox.enqueue(
            s,
            cipher,
            chat_id=5,
            kind="text",
            payload={"text": "hi"},
            now=clock.now(),
            client_id=client_id,
        )
        await audit.audit(
            s, actor="therapist:1", action="digest", now=clock.now(), client_id=client_id
        )
    async with sessions() as s, s.begin():
        assert await retention.erase_client(s, client_id, clock.now(), actor="cli")
        assert not await retention.erase_client(s, client_id, clock.now(), actor="cli")
    async with sessions() as s:
        for table in ("answer", "checkin", "client_event", "therapy_session", "invite", "outbox"):
            assert await s.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table
        assert await s.scalar(select(Client).where(Client.id == client_id)) is None
        log = await audit.audit_log(s, client_id)  # the read stays on record, bare
        assert [(e.action, e.detail) for e in log] == [("digest", None), ("client_erased", None)]
        assert await s.scalar(select(OutboxMessage)) is None
        assert len(await people.list_clients(s, therapist_id)) == 0


async def test_migrations_match_the_models(db_url: str) -> None:
    """A model change without a migration would break `rapport db upgrade` in production."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    engine = create_engine(db_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    await engine.dispose()
    assert diff == []


async def test_retention_and_sent_message_bodies_are_forgotten(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    old = clock.now()
    async with sessions() as s, s.begin():
        checkin = await checkins.open_checkin(s, client_id=client_id, instrument="x", now=old)
        await checkins.record_answer(
            s, cipher, checkin_id=checkin.id, item="heard", value=3, at=old
        )
        await checkins.add_event(s, client_id=client_id, kind="paused", at=old)
        sent = await outbox.enqueue(
            s, cipher, chat_id=1, kind="text", payload={"text": "a"}, now=old
        )
        sent.status, sent.sent_at = "sent", old
        await outbox.enqueue(s, cipher, chat_id=1, kind="text", payload={"text": "b"}, now=old)
    clock.advance(timedelta(days=40))
    async with sessions() as s, s.begin():
        recent = await checkins.open_checkin(
            s, client_id=client_id, instrument="x", now=clock.now()
        )
        assert await outbox.forget_sent_messages(s, clock.now() - timedelta(days=1)) == 1
        removed = await retention.apply_retention(s, clock.now() - timedelta(days=30))
    assert removed == {
        "answers": 1,
        "checkins": 1,
        "events": 1,
        "notes": 0,
        "sessions": 0,
        "failed_messages": 0,
    }
    async with sessions() as s:
        assert [c.id for c in await checkins.checkins_of(s, client_id)] == [recent.id]
        assert await outbox.pending_count(s) == 1  # unsent messages are never dropped


async def test_a_duplicate_mark_rolls_back_with_its_transaction(sessions, clock) -> None:
    """The processed-update mark must commit or roll back with the update's effects."""
    with pytest.raises(RuntimeError):
        async with sessions() as s, s.begin():
            assert await retention.mark_update_processed(s, 77, clock.now())
            raise RuntimeError("crash while handling the update")
    async with sessions() as s, s.begin():
        assert await retention.mark_update_processed(s, 77, clock.now())  # not marked: redelivered


async def test_an_update_is_marked_and_its_client_found_together(sessions, cipher, clock) -> None:
    """`people.mark_and_find_client` (one statement on PostgreSQL, two on SQLite): a new update
    finds its sender's client, or none for an account that is nobody's client; the same update
    again is a duplicate, found before any client is."""
    _, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        client = await s.get(Client, client_id)
        assert client is not None
        client.telegram_user_id = 4242
    async with sessions() as s, s.begin():
        fresh, found = await people.mark_and_find_client(s, 501, clock.now(), 4242)
        assert fresh and found is not None and found.client.id == client_id
        # With it, what handling the update reads: the therapist's name, the practice's settings.
        therapist = await s.get(Therapist, found.client.therapist_id)
        assert therapist is not None and found.therapist_name_enc == therapist.name_enc
        practice = await people.get_practice(s, clock.now())
        assert found.practice == people.PracticeSettings(
            practice.id, practice.language, practice.instrument, practice.safety_item,
            practice.crisis_resources, practice.safety_contact_id, practice.digest_comments,
        )  # fmt: skip
        assert await people.mark_and_find_client(s, 501, clock.now(), 4242) == (False, None)
        assert await people.mark_and_find_client(s, 502, clock.now(), 999) == (True, None)
        assert await people.mark_and_find_client(s, 502, clock.now(), 999) == (False, None)
    async with sessions() as s, s.begin():
        assert await people.mark_and_find_client(s, 501, clock.now(), 4242) == (False, None)
        assert not await retention.mark_update_processed(s, 502, clock.now())
        assert await retention.mark_update_processed(s, 503, clock.now())
        assert await people.mark_and_find_client(s, 503, clock.now(), 4242) == (False, None)
    with pytest.raises(RuntimeError):
        async with sessions() as s, s.begin():
            assert (await people.mark_and_find_client(s, 504, clock.now(), 4242))[0]
            raise RuntimeError("crash while handling the update")
    async with sessions() as s, s.begin():  # rolled back with it: the redelivery is new
        fresh, found = await people.mark_and_find_client(s, 504, clock.now(), 4242)
        assert fresh and found is not None


async def due_active_client(sessions, cipher, clock, telegram_user_id: int) -> int:
    """An active client bound to `telegram_user_id`, due a check-in now: their id."""
    _, client_id = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        client = await s.get(Client, client_id)
        assert client is not None
        client.telegram_user_id, client.status = telegram_user_id, "active"
        client.next_checkin_at = clock.now()
    return client_id


@pytest.mark.postgres
async def test_the_client_found_with_the_mark_is_locked_and_a_redelivery_waits(
    postgres_url: str, cipher, clock
) -> None:
    """On PostgreSQL the one statement locks the client's row as `client_by_user` does, and the
    same update delivered twice at once is handled once: the second waits for the first's
    transaction and then finds the mark."""
    engine = create_engine(postgres_url)
    sessions = session_factory(engine)
    try:
        await due_active_client(sessions, cipher, clock, 4242)
        async with sessions() as first, first.begin():
            assert await people.mark_and_find_client(first, 601, clock.now(), 4242) != (
                False,
                None,
            )
            async with sessions() as beat, beat.begin():
                assert await due.claim_due_clients(beat, clock.now(), 10) == []

            async def again() -> tuple[bool, Client | None]:
                async with sessions() as second, second.begin():
                    return await people.mark_and_find_client(second, 601, clock.now(), 4242)

            redelivered = asyncio.create_task(again())
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            for _ in range(500):  # until the second statement waits on a lock
                async with sessions() as watch:  # a new transaction: a fresh view of activity
                    if await watch.scalar(waiting):
                        break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the redelivery did not wait for the first")
            assert not redelivered.done()
        assert await redelivered == (False, None)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_client_whose_update_is_handled_is_not_claimed_by_the_heartbeat(
    postgres_url: str, cipher, clock
) -> None:
    """On PostgreSQL, handling an update locks the client's row: a heartbeat pass skips that
    client instead of changing their conversation state under the handler, and takes them once
    the update's transaction is over. (On SQLite the two transactions cannot overlap at all.)"""
    engine = create_engine(postgres_url)
    sessions = session_factory(engine)
    try:
        client_id = await due_active_client(sessions, cipher, clock, 4242)
        async with sessions() as handler, handler.begin():
            assert (await people.client_by_user(handler, 4242)) is not None
            async with sessions() as beat, beat.begin():
                assert await due.claim_due_clients(beat, clock.now(), 10) == []
        async with sessions() as beat, beat.begin():
            claimed = await due.claim_due_clients(beat, clock.now(), 10)
            assert [row.id for row in claimed] == [client_id]
    finally:
        await engine.dispose()


async def test_one_account_opening_a_therapist_and_a_client_link_at_once_binds_one(
    sessions, cipher, clock
) -> None:
    """One Telegram account opens a therapist's link and a client's link at the same moment
    (two replicas, two transactions): it becomes one of them, never both."""
    therapist_id, _ = await make_client(sessions, cipher, clock)
    for trial in range(RACE_TRIALS):
        async with sessions() as s, s.begin():
            client = await people.add_client(
                s, cipher, therapist_id=therapist_id, name=f"Both {trial}", now=clock.now()
            )
            other = await people.add_therapist(
                s, cipher, name=f"Therapist {trial}", timezone="UTC", now=clock.now()
            )
            client_link = await people.create_invite(s, now=clock.now(), client_id=client.id)
            therapist_link = await people.create_invite(s, now=clock.now(), therapist_id=other.id)

        async def open_link(token: str, user_id: int = 5000 + trial) -> bool:
            async with sessions() as s, s.begin():
                redeemed = await people.redeem_invite(
                    s, token, user_id=user_id, chat_id=user_id, now=clock.now()
                )
                return redeemed.ok

        won = await asyncio.gather(open_link(client_link), open_link(therapist_link))
        assert sorted(won) == [False, True], f"trial {trial}: {won}"
        async with sessions() as s:
            as_client = await s.scalar(
                select(func.count()).where(Client.telegram_user_id == 5000 + trial)
            )
            as_therapist = await s.scalar(
                select(func.count()).where(Therapist.telegram_user_id == 5000 + trial)
            )
        assert (as_client, as_therapist) in ((1, 0), (0, 1)), f"trial {trial}"


async def test_an_erased_clients_id_is_never_given_to_a_new_client(sessions, cipher, clock) -> None:
    """The audit trail keeps an erased client's bare id; a new client under the same id would
    inherit their history (SQLite reuses the highest id once its row is gone)."""
    therapist_id, first = await make_client(sessions, cipher, clock)
    async with sessions() as s, s.begin():
        await audit.audit(s, actor="therapist:1", action="digest", now=clock.now(), client_id=first)
        assert await retention.erase_client(s, first, clock.now(), actor="cli")
    async with sessions() as s, s.begin():
        newcomer = await people.add_client(
            s, cipher, therapist_id=therapist_id, name="New Person", now=clock.now()
        )
    assert newcomer.id != first
    async with sessions() as s:
        history = [e.action for e in await audit.audit_log(s, newcomer.id)]
    assert history == []


async def test_a_clients_answers_and_last_opening(sessions, cipher, clock) -> None:
    _, client_id = await make_client(sessions, cipher, clock)
    _, other_id = await make_client(sessions, cipher, clock)
    async with sessions() as s:
        assert await checkins.last_opened_of(s, client_id) is None
        assert await checkins.answers_of_client(s, client_id) == []
    first_at = clock.now()
    async with sessions() as s, s.begin():
        first = await checkins.open_checkin(s, client_id=client_id, instrument="x", now=first_at)
        theirs = await checkins.open_checkin(s, client_id=other_id, instrument="x", now=first_at)
        first.status = "answered"
        for checkin, value in ((first, 9), (theirs, 1)):
            await checkins.record_answer(
                s, cipher, checkin_id=checkin.id, item="heard", value=value, at=first_at
            )
    second_at = clock.advance(timedelta(days=3))
    async with sessions() as s, s.begin():
        second = await checkins.open_checkin(s, client_id=client_id, instrument="x", now=second_at)
        for item, value in (("goals", 6), ("heard", 7)):
            await checkins.record_answer(
                s, cipher, checkin_id=second.id, item=item, value=value, at=second_at
            )
        await checkins.record_answer(
            s, cipher, checkin_id=first.id, item="comment", value=None, at=second_at, text="ok"
        )
    async with sessions() as s:
        answers = await checkins.answers_of_client(s, client_id)
        assert [(a.checkin_id, a.item) for a in answers] == [
            (first.id, "heard"),
            (second.id, "goals"),
            (second.id, "heard"),
            (first.id, "comment"),
        ]  # as given, across check-ins, none of another client's
        assert await checkins.last_opened_of(s, client_id) == second_at
        assert await checkins.last_opened_of(s, other_id) == first_at


async def test_rows_queued_behind_a_claimed_row_of_the_same_transaction_claim_themselves(
    sessions, cipher, clock
) -> None:
    """`queue_message(behind=...)`: a message queued behind rows this transaction claimed for
    the same worker, chat and priority claims itself too (the sender sends them in order);
    anything else ahead of it in the chat still holds it back: a row of another worker, a row
    nobody claimed, a more urgent row of its own."""
    now = clock.now()

    async def queue(chat: int, behind: tuple[int, int] | None = None, **kw) -> tuple[int, bool]:
        return await outbox.queue_message(
            s, cipher, claim_by=kw.pop("worker", "w1"), behind=behind, chat_id=chat,
            kind="text", payload={"text": "x"}, now=now, **kw,
        )  # fmt: skip

    async with sessions() as s, s.begin():
        a, a_claimed = await queue(1)
        b, b_claimed = await queue(1, (a, a))
        c, c_claimed = await queue(1, (a, b))
        assert a_claimed and b_claimed and c_claimed
        d, d_claimed = await queue(1)  # not said to be behind them: it waits
        assert not d_claimed
        # Another worker's claimed row in the range still holds a row back.
        e, _ = await queue(2, worker="w2")
        f, f_claimed = await queue(2, (e, e))
        assert not f_claimed
        # So does a row nobody claimed, inside the range.
        g, g_claimed = await queue(3, worker=None)
        assert not g_claimed
        h, h_claimed = await queue(3, (g, g))
        assert not h_claimed
        # A more urgent row of our own, ahead, is not behind-able by a normal one.
        u, u_claimed = await queue(4, priority=outbox.URGENT)
        assert u_claimed
        n, n_claimed = await queue(4, (u, u))
        assert not n_claimed
    async with sessions() as s:
        rows = {
            row.id: row.claimed_by
            for row in await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        }
    assert [rows[i] for i in (a, b, c, d)] == ["w1", "w1", "w1", None]
    assert [rows[i] for i in (f, h, n)] == [None, None, None]
