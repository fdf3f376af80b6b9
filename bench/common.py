"""What every benchmark shares: the databases it runs on, a fixed daytime clock, percentiles, and
the one-line summary that `bench/run_all.py` collects.

A benchmark never asserts: it measures, prints its figures, and ends with
`<name>: <figure> (target <target>) OK|MISS`. Everything it starts listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.clock import Clock, ManualClock
from app.config import load_settings
from app.runtime import Runtime
from devtools.sandbox import DEFAULT_TOKEN
from storage.crypto import Cipher
from storage.db import create_engine, upgrade_async

REPO = Path(__file__).resolve().parent.parent
# A Monday, 10:00 UTC (11:00 in Berlin): outside every quiet hour, so nothing due waits for morning.
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TIMEZONE = "Europe/Berlin"
# A child process of a benchmark inherits the key so it can read what its parent wrote.
BENCH_KEY = os.environ.get("RAPPORT_BENCH_KEY") or Cipher.generate_key()
POSTGRES_ENVS = ("RAPPORT_BENCH_POSTGRES_URL", "RAPPORT_TEST_POSTGRES_URL")


def postgres_base_url() -> str | None:
    """The PostgreSQL server to make throw-away databases on, if one is configured."""
    for name in POSTGRES_ENVS:
        value = os.environ.get(name)
        if value:
            return value
    return None


def backends() -> list[str]:
    """SQLite, and PostgreSQL when its URL is set; RAPPORT_BENCH_BACKENDS (e.g. `postgres`)
    picks some of them."""
    found = ["sqlite", "postgres"] if postgres_base_url() else ["sqlite"]
    chosen = os.environ.get("RAPPORT_BENCH_BACKENDS")
    return [b for b in found if b in chosen.split(",")] if chosen else found


def make_runtime(
    database_url: str,
    clock: Clock | None = None,
    api_url: str = "http://127.0.0.1:9/bot",
    **settings: object,
) -> Runtime:
    """The runtime a benchmark drives directly (admin calls, heartbeat passes)."""
    conf = load_settings(
        database_url=database_url,
        telegram_token=DEFAULT_TOKEN,
        telegram_api_url=api_url,
        encryption_key=BENCH_KEY,
        **settings,
    )
    return Runtime.create(conf, clock=clock or ManualClock(START), cipher=Cipher(BENCH_KEY))


def bot_environment(database_url: str, api_url: str, **settings: object) -> dict[str, str]:
    """Environment for a `rapport run` process: the settings as `RAPPORT_*` variables (the key
    and token travel in the environment, never on a command line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update(
        RAPPORT_DATABASE_URL=database_url,
        RAPPORT_TELEGRAM_TOKEN=DEFAULT_TOKEN,
        RAPPORT_TELEGRAM_API_URL=api_url,
        RAPPORT_ENCRYPTION_KEY=BENCH_KEY,
        RAPPORT_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
    )
    env.update({f"RAPPORT_{key.upper()}": str(value) for key, value in settings.items()})
    return env


def timelapse_clock(start: datetime = START) -> str:
    """`RAPPORT_CLOCK` for a bot process: real-time speed, but starting at a fixed daytime instant
    so that results do not depend on the hour the benchmark runs at."""
    return f"timelapse:{start.isoformat()}x1"


@contextlib.asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    folder = tempfile.mkdtemp(prefix="rapport-bench-")
    url = f"sqlite+aiosqlite:///{folder}/bench.db"
    try:
        await upgrade_async(url)
        yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def postgres_database(base_url: str) -> AsyncIterator[str]:
    """A freshly migrated database on the configured server, dropped afterwards."""
    name = f"rapport_bench_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    await admin(f'CREATE DATABASE "{name}"')
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade_async(url)
        yield url
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database(backend: str) -> contextlib.AbstractAsyncContextManager[str]:
    if backend == "sqlite":
        return sqlite_database()
    base = postgres_base_url()
    if base is None:
        raise RuntimeError(f"PostgreSQL needs one of {', '.join(POSTGRES_ENVS)}")
    return postgres_database(base)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISS"


def summary(name: str, figure: str, target: str, ok: bool) -> str:
    """The last line every benchmark prints; `run_all.py` reads it back."""
    return f"{name}: {figure} (target {target}) {verdict(ok)}"


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as took: ...` then `took[0]` is the wall time in seconds."""
    result: list[float] = []
    began = time.perf_counter()
    try:
        yield result
    finally:
        result.append(time.perf_counter() - began)
