"""Erasure at the database: every row derived from the client goes, the audit trail stays bare.
Run against every backend (see `db_url`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import ManualClock
from storage import audit, checkins, outbox, people, retention
from storage.crypto import Cipher
from storage.models import OutboxMessage
from tests.storage.leftovers import bare_audit, leftovers


async def everything_about(
    s: AsyncSession, cipher: Cipher, now, therapist_id: int, client_id: int, words: str
) -> None:
    """One row of every kind a client leaves behind, with `words` wherever words can go."""
    checkin = await checkins.open_checkin(s, client_id=client_id, instrument="x", now=now)
    await checkins.record_answer(s, cipher, checkin_id=checkin.id, item="heard", value=4, at=now)
    await checkins.record_answer(
        s, cipher, checkin_id=checkin.id, item="comment", value=None, at=now, text=words
    )
    await checkins.add_event(s, client_id=client_id, kind="crisis", at=now, data={"source": "text"})
    await checkins.add_note(s, cipher, client_id=client_id, kind="talk", at=now, text=words)
    await checkins.add_note(
        s, cipher, client_id=client_id, kind="stop_reason", at=now, reason="other", text=words
    )
    await people.add_session(s, client_id=client_id, starts_at=now, minutes=50, now=now)
    await people.create_invite(s, now=now, client_id=client_id)
    for status in ("pending", "failed", "sent"):
        to_them = await outbox.enqueue(
            s, cipher, chat_id=100 + client_id, kind="text", payload={"text": words}, now=now,
            client_id=client_id,
        )  # fmt: skip
        digest = await outbox.enqueue(
            s, cipher, chat_id=7, kind="text", payload={"text": f"digest: {words}"}, now=now,
            therapist_id=therapist_id, about_client_id=client_id,
        )  # fmt: skip
        alert = await outbox.enqueue(
            s, cipher, chat_id=7, kind="urgent", payload={"text": "alert"}, now=now,
            therapist_id=therapist_id, about_client_id=client_id,
        )  # fmt: skip
        for row in (to_them, digest, alert):
            row.status = status
            row.sent_at = now if status == "sent" else None
    await audit.audit(s, actor=f"therapist:{therapist_id}", action="digest", now=now,
                     client_id=client_id)  # fmt: skip
    await audit.audit(s, actor="cli", action="export", now=now, client_id=client_id)


async def test_after_erasure_no_table_holds_the_client(sessions, cipher, clock: ManualClock):
    now = clock.now()
    async with sessions() as s, s.begin():
        therapist = await people.add_therapist(s, cipher, name="Dana Lee", timezone="UTC", now=now)
        alice = await people.add_client(
            s, cipher, therapist_id=therapist.id, name="Alice Smithereens", now=now
        )
        bob = await people.add_client(
            s, cipher, therapist_id=therapist.id, name="Bob Brown", now=now
        )
        await everything_about(s, cipher, now, therapist.id, alice.id, "Konstantin calls at night")
        await everything_about(s, cipher, now, therapist.id, bob.id, "work is hard")
        ids = (therapist.id, alice.id, bob.id)
    therapist_id, alice_id, bob_id = ids
    async with sessions() as s, s.begin():
        assert await retention.erase_client(s, alice_id, clock.now(), actor="cli") is not None
    async with sessions() as s:
        assert await leftovers(s, cipher, alice_id, ["Konstantin", "Smithereens"]) == []
        assert await bare_audit(s, alice_id) == [
            (f"therapist:{therapist_id}", "digest"),
            ("cli", "export"),
            ("cli", "client_erased"),
        ]
        # The other client keeps everything: 9 outbox rows, their reads on record.
        kept = select(func.count()).where(
            (OutboxMessage.client_id == bob_id) | (OutboxMessage.about_client_id == bob_id)
        )
        assert await s.scalar(kept) == 9
        assert len(await bare_audit(s, bob_id)) == 2
        assert await leftovers(s, cipher, bob_id, ["work is hard"]) != []


async def test_retention_removes_messages_that_failed_long_ago(sessions, cipher, clock) -> None:
    old = clock.now()
    async with sessions() as s, s.begin():
        for status in ("failed", "pending"):
            row = await outbox.enqueue(
                s, cipher, chat_id=1, kind="text", payload={"text": "x"}, now=old
            )
            row.status = status
    clock.advance(timedelta(days=40))
    async with sessions() as s, s.begin():
        recent = await outbox.enqueue(
            s, cipher, chat_id=2, kind="text", payload={"text": "y"}, now=clock.now()
        )
        recent.status = "failed"
        removed = await retention.apply_retention(s, clock.now() - timedelta(days=30))
    assert removed["failed_messages"] == 1
    async with sessions() as s:
        left = (await s.execute(select(OutboxMessage.chat_id, OutboxMessage.status))).all()
        assert sorted(left) == [(1, "pending"), (2, "failed")]
