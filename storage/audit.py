"""The audit log: who read or changed whose data, and when; never the data itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEvent


async def audit(
    s: AsyncSession,
    *,
    actor: str,
    action: str,
    now: datetime,
    client_id: int | None = None,
) -> None:
    """Record who did what to whose data, and when. Only the bare client id is kept, never
    their name, alias or words, so the row can outlive the client's erasure. (`detail` stays
    in the schema, unused: nothing in it could be trusted to be free of client data.)"""
    s.add(AuditEvent(at=now, actor=actor, action=action, client_id=client_id, detail=None))


async def audit_log(s: AsyncSession, client_id: int | None = None) -> Sequence[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if client_id is not None:
        query = query.where(AuditEvent.client_id == client_id)
    return (await s.scalars(query)).all()
