"""Bots under test run in their own process, as in production: the sandbox and the load generator
share the benchmark's process and event loop, and must not steal the bot's CPU or vice versa."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.common import REPO

_RUN_FOLDER: list[Path] = []


def _run_folder() -> Path:
    """One temporary folder for every process a benchmark run starts, removed when it ends."""
    if not _RUN_FOLDER:
        _RUN_FOLDER.append(Path(tempfile.mkdtemp(prefix="rapport-bench-")))
        atexit.register(shutil.rmtree, _RUN_FOLDER[0], ignore_errors=True)
    return _RUN_FOLDER[0]


class BotProcess:
    """A child process whose output goes to a log file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_run_folder()))
        self.log_path = self.folder / "output.log"
        self._process: asyncio.subprocess.Process | None = None

    @classmethod
    def rapport(cls, env: Mapping[str, str]) -> BotProcess:
        """The real bot, exactly as an operator starts it (`rapport run`, long polling)."""
        return cls("rapport", [sys.executable, "-m", "bot", "run"], env)

    @classmethod
    def echo(cls, api_url: str, token: str, concurrency: int) -> BotProcess:
        script = REPO / "bench" / "echo_bot.py"
        argv = [sys.executable, str(script), "--api-url", api_url]
        argv += ["--concurrency", str(concurrency)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env.update(ECHO_BOT_TOKEN=token, PYTHONPATH=str(REPO))
        return cls("echo", argv, env)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        log = self.log_path.open("wb")
        try:
            # The working folder is empty: no stray rapport.toml is picked up.
            self._process = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            log.close()

    @property
    def exited(self) -> bool:
        return self._process is not None and self._process.returncode is not None

    async def wait(self) -> int:
        assert self._process is not None, "start() first"
        return await self._process.wait()

    async def stop(self, timeout: float = 20.0) -> int | None:
        process = self._process
        if process is None or process.returncode is not None:
            return process.returncode if process else None
        process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            return await process.wait()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
