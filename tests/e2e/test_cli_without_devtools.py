"""`rapport sandbox` and `rapport demo` from an installed package (a wheel, the image), where
devtools/ is not shipped: one line that says where they live, not a traceback."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from cli.main import commands


@pytest.fixture
def without_devtools(monkeypatch: pytest.MonkeyPatch) -> None:
    """devtools/ not importable, as in a wheel: even modules an earlier test imported."""
    for name in [n for n in sys.modules if n == "devtools" or n.startswith("devtools.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "devtools", None)


@pytest.mark.parametrize("command", [["sandbox"], ["demo", "--weeks", "1"]])
@pytest.mark.usefixtures("without_devtools")
def test_one_line_when_devtools_is_not_installed(command: list[str]) -> None:
    result = CliRunner().invoke(commands, command)
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("rapport: ")
    assert "devtools" in lines[0] and "checkout" in lines[0]


def test_another_missing_module_is_not_blamed_on_devtools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only devtools' own absence is explained away; a module of ours missing is a real bug."""
    import devtools.sandbox.standalone  # noqa: F401  (imported once, then forgotten)

    monkeypatch.delitem(sys.modules, "devtools.sandbox.standalone")
    monkeypatch.setitem(sys.modules, "app.clock", None)
    result = CliRunner().invoke(commands, ["sandbox"])
    assert isinstance(result.exception, ModuleNotFoundError)
    assert result.exception.name == "app.clock"
