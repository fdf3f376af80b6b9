"""Another program holding SQLite's write lock (a backup, a migration, an admin's shell)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    assert database, f"not a SQLite file URL: {url}"
    return Path(database)


class WriteLock:
    """A write transaction on a separate connection: readers go on, every writer waits, and
    the snapshot every waiting writer read before is stale once it commits."""

    def __init__(self, url: str) -> None:
        self._conn = sqlite3.connect(
            sqlite_path(url), timeout=30, isolation_level=None, check_same_thread=False
        )

    async def acquire(self) -> None:
        # Blocks until a writer that is half-way through has committed: run it off the loop.
        await asyncio.to_thread(self._conn.execute, "BEGIN IMMEDIATE")
        self._conn.execute("UPDATE practice SET name = name")

    def count(self, table: str) -> int:
        """Rows in `table`, read through the lock itself (every other transaction of the bot's
        engine begins IMMEDIATE, so even its reads wait for the lock)."""
        return int(self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def release(self) -> None:
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()
