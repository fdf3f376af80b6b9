"""The direction of imports (DESIGN, "Layout"): the adapters (`bot`, `cli`, `web`) → `app` →
`flows`, `insights`, `storage`; `insights` → `flows`; `storage` → nothing of ours but
plain data types (the status names, `flows.statuses`).

Every import counts, wherever it is written: at the top, inside a function, or under
`TYPE_CHECKING` (a type is a dependency too).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN: dict[str, tuple[str, ...]] = {
    # Telegram-only and the command line: every query goes through `app` into `storage`.
    "bot": ("sqlalchemy",),
    "cli": ("sqlalchemy",),
    # The use cases: no front end, so the web console can call what Telegram calls.
    "app": ("telegram", "starlette", "uvicorn", "jinja2", "bot", "cli", "web"),
    # The console: pages over the use cases, never a query of its own.
    "web": ("sqlalchemy", "storage", "telegram", "bot", "cli"),
    # Pure: no database, no use cases, no front end.
    "flows": ("app", "bot", "cli", "storage", "sqlalchemy", "insights"),
    "insights": ("app", "bot", "cli", "storage", "sqlalchemy"),
    # Nothing of ours: SQLAlchemy models and queries over plain data.
    "storage": ("app", "bot", "cli", "flows", "insights"),
}
ALLOWED: dict[str, tuple[str, ...]] = {
    # Plain data types: the names of the statuses stored in the status columns.
    "storage": (
        "flows.statuses",
        "flows.statuses.ClientStatus",
        "flows.statuses.CheckinStatus",
    ),
}


def imported(source: str, module: str) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in `source`, the module `module`'s text;
    relative imports are resolved against it."""
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield node.lineno, name
            for alias in node.names:  # `from storage import repo` imports `storage.repo`
                yield node.lineno, f"{name}.{alias.name}"


def breaches(layer: str, source: str, module: str) -> list[str]:
    """The imports of `source` that `layer` may not make, as `line: module`."""
    banned, allowed = FORBIDDEN[layer], ALLOWED.get(layer, ())
    found = {
        (n, name)
        for n, name in imported(source, module)
        if name.split(".")[0] in banned and name not in allowed
    }
    return [f"{n}: {name}" for n, name in sorted(found)]


def modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_go_one_way(layer: str) -> None:
    assert modules(layer), f"no modules in {layer}/"
    problems = []
    for path in modules(layer):
        relative = path.relative_to(ROOT)
        module = ".".join(relative.with_suffix("").parts)
        for entry in breaches(layer, path.read_text(encoding="utf-8"), module):
            problems.append(f"{relative}:{entry}")
    assert not problems, f"{layer}/ may not import {', '.join(FORBIDDEN[layer])}:\n" + "\n".join(
        problems
    )


SQL_IN_APP = {"app/runtime.py"}  # the unit of work: engine, session factory, after-commit


def test_the_use_cases_leave_sql_to_storage() -> None:
    """Every query is in `storage/`: a use case hands its session to storage functions."""
    speaking = set()
    for path in modules("app"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        names = imported(path.read_text(encoding="utf-8"), module)
        if any(name.split(".")[0] == "sqlalchemy" for _, name in names):
            speaking.add(str(path.relative_to(ROOT)))
    assert speaking <= SQL_IN_APP, f"import sqlalchemy: {sorted(speaking - SQL_IN_APP)}"


def test_every_kind_of_import_is_seen() -> None:
    """The check sees imports in functions, under TYPE_CHECKING, relative and `from x import y`."""
    source = """
from typing import TYPE_CHECKING
from app import runtime
if TYPE_CHECKING:
    from bot.dispatch import After
def late() -> None:
    import sqlalchemy.exc
"""
    assert breaches("app", source, "app.module") == ["5: bot.dispatch", "5: bot.dispatch.After"]
    assert breaches("bot", source, "bot.module") == ["7: sqlalchemy.exc"]
    in_storage = ["3: app", "3: app.runtime", "5: bot.dispatch", "5: bot.dispatch.After"]
    assert breaches("storage", source, "storage.module") == in_storage
    relative = "from ...bot import dispatch"
    assert breaches("app", relative, "app.sub.module") == ["1: bot", "1: bot.dispatch"]
