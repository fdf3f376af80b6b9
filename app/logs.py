"""Logging set-up: plain or JSON lines. Log records carry ids and counts, never message text,
names, comments, invite tokens or the bot token. Our own records are written that way; the
records of third-party libraries (PTB, httpx, uvicorn, ...) are not ours to word, so
`LibraryRecords` keeps their wording and drops their values, and `RedactTokens` is a second line
of defence for request URLs (which contain the bot token)."""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from app.quarantine import where

_TOKEN = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{20,80}")


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _TOKEN.search(message):
            record.msg, record.args = _TOKEN.sub("<token>", message), None
        return True


# Loggers whose records may quote an update, a request or a reply (PTB logs an update it cannot
# parse whole, at CRITICAL): everything that is not ours and talks to Telegram or the web.
LIBRARY_LOGGERS = (
    "telegram",
    "httpx",
    "httpcore",
    "apscheduler",
    "aiohttp",
    "uvicorn",
    "starlette",
    "tornado",
    "asyncio",
)


def _scrubbed(value: Any) -> Any:
    """Numbers (status codes, counts, ids) stay; anything else becomes its type's name."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return f"<{type(value).__name__}>"


class LibraryRecords(logging.Filter):
    """A third-party record keeps its message template (constant text in the library) and its
    numbers; its other arguments (an update, a URL, a request body) and its exception's message
    are dropped, the exception named by type and place instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(LIBRARY_LOGGERS):
            return True
        if not isinstance(record.msg, str | BaseException):  # an object logged as the message
            record.msg = _scrubbed(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: _scrubbed(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_scrubbed(value) for value in record.args)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.msg} [{type(exc).__name__} at {where(exc)}]"
            record.exc_info, record.exc_text = None, None
        record.stack_info = None
        return True


def stack_without_messages(exc: BaseException) -> str:
    """A traceback that names each frame and each exception's type, never its message: the
    message of a database error may quote a value ("Key (telegram_user_id)=(…) already
    exists"), and a parser's the text it could not parse. Oldest exception first, as Python
    prints a chain."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    lines = ["Traceback (messages withheld):"]
    for error in reversed(chain):
        for frame in traceback.extract_tb(error.__traceback__):
            lines.append(f"  {Path(frame.filename).name}:{frame.lineno} in {frame.name}")
        lines.append(type(error).__name__)
    return "\n".join(lines)


class SafeFormatter(logging.Formatter):
    """Exceptions as `stack_without_messages`, for our records and every library's."""

    def formatException(self, ei: Any) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        return stack_without_messages(exc) if exc is not None else ""


class JsonFormatter(SafeFormatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


# Libraries whose DEBUG output carries request parameters (message text, URLs with the token).
QUIET_LIBRARIES = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.INFO,
    "aiosqlite": logging.INFO,
    "asyncio": logging.INFO,
    "apscheduler": logging.WARNING,
    "aiohttp.access": logging.WARNING,
    "uvicorn.access": logging.WARNING,
    "matplotlib": logging.WARNING,
    "transitions": logging.WARNING,  # a line per callback of every conversation step
}


def setup_logging(level: str = "INFO", fmt: str = "plain", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream)
    handler.addFilter(LibraryRecords())
    handler.addFilter(RedactTokens())
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, floor in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(floor, logging.getLevelName(level)))
