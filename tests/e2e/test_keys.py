"""Keys that cannot eat data: a wrong key is refused in one line before it writes anything, key
rotation never leaves a running bot unable to read, and liveness is per database.

The key set a process holds is checked against the database's key canaries (one known text
sealed with each key that has written here) and against the bots that are running on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from app import instances
from app.clock import ManualClock
from cli.main import commands
from devtools.sandbox import DEFAULT_TOKEN, Sandbox
from flows.i18n import t
from storage.crypto import Cipher
from storage.models import BotInstance, KeyCanary
from tests.conftest import START, TEST_KEY
from tests.e2e.harness import Person, World, alerts_as_aliases, join_client
from tests.e2e.test_acknowledgement import SEEN
from tests.faults.traffic import GUARD, Traffic

ROOT = Path(__file__).resolve().parents[2]
CRISIS = t("en", "crisis.default_resources")
SORRY = t("en", "chat.error")
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO) ")


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    crashed: BaseException | None  # an exception other than a clean exit: a traceback


def cli(db_url: str, key: str, *args: str) -> Ran:
    result = CliRunner().invoke(
        commands, list(args), env={"RAPPORT_DATABASE_URL": db_url, "RAPPORT_ENCRYPTION_KEY": key}
    )
    crashed = result.exception if not isinstance(result.exception, SystemExit) else None
    return Ran(result.exit_code, result.stdout, result.stderr, crashed)


async def acli(db_url: str, key: str, *args: str) -> Ran:
    """The CLI from another thread, while the bot serves in this event loop."""
    return await asyncio.to_thread(cli, db_url, key, *args)


def ok(ran: Ran) -> str:
    assert (ran.code, ran.crashed) == (0, None), ran
    return ran.out


def one_line_refusal(ran: Ran, starts: str) -> str:
    assert ran.code != 0 and ran.crashed is None, ran
    assert ran.out == "" and ran.err.count("\n") == 1, ran
    assert ran.err.startswith(f"rapport: {starts}"), ran
    return ran.err


def file_of(url: str) -> Path:
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


def dump(url: str) -> list[str]:
    """Every row of the database, as SQL."""
    with contextlib.closing(sqlite3.connect(file_of(url))) as conn:
        return list(conn.iterdump())


def key_id(key: str) -> str:
    """The id a key's tokens carry (the second to fifth bytes), as the database names it."""
    return Cipher(key).encrypt("")[1:5].hex()


def practice_with_data(url: str, key: str) -> None:
    ok(cli(url, key, "therapist", "add", "--name", "Dana Lee"))
    ok(cli(url, key, "client", "add", "--therapist", "1", "--name", "Alice Smith"))


# --- a wrong key ---------------------------------------------------------------------------------


