"""What reached the sandbox: requests as they arrive (so a test can act while some are still in
flight) and the messages that were really delivered to each chat (so duplicates can be counted)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from devtools.sandbox import Sandbox

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Seconds before a wait gives up. A failure guard only, never the mechanism: every wait in the
# fault suite is on a condition (a request parked or answered, a row committed), and a loaded
# machine may take long to get there.
GUARD = 60.0


@dataclass(frozen=True)
class Exchange:
    """One Bot API request: method (lower case), wall times, and the HTTP status answered."""

    method: str
    arrived: float
    answered: float
    status: int


class Traffic:
    """Watches every Bot API request; install before `sandbox.start()` (middlewares freeze)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.arrivals: list[tuple[float, str]] = []
        self.exchanges: list[Exchange] = []

        @web.middleware
        async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
            method = request.match_info.get("method", "").lower()
            arrived = time.monotonic()
            self.arrivals.append((arrived, method))
            sandbox.world.notify()
            response = await handler(request)
            self.exchanges.append(Exchange(method, arrived, time.monotonic(), response.status))
            sandbox.world.notify()
            return response

        sandbox.app.middlewares.append(observe)

    def arrived(self, method: str) -> int:
        wanted = method.lower()
        return sum(1 for _, m in self.arrivals if m == wanted)

    def in_flight(self, method: str) -> int:
        wanted = method.lower()
        return self.arrived(method) - sum(1 for e in self.exchanges if e.method == wanted)

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        await self._sandbox.wait_until(condition, timeout=timeout, what=what)


def delivered(sandbox: Sandbox, method: str = "sendMessage") -> Counter[tuple[int, str]]:
    """(chat id, text or caption) of every message the sandbox accepted, counted.

    A request the bot gave up on (a timeout, a killed process) but that the server completed is
    counted too: the person saw that message.
    """
    counts: Counter[tuple[int, str]] = Counter()
    for call in sandbox.calls_to(method):
        if call.ok:
            text = call.params.get("text") or call.params.get("caption") or ""
            counts[(int(call.params["chat_id"]), str(text))] += 1
    return counts


def duplicates(counts: Counter[tuple[int, str]]) -> int:
    """Copies beyond the first of each (chat, text): the at-least-once surplus."""
    return sum(n - 1 for n in counts.values() if n > 1)
