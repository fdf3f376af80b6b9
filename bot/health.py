"""Liveness for container orchestration: the bot rewrites a file on every heartbeat pass, and
`rapport health` checks that file's age and that the database answers. The file also holds how
many items the heartbeat has set aside after failures (`bot.quarantine`), which `rapport health`
mentions without failing: the bot is alive and serving everyone else."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bot.runtime import Runtime

ALIVE_FILE = Path(tempfile.gettempdir()) / "rapport-alive"


def beat(set_aside: int = 0) -> None:
    ALIVE_FILE.write_text(f"{set_aside}\n")


def set_aside() -> int:
    """Items set aside at the last pass (0 if unknown)."""
    try:
        return int(ALIVE_FILE.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


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
