"""`rapport demo --serve` as a newcomer runs it: a real process tells its story (one week, at
full speed), prints a sign-in link, serves the demo practice's console on it, and ends cleanly on
SIGTERM."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY

RAPPORT = str(Path(sys.executable).parent / "rapport")
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)/signin/([A-Za-z0-9_-]{20,64})")

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reader(process: subprocess.Popen[str], lines: queue.Queue[str]) -> threading.Thread:
    """A thread putting each line the process prints into `lines` (a pipe's buffered lines do
    not wake a selector)."""
    stdout = process.stdout
    assert stdout is not None

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def read_until_link(lines: queue.Queue[str], deadline: float) -> tuple[str, str]:
    """The link's base and token, once the process prints it."""
    seen = ""
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen += line
        found = LINK.search(line)
        if found:
            return found.group(1), found.group(2)
    raise AssertionError(f"no sign-in link printed:\n{seen[-2000:]}")


def test_demo_serve_prints_a_link_that_opens_the_console(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "RAPPORT_ENCRYPTION_KEY": TEST_KEY,
        "TERM": "dumb",
        "COLUMNS": "400",
        "PYTHONUNBUFFERED": "1",
    }
    command = [RAPPORT, "demo", "--weeks", "1", "--quiet", "--speed", "1000000"]
    command += ["--out", str(tmp_path / "out"), "--serve", "--listen", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        reading = reader(process, lines)
        base, token = read_until_link(lines, time.monotonic() + 50)
        assert base == f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as web:
            page = web.get(f"/signin/{token}")
            assert page.status_code == 200 and "Sign in" in page.text
            pre = re.search(r'name="pre" value="([^"]+)"', page.text)
            assert pre is not None
            signed = web.post("/signin", data={"token": token, "pre": pre.group(1)})
            assert signed.status_code == 303
            caseload = web.get("/caseload")
            assert caseload.status_code == 200 and "<tbody>" in caseload.text
            assert web.get("/alerts").status_code == 200  # the real source of alerts is wired
            assert web.get("/settings").status_code == 200  # the demo's therapist is an admin
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode in (0, 1)  # ended by itself (1: a one-week story skips checks)
    reading.join(timeout=10)  # the pipe ends with the process
    rest = "".join(lines.get_nowait() for _ in range(lines.qsize()))
    assert "Traceback" not in rest and "Error" not in rest
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/caseload", timeout=2)
