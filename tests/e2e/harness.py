"""A readable end-to-end fixture: the real bot (PTB Application, heartbeat, outbox sender) against
the sandbox Bot API, a real SQLite file, and a manual clock that moves only when a test says so.

    world = await World.start(...)
    therapist = await world.join_therapist("Dana Lee")
    alice = await world.join_client(therapist, "Alice Smith")
    await world.advance(days=7)          # heartbeat passes run, outbox drained
    msg = await alice.next_message()
"""

from __future__ import annotations

import asyncio
import copy
import socket
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from sqlalchemy import func, select

from app import admin, heartbeat
from app.clock import ManualClock
from app.config import load_settings
from app.runtime import Runtime
from bot.runtime import TelegramSide
from bot.service import BotService
from devtools.sandbox import DEFAULT_TOKEN, Sandbox, SandboxUser
from devtools.sandbox.handles import describe_message
from flows.i18n import t
from storage.crypto import Cipher
from storage.models import Answer, Checkin, Client, OutboxMessage

BOT_USERNAME = "rapport_test_bot"
CHOSEN = "✓ "  # how every language acknowledges a choice (`common.chosen`)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_service(rt: Runtime, telegram: TelegramSide) -> BotService:
    # The periodic heartbeat is slowed right down: tests drive passes through `advance`.
    return BotService(rt, telegram=telegram, heartbeat_interval=3600)


def token_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["start"][0]


