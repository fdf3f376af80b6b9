"""A practice written straight into the database: clients who joined and consented long ago,
each bound to a sandbox user whose chat with the bot is open. Onboarding hundreds of clients
through the bot would cost minutes and prove nothing new here; the e2e suite covers it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devtools.sandbox import Sandbox, SandboxUser
from flows.onboarding import CONSENT_VERSION
from flows.state import new_state
from storage import people
from storage.crypto import Cipher
from storage.models import Client, TherapySession

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Member:
    """A person of the practice: database id, alias, and the sandbox user who is them."""

    id: int
    alias: str
    user: SandboxUser


def open_chat(sandbox: Sandbox, user: SandboxUser) -> None:
    """The person pressed Start some time ago, so the bot may write to them."""
    world = sandbox.world
    world.conversation(user.bot, world.chats[user.id]).started = True


async def add_therapist(
    sessions: Sessions, cipher: Cipher, sandbox: Sandbox, now: datetime, name: str = "Dana Lee"
) -> Member:
    user = sandbox.user(name.split()[0], language_code="en")
    open_chat(sandbox, user)
    async with sessions() as s, s.begin():
        therapist = await people.add_therapist(
            s, cipher, name=name, timezone="Europe/Berlin", now=now
        )
        therapist.telegram_user_id, therapist.chat_id = user.id, user.chat_id
    return Member(therapist.id, name, user)


async def add_clients(
    sessions: Sessions,
    cipher: Cipher,
    sandbox: Sandbox,
    therapist: Member,
    count: int,
    now: datetime,
    *,
    due: datetime | None = None,
    prefix: str = "K",
) -> list[Member]:
    """`count` active clients in the idle state; their next check-in opens at `due`."""
    users = [sandbox.user(f"Client{i}", language_code="en") for i in range(count)]
    members: list[Member] = []
    async with sessions() as s, s.begin():
        for index, user in enumerate(users):
            open_chat(sandbox, user)
            alias = f"{prefix}{index:03d}"
            client = await people.add_client(
                s,
                cipher,
                therapist_id=therapist.id,
                name=f"Client {alias}",
                now=now - timedelta(days=30),
                alias=alias,
                timezone="Europe/Berlin",
                language="en",
            )
            client.telegram_user_id, client.chat_id = user.id, user.chat_id
            client.status = "active"
            client.conversation = new_state("idle", "idle")
            client.consent_version, client.consent_at = CONSENT_VERSION, now - timedelta(days=30)
            client.joined_at = client.cadence_anchor = now - timedelta(days=30)
            client.next_checkin_at = due
            members.append(Member(client.id, alias, user))
    return members


async def make_due(sessions: Sessions, client_ids: list[int], at: datetime | None) -> None:
    """These clients' next check-in opens at `at` (None: not planned), all in one commit."""
    async with sessions() as s, s.begin():
        await s.execute(update(Client).where(Client.id.in_(client_ids)).values(next_checkin_at=at))


async def add_sessions(
    sessions: Sessions, clients: list[Member], now: datetime, *, digest_at: datetime | None
) -> list[int]:
    """One appointment three hours from now per client, its digest due at `digest_at`."""
    ids: list[int] = []
    async with sessions() as s, s.begin():
        for client in clients:
            session = await people.add_session(
                s, client_id=client.id, starts_at=now + timedelta(hours=3), minutes=50, now=now
            )
            session.digest_at = digest_at
            ids.append(session.id)
    return ids


async def make_digests_due(sessions: Sessions, session_ids: list[int], at: datetime) -> None:
    async with sessions() as s, s.begin():
        await s.execute(
            update(TherapySession).where(TherapySession.id.in_(session_ids)).values(digest_at=at)
        )
