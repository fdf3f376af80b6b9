"""Webhook mode: updates are POSTed with the secret header, retried until accepted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import telegram
from aiohttp import web
from telegram.error import Conflict

from app.clock import ManualClock
from devtools.sandbox import DEFAULT_TOKEN, Sandbox

SECRET = "s3cret_Token-42"


@dataclass
class Receiver:
    """A tiny webhook endpoint: it checks the secret itself and can be told to fail."""

    expected_secret: str = SECRET
    fail_first: int = 0
    url: str = ""
    accepted: list[dict[str, Any]] = field(default_factory=list)
    headers_seen: list[str | None] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        self.headers_seen.append(header)
        if header != self.expected_secret:
            return web.Response(status=403)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=500)
        self.accepted.append(json.loads(await request.read()))
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    app = web.Application()
    app.router.add_post("/hook", endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    endpoint.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield endpoint
    finally:
        await runner.cleanup()


async def test_updates_are_posted_with_the_secret_header(
    sandbox: Sandbox, ptb_bot: telegram.Bot, receiver: Receiver
) -> None:
    assert await ptb_bot.set_webhook(receiver.url, secret_token=SECRET)
    alice = sandbox.user()
    await alice.send("/start hello")
    await sandbox.wait_until(lambda: len(receiver.accepted) == 1)
    update = telegram.Update.de_json(receiver.accepted[0], ptb_bot)
    assert update.message is not None and update.message.text == "/start hello"
    assert receiver.headers_seen == [SECRET]
    info = await ptb_bot.get_webhook_info()
    assert info.url == receiver.url and info.pending_update_count == 0


async def test_get_updates_conflicts_while_a_webhook_is_set(
    ptb_bot: telegram.Bot, receiver: Receiver
) -> None:
    await ptb_bot.set_webhook(receiver.url)
    with pytest.raises(Conflict, match="webhook is active"):
        await ptb_bot.get_updates()
    assert await ptb_bot.delete_webhook()
    assert await ptb_bot.get_updates() == ()


async def test_failed_deliveries_are_retried_and_reported(
    sandbox: Sandbox, ptb_bot: telegram.Bot, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    await ptb_bot.set_webhook(receiver.url, secret_token=SECRET)
    alice = sandbox.user()
    await alice.send("first")
    await alice.send("second")
    await sandbox.wait_until(lambda: len(receiver.accepted) == 2)
    assert [u["message"]["text"] for u in receiver.accepted] == ["first", "second"]
    assert sandbox.stats.webhook_failures == 2
    info = await ptb_bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.last_error_date is not None


async def test_a_wrong_secret_is_the_receivers_business(
    sandbox: Sandbox, ptb_bot: telegram.Bot, receiver: Receiver
) -> None:
    await ptb_bot.set_webhook(receiver.url, secret_token="another_secret")
    alice = sandbox.user()
    await alice.send("hello")
    await sandbox.wait_until(lambda: sandbox.stats.webhook_failures >= 2)
    assert receiver.accepted == []
    assert set(receiver.headers_seen) == {"another_secret"}  # always the configured one
    assert sandbox.default_bot.pending_update_count == 1  # kept until accepted
    await ptb_bot.set_webhook(receiver.url, secret_token=SECRET)
    await sandbox.wait_until(lambda: len(receiver.accepted) == 1)


async def test_delete_webhook_can_drop_pending_updates(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user()
    await alice.send("queued")
    assert sandbox.default_bot.pending_update_count == 1
    assert await ptb_bot.delete_webhook(drop_pending_updates=True)
    assert await ptb_bot.get_updates() == ()


async def test_duplicate_delivery_posts_each_update_twice(
    sandbox: Sandbox, ptb_bot: telegram.Bot, receiver: Receiver
) -> None:
    sandbox.faults.duplicate_updates(True)
    await ptb_bot.set_webhook(receiver.url, secret_token=SECRET)
    alice = sandbox.user()
    await alice.send("twice")
    await sandbox.wait_until(lambda: len(receiver.accepted) == 2)
    assert receiver.accepted[0]["update_id"] == receiver.accepted[1]["update_id"]
    await sandbox.wait_until(lambda: sandbox.default_bot.pending_update_count == 0)


class Holding:
    """A webhook endpoint that answers nothing until released, counting the POSTs under way."""

    def __init__(self) -> None:
        self.under_way = 0
        self.release = asyncio.Event()
        self.accepted: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.under_way += 1
        try:
            await self.release.wait()
        finally:
            self.under_way -= 1
        self.accepted.append(json.loads(await request.read())["update_id"])
        return web.Response(text="ok")


async def test_parallel_delivery_has_several_updates_under_way(clock: ManualClock) -> None:
    """As on Telegram (up to `max_connections`): a receiver slow on one update still gets the
    next ones, so two updates of one chat can be handled at the same time."""
    box = Sandbox(clock=clock, webhook_parallel=True)
    await box.start()
    box.add_bot(DEFAULT_TOKEN, username="rapport_demo_bot", first_name="Rapport")
    endpoint = Holding()
    app = web.Application()
    app.router.add_post("/hook", endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        async with telegram.Bot(DEFAULT_TOKEN, base_url=box.api_url) as bot:
            assert await bot.set_webhook(url, max_connections=3)
        alice = box.user()
        for text in ("one", "two", "three", "four"):
            await alice.send(text)
        await box.wait_until(lambda: endpoint.under_way == 3, what="three POSTs under way")
        assert box.default_bot.pending_update_count == 4  # none accepted yet
        endpoint.release.set()
        await box.wait_until(lambda: box.default_bot.pending_update_count == 0)
        assert sorted(endpoint.accepted) == sorted(box.default_bot.updates.delivered_ids)
        assert len(set(endpoint.accepted)) == 4
    finally:
        await runner.cleanup()
        await box.stop()
