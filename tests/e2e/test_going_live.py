"""The README's "Going live (for a practice)" steps, followed literally as a practice would.

The shell commands are read out of README.md itself, so the README and this test cannot drift
apart: the `export`/`mkdir`/activate lines run in bash, every `rapport …` line runs as a process
of the installed console script, and the sandbox on 127.0.0.1 stands in for Telegram. What
differs from a practice's machine: the install line is not run (the virtual environment running
these tests is the installed copy, linked in as `.venv`), the token and Bot API URL are the
sandbox's, and HOME and TMPDIR are temporary folders.

Beside it: misconfiguration stops start-up with one line naming the setting, the Commands list and
the Configuration table match the real CLI and settings, and the Docker files match the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import matplotlib
import matplotlib.font_manager  # builds the font cache here, once, if it is missing
import pytest
import typer
import yaml

from app.config import Settings
from app.health import alive_file
from cli.main import commands as cli_app
from devtools.sandbox import DEFAULT_TOKEN, Sandbox
from flows.i18n import t
from storage.crypto import Cipher
from tests.e2e.harness import button_labels

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent  # not resolved: the virtual environment's own bin/
RAPPORT = VENV_BIN / "rapport"
BOT_USERNAME = "dana_practice_bot"  # not the code's fallback name, so a wrong link shows
# Generous: each process imports the whole bot, and a busy machine makes that slow.
COMMAND_TIMEOUT = 120.0
START_TIMEOUT = 60.0
REPLY_TIMEOUT = 30.0

needs_console_script = pytest.mark.skipif(
    not RAPPORT.exists() or not (VENV_BIN / "activate").exists(),
    reason="needs the project installed in a virtual environment (make install)",
)


# --- reading the README -----------------------------------------------------------------------


def readme_section(heading: str, max_level: int = 6) -> str:
    """The text under `heading` up to the next heading of level <= `max_level` (fences skipped:
    a `# comment` in a code block is not a heading)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    in_fence = False
    for end in range(start + 1, len(lines)):
        line = lines[end]
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        heading_match = re.match(r"(#{1,6}) ", line)
        if not in_fence and heading_match and len(heading_match[1]) <= max_level:
            return "\n".join(lines[start + 1 : end])
    return "\n".join(lines[start + 1 :])


CODE = re.compile(r"```(?:bash|yaml)?\n(?P<block>.*?)```|`(?P<inline>[^`\n]+)`", re.DOTALL)


def code_blocks(section: str) -> list[str]:
    return [m["block"] for m in CODE.finditer(section) if m["block"] is not None]


@dataclass
class GoingLive:
    """The Going-live steps as a practice types them, in the README's order."""

    install: list[str] = field(default_factory=list)  # not run here: needs the network
    shell: list[str] = field(default_factory=list)  # exports, mkdir, activate: run in bash
    rapport: list[str] = field(default_factory=list)  # each one a process


def going_live_steps() -> GoingLive:
    steps = GoingLive()
    for m in CODE.finditer(readme_section("## Going live (for a practice)")):
        if m["block"] is not None:
            joined = m["block"].replace("\\\n", " ")  # continuation lines
            lines = [line.strip() for line in joined.splitlines() if line.strip()]
        elif m["inline"].startswith("rapport "):
            lines = [m["inline"]]
        else:
            continue  # `/newbot`, `/invite <name>`: typed in Telegram, not in a shell
        for line in lines:
            if "pip install" in line:
                steps.install.append(line)
            elif line.startswith("rapport "):
                steps.rapport.append(line)
            else:
                assert not steps.rapport, f"a setting comes after the first command: {line}"
                steps.shell.append(line)
    return steps


# --- processes --------------------------------------------------------------------------------


@dataclass
class Finished:
    argv: list[str]
    code: int
    out: str
    err: str

    def explain(self) -> str:
        command = shlex.join(self.argv)
        return f"`{command}` exited {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"


