"""Writes that ride along. On PostgreSQL a write whose outcome nothing reads can go in another
statement's WITH clause: one round trip fewer. Elsewhere it runs as a statement of its own, right
after (SQLite has no round trip to save). An update's new conversation state and its answer ride
in the INSERT of its reply (`outbox.queue_message`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class Write:
    """One write: a statement built once (it is a cache key, `carried`) and its parameters,
    named apart from those of every statement it may ride in or beside."""

    statement: Any
    params: Mapping[str, Any]


def rides(s: AsyncSession) -> bool:
    """Whether writes ride in another statement on this session's database."""
    return s.get_bind().dialect.name == "postgresql"


@functools.lru_cache(maxsize=64)
def carried(statement: Any, writes: tuple[Any, ...]) -> Any:
    """`statement` with these writes' statements in its WITH clause: they touch other rows than
    it and read nothing of each other's, so one statement does them all."""
    return statement.add_cte(*(_cte(w, f"along_{n}") for n, w in enumerate(writes)))


def _cte(write: Any, name: str) -> Any:
    """A write as a WITH clause's entry (a write in text is one that returns no columns)."""
    if isinstance(write, TextClause):
        return write.columns().cte(name)
    return write.cte(name)


def params_of(writes: Sequence[Write]) -> dict[str, Any]:
    return {name: value for w in writes for name, value in w.params.items()}


async def run_alone(s: AsyncSession, writes: Sequence[Write]) -> None:
    """Each write as a statement of its own, in order."""
    for w in writes:
        await s.execute(w.statement, dict(w.params))
