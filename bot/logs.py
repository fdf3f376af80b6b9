"""Logging set-up: plain or JSON lines. Log records carry ids and counts, never message text,
names, comments, invite tokens or the bot token; `RedactTokens` is a second line of defence for
third-party libraries that log request URLs (which contain the bot token)."""

from __future__ import annotations

import json
import logging
import re
from typing import TextIO

_TOKEN = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{20,80}")


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _TOKEN.search(message):
            record.msg, record.args = _TOKEN.sub("<token>", message), None
        return True


class JsonFormatter(logging.Formatter):
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
    "tornado.access": logging.WARNING,
    "aiohttp.access": logging.WARNING,
    "matplotlib": logging.WARNING,
    "transitions": logging.WARNING,  # a line per callback of every conversation step
}


def setup_logging(level: str = "INFO", fmt: str = "plain", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactTokens())
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, floor in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(floor, logging.getLevelName(level)))
