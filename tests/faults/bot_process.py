"""The bot as an operator runs it, `python -m bot run`, in its own process: a test can kill it
with SIGKILL at the worst moment and start it again on the same database and sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from devtools.sandbox import DEFAULT_TOKEN, Sandbox
from tests.faults.clocks import OutageClock
from tests.faults.traffic import GUARD, Traffic


class BotProcess:
    """One bot process at a time under a fixed name; `start` again after `kill` to restart."""

    def __init__(
        self,
        name: str,
        *,
        database_url: str,
        sandbox: Sandbox,
        traffic: Traffic,
        clock: OutageClock,
        key: str,
        workdir: Path,
        polling: bool = True,
        webhook: tuple[str, str] | None = None,
    ) -> None:
        """`webhook`: (URL, HOST:PORT) for webhook mode, the URL the sandbox is to POST to and
        the address this process listens on (they differ behind a load balancer)."""
        self.name = name
        self.database_url = database_url
        self.sandbox = sandbox
        self.traffic = traffic
        self.clock = clock
        self.key = key
        self.workdir = workdir
        self.polling = polling
        self.webhook = webhook
        self.log_path = workdir / f"{name}.log"
        self.starts = 0
        self._proc: asyncio.subprocess.Process | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env.update(
            RAPPORT_DATABASE_URL=self.database_url,
            RAPPORT_TELEGRAM_TOKEN=DEFAULT_TOKEN,
            RAPPORT_TELEGRAM_API_URL=self.sandbox.api_url,
            RAPPORT_ENCRYPTION_KEY=self.key,
            RAPPORT_CLOCK=self.clock.spec(),
            RAPPORT_SEND_RATE="0",
            RAPPORT_CHAT_SEND_RATE="0",
            RAPPORT_LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        return env

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def start(self) -> None:
        """Start and return once the bot talks to the sandbox (polls, or is initialised)."""
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        ready_method = "getUpdates" if self.polling else "getMe"
        args = ["--no-polling"] if not self.polling else []
        if self.webhook is not None:  # set last, once the receiver listens
            ready_method = "setWebhook"
            args = ["--webhook-url", self.webhook[0], "--listen", self.webhook[1]]
        seen = self.traffic.arrived(ready_method)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                *args,
                cwd=self.workdir,
                env=self.env(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        ready = asyncio.ensure_future(
            self.traffic.until(
                lambda: self.traffic.arrived(ready_method) > seen,
                timeout=GUARD,
                what=f"{self.name} calling {ready_method}",
            )
        )
        exited = asyncio.ensure_future(self._proc.wait())
        done, _ = await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await ready
            raise AssertionError(f"{self.name} exited at start:\n{self.log_tail()}")
        exited.cancel()
        ready.result()  # raises TimeoutError if the bot never came up

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill."""
        assert self._proc is not None and self.running, f"{self.name} is not running"
        self._proc.send_signal(signal.SIGKILL)
        await self._proc.wait()

    async def stop(self) -> None:
        """SIGTERM and wait (the clean shutdown), killing it if it hangs."""
        if not self.running:
            return
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._proc.wait(), timeout=15)
        except TimeoutError:
            await self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def error_lines(self) -> list[str]:
        """Log lines at ERROR or above, and tracebacks: a clean run has none."""
        return [
            line
            for line in self.log_text().splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        ]
