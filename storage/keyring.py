"""Which keys this database holds data under, and which running bots can read which keys.

Two rules keep a key set from eating data:

* A process may open the database only if its keys open every **key canary** (`key_canary`: a
  known text sealed with each key that has written here; the key itself is never stored).
  A wrong key is refused before it reads or writes anything, in one line.
* A process may write under a key only if **every live bot can read it** (`bot_instance`: each
  running bot's key ids, refreshed every heartbeat pass). So nothing is ever sealed under a key a
  running bot lacks, and `rapport keys rotate` also waits until every live bot encrypts with the
  new key (otherwise they would go on sealing under the old one, which could then not be dropped).

A database from before the canaries (encrypted rows, no canary) adopts a key set that opens a
sample of its rows, oldest and newest of each encrypted column, and refuses one that does not.

Liveness is measured on the **wall clock** (`datetime.now(UTC)`), not the injected clock: it is
about real processes, which stop in real time, and the processes comparing notes do not share an
injected clock (the CLI runs on the system clock while a demo or test bot runs time-lapse or on a
manual clock, where an hour can pass in a second or never).

The decisions are pure functions (`unreadable`, `adoption`, `blocking`, `liveness_problem`);
`admit` runs them on what one transaction reads, under a lock (PostgreSQL: an advisory lock;
SQLite: every transaction here holds the write lock), so a bot that registers and a command that
adds a canary for a new key cannot both pass on a stale view.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import Cipher
from storage.models import Answer, BotInstance, Client, KeyCanary, OutboxMessage, Therapist

CANARY = "rapport key canary v1"
LIVE_FOR = timedelta(seconds=60)
"""A bot not seen for this long is taken for dead (twelve 5-second heartbeat intervals: a long
pass does not delay the refresh, which runs at every interval)."""
FORGOTTEN_AFTER = timedelta(days=1)
"""Rows of bots that died without a clean stop are removed after this long."""
SAMPLE = 20
"""Rows read from each end of each encrypted column when a database adopts a key set."""
_LOCK = 0x7261_7070_6B65_7973  # "rappkeys": the advisory lock of key decisions on PostgreSQL
SEALED = (
    (Therapist.id, Therapist.name_enc),
    (Client.id, Client.name_enc),
    (Answer.id, Answer.text_enc),
    (OutboxMessage.id, OutboxMessage.payload_enc),
)
"""Every encrypted column, with the key to order it by."""

Mode = Literal["read", "write", "rotate"]


class KeyRefused(Exception):
    """This key set may not be used here now; the message is one line saying what to do."""


class KeysCannotRead(KeyRefused):
    """The configured keys do not open data this database holds (a wrong or missing key)."""


class BotLacksKey(KeyRefused):
    """A live bot could not read (or, for a rotation, does not yet seal with) this key."""


@dataclass(frozen=True)
class Instance:
    """A running bot as its `bot_instance` row reports it."""

    id: str  # host:pid:random
    key_ids: tuple[str, ...]  # first encrypts
    seen_at: datetime

    @property
    def host(self) -> str:
        return self.id.rsplit(":", 2)[0]

    @property
    def primary(self) -> str:
        return self.key_ids[0] if self.key_ids else ""


# --- pure decisions -----------------------------------------------------------------------------


def unreadable(canaries: Mapping[str, bytes], cipher: Cipher) -> list[str]:
    """Key ids holding data here whose canary this key set does not open."""
    bad = []
    for key_id, token in sorted(canaries.items()):
        try:
            opened = cipher.opener(token) == key_id and cipher.decrypt(token) == CANARY
        except ValueError:
            opened = False
        if not opened:
            bad.append(key_id)
    return bad


def adoption(sample: Iterable[bytes], cipher: Cipher) -> tuple[set[str], list[str]]:
    """For a database without canaries: (ids of the keys that opened the sampled rows, ids named
    by rows no key opened; "unknown format" for a value that is not a token at all)."""
    opened: set[str] = set()
    failed: list[str] = []
    for token in sample:
        key_id = cipher.opener(token)
        if key_id is not None:
            opened.add(key_id)
        else:
            name = Cipher.sealed_by(token) or "unknown format"
            if name not in failed:
                failed.append(name)
    return opened, failed


def live(
    instances: Iterable[Instance], now: datetime, gone: Collection[str] = ()
) -> list[Instance]:
    """The bots seen within `LIVE_FOR`, except those known to have exited (`gone`)."""
    return [i for i in instances if now - i.seen_at <= LIVE_FOR and i.id not in gone]


def blocking(live_bots: Iterable[Instance], key_id: str, mode: Mode) -> list[Instance]:
    """The live bots that forbid this process's work: any that cannot read the key it seals
    with (to write), or that does not seal with it too (to rotate); none to read."""
    if mode == "read":
        return []
    if mode == "rotate":
        return [i for i in live_bots if i.primary != key_id]
    return [i for i in live_bots if key_id not in i.key_ids]


def liveness_problem(
    instances: Sequence[Instance], now: datetime, max_age: timedelta, host: str
) -> str | None:
    """None when a bot is alive on this database, else one line. When bots of this host have
    registered, one of them must be alive: a container's health is its own bot's, not a sibling
    replica's elsewhere."""
    here = [i for i in instances if i.host == host]
    pool = here or list(instances)
    if not pool:
        return "no bot is running on this database"
    latest = max(i.seen_at for i in pool)
    age = (now - latest).total_seconds()
    if age > max_age.total_seconds():
        return f"last heartbeat {age:.0f} s ago"
    return None


