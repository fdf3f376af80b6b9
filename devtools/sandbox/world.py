"""The sandbox's Telegram: bots, people, chats, the messages in them, and the change signal.

A private chat is seen separately by each bot (its own message ids, its own blocked flag), as on
Telegram, so the state of a chat lives in a `Conversation` keyed by (bot, chat). Every change
notifies one `ChangeSignal`; long polls, webhook delivery and test waits all wake on it instead of
polling.
"""

from __future__ import annotations

import asyncio
import copy
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.clock import Clock, SystemClock
from devtools.sandbox.faults import Faults
from devtools.sandbox.files import FileStore
from devtools.sandbox.journal import ApiCall, SandboxStats
from devtools.sandbox.updates import UpdateQueue
from devtools.sandbox.wire import Chat, Person

TOKEN_PATTERN = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{30,64}$")
# A well-formed token for the demo and local runs; it is only ever valid inside the sandbox.
DEFAULT_TOKEN = "7000000001:AAFsandboxDemoToken_x9Qm2Lr7Vt4Kp8W"

_FIRST_USER_ID = 700_000_001
_FIRST_GROUP_ID = -4_100_000_001
_FIRST_CHANNEL_ID = -1_002_100_000_001


class ChangeSignal:
    """Wakes every waiter on each change of the world; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def until(self, condition: Callable[[], bool], within: float | None) -> bool:
        """Wait until `condition()` holds; False if `within` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            if condition():
                return True
            event = self._event
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return condition()


@dataclass
class Conversation:
    """One chat as one bot sees it: the messages (current JSON, edits applied) and its flags."""

    chat: Chat
    chat_instance: str = field(default_factory=lambda: str(secrets.randbits(63)))
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    bot_message_ids: dict[int, None] = field(default_factory=dict)  # an ordered set
    deleted: set[int] = field(default_factory=set)
    next_message_id: int = 1
    started: bool = False
    blocked: bool = False
    bot_removed: bool = False
    reply_keyboard: dict[str, Any] | None = None
    last_action: str | None = None

    def allocate_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def add(self, message: dict[str, Any], *, from_bot: bool) -> None:
        self.messages[message["message_id"]] = message
        if from_bot:
            self.bot_message_ids[message["message_id"]] = None

    def get(self, message_id: int) -> dict[str, Any] | None:
        if message_id in self.deleted:
            return None
        return self.messages.get(message_id)


@dataclass
class CallbackRecord:
    """A callback query and whether (and how) the bot answered it."""

    query_id: str
    bot_id: int
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answer: dict[str, Any] | None = None

    @property
    def answered(self) -> bool:
        return self.answer is not None


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


class SandboxBot:
    """A bot account registered with the sandbox: its identity, updates, webhook, commands."""

    def __init__(self, token: str, username: str, first_name: str, privacy_mode: bool) -> None:
        match = TOKEN_PATTERN.match(token)
        if match is None:
            raise ValueError("a bot token looks like '<digits>:<30-64 characters of A-Za-z0-9_->'")
        self.token = token
        self.person = Person(int(match.group(1)), first_name, username=username, is_bot=True)
        self.privacy_mode = privacy_mode
        self.updates = UpdateQueue()
        self.webhook: WebhookConfig | None = None
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.texts: dict[tuple[str, str], str] = {}
        self.conversations: dict[int, Conversation] = {}
        self.poll_generation = 0

    @property
    def id(self) -> int:
        return self.person.id

    @property
    def username(self) -> str:
        return self.person.username or ""

    @property
    def first_name(self) -> str:
        return self.person.first_name

    @property
    def pending_update_count(self) -> int:
        return len(self.updates)

    @property
    def webhook_url(self) -> str:
        return self.webhook.url if self.webhook else ""

    def me_json(self) -> dict[str, Any]:
        data = self.person.json()
        data.update(
            {
                "can_join_groups": True,
                "can_read_all_group_messages": not self.privacy_mode,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
        )
        return data

    def commands_for(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        """The command list set for exactly this scope and language (as getMyCommands)."""
        return list(self.commands.get((scope_key(scope), language_code), []))

    def __repr__(self) -> str:
        return f"SandboxBot(@{self.username}, id={self.id})"


def scope_key(scope: dict[str, Any] | None) -> str:
    if not scope or scope.get("type") == "default":
        return "default"
    return ",".join(f"{key}={scope[key]}" for key in sorted(scope))


class World:
    """All state of the sandbox; mutated by Bot API methods and by the control API."""

    def __init__(self, clock: Clock | None = None, faults: Faults | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.faults = faults or Faults()
        self.signal = ChangeSignal()
        self.faults.on_change = self.notify  # a parked or released request wakes the waiters
        self.files = FileStore()
        self.stats = SandboxStats()
        self.calls: list[ApiCall] = []
        self.bots: dict[str, SandboxBot] = {}
        self.people: dict[int, Person] = {}
        self.deactivated: set[int] = set()
        self.chats: dict[int, Chat] = {}
        self.callbacks: dict[str, CallbackRecord] = {}
        self.closing = False
        self._next_user_id = _FIRST_USER_ID
        self._next_group_id = _FIRST_GROUP_ID
        self._next_channel_id = _FIRST_CHANNEL_ID

    def now(self) -> int:
        """Unix seconds from the injected clock: every `date` the sandbox writes."""
        return int(self.clock.now().timestamp())

    def notify(self) -> None:
        self.signal.notify()

    def add_bot(
        self, token: str, username: str, first_name: str, privacy_mode: bool = True
    ) -> SandboxBot:
        if token in self.bots:
            raise ValueError("this token is already registered")
        bot = SandboxBot(token, username, first_name, privacy_mode)
        if any(other.id == bot.id for other in self.bots.values()):
            raise ValueError(f"a bot with id {bot.id} is already registered")
        self.bots[token] = bot
        return bot

    def bot_by_id(self, bot_id: int) -> SandboxBot | None:
        return next((bot for bot in self.bots.values() if bot.id == bot_id), None)

    def new_person(
        self,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
    ) -> Person:
        person = Person(self._next_user_id, first_name, last_name, username, language_code)
        self._next_user_id += 1
        self.people[person.id] = person
        self.chats[person.id] = Chat(person.id, "private", user=person)
        return person

    def new_group(self, title: str, members: list[Person]) -> Chat:
        chat = Chat(self._next_group_id, "group", title=title, member_ids={m.id for m in members})
        self._next_group_id -= 1
        self.chats[chat.id] = chat
        return chat

    def new_channel(self, title: str, username: str | None) -> Chat:
        chat = Chat(self._next_channel_id, "channel", title=title, username=username)
        self._next_channel_id -= 1
        self.chats[chat.id] = chat
        return chat

    def conversation(self, bot: SandboxBot, chat: Chat) -> Conversation:
        """The bot's view of `chat`, created on first contact."""
        conversation = bot.conversations.get(chat.id)
        if conversation is None:
            conversation = bot.conversations[chat.id] = Conversation(chat)
        return conversation

    def enqueue(self, bot: SandboxBot, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Create an update for `bot` (queued twice while duplicate delivery is on)."""
        update = bot.updates.push(kind, copy.deepcopy(payload), duplicate=self.faults.duplicate)
        self.notify()
        return update

    def record(self, call: ApiCall) -> None:
        self.calls.append(call)
        self.stats.record(call)
        self.notify()

    def shares_group(self, bot: SandboxBot, user_id: int) -> bool:
        return any(
            conv.chat.type == "group" and user_id in conv.chat.member_ids
            for conv in bot.conversations.values()
        )
