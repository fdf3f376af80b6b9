"""Webhook delivery: POST each pending update to the bot's URL until it is accepted.

Like Telegram, an update stays pending until the receiver answers 2xx; failures are recorded for
getWebhookInfo (`last_error_date`, `last_error_message`) and retried with exponential backoff.
The `X-Telegram-Bot-Api-Secret-Token` header carries the configured secret on every request:
checking it is the receiver's business.

By default one update at a time, in order. With `parallel`, up to the webhook's
`max_connections` POSTs are under way at once, as Telegram delivers: then two updates of one
chat can reach the receiver (or two replicas behind a load balancer) at the same time, and each
is retried on its own until accepted.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import Any

import aiohttp

from devtools.sandbox.world import SandboxBot, WebhookConfig, World

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookDispatcher:
    """One delivery loop per bot with a webhook; backoff `retry_delay` doubling to `retry_max`."""

    def __init__(
        self,
        world: World,
        *,
        retry_delay: float = 0.05,
        retry_max: float = 2.0,
        request_timeout: float = 10.0,
        parallel: bool = False,
    ) -> None:
        self._world = world
        self._parallel = parallel
        self._retry_delay = retry_delay
        self._retry_max = retry_max
        self._request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._request_timeout)
        )
        self._supervisor = asyncio.create_task(self._supervise(), name="sandbox-webhooks")

    async def stop(self) -> None:
        tasks = [task for task in (self._supervisor, *self._tasks.values()) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._supervisor = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _unserved(self) -> list[SandboxBot]:
        return [
            bot
            for bot in self._world.bots.values()
            if bot.webhook is not None and bot.id not in self._tasks
        ]

    async def _supervise(self) -> None:
        while True:
            await self._world.signal.until(lambda: bool(self._unserved()), None)
            for bot in self._unserved():
                self._tasks[bot.id] = asyncio.create_task(
                    self._deliver_loop(bot), name=f"sandbox-webhook-{bot.id}"
                )

    async def _deliver_loop(self, bot: SandboxBot) -> None:
        if self._parallel:
            await self._deliver_parallel(bot)
            return
        delay = self._retry_delay
        world = self._world
        try:
            while bot.webhook is not None and not world.closing:
                update = bot.updates.first()
                if update is None:
                    await world.signal.until(
                        lambda: bot.webhook is None or bot.updates.first() is not None, None
                    )
                    continue
                hook = bot.webhook
                error = await self._post(hook.url, hook.secret_token, update)
                if error is None:
                    if bot.updates.first() is update:
                        bot.updates.pop_first()
                        bot.updates.record_delivery([update])
                    world.stats.webhook_deliveries += 1
                    delay = self._retry_delay
                    world.notify()
                    continue
                self._failed(bot, hook, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
        finally:
            self._tasks.pop(bot.id, None)
            world.notify()

    def _failed(self, bot: SandboxBot, hook: WebhookConfig, error: str) -> None:
        """A delivery was refused: shown in getWebhookInfo (if the webhook is still that one)."""
        if bot.webhook is hook:  # the same object: a webhook set meanwhile keeps its own record
            hook.last_error_date = self._world.now()
            hook.last_error_message = error
        self._world.stats.webhook_failures += 1
        self._world.notify()

    async def _deliver_parallel(self, bot: SandboxBot) -> None:
        """Start a delivery for each pending update not under way, up to `max_connections`."""
        world = self._world
        taken: list[dict[str, Any]] = []
        workers: set[asyncio.Task[None]] = set()

        def room() -> bool:
            hook = bot.webhook
            if hook is None or world.closing:
                return True
            return len(taken) < hook.max_connections and _untaken(bot, taken) is not None

        try:
            while bot.webhook is not None and not world.closing:
                await world.signal.until(room, None)
                update = _untaken(bot, taken)
                if bot.webhook is None or world.closing or update is None:
                    continue
                taken.append(update)
                worker = asyncio.create_task(self._deliver_one(bot, update, taken))
                workers.add(worker)
                worker.add_done_callback(workers.discard)
        finally:
            for worker in list(workers):
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._tasks.pop(bot.id, None)
            world.notify()

    async def _deliver_one(
        self, bot: SandboxBot, update: dict[str, Any], taken: list[dict[str, Any]]
    ) -> None:
        """POST `update` until it is accepted (or the webhook goes), with its own backoff."""
        world = self._world
        delay = self._retry_delay
        try:
            while (hook := bot.webhook) is not None and not world.closing:
                error = await self._post(hook.url, hook.secret_token, update)
                if error is None:
                    bot.updates.remove(update)
                    bot.updates.record_delivery([update])
                    world.stats.webhook_deliveries += 1
                    return
                self._failed(bot, hook, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
        finally:
            taken.remove(update)
            world.notify()

    async def _post(self, url: str, secret: str | None, update: dict[str, Any]) -> str | None:
        """POST one update; None on a 2xx answer, else Telegram's wording of the failure."""
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if secret:
            headers[SECRET_HEADER] = secret
        try:
            async with self._session.post(url, data=json.dumps(update), headers=headers) as reply:
                await reply.read()
                if 200 <= reply.status < 300:
                    return None
                return f"Wrong response from the webhook: {reply.status} {reply.reason or ''}"
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientError as exc:
            log.debug("webhook delivery failed: %s", type(exc).__name__)
            return "Failed to connect"


def _untaken(bot: SandboxBot, taken: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first pending update with no delivery under way (a duplicate copy counts apart)."""
    under_way = Counter(id(update) for update in taken)
    for update in bot.updates.peek(len(bot.updates)):
        if under_way[id(update)]:
            under_way[id(update)] -= 1
            continue
        return update
    return None
