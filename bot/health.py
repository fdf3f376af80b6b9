"""Liveness for container orchestration: the bot touches a file on every heartbeat pass, and
`rapport health` checks that file's age and that the database answers."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bot.runtime import Runtime

ALIVE_FILE = Path(tempfile.gettempdir()) / "rapport-alive"


def beat() -> None:
    ALIVE_FILE.touch()


async def check(rt: Runtime, max_age: float) -> str | None:
    """None when healthy, else one line saying what is wrong."""
    try:
        async with rt.sessions() as s:
            await s.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means unhealthy
        return f"database unreachable: {type(exc).__name__}"
    if not ALIVE_FILE.exists():
        return "no heartbeat yet"
    age = time.time() - ALIVE_FILE.stat().st_mtime
    if age > max_age:
        return f"last heartbeat {age:.0f} s ago"
    return None
