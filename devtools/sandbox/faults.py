"""Fault injection and Telegram's flood limits, for proving the bot survives a bad day.

Injected failures (`fail_next`) and latency are deterministic and per method; holds (`hold`, see
`devtools.sandbox.holds`) park requests until the test releases them. Rate limits model
Telegram's published ceilings (≈30 messages/s per bot, ≈1 message/s per chat with short bursts,
20 messages/min per group) with token buckets on the wall-clock monotonic time: they are real
throughput limits, so they must not speed up with a time-lapse clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from devtools.sandbox.errors import ApiError, server_error, too_many_requests
from devtools.sandbox.holds import Hold

# Methods that post a new message: the ones Telegram's flood control counts.
RATE_LIMITED_METHODS = frozenset(
    {"sendmessage", "sendphoto", "senddocument", "sendvoice", "sendsticker", "sendmediagroup",
     "sendanimation", "sendaudio", "sendvideo", "copymessage", "forwardmessage"}
)  # fmt: skip

DISCONNECT = 0  # `fail_next(status=DISCONNECT)`: the connection drops without any reply


@dataclass
class _FailRule:
    method: str | None
    chat_id: int | None
    status: int
    retry_after: int
    description: str | None
    remaining: int

    def matches(self, method: str, chat_id: int | str | None) -> bool:
        if self.method is not None and self.method != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id


class TokenBucket:
    """`capacity` tokens refilled at `rate` per second; one token per message."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.tokens = self.capacity
        self.stamp = now

    def wait_time(self, now: float) -> float:
        """Seconds until a token is available (0 if one is available now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0


@dataclass(frozen=True)
class RateLimitConfig:
    per_bot: float
    per_chat: float
    burst: float
    per_group_per_minute: float


def _no_listener() -> None:
    return None


class Faults:
    """The switches tests and the demo flip: failures, latency, holds, duplicates, flood limits."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._rules: list[_FailRule] = []
        self._holds: list[Hold] = []
        # Called when a request is parked or released; the world points it at its change signal.
        self.on_change: Callable[[], None] = _no_listener
        self._latency: dict[str | None, float] = {}
        self.duplicate = False
        self.limits: RateLimitConfig | None = None
        self._buckets: dict[tuple[int, int | str | None], TokenBucket] = {}

    def fail_next(
        self,
        method: str | None = "sendMessage",
        status: int = 429,
        *,
        retry_after: int = 3,
        times: int = 1,
        description: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """The next `times` calls of `method` (None: any method) fail with `status`.

        429 carries `parameters.retry_after`; 5xx carry their usual phrase; other statuses need a
        `description` such as "Forbidden: bot was blocked by the user"; `DISCONNECT` (0) drops
        the connection. `chat_id` narrows the rule to sends to one chat.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        self._rules.append(
            _FailRule(
                method.lower() if method else None,
                chat_id,
                status,
                retry_after,
                description,
                times,
            )
        )

    def latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every reply (or those of one method) by `seconds` of wall time; 0 removes it."""
        key = method.lower() if method else None
        if seconds <= 0:
            self._latency.pop(key, None)
        else:
            self._latency[key] = seconds

    def hold(
        self,
        method: str | None = "sendMessage",
        *,
        times: int | None = 1,
        chat_id: int | None = None,
    ) -> Hold:
        """Park the next `times` calls of `method` (None: any method; `times=None`: every call
        until the hold is lifted) once received whole, until `release()` on the returned hold.

        `chat_id` narrows the hold to one chat. A released request is processed even if its
        sender has gone meanwhile, as on Telegram. `clear()` lifts every hold.
        """
        new = Hold(method, chat_id, times, self._changed)
        self._holds.append(new)
        return new

    def lift_holds(self) -> None:
        """Release every parked request and stop holding."""
        for held in self._holds:
            held.lift()
        self._holds.clear()

    @property
    def parked(self) -> int:
        """Requests parked by any hold now."""
        return sum(held.parked for held in self._holds)

    def duplicate_updates(self, enabled: bool = True) -> None:
        """Queue every new update twice under the same update_id (webhooks: POST it twice)."""
        self.duplicate = enabled

    def rate_limits(
        self,
        per_bot: float = 30.0,
        per_chat: float = 1.0,
        burst: float = 3.0,
        per_group_per_minute: float = 20.0,
    ) -> None:
        """Switch Telegram-like flood limits on: messages/s per bot, per chat (with `burst`)."""
        if per_bot <= 0 or per_chat <= 0 or per_group_per_minute <= 0:
            raise ValueError("rate limits must be positive; use no_rate_limits() to switch off")
        self.limits = RateLimitConfig(per_bot, per_chat, burst, per_group_per_minute)
        self._buckets.clear()

    def no_rate_limits(self) -> None:
        self.limits = None
        self._buckets.clear()

    def clear(self) -> None:
        """Back to a healthy Telegram: no pending failures, holds, latency, duplicates or limits."""
        self.lift_holds()
        self._rules.clear()
        self._latency.clear()
        self.duplicate = False
        self.no_rate_limits()

    @property
    def pending_failures(self) -> int:
        return sum(rule.remaining for rule in self._rules)

    # --- used by the server ---------------------------------------------------------------------

    def _changed(self) -> None:
        self.on_change()

    def take_hold(self, method: str, chat_id: int | str | None) -> asyncio.Event | None:
        """Park this call if a hold matches it: the server awaits the event before going on."""
        self._holds = [held for held in self._holds if held.active or held.parked]
        for held in self._holds:
            if held.matches(method, chat_id):
                return held.catch()
        return None

    def delay_for(self, method: str) -> float:
        return self._latency.get(method.lower(), self._latency.get(None, 0.0))

    def take_failure(self, method: str, chat_id: int | str | None) -> ApiError | None:
        """The injected failure for this call, if any; consumes one use of the rule."""
        for rule in self._rules:
            if rule.matches(method, chat_id):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return _failure(rule)
        return None

    def check_rate(
        self, bot_id: int, method: str, chat_id: int | str | None, is_group: bool
    ) -> ApiError | None:
        """429 if this send would exceed a flood limit; otherwise count it and allow it."""
        limits = self.limits
        if limits is None or method.lower() not in RATE_LIMITED_METHODS:
            return None
        now = self._monotonic()
        bot_bucket = self._bucket((bot_id, None), limits.per_bot, limits.per_bot, now)
        if is_group:
            rate = limits.per_group_per_minute / 60.0
            chat_bucket = self._bucket((bot_id, chat_id), rate, limits.per_group_per_minute, now)
        else:
            chat_bucket = self._bucket((bot_id, chat_id), limits.per_chat, limits.burst, now)
        wait = max(bot_bucket.wait_time(now), chat_bucket.wait_time(now))
        if wait > 0:
            return too_many_requests(max(1, math.ceil(wait)))
        bot_bucket.take()
        chat_bucket.take()
        return None

    def _bucket(
        self, key: tuple[int, int | str | None], rate: float, capacity: float, now: float
    ) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, capacity, now)
        return bucket


class DisconnectFault(Exception):
    """Raised to make the server drop the connection without replying."""


def _failure(rule: _FailRule) -> ApiError:
    if rule.status == DISCONNECT:
        raise DisconnectFault
    if rule.status == 429:
        return too_many_requests(rule.retry_after)
    if rule.description is not None:
        return ApiError(rule.status, rule.description)
    if rule.status >= 500:
        return server_error(rule.status)
    return ApiError(rule.status, f"Error {rule.status}")
