"""The demo's live transcript: who did what, when (simulated, in the practice's local time),
with a progress bar over the simulated weeks. It names clients by alias only and never shows what
anyone wrote; `quiet` keeps it silent so only the summary is printed.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text


def local_stamp(at: datetime, zone: ZoneInfo) -> str:
    """'Tue 06 Jan 18:00' in `zone`."""
    return at.astimezone(zone).strftime("%a %d %b %H:%M")


@dataclass(frozen=True)
class _Line:
    lead: str
    text: str
    style: str


class Transcript:
    def __init__(self, console: Console, zone: ZoneInfo, *, quiet: bool = False) -> None:
        self.console = console
        self.zone = zone
        self.quiet = quiet
        self.lines = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._start: datetime | None = None
        self._weeks = 0
        self._pending: list[tuple[datetime, int, _Line]] = []
        self._order = itertools.count()

    def stamp(self, at: datetime) -> str:
        return local_stamp(at, self.zone)

    def note(self, text: str, style: str | None = None) -> None:
        """A line without a time (set-up and closing remarks)."""
        if not self.quiet:
            self._print(Text(text, style=style or ""))

    def event(self, at: datetime, text: str, style: str | None = None, *, lead: str = "") -> None:
        """A line stamped `at`. Lines wait until time has moved past them, then print in order,
        so a reply and an alert seen a moment apart by different readers come out as they
        happened; lines of the same moment with the same `lead` are joined ("check-in sent to
        M.S., T.B.")."""
        self.lines += 1
        if not self.quiet:
            heapq.heappush(self._pending, (at, next(self._order), _Line(lead, text, style or "")))

    def flush(self, before: datetime | None = None) -> None:
        while self._pending and (before is None or self._pending[0][0] < before):
            at, _, line = heapq.heappop(self._pending)
            subjects = [line.text]
            while line.lead and self._pending and self._pending[0][0] == at:
                following = self._pending[0][2]
                if following.lead != line.lead or following.style != line.style:
                    break
                subjects.append(heapq.heappop(self._pending)[2].text)
            text = Text(f"{self.stamp(at)} · ", style="dim")
            text.append(line.lead + ", ".join(subjects), style=line.style)
            self._print(text)

    def _print(self, text: Text) -> None:
        console = self._progress.console if self._progress is not None else self.console
        console.print(text, overflow="fold")

    # --- progress over the simulated weeks --------------------------------------------------

    def start_progress(self, start: datetime, end: datetime, weeks: int) -> None:
        if self.quiet:
            return
        self._start, self._weeks = start, weeks
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            refresh_per_second=4,
        )
        self._task = self._progress.add_task(
            "simulated week 1", total=(end - start).total_seconds()
        )
        self._progress.start()

    def advance_to(self, now: datetime) -> None:
        self.flush(now)
        if self._progress is None or self._task is None or self._start is None:
            return
        done = max(0.0, (now - self._start).total_seconds())
        week = min(self._weeks, int(done // timedelta(weeks=1).total_seconds()) + 1)
        label = f"simulated week {week} of {self._weeks} · {self.stamp(now)}"
        self._progress.update(self._task, completed=done, description=label)

    def stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
