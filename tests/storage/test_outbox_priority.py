"""Claim order: urgent rows first, ahead of non-urgent rows queued earlier for the same chat, in
order among themselves. Run against every backend (see `db_url`)."""

from __future__ import annotations

from datetime import timedelta

from storage import outbox


async def test_urgent_rows_are_claimed_first_and_overtake_their_chat(
    sessions, cipher, clock
) -> None:
    async with sessions() as s, s.begin():
        ids = {}
        for name, chat, kind in (
            ("a0", 7, "text"), ("a1", 7, "text"), ("b0", 8, "text"),
            ("u0", 7, "urgent"), ("u1", 7, "urgent"), ("c0", 9, "text"),
        ):  # fmt: skip
            row = await outbox.enqueue(
                s, cipher, chat_id=chat, kind=kind, payload={"text": name}, now=clock.now()
            )
            ids[row.id] = name
    lease = timedelta(minutes=1)

    async def claim(limit: int = 10, **kw: bool) -> list[str]:
        async with sessions() as s, s.begin():
            rows = await outbox.claim_rows(
                s, now=clock.now(), lease=lease, worker="w", limit=limit, **kw
            )
            return [ids[r.id] for r in rows]

    async def sent(*names: str) -> None:
        async with sessions() as s, s.begin():
            done = [(i, None) for i, n in ids.items() if n in names]
            await outbox.mark_sent(s, done, clock.now())

    assert await claim(limit=1) == ["u0"]  # the most urgent row of all, though queued late
    # Chat 7's non-urgent rows wait behind its urgent ones; u1 waits behind u0.
    assert await claim() == ["b0", "c0"]
    await sent("u0")
    assert await claim(urgent_only=True) == ["u1"]
    await sent("u1", "b0", "c0")
    assert await claim() == ["a0"]


async def test_an_urgent_row_claims_itself_past_queued_messages(sessions, cipher, clock) -> None:
    """`queue_message` with a worker: an urgent row heads its chat despite non-urgent rows."""
    async with sessions() as s, s.begin():
        await outbox.enqueue(
            s, cipher, chat_id=7, kind="text", payload={"text": "x"}, now=clock.now()
        )
        _, normal = await outbox.queue_message(
            s, cipher, chat_id=7, kind="text", payload={"text": "y"}, now=clock.now(), claim_by="w"
        )
        _, urgent = await outbox.queue_message(
            s, cipher, chat_id=7, kind="text", payload={"text": "z"}, now=clock.now(),
            claim_by="w", priority=outbox.URGENT,
        )  # fmt: skip
        _, second = await outbox.queue_message(
            s, cipher, chat_id=7, kind="urgent", payload={"text": "!"}, now=clock.now(),
            claim_by="w",
        )  # fmt: skip
    assert (normal, urgent, second) == (False, True, False)
