"""Engine, session factory and schema migration.

SQLite gets WAL, a busy timeout, foreign keys and explicit `BEGIN IMMEDIATE` transactions on every
connection, so several processes (a bot and the CLI, or two replicas in tests) share one file
safely and SAVEPOINTs behave as on PostgreSQL; one connection per process, through aiosqlite with
one thread hand-off per statement, and none for a short transaction once it holds the write lock
(`storage.aiosqlite_cursor`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    InvalidatePoolError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import await_only

from storage import aiosqlite_cursor
from storage.aiosqlite_cursor import short_transaction as short_transaction

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def _connect_errors() -> tuple[type[Exception], ...]:
    """What opening or reaching a database can raise: SQLAlchemy's errors, the OS's, and the
    errors asyncpg raises unwrapped while connecting (a database or role that does not exist)."""
    errors: list[type[Exception]] = [OSError, SQLAlchemyError]
    try:
        import asyncpg
    except ImportError:  # the PostgreSQL extra is not installed
        return tuple(errors)
    return (*errors, asyncpg.PostgresError, asyncpg.InterfaceError)


DATABASE_ERRORS: tuple[type[Exception], ...] = _connect_errors()


def is_transient(exc: BaseException) -> bool:
    """A database failure that any work would meet (the server is down or restarting, a lock
    timed out, no pooled connection came free), rather than one caused by the work itself."""
    if isinstance(
        exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout | OSError
    ):
        return True
    return connection_lost(exc)


def connection_lost(exc: BaseException) -> bool:
    """The connection died under a transaction (a restarted server): the transaction did not
    happen, and the pool gives a new connection for the next one."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


Conflict = IntegrityError
"""Two transactions wrote the same unique row (or a row broke a constraint): the loser's
transaction is rolled back, and the work may be tried again."""

POOL_SIZE = 20
"""Connections per process on a server database (PostgreSQL)."""
SQLITE_BUSY_SECONDS = 30
"""How long a SQLite transaction waits for another process's write lock before failing."""
SQLITE_QUEUE_SECONDS = 300
"""How long a transaction waits for the process's SQLite connection (updates, the sender and
the heartbeat queue for it) before failing."""


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def database_name(url: str) -> str | None:
    """The database part of a URL: a SQLite file's path, a server database's name."""
    return make_url(url).database


def database_place(url: str) -> str:
    """Where a URL's database is, the same whatever the working folder (a SQLite path made
    absolute) and without the password: two processes on one host compare it."""
    parsed = make_url(url)
    if is_sqlite(url) and parsed.database not in (None, "", ":memory:"):
        return f"sqlite:{Path(parsed.database or '').expanduser().resolve()}"
    # Masked, not removed: `URL.set(password=None)` leaves the password as it is.
    return parsed.render_as_string(hide_password=True)


async def ping(s: AsyncSession) -> None:
    """The smallest round trip: raises if the database cannot be reached."""
    await s.execute(text("SELECT 1"))


def _sqlite_file(url: str) -> bool:
    """A database in a file, not in memory (which SQLAlchemy gives a single static connection)."""
    parsed = make_url(url)
    database = parsed.database or ""
    return database not in ("", ":memory:") and parsed.query.get("mode") != "memory"


PRIVATE_FILE = 0o600
"""Mode of the SQLite file and its -wal/-shm companions: names and answers, even encrypted, are
nobody else's business on the host."""


