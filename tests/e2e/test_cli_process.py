"""The `rapport` command as a real process: what a shell user sees on a crash, the file modes it
leaves, and `rapport sandbox`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from sqlalchemy import text

from devtools.sandbox import DEFAULT_TOKEN
from storage.db import create_engine
from tests.conftest import TEST_KEY

RAPPORT = [str(Path(sys.executable).parent / "rapport")]  # the console script in the venv


def env(db: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RAPPORT_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "RAPPORT_ENCRYPTION_KEY": TEST_KEY,
        "TERM": "dumb",
    }


def modes_of(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in folder.glob("rapport.db*")}


def permissive() -> None:
    os.umask(0)


def test_a_crash_prints_no_local_variable(tmp_path: Path) -> None:
    script = (
        "from cli.main import commands, main\n"
        "@commands.command('boom')\n"
        "def boom() -> None:\n"
        "    secret_comment = 'my brother Konstantin calls at night'\n"
        "    raise RuntimeError('unexpected')\n"
        "main(['boom'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**env(tmp_path / "r.db"), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "RuntimeError" in done.stderr  # the crash is shown...
    assert "Konstantin" not in done.stderr + done.stdout  # ...without the values it held


def test_db_upgrade_creates_a_database_only_its_owner_can_read(tmp_path: Path) -> None:
    db = tmp_path / "rapport.db"
    done = subprocess.run(
        [*RAPPORT, "db", "upgrade"],
        env=env(db),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=permissive,
    )
    assert done.returncode == 0, done.stderr
    assert db.stat().st_mode & 0o777 == 0o600
    # The write-ahead log and shared memory files a running bot keeps open follow the file.
    old = os.umask(0)
    try:
        engine = create_engine(f"sqlite+aiosqlite:///{db}")

        async def write_and_look() -> dict[str, int]:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE scratch (x INTEGER)"))
                return modes_of(tmp_path)

        modes = asyncio.run(write_and_look())
        asyncio.run(engine.dispose())
    finally:
        os.umask(old)
    assert set(modes) >= {"rapport.db", "rapport.db-wal", "rapport.db-shm"}, modes
    assert set(modes.values()) == {0o600}, modes


def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "rapport.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    done = subprocess.run(
        [*RAPPORT, "db", "upgrade"], env=env(db), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert db.stat().st_mode & 0o777 == 0o600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_rapport_sandbox_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*RAPPORT, "sandbox", "--port", str(port)],
        env=env(tmp_path / "r.db"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until it listens (or ends: then it is empty)
        assert "listening" in first, first + (proc.stderr.read() if proc.stderr else "")
        url = f"http://127.0.0.1:{port}/bot{DEFAULT_TOKEN}/getMe"
        with urllib.request.urlopen(url, timeout=10) as reply:
            me = json.loads(reply.read())
        assert me["ok"] and me["result"]["is_bot"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_database_that_does_not_exist_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """asyncpg raises its connection errors unwrapped; they are still one line naming the
    setting. Needs no server of its own: an unreachable port and, where PostgreSQL runs, a
    database and a role that do not exist."""
    base = os.environ.get(
        "RAPPORT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/x"
    )
    host = base.split("@", 1)[1].split("/", 1)[0]
    urls = [
        f"postgresql+asyncpg://postgres@{host}/rapport_no_such_database",
        f"postgresql+asyncpg://rapport_no_such_role@{host}/test",
        "postgresql+asyncpg://postgres@127.0.0.1:1/test",
    ]
    for url in urls:
        for command in (["client", "list"], ["therapist", "add", "--name", "Dana Lee"]):
            result = subprocess.run(
                [*RAPPORT, *command],
                env={**env(tmp_path / "unused.db"), "RAPPORT_DATABASE_URL": url},
                capture_output=True,
                text=True,
                timeout=60,
            )
            lines = (result.stdout + result.stderr).strip().splitlines()
            assert result.returncode == 2, (url, lines)
            assert len(lines) == 1 and lines[0].startswith("rapport: RAPPORT_DATABASE_URL"), lines
