"""What the database still holds of an erased client: every table, every column.

Generic on purpose: a table added later that references the client, or keeps an encrypted copy of
their words, is found without this file knowing about it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import LargeBinary, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import Cipher
from storage.models import AuditEvent, Base

AUDIT_COLUMNS = {"id", "at", "actor", "action", "client_id", "detail"}


def _references_client(column: Any) -> bool:
    return any(fk.column.table.name == "client" for fk in column.foreign_keys)


async def leftovers(s: AsyncSession, cipher: Cipher, client_id: int, words: list[str]) -> list[str]:
    """Each row that references the client (but the bare audit rows) or holds one of `words`
    (in clear or encrypted); empty when the erasure was complete."""
    found: list[str] = []
    for table in Base.metadata.sorted_tables:
        rows = (await s.execute(select(table))).mappings().all()
        for row in rows:
            where = f"{table.name} row {dict(row).get('id', '?')}"
            if table.name == "client" and row["id"] == client_id:
                found.append(where)
            for column in table.columns:
                value = row[column.key]
                if _references_client(column) and value == client_id:
                    found.append(f"{where}: {column.key}")
                if isinstance(column.type, LargeBinary) and value is not None:
                    try:
                        value = cipher.decrypt(value)
                    except Exception:
                        value = bytes(value).decode("utf-8", "replace")
                if any(word in str(value) for word in words):
                    found.append(f"{where}: {column.key} holds their words")
            audit_row = table.name == AuditEvent.__tablename__ and row["client_id"] == client_id
            if audit_row and row["detail"] is not None:
                found.append(f"{where}: audit detail {row['detail']!r}")
    return found


async def bare_audit(s: AsyncSession, client_id: int) -> list[tuple[str, str]]:
    """(actor, action) of the audit rows kept for the client, oldest first."""
    rows = await s.execute(
        select(AuditEvent.actor, AuditEvent.action)
        .where(AuditEvent.client_id == client_id)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return [(actor, action) for actor, action in rows]