def private_sqlite_file(url: str) -> None:
    """Create the database file readable by its owner alone before SQLite does (SQLite would use
    0644 less the umask), and take group and world access off an existing one. The -wal and -shm
    files SQLite makes later copy the database file's mode; existing ones are tightened here."""
    if not _sqlite_file(url):
        return
    database = make_url(url).database or ""
    if database.startswith("file:"):
        return  # a URI filename: SQLite opens it, with its own options
    path = Path(database)
    if not path.exists() and path.parent.is_dir():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # not ours: leave it
            if each.stat().st_mode & 0o077:
                each.chmod(PRIVATE_FILE)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # A failed statement's error would otherwise quote its parameters (answers, conversation
    # state, user ids), and errors end up in logs.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        private_sqlite_file(url)
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_SECONDS})
        # One connection per process. SQLite has one writer at a time and every transaction
        # here writes (BEGIN IMMEDIATE), so a second connection would only wait in SQLite's busy
        # handler, which polls with sleeps of up to 100 ms; transactions queued for the one
        # connection are handed it the moment it is free, in order. Other processes (the CLI,
        # a second bot) still meet the busy timeout.
        if _sqlite_file(url) and "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 1)
            kwargs.setdefault("max_overflow", 0)
            # Queued, a transaction may wait for each one ahead of it to meet the busy timeout.
            kwargs.setdefault("pool_timeout", SQLITE_QUEUE_SECONDS)
        if make_url(url).get_driver_name() == "aiosqlite" and aiosqlite_cursor.available():
            kwargs.setdefault("module", aiosqlite_cursor.dbapi())
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # The driver's own implicit BEGIN breaks SAVEPOINTs (a RELEASE would commit on its
            # own); SQLAlchemy emits the BEGIN instead, see `_sqlite_begin`.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: a transaction that reads and then writes
            # waits for the lock (busy_timeout) instead of failing with "database is locked".
            # With the one-trip adapter the BEGIN travels with the transaction's first statement.
            driver = conn.connection.dbapi_connection
            if isinstance(driver, aiosqlite_cursor.OneTripConnection):
                driver.begin_with("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # Room for the updates handled at once (and the sender and heartbeat beside them), kept
    # open: overflow connections are closed as they come back, so a burst above the pool's
    # size would open and close connections (each a handshake and type set-up) every time.
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", 0)
    if make_url(url).get_driver_name() == "asyncpg" and "pool_pre_ping" not in kwargs:
        engine = create_async_engine(url, **kwargs)
        _ping_on_checkout(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _ping_on_checkout(engine: AsyncEngine) -> None:
    """Each pooled connection is tested before use (a restarted server, a killed backend, a
    connection dropped on the way), in one round trip, unless it came back to the pool within
    the last `RECENTLY_USED` seconds and its socket is still open: then the probe would only
    repeat what the last transaction showed. SQLAlchemy's own pre-ping wraps its probe in BEGIN
    and ROLLBACK (for PgBouncer's transaction mode): three round trips before every transaction.
    As with it, a dead connection invalidates the whole pool (its neighbours died with it)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        driver = dbapi_conn.driver_connection
        try:
            if driver.is_closed():
                raise ConnectionError("the connection is closed")
            returned = record.info.get(_RETURNED_AT)
            if returned is None or time.monotonic() - returned > RECENTLY_USED:
                await_only(driver.fetchrow(";"))
        except Exception as exc:
            raise InvalidatePoolError(f"connection lost: {type(exc).__name__}") from exc


async def open_pool(engine: AsyncEngine) -> None:
    """Open a server database's pooled connections now, at start, rather than in the first burst
    of updates: each costs a handshake and SQLAlchemy's type set-up, several round trips that
    would otherwise fall on the clients who answer first. SQLite's one connection opens on use.

    Only a database that takes none of them stops the start (raising why): one that takes fewer
    (a server's connection limit, shared with other replicas) is said once, and the rest open
    when needed, as they would have without this."""
    if engine.dialect.name == "sqlite":
        return
    size = getattr(engine.pool, "size", lambda: 0)()
    opened = await asyncio.gather(
        *(engine.connect().start() for _ in range(size)), return_exceptions=True
    )
    failed = [each for each in opened if isinstance(each, BaseException)]
    for each in opened:
        if not isinstance(each, BaseException):
            await each.close()
    if failed and len(failed) == len(opened):
        raise failed[0]
    if failed:
        log.warning(
            "database pool: %d of %d connections opened at start (%s)",
            size - len(failed),
            size,
            type(failed[0]).__name__,
        )


RECENTLY_USED = 1.0
_RETURNED_AT = "rapport.returned_at"


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Create or migrate the schema. Blocking: call from sync code or through `upgrade_async`."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)
