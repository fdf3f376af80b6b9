"""A PostgreSQL server of the test's own, to stop and start under the running bot.

The shared server (RAPPORT_TEST_POSTGRES_URL) cannot be restarted by a test; this one is made
with `initdb` in a temporary directory, listens on a free port of 127.0.0.1, trusts local
connections and is removed at the end. PostgreSQL refuses to run as root, so under root it runs
as the `postgres` system user. Where the server binaries or that user are missing the test skips
and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import tempfile
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(candidates[0]) if candidates else None


class Cluster:
    def __init__(self) -> None:
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            pytest.skip("a restartable PostgreSQL needs the server binaries (initdb, pg_ctl)")
        self._initdb, self._pg_ctl = initdb, pg_ctl
        self._as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("PostgreSQL will not run as root and there is no postgres user")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="rapport-pg-"))
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    async def _run(self, *command: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._as,
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {output.decode(errors='replace')[-2000:]}")

    async def create(self) -> None:
        await self._run(
            self._initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--no-sync",
        )  # fmt: skip

    async def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c max_connections=50"
        )
        await self._run(
            self._pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
            "-w", "start",
        )  # fmt: skip

    async def stop(self) -> None:
        """A fast shutdown, as a restart by an operator or a package upgrade does it: open
        connections are terminated, new ones refused until the server is back."""
        await self._run(self._pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")

    async def remove(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            await self._run(self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
