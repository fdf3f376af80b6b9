"""Liveness, per database, for `rapport health` and container orchestration.

A bot is alive when its `bot_instance` row in this database was refreshed recently (see
`storage.keyring`), so a bot serving another database on the same host says nothing about this
one. The bot also rewrites a small file at every heartbeat pass, named after its database, with
how many items the heartbeat has set aside after failures (`app.quarantine`); `rapport health`
mentions them without failing: the bot is alive and serving everyone else. Settings that leave
an urgent alert without a person to reach (no safety contact) are warned about the same way:
they need an admin, not a restart.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from app.alerts import reachable
from app.instances import HOST, gate, wall_now
from app.runtime import Runtime, Session
from flows.settings_rules import MAX_CRISIS_RESOURCES
from storage import keyring, people
from storage.db import database_place, ping
from storage.models import Practice


def alive_file(database_url: str) -> Path:
    """The file of this database on this host: the same for the bot and the CLI, whatever
    their working folders (a SQLite path is made absolute) and without the password."""
    digest = hashlib.sha256(database_place(database_url).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"rapport-alive-{digest}"


def beat(database_url: str, set_aside: int = 0) -> None:
    alive_file(database_url).write_text(f"{set_aside}\n")


def set_aside(database_url: str, max_age: float) -> int:
    """Items set aside at this host's last pass on this database (0 if unknown or stale)."""
    path = alive_file(database_url)
    try:
        if time.time() - path.stat().st_mtime > max_age:
            return 0
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


async def check(rt: Runtime, max_age: float) -> str | None:
    """None when healthy, else one line saying what is wrong. Keys that cannot read this
    database raise `keyring.KeyRefused`, as for every command."""
    try:
        async with rt.sessions() as s:
            await ping(s)
    except Exception as exc:  # any database failure means unhealthy
        return f"database unreachable: {type(exc).__name__}"
    await gate(rt, "read")
    async with rt.sessions() as s:
        bots = await keyring.instances(s)
    return keyring.liveness_problem(bots, wall_now(), timedelta(seconds=max_age), HOST)


async def warnings(rt: Runtime) -> list[str]:
    """What an admin should fix although the bot is healthy, one line each."""
    async with rt.sessions() as s:
        practice = await people.get_practice(s, rt.clock.now())
        too_long = [
            f"warning: the crisis resources for {lang!r} are longer than "
            f"{MAX_CRISIS_RESOURCES} characters: Telegram may refuse the crisis reply and the "
            f"alert; shorten them with `rapport practice set --crisis-resources {lang}=TEXT`"
            for lang, text in sorted(practice.crisis_resources.items())
            if len(text) > MAX_CRISIS_RESOURCES
        ]
        return too_long + await _contact_warnings(s, practice)


async def _contact_warnings(s: Session, practice: Practice) -> list[str]:
    contact_id = practice.safety_contact_id
    if contact_id is None:
        return [
            "warning: no safety contact: an urgent alert about a client whose therapist has "
            "not joined or blocked the bot reaches nobody; name one with "
            "`rapport practice set --safety-contact THERAPIST_ID`"
        ]
    contact = await people.therapist_by_id(s, contact_id)
    if contact is None or not reachable(contact):
        return [
            f"warning: the safety contact (therapist {contact_id}) cannot be reached in "
            "Telegram (not joined, or blocked the bot); name another with "
            "`rapport practice set --safety-contact THERAPIST_ID`"
        ]
    return []