def button_data(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def button_labels(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["text"] for row in rows for b in row]


@dataclass
class Person:
    id: int  # our database id
    user: SandboxUser

    async def next_message(self, timeout: float = 5.0) -> dict[str, Any]:
        return await self.user.next_message(timeout=timeout)


class World:
    def __init__(
        self,
        sandbox: Sandbox,
        rt: Runtime,
        service: BotService,
        clock: ManualClock,
        webhook_port: int | None = None,
    ):
        self.sandbox = sandbox
        self.rt = rt
        self.service = service
        # The door, send limits and memory of strangers: kept across restarts, so a test may
        # set its own while the bot is stopped.
        self.telegram = service.telegram
        self.clock = clock
        self.webhook_port = webhook_port

    @classmethod
    async def start(
        cls,
        db_url: str,
        clock: ManualClock,
        key: str,
        webhook: bool = False,
        sandbox: Sandbox | None = None,
        **settings: Any,
    ) -> World:
        """`sandbox`: one made but not yet started, e.g. with an observer installed."""
        sandbox = sandbox or Sandbox(clock=clock)
        await sandbox.start()
        sandbox.add_bot(DEFAULT_TOKEN, username=BOT_USERNAME, first_name="Rapport")
        conf = load_settings(
            database_url=db_url,
            telegram_token=DEFAULT_TOKEN,
            telegram_api_url=sandbox.api_url,
            encryption_key=key,
            send_rate=0,
            chat_send_rate=0,
            **settings,
        )
        rt = Runtime.create(conf, clock=clock, cipher=Cipher(key))
        world = cls(
            sandbox,
            rt,
            new_service(rt, TelegramSide.create(rt)),
            clock,
            free_port() if webhook else None,
        )
        await world._start_service()
        return world

    async def _start_service(self) -> None:
        port = self.webhook_port
        if port is None:
            await self.service.start()
        else:
            await self.service.start(
                webhook_url=f"http://127.0.0.1:{port}/telegram", listen=("127.0.0.1", port)
            )

    async def stop(self) -> None:
        await self.service.stop()
        await self.rt.close()
        await self.sandbox.stop()

    async def stop_bot(self) -> None:
        """Stop the bot process (PTB, heartbeat, sender); the database and Telegram stay."""
        await self.service.stop()

    async def start_bot(self) -> None:
        """Start a fresh bot process on the same database, as after a crash or a deploy."""
        self.service = new_service(self.rt, self.telegram)
        await self._start_service()

    async def restart(self) -> None:
        await self.stop_bot()
        await self.start_bot()

    # --- time -----------------------------------------------------------------------------------

    async def advance(self, step: timedelta = timedelta(hours=1), **delta: float) -> None:
        """Move the clock in steps of at most `step` (an hour unless told), running a heartbeat
        pass at each step."""
        if step <= timedelta(0):
            raise ValueError("the step must be positive")
        remaining = timedelta(**delta)
        while remaining > timedelta(0):
            hop = min(step, remaining)
            self.clock.advance(hop)
            remaining -= hop
            await heartbeat.run_pass(self.rt)
            await self.drain()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the outbox has nothing left to send."""

        async def pending() -> int:
            async with self.rt.sessions() as s:
                return int(
                    await s.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status == "pending")
                    )
                    or 0
                )

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await pending():
            if loop.time() > deadline:
                raise TimeoutError("the outbox did not drain")
            self.rt.wake_sender()
            await asyncio.sleep(0.01)

    # --- people ---------------------------------------------------------------------------------

    async def join_therapist(
        self, name: str = "Dana Lee", timezone: str = "Europe/Berlin"
    ) -> Person:
        data = await admin.add_therapist(self.rt, name, timezone)
        user = self.sandbox.user(first_name=name.split()[0], language_code="en")
        await user.send(f"/start {token_of(data['invite_link'])}")
        await user.next_message()
        return Person(data["id"], user)

    async def invite_client(self, therapist: Person, name: str, **kwargs: Any) -> tuple[int, str]:
        data = await admin.add_client(self.rt, therapist.id, name, **kwargs)
        return data["id"], token_of(data["invite_link"])


ALERT_START = t("en", "therapist.alert_crisis_text").split("{", 1)[0]  # "⚠️ Urgent: "


def alerts_as_aliases(texts: Iterable[str]) -> list[str]:
    """Each urgent crisis alert among `texts` as the alias it names first; other texts as
    they are."""
    return [
        x[len(ALERT_START) :].split(" ", 1)[0] if x.startswith(ALERT_START) else x for x in texts
    ]


def has_buttons(message: dict[str, Any]) -> bool:
    return bool(button_labels(message))


async def tap_label(user: SandboxUser, message: dict[str, Any], label: str) -> None:
    await user.tap(message, button_text=label)


_SHOWN: weakref.WeakKeyDictionary[SandboxUser, dict[int, list[str]]] = weakref.WeakKeyDictionary()


async def next_with_buttons(
    user: SandboxUser, timeout: float = 5.0, *, after: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The next question: a new bot message with buttons (as `next_message` finds them), or one
    returned here before (or `after`, the question just answered) that an edit has given other
    buttons since (a tapped check-in question becomes the next question in place)."""
    shown = _SHOWN.setdefault(user, {})
    if after is not None:
        shown.setdefault(after["message_id"], button_data(after))
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        for message in user.inbox:
            known = shown.get(message["message_id"])
            data = button_data(message)
            if known is not None and data and data != known:
                found.append(message)
                return True
        messages = user._bot_messages()
        while user._cursor < len(messages):
            message = messages[user._cursor]
            user._cursor += 1
            if has_buttons(message):
                found.append(copy.deepcopy(message))
                return True
        return False

    if not await user._sandbox.world.signal.until(arrived, timeout):
        seen = [describe_message(m) for m in user.inbox] or ["nothing"]
        raise TimeoutError(f"no new question within {timeout} s; messages: " + "; ".join(seen))
    question = found[0]
    shown[question["message_id"]] = button_data(question)
    acknowledged, asked = split_question(str(question.get("text", "")))
    if acknowledged:
        question["text"], question["acknowledged"] = asked, acknowledged
    return question


async def following(
    user: SandboxUser, question: dict[str, Any], timeout: float = 5.0
) -> dict[str, Any]:
    """What the client reads after tapping an answer to `question`: the message as edited in
    place (its text without the acknowledgement, which is under "acknowledged"), else the next
    new message."""
    message_id = question["message_id"]
    acknowledged = question.get("acknowledged")
    before = f"{acknowledged}\n\n{question['text']}" if acknowledged else question["text"]
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        now = next(m for m in user.inbox if m["message_id"] == message_id)
        if now.get("text") != before:
            found.append(now)
            return True
        messages = user._bot_messages()
        if user._cursor < len(messages):
            found.append(copy.deepcopy(messages[user._cursor]))
            user._cursor += 1
            return True
        return False

    if not await user._sandbox.world.signal.until(arrived, timeout):
        raise TimeoutError(f"nothing followed the answer within {timeout} s")
    message = found[0]
    if button_data(message):
        _SHOWN.setdefault(user, {})[message["message_id"]] = button_data(message)
    acknowledged, text = split_question(str(message.get("text", "")))
    if acknowledged:
        message["text"], message["acknowledged"] = text, acknowledged
    return message


async def after_tap(user: SandboxUser, question: dict[str, Any], timeout: float = 5.0) -> str:
    """The text that follows a tapped answer when no question does (the thanks)."""
    return str((await following(user, question, timeout))["text"])


def split_question(text: str) -> tuple[str, str]:
    """(the acknowledgement of the answer before, the question): a question asked in place of
    the one just answered starts with that one and the choice made (`✓ …`); `as_seen_now`
    shows the whole message."""
    parts = text.split("\n\n", 2)
    if len(parts) == 3 and parts[1].startswith(CHOSEN):
        return "\n\n".join(parts[:2]), parts[2]
    return "", text


async def onboard(
    world: World,
    user: SandboxUser,
    token: str,
    *,
    language: str = "English",
    zone: str = "Berlin",
) -> None:
    """Join through the invite and answer onboarding as a client would: language, consent, zone."""
    from flows.i18n import t

    await user.send(f"/start {token}")
    greeting = await next_with_buttons(user)
    await tap_label(user, greeting, language)
    code = {"English": "en", "Español": "es", "Русский": "ru"}[language]
    consent = await next_with_buttons(user)
    await tap_label(user, consent, t(code, "button.agree"))
    await next_with_buttons(user)  # the zone question
    await user.send(zone)
    confirm = await next_with_buttons(user)
    await tap_label(user, confirm, t(code, "button.yes"))
    await user.next_message(predicate=lambda m: t(code, "onboarding.done")[:20] in m["text"])
    await world.drain()


async def join_client(world: World, therapist: Person, name: str, **kwargs: Any) -> Person:
    first = name.split()[0]
    language = kwargs.pop("language", "English")
    zone = kwargs.pop("zone", "Berlin")
    client_id, token = await world.invite_client(therapist, name, **kwargs)
    code = {"English": "en", "Español": "es", "Русский": "ru"}[language]
    user = world.sandbox.user(first, language_code=code)
    await onboard(world, user, token, language=language, zone=zone)
    return Person(client_id, user)


# --- check-ins ----------------------------------------------------------------------------------


async def open_checkin_now(world: World, person: Person) -> dict[str, Any]:
    """Make the client's check-in due now, let the heartbeat open it, and return the first
    question (the intro comes before it)."""
    async with world.rt.sessions() as s, s.begin():
        client = await s.get(Client, person.id)
        assert client is not None
        client.next_checkin_at = world.clock.now()
    await world.advance(minutes=1)
    return await next_with_buttons(person.user)


def data_for(message: dict[str, Any], value: str) -> str:
    """The callback data of the button whose value part is `value` ("7", "n", "s")."""
    for data in button_data(message):
        if data.rsplit(":", 1)[-1] == value:
            return data
    raise AssertionError(f"no button with value {value!r} in {button_data(message)}")


@dataclass(frozen=True)
class Stored:
    """What the database holds about one client's conversation, for before/after comparisons."""

    status: str | None
    conversation: dict[str, Any] | None
    checkins: tuple[tuple[int, str, datetime | None, datetime | None], ...]
    answers: tuple[tuple[int, str, int | None, str | None, datetime], ...]
    language: str | None
    timezone: str | None
    paused_until: datetime | None

    def items(self, checkin_id: int | None = None) -> dict[str, tuple[int | None, datetime]]:
        """item -> (value, answered_at) for one check-in (the last one unless told)."""
        wanted = checkin_id if checkin_id is not None else self.checkins[-1][0]
        return {item: (value, at) for cid, item, value, _, at in self.answers if cid == wanted}


async def stored(world: World, client_id: int) -> Stored:
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        checkins = (
            await s.scalars(select(Checkin).where(Checkin.client_id == client_id).order_by("id"))
        ).all()
        answers = (
            await s.scalars(
                select(Answer)
                .where(Answer.checkin_id.in_([c.id for c in checkins]))
                .order_by(Answer.id)
            )
        ).all()
    return Stored(
        status=client.status if client else None,
        conversation=client.conversation if client else None,
        checkins=tuple((c.id, c.status, c.first_answer_at, c.closed_at) for c in checkins),
        answers=tuple(
            (
                a.checkin_id,
                a.item,
                a.value,
                None if a.text_enc is None else world.rt.cipher.decrypt(a.text_enc),
                a.answered_at,
            )
            for a in answers
        ),
        language=client.language if client else None,
        timezone=client.timezone if client else None,
        paused_until=client.paused_until if client else None,
    )
