"""Two bot processes on one PostgreSQL database, as a platform runs them behind a load balancer:
both run the heartbeat and the outbox sender, one receives updates (one token allows one poller,
exactly as on Telegram). 300 check-ins and 50 digests fall due at once; each goes out once.
Replicas that both receive updates (webhook mode) are in `test_two_webhook_replicas_postgres`."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from insights.texts import text
from storage.models import AuditEvent, Checkin, OutboxMessage, TherapySession
from tests.e2e.harness import has_buttons
from tests.faults.seed import (
    Member,
    add_clients,
    add_sessions,
    add_therapist,
    make_digests_due,
    make_due,
)
from tests.faults.stage import Stage

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

THERAPISTS = 5
CHECKINS = 300
DIGESTS = 50


async def test_two_replicas_send_each_checkin_and_digest_exactly_once(pg_stage: Stage) -> None:
    stage = pg_stage
    now = stage.now()
    therapists: list[Member] = []
    due_clients: list[Member] = []
    digest_clients: list[Member] = []
    for n in range(THERAPISTS):
        therapist = await add_therapist(
            stage.sessions, stage.cipher, stage.sandbox, now, name=f"Therapist {n}"
        )
        therapists.append(therapist)
        due_clients += await add_clients(
            stage.sessions, stage.cipher, stage.sandbox, therapist,
            CHECKINS // THERAPISTS, now, prefix=f"T{n}C",
        )  # fmt: skip
        digest_clients += await add_clients(
            stage.sessions, stage.cipher, stage.sandbox, therapist,
            DIGESTS // THERAPISTS, now, prefix=f"T{n}D",
        )  # fmt: skip
    session_ids = await add_sessions(stage.sessions, digest_clients, now, digest_at=None)

    replica_a, replica_b = stage.bot("replica-a"), stage.bot("replica-b", polling=False)
    await replica_a.start()
    await replica_b.start()
    # The first send is held until both replicas have claimed messages: the senders really
    # compete for the same outbox, however the two processes happen to be scheduled.
    hold = stage.sandbox.faults.hold("sendMessage")
    # Everything falls due at once while both replicas are beating (bot clocks trail the
    # sandbox's by their start-up time, so "due" is set a little in the past).
    due = stage.now() - timedelta(minutes=5)
    await make_due(stage.sessions, [c.id for c in due_clients], due)
    await make_digests_due(stage.sessions, session_ids, due)

    async def both_claimed(s: AsyncSession) -> bool:
        claimers = await s.scalars(
            select(OutboxMessage.claimed_by).where(OutboxMessage.claimed_by.is_not(None)).distinct()
        )
        return len(set(claimers)) == 2

    await stage.until_db(both_claimed, what="both replicas claiming messages")
    hold.release()

    # the headline starts with the alias; the finding after it differs from client to client
    titles = {text("en", "digest.title", alias=c.alias, finding=""): c for c in digest_clients}

    def digest_titles() -> Counter[str]:
        seen: Counter[str] = Counter()
        for therapist in therapists:
            for message in therapist.user.inbox:
                first_line = (message.get("text") or "").split("\n", 1)[0]
                for title in titles:
                    if first_line.startswith(title):
                        seen[title] += 1
        return seen

    def all_out() -> bool:
        return len(digest_titles()) == DIGESTS and all(len(c.user.inbox) >= 2 for c in due_clients)

    await stage.sandbox.wait_until(all_out, timeout=150, what="every check-in and digest sent")
    await stage.until_outbox_settled()

    for client in due_clients:
        assert [has_buttons(m) for m in client.user.inbox] == [False, True]
    for client in digest_clients:
        assert client.user.inbox == [], "a digest client had nothing due"
    assert digest_titles() == Counter({title: 1 for title in titles})

    async with stage.sessions() as s:
        per_client = (
            await s.execute(select(Checkin.client_id, func.count()).group_by(Checkin.client_id))
        ).all()
        assert sorted(per_client) == sorted((c.id, 1) for c in due_clients)
        sent_digests = await s.scalar(
            select(func.count()).where(TherapySession.digest_sent_at.is_not(None))
        )
        assert sent_digests == DIGESTS
        audited = await s.scalar(select(func.count()).where(AuditEvent.action == "digest"))
        assert audited == DIGESTS
        workers = set(await s.scalars(select(OutboxMessage.claimed_by).distinct()))
        statuses = set(await s.scalars(select(OutboxMessage.status).distinct()))
    assert statuses == {"sent"}
    # Both senders claimed rows (the hold above waited for it), each under its own process.
    pids = {str(replica_a.pid), str(replica_b.pid)}
    assert {w.split("-")[-2] for w in workers if w} == pids
    for replica in (replica_a, replica_b):
        assert replica.error_lines() == [], replica.log_tail()
