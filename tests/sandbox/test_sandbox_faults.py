"""Fault injection and flood limits, on a controlled monotonic clock and through PTB."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import telegram
from telegram.error import RetryAfter

from devtools.sandbox import Faults, Sandbox
from devtools.sandbox.errors import ApiError


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sends(faults: Faults, count: int, chat: int = 1, method: str = "sendMessage") -> list[int]:
    """Statuses of `count` immediate sends (200 or the refusal's code)."""
    results: list[int] = []
    for _ in range(count):
        refusal = faults.check_rate(42, method, chat, is_group=chat < 0)
        results.append(200 if refusal is None else refusal.code)
    return results


def test_limits_are_off_by_default() -> None:
    assert sends(Faults(Ticker()), 500) == [200] * 500


def test_per_chat_limit_allows_a_burst_then_refills() -> None:
    ticker = Ticker()
    faults = Faults(ticker)
    faults.rate_limits(per_bot=30, per_chat=1, burst=3)
    assert sends(faults, 4) == [200, 200, 200, 429]
    refusal = faults.check_rate(42, "sendMessage", 1, is_group=False)
    assert isinstance(refusal, ApiError)
    assert refusal.parameters == {"retry_after": 1}
    assert refusal.description == "Too Many Requests: retry after 1"
    ticker.now += 1.0
    assert sends(faults, 2) == [200, 429]


def test_per_bot_limit_spans_chats() -> None:
    ticker = Ticker()
    faults = Faults(ticker)
    faults.rate_limits(per_bot=30, per_chat=1, burst=1)
    statuses = [sends(faults, 1, chat=chat)[0] for chat in range(1, 32)]
    assert statuses == [200] * 30 + [429]
    ticker.now += 1.0
    assert sends(faults, 1, chat=99) == [200]


def test_groups_get_twenty_a_minute() -> None:
    ticker = Ticker()
    faults = Faults(ticker)
    faults.rate_limits(per_bot=1000, per_chat=1000, burst=1000)
    assert sends(faults, 21, chat=-5) == [200] * 20 + [429]
    refusal = faults.check_rate(42, "sendMessage", -5, is_group=True)
    assert refusal is not None and refusal.parameters == {"retry_after": 3}


def test_only_sending_methods_are_limited() -> None:
    faults = Faults(Ticker())
    faults.rate_limits(per_bot=1, per_chat=1, burst=1)
    assert sends(faults, 5, method="answerCallbackQuery") == [200] * 5
    assert sends(faults, 2, method="sendPhoto") == [200, 429]


def test_fail_next_counts_and_scopes() -> None:
    faults = Faults(Ticker())
    faults.fail_next("sendMessage", status=502, times=2, chat_id=7)
    faults.fail_next(None, status=400, description="Bad Request: nope")
    assert faults.pending_failures == 3
    assert faults.take_failure("sendMessage", 8) is not None  # the catch-all rule
    assert faults.take_failure("getMe", None) is None
    first = faults.take_failure("sendMessage", 7)
    second = faults.take_failure("SENDMESSAGE", 7)
    assert first is not None and first.code == 502 and first.description == "Bad Gateway"
    assert second is not None and second.code == 502
    assert faults.take_failure("sendMessage", 7) is None
    with pytest.raises(ValueError):
        faults.fail_next(times=0)


def test_clear_restores_a_healthy_telegram() -> None:
    faults = Faults(Ticker())
    faults.fail_next()
    faults.latency(2.0)
    faults.duplicate_updates()
    faults.rate_limits()
    faults.clear()
    assert faults.pending_failures == 0
    assert faults.delay_for("sendMessage") == 0
    assert not faults.duplicate and faults.limits is None


def test_latency_per_method_overrides_the_default() -> None:
    faults = Faults(Ticker())
    faults.latency(0.5)
    faults.latency(2.0, "getUpdates")
    assert faults.delay_for("sendMessage") == 0.5
    assert faults.delay_for("getupdates") == 2.0
    faults.latency(0, "getUpdates")
    assert faults.delay_for("getUpdates") == 0.5


async def test_rate_limit_reaches_ptb_as_retry_after(
    sandbox: Sandbox,
    ptb_bot: telegram.Bot,
    retry_seconds: Callable[[RetryAfter], float],
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sandbox.faults.rate_limits(per_bot=30, per_chat=0.2, burst=2)
    await ptb_bot.send_message(alice.chat_id, "1")
    await ptb_bot.send_message(alice.chat_id, "2")
    with pytest.raises(RetryAfter) as caught:
        await ptb_bot.send_message(alice.chat_id, "3")
    assert 1 <= retry_seconds(caught.value) <= 5
    assert sandbox.stats.too_many_requests == 1
    assert sandbox.stats.messages_per_chat[alice.chat_id] == 2
    assert sandbox.stats.errors == 1
