"""Another program holding SQLite's write lock (a backup, a migration, an admin's shell)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine


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

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        """A write inside the lock's transaction: others see it once the lock is released."""
        self._conn.execute(sql, params)

    def count(self, table: str) -> int:
        """Rows in `table`, read through the lock itself (every other transaction of the bot's
        engine begins IMMEDIATE, so even its reads wait for the lock)."""
        return int(self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def release(self) -> None:
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class TransactionsUnderway:
    """Transactions an engine has asked a connection for and not given it back. While another
    program holds the write lock, these are the engine's transactions waiting for it, whichever
    layer does the waiting: the one holding the process's single SQLite connection waits in
    SQLite (its first statement takes the lock), the others wait for that connection. A
    request that fails is not counted down: a test using this fails on the error anyway."""

    def __init__(self, engine: AsyncEngine, notify: Callable[[], None]) -> None:
        self._pool: Any = engine.sync_engine.pool
        self._notify = notify  # wakes condition waits, e.g. the sandbox's change signal
        self.count = int(self._pool.checkedout())
        connect = self._pool.connect

        def counted() -> Any:
            self.count += 1
            self._notify()
            return connect()

        self._pool.connect = counted
        event.listen(self._pool, "checkin", self._returned)

    def _returned(self, *_args: Any) -> None:
        self.count -= 1
        self._notify()

    def close(self) -> None:
        del self._pool.connect  # the class's own method again
        event.remove(self._pool, "checkin", self._returned)
