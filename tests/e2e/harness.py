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
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from sqlalchemy import func, select

from bot import admin, heartbeat
from bot.clock import ManualClock
from bot.config import load_settings
from bot.runtime import Runtime
from bot.sandbox import DEFAULT_TOKEN, Sandbox, SandboxUser
from bot.service import BotService
from storage.crypto import Cipher
from storage.models import OutboxMessage

BOT_USERNAME = "rapport_test_bot"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    def __init__(self, sandbox: Sandbox, rt: Runtime, service: BotService, clock: ManualClock):
        self.sandbox = sandbox
        self.rt = rt
        self.service = service
        self.clock = clock

    @classmethod
    async def start(
        cls, db_url: str, clock: ManualClock, key: str, webhook: bool = False, **settings: Any
    ) -> World:
        sandbox = Sandbox(clock=clock)
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
        # The periodic heartbeat is slowed right down: tests drive passes through `advance`.
        service = BotService(rt, heartbeat_interval=3600)
        if webhook:
            port = free_port()
            await service.start(
                webhook_url=f"http://127.0.0.1:{port}/telegram", listen=("127.0.0.1", port)
            )
        else:
            await service.start()
        return cls(sandbox, rt, service, clock)

    async def stop(self) -> None:
        await self.service.stop()
        await self.rt.close()
        await self.sandbox.stop()

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


def has_buttons(message: dict[str, Any]) -> bool:
    return bool(button_labels(message))


async def tap_label(user: SandboxUser, message: dict[str, Any], label: str) -> None:
    await user.tap(message, button_text=label)


async def next_with_buttons(user: SandboxUser, timeout: float = 5.0) -> dict[str, Any]:
    return await user.next_message(timeout=timeout, predicate=has_buttons)


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
