"""The admin's pages: practice settings, people and sessions, the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from app.console import Viewer

if TYPE_CHECKING:
    from web.app import Console

Page = Callable[[Request, "Console", Viewer], Awaitable[Response]]

ROUTES: list[tuple[str, Page, bool]] = []
