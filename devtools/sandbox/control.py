"""The Python control API: run the sandbox, register bots, and act as the people who use them.

    sandbox = Sandbox(clock=clock)
    await sandbox.start()                      # port 0 picks a free port
    bot = sandbox.add_bot(DEFAULT_TOKEN)
    alice = sandbox.user("Alice")
    await alice.send("/start abc")
    reply = await alice.next_message()
    await alice.tap(reply, "7")

Waiting is event driven: every Bot API call and every update wakes the waiters, which re-check
their condition; a timeout raises TimeoutError saying what did arrive.

User messages may be of any length (a real client splits texts over 4,096 characters, the control
API deliberately does not, so a bot's handling of oversized input can be tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from app.clock import Clock, SystemClock
from devtools.sandbox import actions
from devtools.sandbox.faults import Faults
from devtools.sandbox.handles import SandboxChannel, SandboxGroup, SandboxUser
from devtools.sandbox.journal import ApiCall, SandboxStats
from devtools.sandbox.server import BotApiServer
from devtools.sandbox.webhook import WebhookDispatcher
from devtools.sandbox.world import DEFAULT_TOKEN, SandboxBot, World


class Sandbox:
    """Telegram's Bot API on localhost, plus the people and faults a test needs."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        webhook_retry_delay: float = 0.05,
        webhook_retry_max: float = 2.0,
        webhook_timeout: float = 10.0,
        webhook_parallel: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.faults = Faults(monotonic)
        self.world = World(self.clock, self.faults)
        self._server = BotApiServer(self.world)
        self._webhooks = WebhookDispatcher(
            self.world,
            retry_delay=webhook_retry_delay,
            retry_max=webhook_retry_max,
            request_timeout=webhook_timeout,
            parallel=webhook_parallel,
        )
        self.users: dict[int, SandboxUser] = {}
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """The aiohttp application, for mounting extra routes before start()."""
        return self._server.app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("the sandbox is already running")
        self.world.closing = False
        runner = web.AppRunner(
            self._server.app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host = host
        sockets = [s for s in (runner.addresses or [])]
        self._port = int(sockets[0][1]) if sockets else port
        await self._webhooks.start()

    async def stop(self) -> None:
        """Release pending long polls and held requests, stop webhook delivery and close the
        listener."""
        self.world.closing = True
        self.faults.lift_holds()
        self.world.notify()
        await self._webhooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """PTB's `base_url`: PTB appends the token and the method name."""
        return f"{self.base_url}/bot"

    @property
    def file_url(self) -> str:
        """PTB's `base_file_url`."""
        return f"{self.base_url}/file/bot"

    # --- accounts and chats ---------------------------------------------------------------------

    def add_bot(
        self,
        token: str = DEFAULT_TOKEN,
        username: str = "rapport_demo_bot",
        first_name: str = "Rapport",
        *,
        privacy_mode: bool = True,
    ) -> SandboxBot:
        """Register a bot; requests with unregistered tokens get 401 Unauthorized."""
        return self.world.add_bot(token, username, first_name, privacy_mode)

    @property
    def bots(self) -> list[SandboxBot]:
        return list(self.world.bots.values())

    @property
    def default_bot(self) -> SandboxBot:
        """The first registered bot: the one users talk to unless told otherwise."""
        for bot in self.world.bots.values():
            return bot
        raise RuntimeError("no bot registered: call sandbox.add_bot(token) first")

    def user(
        self,
        first_name: str = "Alice",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        *,
        bot: SandboxBot | None = None,
    ) -> SandboxUser:
        """A new Telegram user with a fresh id; talks to `bot` (default: the first bot)."""
        person = self.world.new_person(first_name, last_name, username, language_code)
        user = self.users[person.id] = SandboxUser(self, person, bot)
        return user

    def group(
        self,
        title: str = "Group",
        members: Sequence[SandboxUser] = (),
        *,
        bot: SandboxBot | None = None,
    ) -> SandboxGroup:
        """A group with `members`; the first member adds the bot (my_chat_member + service msg)."""
        if not members:
            raise ValueError("a group needs at least one member to add the bot")
        target = bot or self.default_bot
        chat = self.world.new_group(title, [member.person for member in members])
        actions.add_to_group(self.world, target, chat, members[0].person)
        return SandboxGroup(self, chat, target)

    def channel(
        self, title: str = "Channel", username: str | None = None, *, bot: SandboxBot | None = None
    ) -> SandboxChannel:
        target = bot or self.default_bot
        chat = self.world.new_channel(title, username)
        actions.add_to_channel(self.world, target, chat)
        return SandboxChannel(self, chat, target)

    async def channel_post(
        self, text: str, *, channel: SandboxChannel | None = None
    ) -> dict[str, Any]:
        """Post in `channel` (or a new one): the bot gets a channel_post update."""
        target = channel or self.channel()
        return await target.post(text)

    # --- observation ----------------------------------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        """Every Bot API request so far, oldest first."""
        return list(self.world.calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        wanted = method.lower()
        return [call for call in self.world.calls if call.method.lower() == wanted]

    @property
    def stats(self) -> SandboxStats:
        return self.world.stats

    def recent_calls_text(self, count: int = 8) -> str:
        recent = self.world.calls[-count:]
        if not recent:
            return "; no Bot API calls yet"
        shown = ", ".join(f"{call.method}→{call.status}" for call in recent)
        return f"; last Bot API calls: {shown}"

    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float = 5.0,
        what: str | None = None,
    ) -> None:
        """Wait until `condition()` holds, re-checked on every change; TimeoutError otherwise."""
        if await self.world.signal.until(condition, timeout):
            return
        label = what or getattr(condition, "__name__", "condition")
        raise TimeoutError(f"{label} did not hold within {timeout} s{self.recent_calls_text()}")

    async def wait_for_call(
        self,
        method: str,
        timeout: float = 5.0,
        predicate: Callable[[ApiCall], bool] | None = None,
        after: int = 0,
    ) -> ApiCall:
        """The first call of `method` (from index `after` of `calls`) matching `predicate`."""
        wanted = method.lower()
        found: list[ApiCall] = []

        def seen() -> bool:
            for call in self.world.calls[after:]:
                if call.method.lower() == wanted and (predicate is None or predicate(call)):
                    found.append(call)
                    return True
            return False

        await self.wait_until(seen, timeout, what=f"a {method} call")
        return found[0]

    async def callback_answer(
        self,
        query: dict[str, Any] | str,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The bot's answer to a callback query, once it arrives."""
        query_id = query if isinstance(query, str) else str(query["id"])
        record = self.world.callbacks.get(query_id)
        if record is None:
            raise KeyError(f"unknown callback query {query_id}")
        await self.wait_until(
            lambda: record.answered, timeout, what=f"an answer to callback query {query_id}"
        )
        assert record.answer is not None
        return dict(record.answer)
