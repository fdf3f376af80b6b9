"""Erasing a client: the one code path behind `rapport client erase` and the client's `/delete`.

The database side is `retention.erase_client` (every row derived from the client, the audit trail
kept without client data). What a running process holds by id is dropped here too: the
heartbeat's set-aside items and the sender's handed-over messages. A message the sender has
already claimed or been handed is checked against the database just before it goes out
(`OutboxSender`), which also covers an erasure made by another process, such as the CLI.
"""

from __future__ import annotations

from datetime import datetime

from app.quarantine import DIGEST, EXPIRY, NUDGE, OPENING, RESUMPTION
from app.runtime import Runtime, Session
from storage import retention


async def erase_client(s: Session, rt: Runtime, client_id: int, now: datetime, actor: str) -> bool:
    """Erase the client inside the caller's transaction; False if there is no such client."""
    erased = await retention.erase_client(s, client_id, now, actor)
    if erased is None:
        return False
    forget(rt, erased)
    return True


def forget(rt: Runtime, erased: retention.Erased) -> None:
    """Drop what this process holds in memory about the erased client. Done before the commit:
    should the transaction roll back, the rows are still there and are found again (a held
    item is retried, a dropped message is sent once its claim lapses)."""
    for kind in (OPENING, RESUMPTION):
        rt.quarantine.forget(kind, (erased.client_id,))
    for kind in (NUDGE, EXPIRY):
        rt.quarantine.forget(kind, erased.checkin_ids)
    rt.quarantine.forget(DIGEST, erased.session_ids)
    if rt.handoff is not None and erased.outbox_ids:
        rt.handoff.drop(set(erased.outbox_ids))
