"""`rapport therapist set --role`, `rapport web link` and `rapport web` as an admin runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from typer.testing import CliRunner

from cli.main import commands
from tests.conftest import TEST_KEY
from tests.e2e.harness import free_port


@pytest.fixture
def rapport(sqlite_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAPPORT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RAPPORT_ENCRYPTION_KEY", TEST_KEY)
    monkeypatch.setenv("RAPPORT_CONSOLE_URL", "https://rapport.example.org")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(commands, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_roles_and_sign_in_links(rapport) -> None:  # type: ignore[no-untyped-def]
    for name in ("Dana Lee", "Sam Park"):
        rapport("therapist", "add", "--name", name)
    made = json.loads(
        rapport("therapist", "set", "2", "--role", "supervisor", "--supervises", "1", "--json")
    )
    assert made == {"id": 2, "role": "supervisor", "supervises": [1]}
    assert "not a role" in rapport("therapist", "set", "1", "--role", "boss", code=1)
    assert "only a supervisor" in rapport(
        "therapist", "set", "1", "--role", "admin", "--supervises", "2", code=1
    )
    assert "no therapist with id 9" in rapport(
        "therapist", "set", "2", "--role", "supervisor", "--supervises", "9", code=1
    )
    link = rapport("web", "link", "--therapist", "1").strip()
    assert link.startswith("https://rapport.example.org/signin/") and len(link) > 60
    assert "no therapist with id 7" in rapport("web", "link", "--therapist", "7", code=1)


def test_a_bad_console_url_stops_with_one_line(rapport, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAPPORT_CONSOLE_URL", "rapport.example.org/path")
    out = rapport("web", "link", "--therapist", "1", code=2)
    assert out.strip().startswith("rapport: RAPPORT_CONSOLE_URL:") and out.count("\n") == 1


@pytest.mark.slow
def test_rapport_web_serves_the_console_alone(sqlite_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "RAPPORT_DATABASE_URL": sqlite_url,
        "RAPPORT_ENCRYPTION_KEY": TEST_KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "web", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/signed-out") as answer:
                    assert answer.status == 200
                    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the console did not start"
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/caseload")
        assert refused.value.code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    assert "/caseload" not in output and "/signed-out" not in output  # no request is logged
