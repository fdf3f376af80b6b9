"""Another session holding a PostgreSQL table lock (a migration, an admin's `LOCK TABLE`):
readers go on, and every writer to that table waits inside whatever transaction it is in, so
a test can freeze a transaction half-way and see it frozen."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import create_engine


class TableLock:
    """`LOCK TABLE <table> IN SHARE MODE` on a connection of its own, held until `release`."""

    def __init__(self, url: str, table: str) -> None:
        self._engine = create_engine(url)
        self._table = table
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> None:
        self._conn = await self._engine.connect()
        await self._conn.begin()
        await self._conn.execute(text(f"LOCK TABLE {self._table} IN SHARE MODE"))

    async def waiting(self) -> list[tuple[int, bool]]:
        """(pid, has written) of each other session waiting for this lock: a transaction that
        has written already holds a transaction id."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT a.pid, a.backend_xid IS NOT NULL FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.relation = CAST(:table AS regclass) AND NOT l.granted"
                ),
                {"table": self._table},
            )
            return [(int(pid), bool(wrote)) for pid, wrote in rows.all()]

    async def session_alive(self, pid: int) -> bool:
        async with self._engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            return bool(found)

    async def release(self) -> None:
        if self._conn is not None:
            await self._conn.rollback()
            await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self.release()
        await self._engine.dispose()
