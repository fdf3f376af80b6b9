"""What the sandbox saw: every Bot API call the bots made, and running counters over them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request: canonical method name, decoded params, and how it was answered."""

    method: str
    params: dict[str, Any]
    status: int
    bot_username: str | None = None
    description: str | None = None
    result: Any = None
    date: int = 0
    abandoned: bool = False  # the client had gone before the reply (e.g. a cancelled long poll)

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class SandboxStats:
    """Counters for throughput and fault tests (429s issued, errors, messages per chat)."""

    messages_per_chat: Counter[int] = field(default_factory=Counter)
    calls_per_method: Counter[str] = field(default_factory=Counter)
    errors_per_status: Counter[int] = field(default_factory=Counter)
    too_many_requests: int = 0
    errors: int = 0
    webhook_deliveries: int = 0
    webhook_failures: int = 0

    @property
    def messages_sent(self) -> int:
        return sum(self.messages_per_chat.values())

    def record(self, call: ApiCall) -> None:
        self.calls_per_method[call.method] += 1
        if call.status != 200 and not call.abandoned:
            self.errors += 1
            self.errors_per_status[call.status] += 1
        if call.status == 429:
            self.too_many_requests += 1
