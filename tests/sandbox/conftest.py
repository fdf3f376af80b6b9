"""Fixtures for the sandbox suite: a running sandbox with the demo bot, and PTB clients on it."""

from __future__ import annotations

import functools
import ssl
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import certifi
import pytest
import telegram
from telegram.request import HTTPXRequest

from app.clock import ManualClock
from devtools.sandbox import DEFAULT_TOKEN, Sandbox, SandboxBot

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def sandbox(clock: ManualClock) -> AsyncIterator[Sandbox]:
    box = Sandbox(clock=clock, webhook_retry_delay=0.02, webhook_retry_max=0.2)
    await box.start()
    box.add_bot(DEFAULT_TOKEN, username="rapport_demo_bot", first_name="Rapport")
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
def sandbox_bot(sandbox: Sandbox) -> SandboxBot:
    return sandbox.default_bot


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once: loading CA files dominates Bot creation."""
    return ssl.create_default_context(cafile=certifi.where())


def _request() -> HTTPXRequest:
    return HTTPXRequest(httpx_kwargs={"verify": _tls_context()})


@pytest.fixture
async def ptb_bot(sandbox: Sandbox) -> AsyncIterator[telegram.Bot]:
    """PTB's real Bot (httpx underneath) pointed at the sandbox."""
    client = telegram.Bot(
        DEFAULT_TOKEN,
        base_url=sandbox.api_url,
        base_file_url=sandbox.file_url,
        request=_request(),
        get_updates_request=_request(),
    )
    async with client:
        yield client


def _retry_seconds(error: telegram.error.RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@pytest.fixture
def retry_seconds() -> Callable[[telegram.error.RetryAfter], float]:
    """RetryAfter.retry_after as seconds, whichever type this PTB version returns."""
    return _retry_seconds
