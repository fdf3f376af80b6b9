"""One trip to aiosqlite's thread per SQL statement.

SQLAlchemy's aiosqlite adapter makes three or four trips per statement (open a cursor, execute,
fetch, close), each a hand-off to aiosqlite's worker thread and back through the event loop. On
a busy bot those hand-offs cost more CPU than SQLite's own work. This adapter does the same four
steps in one function run on the same thread, through the same aiosqlite queue: same driver,
same thread, same transaction semantics, a quarter of the hand-offs.

A short transaction (`short_transaction()`: an update's, the sender's) goes further: once its
BEGIN IMMEDIATE has the write lock, its statements, COMMIT and ROLLBACK run on the event loop's
own thread, with no hand-off at all. Holding the lock, a statement never waits on another
connection, so it takes microseconds and never blocks the loop for the busy timeout. The BEGIN
itself is tried on the loop without waiting (busy timeout 0 for that one statement); if another
process holds the lock it goes to aiosqlite's thread and waits there as before. Scans (the
heartbeat, exports, the console, the sender's look for due rows) are not short and keep the
thread. SQLite's automatic checkpoint (the WAL copied into the database and synced, every 1,000
pages or so: 6–15 ms here) is kept off the loop: a commit there puts it off, and one short
transaction in `CHECKPOINT_EVERY` commits on the thread, where it runs if due.

Wired in with `create_async_engine(..., module=dbapi())`, SQLAlchemy's documented way to give a
dialect another DB-API module. It relies on `aiosqlite.Connection._execute` (run a function on
the connection's thread), which SQLAlchemy's own adapter also reaches into; `available()` checks
for it, and without it the stock adapter is used.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

Outcome = tuple[Any, list[Any] | None, int, int]

CHECKPOINT_EVERY = 100
"""One short transaction in this many commits on aiosqlite's thread, where SQLite's automatic
checkpoint may run; the others commit on the event loop with it put off."""

_SHORT: ContextVar[asyncio.Task[Any] | None] = ContextVar("rapport_short_transaction", default=None)


@contextmanager
def short_transaction() -> Iterator[None]:
    """Transactions this task begins inside are a handful of small statements (see the module's
    doc). Tasks it starts meanwhile are not covered: they may do anything."""
    token = _SHORT.set(asyncio.current_task())
    try:
        yield
    finally:
        _SHORT.reset(token)


def _short() -> bool:
    owner = _SHORT.get()
    return owner is not None and owner is asyncio.current_task()


def _busy(error: sqlite3.Error) -> bool:
    """SQLITE_BUSY, or one of its extended codes: another connection holds the lock."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY


def _run(conn: sqlite3.Connection, begin: str | None, operation: str, parameters: Any) -> Outcome:
    """The whole statement, as the stock adapter's four trips do it, after the transaction's
    deferred BEGIN if it is the first; on aiosqlite's thread, or on the event loop for a short
    transaction holding the lock."""
    cursor = conn.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.lastrowid or 0, cursor.rowcount
    finally:
        cursor.close()


