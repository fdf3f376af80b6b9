"""The therapist's side in Telegram: commands over their own clients only.

Every read of client data (`/clients`, `/digest`) is written to the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.digests import enqueue_digest
from flows.events import Command, Event, Tap, Text
from flows.i18n import t
from storage import repo
from storage.models import Therapist

if TYPE_CHECKING:
    from bot.dispatch import After
    from bot.runtime import Runtime


async def say(
    s: AsyncSession, rt: Runtime, therapist: Therapist, text: str, now: datetime, after: After
) -> None:
    assert therapist.chat_id is not None
    await repo.enqueue(
        s,
        rt.cipher,
        chat_id=therapist.chat_id,
        kind="text",
        payload={"text": text},
        now=now,
        therapist_id=therapist.id,
    )
    after.enqueued = True


async def welcome(
    s: AsyncSession, rt: Runtime, therapist: Therapist, now: datetime, after: After
) -> None:
    await repo.audit(s, actor=f"therapist:{therapist.id}", action="joined", now=now)
    await say(s, rt, therapist, t(therapist.language, "therapist.welcome"), now, after)


async def therapist_event(
    s: AsyncSession, rt: Runtime, therapist: Therapist, event: Event, now: datetime, after: After
) -> None:
    lang = therapist.language
    if isinstance(event, Tap):
        after.callback_text = t(lang, "chat.button_inactive")
        return
    if not isinstance(event, Command):
        key = "help.therapist" if isinstance(event, Text) else "chat.media"
        await say(s, rt, therapist, t(lang, key), now, after)
        return
    if event.name == "clients":
        await list_clients(s, rt, therapist, now, after)
    elif event.name == "digest":
        await digest(s, rt, therapist, event.args, now, after)
    else:
        await say(s, rt, therapist, t(lang, "help.therapist"), now, after)


async def list_clients(
    s: AsyncSession, rt: Runtime, therapist: Therapist, now: datetime, after: After
) -> None:
    lang = therapist.language
    clients = await repo.list_clients(s, therapist.id)
    if not clients:
        await say(s, rt, therapist, t(lang, "staff.no_clients"), now, after)
        return
    lines = [t(lang, "staff.clients_title")]
    for c in clients:
        lines.append(
            t(lang, "staff.client_line", alias=c.alias, status=t(lang, f"status.{c.status}"))
        )
    await repo.audit(s, actor=f"therapist:{therapist.id}", action="list_clients", now=now)
    await say(s, rt, therapist, "\n".join(lines), now, after)


async def digest(
    s: AsyncSession, rt: Runtime, therapist: Therapist, alias: str, now: datetime, after: After
) -> None:
    lang = therapist.language
    if not alias:
        await say(s, rt, therapist, t(lang, "staff.digest_usage"), now, after)
        return
    client = await repo.client_by_alias(s, therapist.id, alias.strip())
    if client is None:  # another therapist's client looks exactly like a missing one
        await say(s, rt, therapist, t(lang, "staff.unknown_alias", alias=alias[:40]), now, after)
        return
    upcoming = await repo.next_session(s, client.id, now)
    await enqueue_digest(
        s,
        rt,
        client,
        therapist,
        now,
        upcoming.starts_at if upcoming else None,
        f"therapist:{therapist.id}",
    )
    after.enqueued = True