async def test_a_bot_with_a_wrong_key_refuses_to_start_and_writes_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(practice_with_data, sqlite_url, TEST_KEY)
    wrong = Cipher.generate_key()
    before = dump(sqlite_url)
    sandbox = Sandbox()
    traffic = Traffic(sandbox)
    await sandbox.start()
    sandbox.add_bot(DEFAULT_TOKEN, username="rapport_keys_bot", first_name="Rapport")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update(
        RAPPORT_DATABASE_URL=sqlite_url,
        RAPPORT_TELEGRAM_TOKEN=DEFAULT_TOKEN,
        RAPPORT_TELEGRAM_API_URL=sandbox.api_url,
        RAPPORT_ENCRYPTION_KEY=wrong,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        exited = asyncio.ensure_future(proc.communicate())
        polled = asyncio.ensure_future(
            traffic.until(lambda: traffic.arrived("getUpdates") > 0, timeout=GUARD, what="polling")
        )
        done, _ = await asyncio.wait({exited, polled}, return_when=asyncio.FIRST_COMPLETED)
        assert exited in done, "the bot started with a wrong key and polls for updates"
        polled.cancel()
        out, err = exited.result()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await sandbox.stop()

    # Beside the start-up's log lines (the schema check), one line and no traceback.
    said = [line for line in err.decode().splitlines() if not LOG_LINE.match(line)]
    assert proc.returncode == 2 and out == b"", (proc.returncode, out, err)
    assert len(said) == 1 and said[0].startswith("rapport: RAPPORT_ENCRYPTION_KEY: "), err
    lines = said
    assert key_id(TEST_KEY) in lines[0] and wrong not in lines[0]
    assert traffic.arrived("getMe") == 0  # refused before it spoke to Telegram
    assert dump(sqlite_url) == before  # not a row written


def test_cli_commands_with_a_wrong_key_say_one_line_and_write_nothing(sqlite_url: str) -> None:
    practice_with_data(sqlite_url, TEST_KEY)
    wrong = Cipher.generate_key()
    before = dump(sqlite_url)
    for args in (
        ("client", "list"),
        ("therapist", "list"),
        ("export", "--format", "json"),
        ("export", "--format", "csv", "--client", "1"),
        ("digest", "--client", "1"),
        ("therapist", "add", "--name", "Sam Roe"),  # would fork the database under the wrong key
        ("client", "add", "--therapist", "1", "--name", "Bob Stone"),
        ("keys", "rotate"),
        ("health",),
    ):
        line = one_line_refusal(cli(sqlite_url, wrong, *args), "RAPPORT_ENCRYPTION_KEY: ")
        assert key_id(TEST_KEY) in line and wrong not in line, (args, line)
    assert dump(sqlite_url) == before
    # What to do about it: `keys show` names the ids (never a key) and reads no data.
    shown = json.loads(ok(cli(sqlite_url, wrong, "keys", "show", "--json")))
    assert shown["unreadable"] == shown["held"] == [key_id(TEST_KEY)]
    assert shown["configured"] == [key_id(wrong)]
    assert dump(sqlite_url) == before
    listed = json.loads(ok(cli(sqlite_url, TEST_KEY, "client", "list", "--json")))
    assert [c["name"] for c in listed] == ["Alice Smith"]
    # The right key with a new one second is the same key set for reading: admitted.
    both = f"{TEST_KEY},{Cipher.generate_key()}"
    assert json.loads(ok(cli(sqlite_url, both, "export", "--format", "json")))


def test_one_value_under_a_foreign_key_is_one_line_too(sqlite_url: str) -> None:
    """A database forked before the canaries: the keys open every canary, not every row."""
    practice_with_data(sqlite_url, TEST_KEY)
    foreign = Cipher(Cipher.generate_key()).encrypt("Sam Roe")
    with contextlib.closing(sqlite3.connect(file_of(sqlite_url))) as conn:
        conn.execute("UPDATE therapist SET name_enc = ?", (foreign,))
        conn.commit()
    ran = cli(sqlite_url, TEST_KEY, "therapist", "list")
    assert ran.code == 2 and ran.crashed is None and ran.err.count("\n") == 1, ran
    assert ran.err.startswith("rapport: RAPPORT_ENCRYPTION_KEY: a stored text cannot be"), ran


def test_a_database_from_before_the_canaries_adopts_a_key_set_that_reads_it(
    sqlite_url: str,
) -> None:
    """Upgraded from a version without canaries: the data itself says which keys read it."""
    practice_with_data(sqlite_url, TEST_KEY)
    with contextlib.closing(sqlite3.connect(file_of(sqlite_url))) as conn:
        conn.execute(str(delete(KeyCanary)))
        conn.commit()
    before = dump(sqlite_url)

    wrong = Cipher.generate_key()
    for args in (("client", "list"), ("therapist", "add", "--name", "Sam Roe")):
        one_line_refusal(cli(sqlite_url, wrong, *args), "RAPPORT_ENCRYPTION_KEY: ")
    assert dump(sqlite_url) == before

    ok(cli(sqlite_url, TEST_KEY, "client", "list"))  # reading adopts nothing
    assert dump(sqlite_url) == before
    ok(cli(sqlite_url, TEST_KEY, "therapist", "add", "--name", "Sam Roe"))
    with contextlib.closing(sqlite3.connect(file_of(sqlite_url))) as conn:
        ids = [row[0] for row in conn.execute("SELECT key_id FROM key_canary")]
    assert ids == [key_id(TEST_KEY)]
    one_line_refusal(cli(sqlite_url, wrong, "client", "list"), "RAPPORT_ENCRYPTION_KEY: ")


# --- rotation while the bot runs -----------------------------------------------------------------


async def practice_in_telegram(world: World) -> tuple[Person, Person]:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    return dana, alice


async def still_serving(world: World, dana: Person, alice: Person) -> None:
    """A client's crisis words get the resources at once and the therapist's urgent alert."""
    heard = len(dana.user.inbox)
    await alice.user.send("I want to kill myself")
    reply = await alice.user.next_message()
    # Not the failure path's apology (which carries the emergency advice too).
    assert not reply["text"].startswith(SORRY) and CRISIS in reply["text"], reply["text"]
    await world.drain()
    assert alerts_as_aliases(m["text"] for m in dana.user.inbox[heard:]) == ["A.S."]
    # Acknowledged, so the next crisis text raises an alert of its own (an open one gathers them).
    alert = next(m for m in dana.user.inbox[heard:] if m.get("reply_markup"))
    await dana.user.answer_to(await dana.user.tap(alert, button_text=SEEN))
    await world.drain()


async def restart_with(world: World, keys: str) -> None:
    """The operator changes the bot's RAPPORT_ENCRYPTION_KEY and restarts it."""
    await world.stop_bot()
    world.rt.cipher = Cipher(keys)
    await world.start_bot()


@pytest.fixture
async def served(db_url: str, clock: ManualClock) -> AsyncIterator[tuple[World, str]]:
    """A running bot on each backend, and its database's URL for the CLI."""
    world = await World.start(db_url, clock, TEST_KEY)
    try:
        yield world, db_url
    finally:
        await world.stop()


async def test_keys_rotate_refuses_while_a_bot_cannot_read_the_new_key(
    served: tuple[World, str],
) -> None:
    world, db = served
    dana, alice = await practice_in_telegram(world)
    new = Cipher.generate_key()

    # The README's old advice, followed while the bot runs with the old key alone.
    ran = await acli(db, f"{new},{TEST_KEY}", "keys", "rotate")
    line = one_line_refusal(ran, "RAPPORT_ENCRYPTION_KEY: ")
    assert "running bot" in line and key_id(new) in line, line
    await still_serving(world, dana, alice)

    # Nor may any other command write under a key the running bot cannot read.
    ran = await acli(db, f"{new},{TEST_KEY}", "therapist", "add", "--name", "Sam Roe")
    one_line_refusal(ran, "RAPPORT_ENCRYPTION_KEY: ")
    ok(await acli(db, f"{new},{TEST_KEY}", "client", "list"))  # reading is fine
    await still_serving(world, dana, alice)


async def test_the_readme_rotation_procedure_never_fails_an_update(
    served: tuple[World, str],
) -> None:
    world, db = served
    dana, alice = await practice_in_telegram(world)
    old, new = TEST_KEY, Cipher.generate_key()

    # 1. The new key second: the bot reads it but does not write with it yet.
    await restart_with(world, f"{old},{new}")
    await still_serving(world, dana, alice)
    ran = await acli(db, f"{new},{old}", "keys", "rotate")  # too early: step 2 first
    assert key_id(old) in one_line_refusal(ran, "RAPPORT_ENCRYPTION_KEY: ")
    await still_serving(world, dana, alice)

    # 2. The new key first.
    await restart_with(world, f"{new},{old}")
    await still_serving(world, dana, alice)
    shown = json.loads(ok(await acli(db, f"{new},{old}", "keys", "show", "--json")))
    assert [(b["keys"], b["alive"]) for b in shown["bots"]] == [([key_id(new), key_id(old)], True)]
    assert shown["held"] == sorted([key_id(new), key_id(old)]) and shown["unreadable"] == []

    # 3. Rotate: everything is rewritten under the new key while the bot serves.
    rotated = ok(await acli(db, f"{new},{old}", "keys", "rotate"))
    assert "re-encrypted" in rotated and key_id(old) in rotated, rotated
    await still_serving(world, dana, alice)

    # 4. The old key dropped.
    await restart_with(world, new)
    await still_serving(world, dana, alice)
    assert json.loads(ok(await acli(db, new, "keys", "show", "--json")))["held"] == [key_id(new)]
    listed = json.loads(ok(await acli(db, new, "client", "list", "--json")))
    assert [c["name"] for c in listed] == ["Alice Smith"]
    line = one_line_refusal(await acli(db, old, "client", "list"), "RAPPORT_ENCRYPTION")
    assert key_id(new) in line


# --- liveness per database -----------------------------------------------------------------------


async def test_health_of_a_stopped_bot_is_not_ok_while_another_database_has_one(
    sqlite_url: str, sqlite_template: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    shutil.copy(sqlite_template, other)
    other_url = f"sqlite+aiosqlite:///{other}"
    first = await World.start(sqlite_url, ManualClock(START), TEST_KEY)
    second = await World.start(other_url, ManualClock(START), TEST_KEY, sandbox=Sandbox())
    try:
        assert ok(await acli(sqlite_url, TEST_KEY, "health")).splitlines()[0] == "ok"
        await first.stop_bot()
        ran = await acli(sqlite_url, TEST_KEY, "health")
        assert ran.code == 1 and ran.crashed is None, ran
        assert ran.err.startswith("rapport: ") and ran.err.count("\n") == 1, ran
        assert ok(await acli(other_url, TEST_KEY, "health")).splitlines()[0] == "ok"
        await first.start_bot()
        assert ok(await acli(sqlite_url, TEST_KEY, "health")).splitlines()[0] == "ok"
    finally:
        await second.stop()
        await first.stop()


@pytest.fixture(autouse=True)
def _no_operator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RAPPORT_") and not name.startswith("RAPPORT_TEST_"):
            monkeypatch.delenv(name)


async def test_a_bot_stays_alive_by_its_heartbeat_and_a_silent_one_is_not(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world.rt.sessions() as s, s.begin():  # as if it had hung for ten minutes
        await s.execute(
            update(BotInstance).values(seen_at=datetime.now(UTC) - timedelta(minutes=10))
        )
    ran = await acli(sqlite_url, TEST_KEY, "health")
    assert ran.code == 1 and "last heartbeat 600 s ago" in ran.err, ran

    monkeypatch.setattr(instances, "REFRESH_EVERY", 0.0)
    (beat,) = world.service.app.job_queue.get_jobs_by_name("heartbeat")  # type: ignore[union-attr]
    await beat.run(world.service.app)
    assert ok(await acli(sqlite_url, TEST_KEY, "health")).splitlines()[0] == "ok"
