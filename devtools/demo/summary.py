"""The demo's bookkeeping: the bot's warnings and errors counted (never printed over the
transcript), and summary.json put together from the facts and the checks."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from devtools.demo.checks import Check
from devtools.demo.clock import HeldTimelapse
from devtools.demo.report import ClientFacts
from devtools.demo.therapist import TherapistView


class LogCounter(logging.Handler):
    """Counts the bot's warnings and errors (their messages carry ids, never content)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname, record.name))

    @property
    def errors(self) -> int:
        return sum(1 for level, _ in self.records if level in ("ERROR", "CRITICAL"))

    @property
    def warnings(self) -> int:
        return len(self.records) - self.errors

    def check(self) -> Check:
        detail = f"{self.errors} errors, {self.warnings} warnings"
        return Check("the bot ran without logging an error", self.errors == 0, detail)


@contextlib.contextmanager
def counted_logs() -> Iterator[LogCounter]:
    """Route the bot's logs into a counter for the demo's duration (the transcript speaks)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    counter = LogCounter()
    root.handlers[:] = [counter]
    root.setLevel(logging.WARNING)
    try:
        yield counter
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def summary_json(
    *,
    facts: list[ClientFacts],
    therapist: TherapistView,
    checks: list[Check],
    weeks: int,
    span: tuple[datetime, datetime, str],
    fixed_speed: float | None,
    wall: float,
    clock: HeldTimelapse,
    logs: LogCounter,
) -> dict[str, Any]:
    start, end, zone = span
    crisis = {f.alias: f.crisis_sent_at for f in facts if f.crisis_sent_at is not None}
    alerts = []
    for alert in therapist.alerts:
        sent = crisis.get(alert.alias)
        minutes = None if sent is None else round((alert.at - sent).total_seconds() / 60, 1)
        alerts.append(
            {
                "client": alert.alias,
                "at": alert.at.isoformat(),
                "minutes_after_message": minutes,
                "acknowledged": alert.acknowledged is not None,
            }
        )
    return {
        "weeks": weeks,
        "simulated": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "days": round((end - start).total_seconds() / 86400, 2),
            "timezone": zone,
        },
        "wall_seconds": round(wall, 1),
        "clock": {
            "speed": "paced" if fixed_speed is None else fixed_speed,
            "simulated_seconds_per_wall_second": round((end - start).total_seconds() / wall),
            "stopped_wall_seconds": round(clock.held_wall, 1),
        },
        "demo_mode": {
            "encryption_key": "throw-away, generated for this run",
            "send_rate": 0,
            "chat_send_rate": 0,
        },
        "clients": {f.alias: f.to_json() for f in facts},
        "crisis_alerts": alerts,
        "charts": [d.chart_file for d in therapist.digests if d.chart_file],
        "bot_log": {"warnings": logs.warnings, "errors": logs.errors},
        "checks": [check.to_json() for check in checks],
        "ok": all(check.ok for check in checks),
    }