def _run_many(conn: sqlite3.Connection, begin: str | None, operation: str, seq: Any) -> Outcome:
    cursor = conn.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        cursor.executemany(operation, seq)
        return None, None, cursor.lastrowid or 0, cursor.rowcount
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _trip(self, run: Callable[..., Outcome], operation: Any, parameters: Any) -> Outcome:
        adapt = cast(OneTripConnection, self._adapt_connection)
        begin, adapt._begin = adapt._begin, None
        try:
            if begin is None:
                adapt.check_here()
            elif not adapt.here and _short() and adapt.lock_here(begin):
                begin = None
            # A BEGIN while a transaction runs here (sessions sharing an in-memory database's
            # one connection) goes to the thread, and fails there as it did before.
            if adapt.here and begin is None:
                return run(adapt.sqlite, None, operation, parameters)
            trip = self._connection._execute(run, adapt.sqlite, begin, operation, parameters)
            return cast(Outcome, self.await_(trip))
        except Exception as error:
            adapt._handle_exception(error)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        description, rows, lastrowid, rowcount = self._trip(_run, operation, parameters)
        self.description = description
        if description:
            self.lastrowid = self.rowcount = -1
            self._rows = deque(rows or ())
        else:
            self.lastrowid, self.rowcount = lastrowid, rowcount

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        _d, _r, self.lastrowid, self.rowcount = self._trip(_run_many, operation, seq_of_parameters)
        self.description = None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """Also defers the transaction's BEGIN to its first statement (one trip for both), and
    skips the COMMIT or ROLLBACK of a connection that ran nothing since the last one."""

    __slots__ = ("_begin", "_busy_ms", "_checkpoint_pages", "_commits_here", "_idle", "here")

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None
        self._idle = True  # nothing run since the last commit or rollback
        self._busy_ms: int | None = None  # the connection's busy timeout, read once
        self._checkpoint_pages: int | None = None  # its automatic checkpoint's threshold
        self._commits_here = 0
        self.here = False  # this transaction holds the lock and runs on the event loop

    def check_here(self) -> None:
        """SQLite may have ended the transaction on its own (a full disk, an I/O error): what
        follows is no longer under the lock, so it leaves the event loop."""
        if self.here and not self.sqlite.in_transaction:
            self.here = False

    def lock_here(self, begin: str) -> bool:
        """Run `begin` on the event loop without waiting for the lock: True if it took it,
        False if another connection holds it (then the thread runs it, and waits)."""
        conn = self.sqlite
        if self._busy_ms is None:
            self._busy_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute(begin)
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        self.here = True
        return True

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The driver's own connection: used on aiosqlite's thread, or on the event loop by a
        short transaction that holds the lock."""
        return cast(sqlite3.Connection, self._connection._conn)

    def begin_with(self, statement: str) -> None:
        self._begin = statement

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        self._idle = False
        if server_side:  # the stock cursor, which knows nothing of a deferred BEGIN
            self._send_begin()
            return super().cursor(server_side=True)
        return OneTripCursor(self)

    def _send_begin(self) -> None:
        begin, self._begin = self._begin, None
        if begin is not None:
            try:
                self.await_(self._connection._execute(self.sqlite.execute, begin))
            except Exception as error:
                self._handle_exception(error)

    def commit(self) -> None:
        self._begin = None
        if self.here:
            self._commits_here += 1
            if self._commits_here % CHECKPOINT_EVERY:
                self._commit_here()
                self.here, self._idle = False, True
                return
            # This one commits on the thread, where a due checkpoint copies the WAL into the
            # database and syncs it.
            self.here = False
        if not self._idle:
            super().commit()
            self._idle = True

    def _commit_here(self) -> None:
        """COMMIT on the event loop, without the automatic checkpoint it could run (a few MB
        copied and synced), which waits for the next commit on the thread."""
        conn = self.sqlite
        if self._checkpoint_pages is None:
            self._checkpoint_pages = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        try:
            conn.execute("PRAGMA wal_autocheckpoint=0")
            try:
                conn.commit()
            finally:
                conn.execute(f"PRAGMA wal_autocheckpoint={self._checkpoint_pages}")
        except Exception as error:  # still in the transaction: the rollback follows
            self._handle_exception(error)

    def rollback(self) -> None:
        # Also the pool's reset of every connection it gets back, most of them just committed.
        self._begin = None
        if self.here:
            try:
                self.sqlite.rollback()
            except Exception as error:  # not idle: the pool's reset tries again
                self._handle_exception(error)
            self.here, self._idle = False, True
        elif not self._idle:
            super().rollback()
            self._idle = True


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        # A short transaction uses the connection from the event loop's thread, never while
        # aiosqlite's thread does (each statement is awaited before the next).
        kw["check_same_thread"] = False
        stock = super().connect(*arg, **kw)
        if type(stock) is not AsyncAdapt_aiosqlite_connection:
            return stock  # the sync fallback: left as it is
        return OneTripConnection(self, stock._connection)


def available() -> bool:
    return callable(getattr(aiosqlite.Connection, "_execute", None))


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