def cannot_read_line(missing: Sequence[str], cipher: Cipher) -> str:
    return (
        f"RAPPORT_ENCRYPTION_KEY: this database holds data under key id(s) {', '.join(missing)}, "
        f"which none of the configured keys ({', '.join(cipher.key_ids)}) opens; set the key(s) "
        "it was written with (nothing was written)"
    )


def blocking_line(bot: Instance, key_id: str, mode: Mode, now: datetime) -> str:
    seen = f"the running bot {bot.id} (seen {(now - bot.seen_at).total_seconds():.0f} s ago)"
    if mode == "rotate" and key_id in bot.key_ids:
        return (
            f"RAPPORT_ENCRYPTION_KEY: {seen} still encrypts with key {bot.primary}: put key "
            f"{key_id} first in its RAPPORT_ENCRYPTION_KEY and restart it, then rotate "
            "(README: Key rotation; nothing was written)"
        )
    return (
        f"RAPPORT_ENCRYPTION_KEY: {seen} cannot read key {key_id}, which these settings "
        f"encrypt with: add that key second in the bot's RAPPORT_ENCRYPTION_KEY and restart "
        "it first (README: Key rotation; nothing was written)"
    )


# --- queries ------------------------------------------------------------------------------------


async def canaries(s: AsyncSession) -> dict[str, bytes]:
    rows = await s.execute(select(KeyCanary.key_id, KeyCanary.canary_enc))
    return {key_id: bytes(token) for key_id, token in rows.tuples()}


async def instances(s: AsyncSession) -> list[Instance]:
    rows = await s.scalars(select(BotInstance))
    return [Instance(r.id, tuple(k for k in r.key_ids.split(",") if k), r.seen_at) for r in rows]


async def sealed_sample(s: AsyncSession, per_end: int = SAMPLE) -> list[bytes]:
    """The oldest and newest encrypted values of each encrypted column."""
    tokens: list[bytes] = []
    for order, column in SEALED:
        for direction in (order.asc(), order.desc()):
            query = select(column).where(column.is_not(None)).order_by(direction).limit(per_end)
            tokens += [bytes(v) for v in await s.scalars(query) if v is not None]
    return tokens


async def _lock(s: AsyncSession) -> None:
    if s.bind.dialect.name == "postgresql":
        await s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})


async def admit(
    s: AsyncSession,
    cipher: Cipher,
    *,
    now: datetime,
    mode: Mode,
    exited: Callable[[str], bool] = lambda _id: False,
    register: str | None = None,
) -> None:
    """Raise `KeyRefused` unless this key set may work here in `mode`; then, to write, make sure
    its encrypting key has a canary, and with `register` (a bot's instance id) record the bot.
    `exited` tells a bot known to have stopped without removing its row (its process is gone).
    Call inside the transaction that should hold the decision; a refusal writes nothing."""
    await _lock(s)
    held = await canaries(s)
    missing = unreadable(held, cipher)
    adopt: set[str] = set()
    if not held:
        adopt, missing = adoption(await sealed_sample(s), cipher)
    if missing:
        raise KeysCannotRead(cannot_read_line(missing, cipher))
    primary = cipher.key_ids[0]
    everyone = await instances(s)
    gone = {i.id for i in everyone if i.id == register or exited(i.id)}
    bots = live(everyone, now, gone)
    blockers = blocking(bots, primary, mode)
    if blockers:
        raise BotLacksKey(blocking_line(blockers[0], primary, mode, now))
    if mode == "read":
        return
    for key_id in sorted((adopt | {primary}) - held.keys()):
        s.add(
            KeyCanary(key_id=key_id, canary_enc=cipher.encrypt_with(key_id, CANARY), created_at=now)
        )
    if register is not None:
        await s.execute(delete(BotInstance).where(BotInstance.seen_at < now - FORGOTTEN_AFTER))
        await s.merge(
            BotInstance(id=register, key_ids=",".join(cipher.key_ids), started_at=now, seen_at=now)
        )
    await s.flush()


async def retire(s: AsyncSession, cipher: Cipher) -> list[str]:
    """After a rotation rewrote every value under the first key, in the same transaction: drop
    the canaries of the keys that no longer seal anything here; their ids."""
    primary = cipher.key_ids[0]
    old = [key_id for key_id in await canaries(s) if key_id != primary]
    if old:
        await s.execute(delete(KeyCanary).where(KeyCanary.key_id.in_(old)))
    return sorted(old)


async def reseal(s: AsyncSession, cipher: Cipher) -> int:
    """Every encrypted value written again under the first configured key (`Cipher.rotate`);
    how many. The caller has `admit`ted the rotation in the same transaction."""
    count = 0
    for _order, column in SEALED:
        for row in await s.scalars(select(column.class_)):
            value = getattr(row, column.key)
            if value is not None:
                setattr(row, column.key, cipher.rotate(value))
                count += 1
    return count


async def seen(s: AsyncSession, instance_id: str, cipher: Cipher, now: datetime) -> None:
    """A bot's heartbeat; its row comes back if it had been taken for dead and removed."""
    updated = await s.execute(
        update(BotInstance)
        .where(BotInstance.id == instance_id)
        .values(seen_at=now)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        s.add(
            BotInstance(
                id=instance_id, key_ids=",".join(cipher.key_ids), started_at=now, seen_at=now
            )
        )


async def forget(s: AsyncSession, instance_id: str) -> None:
    await s.execute(delete(BotInstance).where(BotInstance.id == instance_id))
