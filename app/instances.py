"""This bot process in the database (`bot_instance`), and the key check every process makes.

A bot registers at start, in the same transaction as its key check (`storage.keyring.admit`), so
nothing it does afterwards can happen under a key set the database refused; it refreshes its row
at every heartbeat interval and removes it at a clean stop. Commands check their keys the same
way before they touch data. Times here are the wall clock's, for the reason given in
`storage.keyring`.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from datetime import UTC, datetime

from app.runtime import Runtime
from flows.parsing import is_number
from storage import keyring

log = logging.getLogger(__name__)

HOST = socket.gethostname()[:40]


def wall_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """host:pid:random, unique per process (and per bot when a test runs several in one)."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def exited(instance_id: str) -> bool:
    """A bot of this host whose process no longer exists (killed, crashed): not alive, however
    recent its row. Bots of other hosts are judged by their row's age alone."""
    parts = instance_id.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != HOST or not is_number(parts[1]):
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


async def gate(rt: Runtime, mode: keyring.Mode) -> None:
    """Raise `keyring.KeyRefused` unless this process's keys may `mode` this database."""
    async with rt.sessions() as s, s.begin():
        await keyring.admit(s, rt.cipher, now=wall_now(), mode=mode, exited=exited)


async def register(rt: Runtime, instance_id: str) -> None:
    """At a bot's start, before anything else touches the database: check its keys (a bot
    writes) and record it as running. Raises `keyring.KeyRefused`, having written nothing."""
    async with rt.sessions() as s, s.begin():
        await keyring.admit(
            s, rt.cipher, now=wall_now(), mode="write", exited=exited, register=instance_id
        )


REFRESH_EVERY = 5.0
"""Wall seconds between two refreshes of a bot's row, however fast a time-lapse heartbeat runs
(far inside `keyring.LIVE_FOR`)."""
_refreshed: dict[str, float] = {}


async def refresh(rt: Runtime, instance_id: str) -> None:
    """The bot is still alive (at heartbeat intervals, even while a long pass runs)."""
    last = _refreshed.get(instance_id)
    if last is not None and time.monotonic() - last < REFRESH_EVERY:
        return
    try:
        async with rt.sessions() as s, s.begin():
            await keyring.seen(s, instance_id, rt.cipher, wall_now())
    except Exception as exc:  # the next interval tries again; the pass itself reports failures
        log.warning("could not record the bot as alive: %s", type(exc).__name__)
    else:
        _refreshed[instance_id] = time.monotonic()


async def forget(rt: Runtime, instance_id: str) -> None:
    """A clean stop: the bot no longer counts as running (a crash leaves its row to age out)."""
    _refreshed.pop(instance_id, None)
    try:
        async with rt.sessions() as s, s.begin():
            await keyring.forget(s, instance_id)
    except Exception as exc:
        log.warning("could not record the bot as stopped: %s", type(exc).__name__)
