"""Wall-clock timestamps of what crosses the sandbox: when a user sent, and when the bot's message
arrived. Latency is measured from these events, never by sleeping and looking."""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devtools.sandbox import ApiCall, Sandbox

SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "editMessageText"})


@dataclass
class Traffic:
    """Per chat: the times users sent, the times the bot's messages arrived (ok), and failures."""

    sent: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    received: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    rejected: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    bot_username: str | None = None  # only this bot's calls count (None: every bot's)
    received_total: int = 0
    first_received: float | None = None
    last_received: float | None = None
    polls: int = 0  # getUpdates calls that brought something
    polled: int = 0  # updates those calls carried, counting each redelivery

    def note_send(self, chat_id: int) -> None:
        self.sent[chat_id].append(time.perf_counter())

    def note_call(self, call: ApiCall, at: float) -> None:
        if self.bot_username is not None and call.bot_username != self.bot_username:
            return
        if call.method == "getUpdates" and isinstance(call.result, list) and call.result:
            self.polls += 1
            self.polled += len(call.result)
            return
        if call.method not in SEND_METHODS:
            return
        chat_id = call.params.get("chat_id")
        if not isinstance(chat_id, int):
            try:
                chat_id = int(str(chat_id))
            except ValueError:
                return
        if not call.ok:
            self.rejected[chat_id] += 1
            return
        self.received[chat_id].append(at)
        self.received_total += 1
        self.first_received = at if self.first_received is None else self.first_received
        self.last_received = at

    def reset(self) -> None:
        self.sent.clear()
        self.received.clear()
        self.rejected.clear()
        self.received_total = 0
        self.polls = self.polled = 0
        self.first_received = self.last_received = None

    @property
    def first_sent(self) -> float | None:
        return min((times[0] for times in self.sent.values() if times), default=None)

    def latencies(self) -> tuple[list[float], int]:
        """Send-to-reply delays, pairing the k-th send in a chat with the k-th reply there (each
        bot under test answers one text with one message, in order); and the unanswered count."""
        delays: list[float] = []
        missing = 0
        for chat_id, sends in self.sent.items():
            replies = self.received.get(chat_id, [])
            delays.extend(r - s for s, r in zip(sends, replies, strict=False))
            missing += max(0, len(sends) - len(replies))
        return delays, missing


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc); NaN where unavailable."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def on_every_call(sandbox: Sandbox, note: Callable[[ApiCall, float], None]) -> None:
    """Call `note(call, perf_counter time)` for every Bot API call the sandbox answers, at the
    moment it is recorded."""
    world = sandbox.world
    record = world.record

    def timed_record(call: ApiCall) -> None:
        note(call, time.perf_counter())
        record(call)

    world.record = timed_record  # type: ignore[method-assign]


def watch(sandbox: Sandbox) -> Traffic:
    """Start timestamping every Bot API call the sandbox answers, at the moment it is recorded."""
    traffic = Traffic()
    on_every_call(sandbox, traffic.note_call)
    return traffic
