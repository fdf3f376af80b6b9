"""Key canaries and running bots: the pure decisions, then `admit` against every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import keyring, people
from storage.crypto import Cipher
from storage.keyring import CANARY, Instance
from storage.models import BotInstance, KeyCanary, Therapist

OLD, NEW, WRONG = (Cipher.generate_key() for _ in range(3))
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def ids(keys: str) -> tuple[str, ...]:
    return Cipher(keys).key_ids


def bot(keys: str, seen: timedelta = timedelta(0), name: str = "h:1:a") -> Instance:
    return Instance(name, ids(keys), NOW - seen)


# --- the cipher's key ids -----------------------------------------------------------------------


def test_key_ids_name_keys_without_showing_them() -> None:
    both = Cipher(f"{NEW},{OLD}")
    assert both.key_ids == (ids(NEW)[0], ids(OLD)[0]) and len(both.key_ids[0]) == 8
    assert NEW not in both.key_ids[0]
    token = both.encrypt_with(ids(OLD)[0], "x")
    assert Cipher.sealed_by(token) == ids(OLD)[0] == Cipher(OLD).opener(token)
    assert Cipher(NEW).opener(token) is None
    foreign = Fernet(OLD.encode()).encrypt(b"x")  # not a token: it names no key, none opens it
    assert Cipher.sealed_by(foreign) is None and both.opener(foreign) is None


# --- pure decisions -----------------------------------------------------------------------------


def test_a_key_set_must_open_every_canary() -> None:
    held = {
        ids(OLD)[0]: Cipher(OLD).encrypt(CANARY),
        ids(NEW)[0]: Cipher(NEW).encrypt(CANARY),
    }
    assert keyring.unreadable(held, Cipher(f"{NEW},{OLD}")) == []
    assert keyring.unreadable(held, Cipher(NEW)) == [ids(OLD)[0]]
    assert keyring.unreadable(held, Cipher(WRONG)) == sorted(held)
    assert keyring.unreadable({}, Cipher(WRONG)) == []
    # A canary must hold the known text under the key it names.
    forged = {ids(OLD)[0]: Cipher(OLD).encrypt("something else")}
    assert keyring.unreadable(forged, Cipher(OLD)) == [ids(OLD)[0]]
    misfiled = {ids(NEW)[0]: Cipher(OLD).encrypt(CANARY)}
    assert keyring.unreadable(misfiled, Cipher(f"{OLD},{NEW}")) == [ids(NEW)[0]]


def test_adoption_needs_every_sampled_value_to_open() -> None:
    sample = [
        Cipher(OLD).encrypt("a"),
        Cipher(NEW).encrypt("b"),
        Fernet(NEW.encode()).encrypt(b"c"),
    ]
    both, old, new = Cipher(f"{OLD},{NEW}"), ids(OLD)[0], ids(NEW)[0]
    assert keyring.adoption(sample[:2], both) == ({old, new}, [])
    assert keyring.adoption(sample[:2], Cipher(OLD)) == ({old}, [new])
    assert keyring.adoption(sample, both) == ({old, new}, ["unknown format"])
    assert keyring.adoption(sample, Cipher(WRONG)) == (set(), [old, new, "unknown format"])
    assert keyring.adoption([], Cipher(WRONG)) == (set(), [])


def test_live_bots_are_recent_and_not_known_to_have_exited() -> None:
    fresh, stale = bot(OLD, timedelta(seconds=5)), bot(OLD, timedelta(minutes=5), "h:2:b")
    gone = bot(OLD, name="h:3:c")
    assert keyring.live([fresh, stale, gone], NOW, gone={"h:3:c"}) == [fresh]
    assert keyring.live([bot(OLD, keyring.LIVE_FOR)], NOW)  # the edge still counts


def test_who_blocks_a_read_a_write_and_a_rotation() -> None:
    old_only, reads_new, writes_new = bot(OLD), bot(f"{OLD},{NEW}"), bot(f"{NEW},{OLD}")
    bots = [old_only, reads_new, writes_new]
    new = ids(NEW)[0]
    assert keyring.blocking(bots, new, "read") == []
    assert keyring.blocking(bots, new, "write") == [old_only]
    assert keyring.blocking(bots, new, "rotate") == [old_only, reads_new]
    assert keyring.blocking(bots, ids(OLD)[0], "write") == []


def test_health_is_this_hosts_bot_when_it_has_one() -> None:
    age = timedelta(seconds=120)
    here = Instance("web-1:7:a", ("k",), NOW - timedelta(minutes=10))  # hung
    there = Instance("web-2:7:b", ("k",), NOW)
    assert keyring.liveness_problem([], NOW, age, "web-1") == "no bot is running on this database"
    assert keyring.liveness_problem([there], NOW, age, "web-1") is None  # an admin's terminal
    assert keyring.liveness_problem([here, there], NOW, age, "web-1") == "last heartbeat 600 s ago"
    assert keyring.liveness_problem([here, there], NOW, age, "web-2") is None


def test_refusals_are_one_line_and_never_show_a_key() -> None:
    line = keyring.cannot_read_line([ids(OLD)[0]], Cipher(WRONG))
    assert "\n" not in line and OLD not in line and WRONG not in line
    assert line.startswith("RAPPORT_ENCRYPTION_KEY: ") and ids(WRONG)[0] in line
    for mode in ("write", "rotate"):
        line = keyring.blocking_line(bot(f"{OLD},{NEW}"), ids(NEW)[0], mode, NOW)  # type: ignore[arg-type]
        assert "\n" not in line and "h:1:a" in line and ids(NEW)[0] in line


# --- admit, on every backend ----------------------------------------------------------------------


async def admit(
    sessions: async_sessionmaker[AsyncSession], keys: str, mode: str, register: str | None = None
) -> None:
    async with sessions() as s, s.begin():
        await keyring.admit(s, Cipher(keys), now=NOW, mode=mode, register=register)  # type: ignore[arg-type]


async def rows(sessions: async_sessionmaker[AsyncSession]) -> tuple[list[str], list[str]]:
    async with sessions() as s:
        canaries = sorted(await s.scalars(select(KeyCanary.key_id)))
        bots = sorted(await s.scalars(select(BotInstance.id)))
    return canaries, bots


async def test_a_writer_leaves_its_canary_and_a_wrong_key_is_refused(sessions) -> None:
    await admit(sessions, OLD, "read")
    assert await rows(sessions) == ([], [])  # reading writes nothing
    await admit(sessions, OLD, "write")
    assert await rows(sessions) == ([ids(OLD)[0]], [])
    with pytest.raises(keyring.KeysCannotRead, match=ids(OLD)[0]):
        await admit(sessions, WRONG, "read")
    with pytest.raises(keyring.KeysCannotRead):
        await admit(sessions, WRONG, "write", register="h:1:w")
    assert await rows(sessions) == ([ids(OLD)[0]], [])


async def test_an_older_database_adopts_keys_that_read_it(sessions, clock) -> None:
    async with sessions() as s, s.begin():
        await people.add_therapist(s, Cipher(OLD), name="Dana Lee", timezone="UTC", now=clock.now())
    with pytest.raises(keyring.KeysCannotRead, match=ids(OLD)[0]):
        await admit(sessions, WRONG, "write")
    await admit(sessions, f"{NEW},{OLD}", "read")
    assert await rows(sessions) == ([], [])
    await admit(sessions, f"{NEW},{OLD}", "write")
    assert (await rows(sessions))[0] == sorted([ids(OLD)[0], ids(NEW)[0]])
    with pytest.raises(keyring.KeysCannotRead):
        await admit(sessions, OLD, "read")  # NEW now holds data too (its canary says so)


async def test_nobody_writes_under_a_key_a_live_bot_cannot_read(sessions) -> None:
    await admit(sessions, OLD, "write", register="h:1:old")
    assert await rows(sessions) == ([ids(OLD)[0]], ["h:1:old"])
    for mode in ("write", "rotate"):
        with pytest.raises(keyring.BotLacksKey, match="h:1:old"):
            await admit(sessions, f"{NEW},{OLD}", mode)
    with pytest.raises(keyring.BotLacksKey):
        await admit(sessions, f"{NEW},{OLD}", "write", register="h:1:new")
    assert await rows(sessions) == ([ids(OLD)[0]], ["h:1:old"])
    await admit(sessions, f"{NEW},{OLD}", "read")
    await admit(sessions, f"{OLD},{NEW}", "write")  # still writes under OLD

    async with sessions() as s, s.begin():  # the old bot restarts with the new key second
        await keyring.forget(s, "h:1:old")
    await admit(sessions, f"{OLD},{NEW}", "write", register="h:1:both")
    await admit(sessions, f"{NEW},{OLD}", "write")
    with pytest.raises(keyring.BotLacksKey, match="still encrypts with"):
        await admit(sessions, f"{NEW},{OLD}", "rotate")

    async with sessions() as s, s.begin():  # that bot stopped answering five minutes ago
        await s.execute(BotInstance.__table__.update().values(seen_at=NOW - timedelta(minutes=5)))
    await admit(sessions, f"{NEW},{OLD}", "rotate")


async def test_a_heartbeat_brings_back_a_removed_row_and_old_rows_are_forgotten(
    sessions,
) -> None:
    async with sessions() as s, s.begin():
        s.add(BotInstance(id="h:9:x", key_ids="k", started_at=NOW, seen_at=NOW - timedelta(days=2)))
    await admit(sessions, OLD, "write", register="h:1:a")
    assert (await rows(sessions))[1] == ["h:1:a"]
    async with sessions() as s, s.begin():
        await s.execute(delete(BotInstance))
        await keyring.seen(s, "h:1:a", Cipher(OLD), NOW)
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(BotInstance)) == 1
        assert (await keyring.instances(s))[0].key_ids == ids(OLD)


async def test_retiring_keeps_only_the_encrypting_keys_canary(sessions, clock) -> None:
    async with sessions() as s, s.begin():
        await people.add_therapist(s, Cipher(OLD), name="Dana Lee", timezone="UTC", now=clock.now())
    await admit(sessions, OLD, "write")
    await admit(sessions, f"{NEW},{OLD}", "write")
    async with sessions() as s, s.begin():
        assert await keyring.retire(s, Cipher(f"{NEW},{OLD}")) == [ids(OLD)[0]]
    assert (await rows(sessions))[0] == [ids(NEW)[0]]
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Therapist)) == 1


async def test_resealing_writes_every_sealed_value_under_the_first_key(sessions, clock) -> None:
    old = Cipher(OLD)
    async with sessions() as s, s.begin():
        dana = await people.add_therapist(s, old, name="Dana Lee", timezone="UTC", now=clock.now())
        alice = await people.add_client(
            s, old, therapist_id=dana.id, name="Alice Smith", now=clock.now()
        )
        alice_id = alice.id
    both = Cipher(f"{NEW},{OLD}")
    async with sessions() as s, s.begin():
        assert await keyring.reseal(s, both) == 2  # two names, nothing else sealed yet
    async with sessions() as s:
        therapist = await s.scalar(select(Therapist))
        assert therapist is not None
        assert Cipher(NEW).decrypt(therapist.name_enc) == "Dana Lee"
        assert Cipher.sealed_by(therapist.name_enc) == ids(NEW)[0]
        client = await people.client_by_id(s, alice_id)
        assert client is not None and Cipher(NEW).decrypt(client.name_enc) == "Alice Smith"
