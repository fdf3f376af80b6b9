"""Two bot processes in webhook mode on one PostgreSQL database, behind a load balancer, as
production runs several replicas: both receive updates. The sandbox delivers webhook updates in
parallel, as Telegram does, and the balancer sends each client's updates to the replicas in turn,
so consecutive updates of one client are handled by different processes, and the two taps of a
double tap reach both replicas at the same moment. Within one process a user's updates are
serialised by an in-memory lock; across replicas only the database can do it.

Every client answers their open check-in with taps and typed numbers interleaved, double-taps
one answer, and ends with a comment or a skip. Afterwards each client's stored answers are
exactly what they gave, item by item, every reply reached its chat once, and both replicas
handled updates without logging an error."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.sandbox import SandboxUser
from tests.e2e.harness import describe_message, following, next_with_buttons
from tests.faults.answers import (
    HINT,
    Ledger,
    answer,
    button,
    is_thanks,
    item_of,
    parse_answer,
    type_number,
)
from tests.faults.balancer import Balancer, free_port
from tests.faults.conftest import opened_stage
from tests.faults.seed import Member, add_clients, add_therapist, make_due
from tests.faults.traffic import GUARD, delivered, duplicates

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLIENTS = 40


async def double_tap(
    user: SandboxUser, question: dict[str, Any], value: str, ledger: Ledger
) -> dict[str, Any]:
    """Tap the same answer twice before the bot replies: one answer, one next question."""
    data = button(question, value)
    user.skip_to_end()
    await user.tap(question, data)
    # Before the client's app redraws the message (its next question comes in its place).
    await user.tap(question, data, forge=True)
    ledger.tapped(data)
    return await next_with_buttons(user, timeout=GUARD, after=question)


def asking(question: dict[str, Any], item: str) -> dict[str, Any]:
    """`question`, after checking it asks `item`: the next question came once and in order."""
    assert item_of(question) == item, f"asked {item_of(question)} where {item} was due"
    return question


async def answer_checkin(n: int, client: Member, ledger: Ledger) -> None:
    """heard tapped, goals typed, approach double-tapped, overall typed, wellbeing tapped, the
    tension probe (and its follow-up for every other client), then a comment or a skip."""
    user = client.user
    question = asking(await next_with_buttons(user, timeout=GUARD), "heard")
    question = asking(await answer(user, question, str(n % 11), ledger), "goals")
    question = asking(await type_number(user, question, (n + 3) % 11, ledger), "approach")
    question = asking(await double_tap(user, question, str((n + 5) % 11), ledger), "overall")
    question = asking(await type_number(user, question, (n + 7) % 11, ledger), "wellbeing")
    question = asking(await answer(user, question, str((n + 9) % 11), ledger), "tension")
    if n % 2:  # yes, then its follow-up
        question = await answer(user, question, "1", ledger)
        assert item_of(question) != "comment", "no follow-up after a yes"
    question = asking(await answer(user, question, "0", ledger), "comment")
    user.skip_to_end()
    if n % 2:
        await user.tap(question, button(question, "s"))
        shown = await following(user, question, GUARD)
        assert is_thanks(shown), "thanked in place: " + "; ".join(
            describe_message(m) for m in user.inbox[-4:]
        )
    else:
        found = parse_answer(button(question, "s"))
        assert found is not None
        comment = f"client {n} wrote this"
        await user.send(comment)
        ledger.wrote(found[0], comment)
        await user.next_message(timeout=GUARD, predicate=is_thanks)


async def test_two_webhook_replicas_file_every_answer_under_its_item_once(
    postgres_url: str, tmp_path: Path
) -> None:
    async with opened_stage(postgres_url, tmp_path, webhook_parallel=True) as stage:
        now = stage.now()
        therapist = await add_therapist(stage.sessions, stage.cipher, stage.sandbox, now)
        clients = await add_clients(
            stage.sessions, stage.cipher, stage.sandbox, therapist, CLIENTS, now, prefix="W"
        )
        ports = [free_port(), free_port()]
        balancer = Balancer(ports)
        await balancer.start()
        try:
            replicas = [
                stage.bot(f"replica-{name}", webhook=(balancer.url, f"127.0.0.1:{port}"))
                for name, port in zip("ab", ports, strict=True)
            ]
            for replica in replicas:
                await replica.start()
            await make_due(
                stage.sessions, [c.id for c in clients], stage.now() - timedelta(minutes=5)
            )

            ledger = Ledger()
            started = time.monotonic()
            await asyncio.gather(*(answer_checkin(n, c, ledger) for n, c in enumerate(clients)))
            elapsed = time.monotonic() - started
            await stage.until_outbox_settled()
        finally:
            await balancer.stop()

        await ledger.assert_stored(stage.sessions, stage.cipher)
        assert len(ledger.given) == CLIENTS
        # A hint repeated is a new reply to a number typed again, not a reply sent twice.
        replies = {k: n for k, n in delivered(stage.sandbox).items() if HINT not in k[1]}
        assert duplicates(Counter(replies)) == 0, "a reply went out twice"
        for client in clients:
            assert set(balancer.routes[client.user.id]) == {0, 1}, client.alias
        assert balancer.accepted[0] > 0 and balancer.accepted[1] > 0, balancer.accepted
        assert balancer.refused == {}, balancer.refused
        print(f"answered in {elapsed:.1f} s; updates per replica {dict(balancer.accepted)}")
        for replica in replicas:
            assert replica.error_lines() == [], replica.log_tail()