async def run_process(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = COMMAND_TIMEOUT
) -> Finished:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"`{shlex.join(argv)}` did not finish in {timeout:.0f} s") from None
    assert proc.returncode is not None
    return Finished(
        argv, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )


def clean_environment(home: Path, tmp: Path) -> dict[str, str]:
    """The machine's environment without our settings and without the virtual environment on the
    PATH: the README's own lines must provide both."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.pop("VIRTUAL_ENV", None)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV_BIN]
    env.update(PATH=os.pathsep.join(path), HOME=str(home), TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    # This process's font cache: a fresh HOME would make every child build its own, slowly,
    # and on a busy machine matplotlib then says so on stderr.
    env["MPLCONFIGDIR"] = matplotlib.get_cachedir()
    return env


async def environment_after(
    shell_lines: list[str], env: dict[str, str], cwd: Path
) -> dict[str, str]:
    """Run the README's setting-up lines in one bash and return the environment they leave."""
    script = "set -e\n" + "\n".join(shell_lines) + "\nenv -0\n"
    done = await run_process(["bash", "-c", script], env, cwd)
    assert done.code == 0, done.explain()
    pairs = (item.partition("=") for item in done.out.split("\0") if "=" in item)
    return {name: value for name, _, value in pairs}


async def wait_for_file(path: Path, timeout: float, what: str) -> None:
    """Another process creates `path`; there is no cross-process event to await, so look often."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(path.exists):
        if loop.time() > deadline:
            raise TimeoutError(f"no {what} after {timeout:.0f} s")
        await asyncio.sleep(0.05)


class RunningBot:
    """`rapport run` in the background, its output in files for reading after it stops."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.argv, self.env, self.cwd = argv, env, cwd
        self.out_path, self.err_path = cwd / "run.out", cwd / "run.err"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, sandbox: Sandbox) -> None:
        """Return once it polls the sandbox for updates; fail at once if it exits instead."""
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        polling = asyncio.ensure_future(sandbox.wait_for_call("getUpdates", timeout=START_TIMEOUT))
        exited = asyncio.ensure_future(self.proc.wait())
        done, _ = await asyncio.wait({polling, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await polling
            raise AssertionError(f"`rapport run` exited at start:\n{self.err()}")
        exited.cancel()
        polling.result()

    async def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.kill()
            raise AssertionError(f"`rapport run` ignored SIGTERM for {timeout:.0f} s") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")


def first_on_path_is_the_venv(env: dict[str, str]) -> bool:
    return Path(env["PATH"].split(os.pathsep)[0]).resolve() == VENV_BIN.resolve()


def printed(pattern: str, output: str) -> str:
    found = re.search(pattern, output)
    assert found, f"expected {pattern!r} in:\n{output}"
    return found[1]


# --- the practice goes live -------------------------------------------------------------------


@pytest.mark.slow
@needs_console_script
async def test_a_practice_goes_live_by_following_the_readme(tmp_path: Path) -> None:
    steps = going_live_steps()

    # Step 2's install line is the one thing not run: the installed copy stands in for it.
    assert len(steps.install) == 1 and "'.[postgres]'" in steps.install[0], steps.install
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "postgres" in pyproject["project"]["optional-dependencies"]

    practice = tmp_path / "practice"  # where the practice unpacked Rapport
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    for folder in (practice, home, tmp):
        folder.mkdir()
    (practice / ".venv").symlink_to(VENV_BIN.parent, target_is_directory=True)

    sandbox = Sandbox()
    await sandbox.start()
    sandbox.add_bot(DEFAULT_TOKEN, username=BOT_USERNAME, first_name="Rapport")
    bot: RunningBot | None = None
    try:
        env = await environment_after(steps.shell, clean_environment(home, tmp), practice)
        assert first_on_path_is_the_venv(env), "the README's lines must put `rapport` on the PATH"
        Cipher(env["RAPPORT_ENCRYPTION_KEY"])  # a real key, from `rapport keys generate`
        assert env["RAPPORT_DATABASE_URL"].startswith(f"sqlite+aiosqlite:///{home}/"), env[
            "RAPPORT_DATABASE_URL"
        ]
        assert "RAPPORT_TELEGRAM_TOKEN" in env, "the README must say where BotFather's token goes"
        env["RAPPORT_TELEGRAM_TOKEN"] = DEFAULT_TOKEN  # the practice pastes its own
        env["RAPPORT_TELEGRAM_API_URL"] = sandbox.api_url  # the one setting Telegram needs not

        outputs: dict[str, str] = {}
        for line in steps.rapport:
            argv = shlex.split(line, comments=True)
            command = " ".join(argv[:3])
            if argv[:2] == ["rapport", "run"]:
                bot = RunningBot(argv, env, practice)
                await bot.start(sandbox)
                continue
            if argv[:2] == ["rapport", "health"]:
                beat = alive_file(env["RAPPORT_DATABASE_URL"]).name  # in the bot's TMPDIR
                await wait_for_file(tmp / beat, START_TIMEOUT, "heartbeat")
            done = await run_process(argv, env, practice)
            assert done.code == 0, done.explain()
            assert "Traceback" not in done.err, done.explain()
            outputs[command] = done.out

        assert bot is not None, "the README must say how to run the bot"
        expected = {
            "rapport db upgrade",
            "rapport practice set",
            "rapport therapist add",
            "rapport client add",
            "rapport session add",
            "rapport health",
        }
        assert expected <= set(outputs), sorted(outputs)
        assert outputs["rapport health"].splitlines()[0] == "ok"

        # The README goes on with `--therapist 1` and `--client 1`: those are the ids printed.
        therapist_out, client_out = outputs["rapport therapist add"], outputs["rapport client add"]
        assert printed(r"therapist (\d+) added", therapist_out) == "1"
        assert printed(r"client (\d+) added", client_out) == "1"
        tokens = []
        for output in (therapist_out, client_out):
            link = urlparse(printed(r"invite link: (\S+)", output))
            assert (link.scheme, link.netloc, link.path) == ("https", "t.me", f"/{BOT_USERNAME}")
            token = parse_qs(link.query)["start"][0]
            assert re.fullmatch(r"[A-Za-z0-9_-]{20,64}", token), token
            tokens.append(token)
        assert printed(r"session (\d+) at", outputs["rapport session add"]) == "1"

        # Therapist and client open their links: Telegram sends the bot `/start <token>`.
        dana = sandbox.user("Dana", language_code="en")
        await dana.send(f"/start {tokens[0]}")
        assert (await dana.next_message(timeout=REPLY_TIMEOUT))["text"] == t(
            "en", "therapist.welcome"
        )
        alice = sandbox.user("Alice", language_code="en")
        await alice.send(f"/start {tokens[1]}")
        greeting = await alice.next_message(timeout=REPLY_TIMEOUT)
        assert "Rapport" in greeting["text"]
        assert {"English", "Español", "Русский"} <= set(button_labels(greeting))

        code = await bot.terminate()
        log = bot.out() + bot.err()
        assert code == 0, log
        assert "Traceback" not in log, log
        assert not [line for line in log.splitlines() if " ERROR " in line or " CRITICAL " in line]
        secrets = [DEFAULT_TOKEN, env["RAPPORT_ENCRYPTION_KEY"], "Dana Lee", "Alice Smith", *tokens]
        assert not [s for s in secrets if s in log], "the log carries a token, key or name"
    finally:
        if bot is not None:
            bot.kill()
        await sandbox.stop()


# --- misconfiguration: one line naming the setting, exit code 2 -------------------------------


@pytest.fixture
def runnable_env(tmp_path: Path) -> dict[str, str]:
    """Everything `rapport run` needs, pointing at a Bot API that is not there: each case below
    breaks one setting, so start-up must stop before any request."""
    (tmp_path / "tmp").mkdir()
    env = clean_environment(tmp_path, tmp_path / "tmp")
    env.update(
        RAPPORT_TELEGRAM_TOKEN=DEFAULT_TOKEN,
        RAPPORT_TELEGRAM_API_URL="http://127.0.0.1:9/bot",
        RAPPORT_ENCRYPTION_KEY=Cipher.generate_key(),
        RAPPORT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/rapport.db",
    )
    return env


MISCONFIGURATIONS: dict[str, tuple[dict[str, str | None], str]] = {
    "encryption key nonsense": ({"RAPPORT_ENCRYPTION_KEY": "nonsense"}, "RAPPORT_ENCRYPTION_KEY"),
    "token missing": ({"RAPPORT_TELEGRAM_TOKEN": None}, "RAPPORT_TELEGRAM_TOKEN"),
    "README's placeholder token": (
        {"RAPPORT_TELEGRAM_TOKEN": "123456789:AA..."},
        "RAPPORT_TELEGRAM_TOKEN",
    ),
    "clock": ({"RAPPORT_CLOCK": "fast"}, "RAPPORT_CLOCK"),
    "database scheme": (
        {"RAPPORT_DATABASE_URL": "mysql://rapport@db/rapport"},
        "RAPPORT_DATABASE_URL",
    ),
}


def with_changes(env: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    env = dict(env)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def one_line_problems(done: Finished, setting: str) -> list[str]:
    """What is wrong with how start-up stopped; nothing when it stopped as promised."""
    problems = []
    lines = done.err.strip().splitlines()
    if done.code != 2:
        problems.append(f"exit code {done.code}, not 2")
    if len(lines) != 1 or setting not in lines[0]:
        problems.append(f"stderr is not one line naming {setting}")
    if "Traceback" in done.err:
        problems.append("a traceback")
    return problems


@pytest.mark.slow
@needs_console_script
async def test_misconfiguration_stops_start_up_with_one_line_naming_the_setting(
    runnable_env: dict[str, str], tmp_path: Path
) -> None:
    names = list(MISCONFIGURATIONS)
    runs = await asyncio.gather(
        *(
            run_process(
                [str(RAPPORT), "run"],
                with_changes(runnable_env, MISCONFIGURATIONS[name][0]),
                tmp_path,
            )
            for name in names
        )
    )
    failures = {}
    for name, done in zip(names, runs, strict=True):
        problems = one_line_problems(done, MISCONFIGURATIONS[name][1])
        if problems:
            failures[name] = f"{', '.join(problems)}:\n{done.err.strip()[-600:]}"
    assert not failures, "\n\n".join(f"[{k}] {v}" for k, v in failures.items())
    assert not (tmp_path / "rapport.db").exists(), "start-up went on to create the database"


@pytest.mark.slow
@needs_console_script
@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        pytest.param({"RAPPORT_ENCRYPTION_KEY": None}, "RAPPORT_ENCRYPTION_KEY", id="key-missing"),
        pytest.param(
            {"RAPPORT_DATABASE_URL": "sqlite+aiosqlite:////nonexistent-folder/rapport.db"},
            "RAPPORT_DATABASE_URL",
            id="database-folder-missing",
        ),
    ],
)
async def test_misconfiguration_found_late_still_stops_with_one_line(
    runnable_env: dict[str, str], tmp_path: Path, changes: dict[str, str | None], setting: str
) -> None:
    done = await run_process([str(RAPPORT), "run"], with_changes(runnable_env, changes), tmp_path)
    assert not one_line_problems(done, setting), done.explain()


# --- the README's reference parts match the code ----------------------------------------------


def resolve(path: list[str]) -> Any:
    """The CLI command at `path` (typer's own command objects: groups have `.commands`)."""
    command: Any = typer.main.get_command(cli_app)
    for word in path:
        sub = getattr(command, "commands", {}).get(word)
        assert sub is not None, f"`rapport {' '.join(path)}` does not exist"
        command = sub
    return command


def listed_commands() -> Iterator[tuple[list[str], list[str]]]:
    """(path, options) for every command of the README's Commands list, `a|b` expanded."""
    (block,) = code_blocks(readme_section("### Commands", max_level=3))
    for chunk in re.split(r"\s+(?=rapport\b)", block.strip()):
        words = chunk.split()
        assert words[0] == "rapport", chunk
        path: list[list[str]] = []
        for word in words[1:]:
            if not re.fullmatch(r"[a-z][a-z|]*", word):
                break
            path.append(word.split("|"))
        options = re.findall(r"--[a-z][a-z-]*", chunk)
        expanded: list[list[str]] = [[]]
        for choices in path:
            expanded = [[*p, c] for p in expanded for c in choices]
        for one in expanded:
            yield one, options


def test_every_listed_command_and_option_exists() -> None:
    listed = list(listed_commands())
    assert len(listed) >= 25, listed  # the whole list was read
    for path, options in listed:
        command = resolve(path)
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        assert set(options) <= known, f"`rapport {' '.join(path)}` lacks {set(options) - known}"
        if path[-1] in ("add", "list"):  # "Every listing or creating command takes `--json`."
            assert "--json" in known, f"`rapport {' '.join(path)}` lacks --json"
    for path in (["db", "upgrade"], ["practice", "set"], ["therapist", "add"], ["run"]):
        resolve(path)


def test_the_configuration_table_is_the_settings() -> None:
    rows = re.findall(
        r"^\| `(RAPPORT_[A-Z_]+)` \| (.*?) \|",
        readme_section("### Configuration", max_level=3),
        re.MULTILINE,
    )
    table = dict(rows)
    fields = Settings.model_fields
    assert set(table) == {f"RAPPORT_{name.upper()}" for name in fields}
    for variable, default in table.items():
        literal = re.fullmatch(r"`([^`]+)`", default.strip())
        if literal is None:
            continue  # "— (required)", "system clock": words, not values
        actual = fields[variable.removeprefix("RAPPORT_").lower()].default
        if isinstance(actual, float):
            assert float(literal[1]) == actual, variable
        else:
            assert literal[1] == actual, variable


# --- Docker -----------------------------------------------------------------------------------


def test_compose_file_is_the_readme_example() -> None:
    (example,) = code_blocks(readme_section("### Docker", max_level=3))
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert yaml.safe_load(example) == compose
    bot: dict[str, Any] = compose["services"]["bot"]
    resolve(bot["command"])
    settings = {f"RAPPORT_{name.upper()}" for name in Settings.model_fields}
    assert set(bot["environment"]) <= settings
    assert bot["environment"]["RAPPORT_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "db" in bot["depends_on"]


def test_the_image_copies_every_package_and_runs_the_console_script() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = {
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages | {"pyproject.toml", "README.md"} <= copied
    assert 'ENTRYPOINT ["rapport"]' in dockerfile
    assert "rapport" in pyproject["project"]["scripts"]


def test_package_data_covers_every_data_file() -> None:
    """Files in folders that are not packages (YAML, migrations) reach the wheel only through
    package-data; one that no pattern matches would be missing from the image."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns: dict[str, list[str]] = pyproject["tool"]["setuptools"]["package-data"]
    checked = 0
    for package in ("bot", "flows", "insights", "storage", "web"):
        shipped = {
            f for pattern in patterns.get(package, []) for f in (ROOT / package).glob(pattern)
        }
        for path in (ROOT / package).rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".md":
                continue
            if path.suffix == ".py" and (path.parent / "__init__.py").exists():
                continue  # a module of a package: found by packages.find
            assert path in shipped, f"{path.relative_to(ROOT)} is in no package-data pattern"
            checked += 1
    assert checked >= 8  # instruments, locales, alembic env.py, script.py.mako, a migration
