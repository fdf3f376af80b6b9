"""Handle one event from one person: identify the sender, drop a duplicate delivery, run the flow,
and commit state, answers, events and outgoing messages in one transaction. Nothing is sent
before the commit: what to send then comes back as an `After`.

The input is plain data (who, in which chat, which flow event, in which language), so any front
end can speak for a person; `bot.dispatch` translates Telegram updates into it and sends what
comes back. Strangers are answered without anything being stored about them; one who writes
crisis language gets the practice's crisis resources. A therapist's events go to the front end's
staff commands (`StaffCommands`), inside the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import assert_never

from app import alerts, caseload, effects
from app.invites import refusal_key
from app.quarantine import connection_lost
from app.runtime import OutboxJob, Runtime, Session
from flows.conversation import words
from flows.crisis import detect_crisis
from flows.events import Command, Event
from flows.i18n import t
from flows.statuses import ClientStatus
from storage import checkins, outbox, people, retention
from storage.db import short_transaction
from storage.models import Client, Therapist

log = logging.getLogger(__name__)

MAX_TOKEN = 64
"""An invite token is at most this long; anything longer is refused without a lookup."""


@dataclass(frozen=True)
class FromPerson:
    """A flow event from a person in their private chat with the bot."""

    user_id: int
    chat_id: int
    language: str  # to answer a stranger in: the person's own language if supported
    event: Event
    telegram_language: str | None = None  # as the messenger reports it (onboarding offers it)


@dataclass(frozen=True)
class GroupCommand:
    """A command written in a group: the bot only says it works in private chats."""

    chat_id: int
    language: str


@dataclass(frozen=True)
class Membership:
    """A person blocked the bot (or unblocked it): evidence for the signals, nothing to send."""

    user_id: int
    blocked: bool


Incoming = FromPerson | GroupCommand | Membership | None
"""What one delivery means; None: nothing a person did (it is still recorded as processed)."""


@dataclass
class After:
    """What to do once the transaction has committed."""

    callback_id: str | None = None
    callback_text: str | None = None
    direct: list[tuple[int, str]] = field(default_factory=list)
    urgent: bool = False  # the direct replies carry crisis resources: ahead of the rest
    stranger: bool = False  # a stranger wrote: told the bot is for invited people, now and then
    enqueued: bool = False
    handed: list[OutboxJob] = field(default_factory=list)  # claimed for this process's sender
    unhanded: int = 0  # outbox rows of the transaction left for the sender to find

    def head_of(self, chat_id: int, priority: int) -> OutboxJob | None:
        """The row this transaction handed over for a chat at a priority: a later message of the
        same chat and priority claims itself behind it (`outbox.queue_message`, `behind`)."""
        return next(
            (j for j in self.handed if (j.chat_id, j.priority) == (chat_id, priority)), None
        )

    def queued(self, chat_id: int, job: OutboxJob | None, behind: OutboxJob | None = None) -> None:
        """A message was queued: `job` if it claimed itself for the sender (`behind` the handed
        row it follows, if it claimed itself behind one), else None (it waits behind an earlier
        one of its chat, which must then be marked sent at once)."""
        if job is not None and behind is not None:
            self.handed = [
                replace(j, then=(*j.then, job)) if j is behind else j for j in self.handed
            ]
            return
        if job is not None:
            self.handed.append(job)
            return
        self.handed = [
            replace(j, follow_up=True) if j.chat_id == chat_id else j for j in self.handed
        ]


StaffCommands = Callable[[Session, Runtime, Therapist, Event, datetime, After], Awaitable[None]]
"""A therapist's event, handled by the front end's staff commands inside the transaction."""


async def handle(
    rt: Runtime,
    delivery_id: int,
    incoming: Incoming,
    now: datetime,
    *,
    staff: StaffCommands,
    callback_id: str | None = None,
) -> After:
    """Handle a delivery once (`delivery_id`: the update id, recorded so a redelivery is
    dropped), once more on a new connection if the old one died under it."""
    try:
        return await _handle(rt, delivery_id, incoming, now, staff, callback_id)
    except Exception as exc:
        if not connection_lost(exc):
            raise
        # The connection died under the transaction, which therefore did not happen (or did,
        # and then the processed mark makes this a duplicate): once more, on a new one.
        log.info("database connection lost; update %s handled again", delivery_id)
        return await _handle(rt, delivery_id, incoming, now, staff, callback_id)


async def _handle(
    rt: Runtime,
    delivery_id: int,
    incoming: Incoming,
    now: datetime,
    staff: StaffCommands,
    callback_id: str | None,
) -> After:
    after = After(callback_id=callback_id)
    with short_transaction():
        return await _in_transaction(rt, delivery_id, incoming, now, staff, after)


async def _in_transaction(
    rt: Runtime,
    delivery_id: int,
    incoming: Incoming,
    now: datetime,
    staff: StaffCommands,
    after: After,
) -> After:
    async with rt.sessions() as s, s.begin():
        client: people.FoundClient | None = None
        sender = _client_sender(incoming)
        if sender is not None:
            fresh, client = await people.mark_and_find_client(s, delivery_id, now, sender)
        else:
            fresh = await retention.mark_update_processed(s, delivery_id, now)
        if not fresh:
            log.info("duplicate update %s dropped", delivery_id)
            return after
        if isinstance(incoming, Membership):
            await on_membership(s, rt, incoming, client, now)
        elif isinstance(incoming, GroupCommand):
            after.direct.append((incoming.chat_id, t(incoming.language, "chat.group")))
        elif incoming is not None:
            await route(s, rt, incoming, client, now, after, staff)
        handed = sum(len(job.rows()) for job in after.handed)
        after.unhanded = s.info.get(outbox.QUEUED_KEY, 0) - handed
    return after


def _client_sender(incoming: Incoming) -> int | None:
    """The account whose client the update is handled for, looked up with the update's mark
    (`people.mark_and_find_client`); None when no client is looked up (an invite being redeemed
    binds one instead)."""
    match incoming:
        case Membership(user_id=user_id):
            return user_id
        case FromPerson(event=Command(name="start", args=args)) if args:
            return None
        case FromPerson(user_id=user_id):
            return user_id
        case GroupCommand() | None:
            return None
        case _:
            assert_never(incoming)


async def route(
    s: Session,
    rt: Runtime,
    person: FromPerson,
    found: people.FoundClient | None,
    now: datetime,
    after: After,
    staff: StaffCommands,
) -> None:
    """`found`: the sender's client, as looked up with the update's mark (`_client_sender`)."""
    event = person.event
    if isinstance(event, Command) and event.name == "start" and event.args:
        await join(s, rt, person, event.args, now, after)
        return
    gone = (ClientStatus.INVITED, ClientStatus.DECLINED)  # not bound yet, or no longer
    if found is not None and found.client.status not in gone:
        await effects.update_event(s, rt, found, event, person.telegram_language, now, after)
        return
    therapist = await people.therapist_by_user(s, person.user_id)
    if therapist is not None:
        await staff(s, rt, therapist, event, now, after)
        return
    lang = person.language
    if after.callback_id is not None:
        after.callback_text = t(lang, "chat.stranger")
    elif detect_crisis(words(event)):
        # Nobody to alert and nothing stored, but someone in crisis is not turned away.
        practice = await people.get_practice(s, now)
        resources = practice.crisis_resources.get(lang) or t(lang, "crisis.default_resources")
        after.direct.append((person.chat_id, t(lang, "chat.stranger_crisis", resources=resources)))
        after.urgent = True
    else:
        after.stranger = True


async def join(
    s: Session, rt: Runtime, person: FromPerson, token: str, now: datetime, after: After
) -> None:
    """`/start <token>`: bind the account through an invite, or refuse with nothing stored (a
    bound person is never rebound, and nobody changes role: see `app.invites`)."""
    lang = person.language
    if len(token) > MAX_TOKEN:
        after.direct.append((person.chat_id, t(lang, "chat.invite_invalid")))
        return
    result = await people.redeem_invite(
        s, token, user_id=person.user_id, chat_id=person.chat_id, now=now
    )
    if not result.ok:
        log.info("invite refused: %s", result.reason)
        after.direct.append((person.chat_id, t(lang, refusal_key(result.reason))))
        return
    if result.therapist is not None:
        result.therapist.language = lang
        await caseload.welcome(s, rt, result.therapist, now, after)
        return
    client = result.client
    assert client is not None
    client.joined_at = client.joined_at or now
    await checkins.add_event(s, client_id=client.id, kind="joined", at=now)
    await effects.start_onboarding(s, rt, client, person.telegram_language, now, after)


async def on_membership(
    s: Session, rt: Runtime, change: Membership, found: people.FoundClient | None, now: datetime
) -> None:
    """The client (`found`, None if the account is not a client's) blocked or unblocked the
    bot: evidence for the signals, nothing to send. A therapist who blocked it cannot be alerted:
    their clients' urgent alerts go to the safety contact until they unblock it
    (`app.effects.reachable`)."""
    client = None if found is None else await s.get(Client, found.client.id)
    if client is None:
        therapist = await people.therapist_by_user(s, change.user_id)
        if therapist is not None and change.blocked != (therapist.unreachable_at is not None):
            therapist.unreachable_at = now if change.blocked else None
            log.info(
                "therapist %s %s the bot",
                therapist.id,
                "blocked" if change.blocked else "unblocked",
            )
        return
    if change.blocked:
        if client.unreachable_at is None:
            client.unreachable_at = now
            await checkins.add_event(s, client_id=client.id, kind="blocked", at=now)
            await alerts.note_withdrawal(s, rt, client, "blocked", now)
    elif client.unreachable_at is not None:
        client.unreachable_at = None
        await checkins.add_event(s, client_id=client.id, kind="unblocked", at=now)
