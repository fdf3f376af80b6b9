"""One handler for every update: identify the sender, drop duplicates, run the flow, and commit
state, answers, events and outgoing messages in one transaction. Nothing is sent before the commit.

Strangers get a polite reply sent directly (never through the outbox) and nothing is stored about
them; one who writes crisis language gets the practice's crisis resources instead. `bot.intake`
receives the updates: it handles each user's one at a time, so their conversation state never
races, and confirms each to Telegram only once it is committed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, Update
from telegram.error import TelegramError

from app import effects
from app.runtime import OutboxJob, Runtime
from bot import direct, staff
from bot.updates import event_of, language_of, split_command, written
from flows.conversation import words
from flows.crisis import detect_crisis
from flows.events import Command
from flows.i18n import t
from flows.lifecycle import ClientStatus
from storage import repo
from storage.models import Client

log = logging.getLogger(__name__)


@dataclass
class After:
    """What to do once the transaction has committed."""

    callback_id: str | None = None
    callback_text: str | None = None
    direct: list[tuple[int, str]] = field(default_factory=list)
    urgent: bool = False  # the direct replies carry crisis resources: ahead of the rest
    enqueued: bool = False
    handed: list[OutboxJob] = field(default_factory=list)  # claimed for this process's sender
    unhanded: int = 0  # outbox rows of the transaction left for the sender to find

    def queued(self, chat_id: int, job: OutboxJob | None) -> None:
        """A message was queued: `job` if it claimed itself for the sender, else None (it waits
        behind an earlier one of its chat, which must then be marked sent at once)."""
        if job is not None:
            self.handed.append(job)
            return
        self.handed = [
            replace(j, follow_up=True) if j.chat_id == chat_id else j for j in self.handed
        ]

    async def run(self, rt: Runtime, bot: Bot) -> None:
        """The tap's answer at once (it stops the button's spinner; Telegram does not count it
        as a message); direct replies within the send limits, queued while the bot runs."""
        try:
            if self.callback_id is not None:
                await bot.answer_callback_query(self.callback_id, text=self.callback_text)
        except TelegramError as exc:  # a stale query is not our failure
            log.info("post-commit reply not delivered: %s", type(exc).__name__)
        for chat_id, text in self.direct:
            if rt.direct is not None:
                rt.direct.put(chat_id, text, urgent=self.urgent)
            else:
                await direct.send(bot, rt.limiter, chat_id, text, urgent=self.urgent)


async def commit_update(rt: Runtime, update: Update) -> After:
    """`handle_update`, once more on a new connection if the old one died under it."""
    try:
        return await handle_update(rt, update)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        # The connection died under the transaction, which therefore did not happen (or did,
        # and then the processed mark makes this a duplicate): once more, on a new one.
        log.info("database connection lost; update %s handled again", update.update_id)
        return await handle_update(rt, update)


async def deliver(rt: Runtime, bot: Bot, after: After) -> None:
    """What a committed update leaves to do: its outbox rows to the sender, direct replies."""
    if after.handed:
        rt.hand_over(after.handed)
    if after.unhanded or (after.enqueued and not after.handed):
        rt.wake_sender()
    await after.run(rt, bot)


def reply_directly(rt: Runtime, bot: Bot, chat_id: int, text: str) -> None:
    """A reply outside any transaction, within the send limits, without waiting for it."""
    if rt.direct is not None:
        rt.direct.put(chat_id, text)
    else:  # not running as a service (tests driving the handler)
        task = asyncio.create_task(direct.send(bot, rt.limiter, chat_id, text, urgent=False))
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()


async def apologise(update: Update, bot: Bot) -> None:
    """The update's handling failed and nothing of it was stored: its sender hears so instead of
    silence. Crisis language still gets the emergency advice, since the practice's resources and
    the therapist's alert are what may have failed."""
    chat = update.effective_chat
    if chat is None or chat.type != "private" or update.my_chat_member is not None:
        return
    lang = language_of(update)
    text = t(lang, "chat.error")
    if detect_crisis(written(update)):
        text = f"{text}\n\n{t(lang, 'crisis.default_resources')}"
    try:
        if update.callback_query is not None:
            await bot.answer_callback_query(update.callback_query.id, text=text)
        else:
            await bot.send_message(chat.id, text)
    except TelegramError as exc:
        log.info("failure notice not delivered: %s", type(exc).__name__)


async def handle_update(rt: Runtime, update: Update) -> After:
    now = rt.clock.now()
    after = After(callback_id=update.callback_query.id if update.callback_query else None)
    async with rt.sessions() as s, s.begin():
        if not await repo.mark_update_processed(s, update.update_id, now):
            log.info("duplicate update %s dropped", update.update_id)
            return after
        await route(s, rt, update, now, after)
        after.unhanded = s.info.get(repo.QUEUED_KEY, 0) - len(after.handed)
    return after


async def route(s: AsyncSession, rt: Runtime, update: Update, now: datetime, after: After) -> None:
    chat, user = update.effective_chat, update.effective_user
    if update.my_chat_member is not None:
        await on_membership(s, update, now)
        return
    if chat is None or user is None:
        return  # channel posts, polls and other updates with no person behind them
    lang = language_of(update)
    if chat.type != "private":
        message = update.effective_message
        if message is not None and (message.text or "").startswith("/"):
            after.direct.append((chat.id, t(lang, "chat.group")))
        return
    event = event_of(update, now)
    if event is None:
        return
    if isinstance(event, Command) and event.name == "start" and event.args:
        await join(s, rt, update, event.args, now, after, lang)
        return
    client = await repo.client_by_user(s, user.id)
    if client is not None and client.status not in (ClientStatus.INVITED, ClientStatus.DECLINED):
        await effects.client_event(s, rt, client, event, update, now, after)
        return
    therapist = await repo.therapist_by_user(s, user.id)
    if therapist is not None:
        await staff.therapist_event(s, rt, therapist, event, now, after)
        return
    if update.callback_query is not None:
        after.callback_text = t(lang, "chat.stranger")
    elif detect_crisis(words(event)):
        # Nobody to alert and nothing stored, but someone in crisis is not turned away.
        practice = await repo.get_practice(s, now)
        resources = practice.crisis_resources.get(lang) or t(lang, "crisis.default_resources")
        after.direct.append((chat.id, t(lang, "chat.stranger_crisis", resources=resources)))
        after.urgent = True
    elif rt.strangers_told.first(user.id):  # once a while, however often they write
        after.direct.append((chat.id, t(lang, "chat.stranger")))


async def join(
    s: AsyncSession, rt: Runtime, update: Update, token: str, now: datetime, after: After, lang: str
) -> None:
    """`/start <token>`: bind the account through an invite, or refuse with nothing stored (a
    bound person is never rebound, and nobody changes role: see `app.invites`)."""
    from app.invites import refusal_key

    assert update.effective_user is not None and update.effective_chat is not None
    chat_id = update.effective_chat.id
    if len(token) > 64:
        after.direct.append((chat_id, t(lang, "chat.invite_invalid")))
        return
    result = await repo.redeem_invite(
        s, token, user_id=update.effective_user.id, chat_id=chat_id, now=now
    )
    if not result.ok:
        log.info("invite refused: %s", result.reason)
        after.direct.append((chat_id, t(lang, refusal_key(result.reason))))
        return
    if result.therapist is not None:
        result.therapist.language = lang
        await staff.welcome(s, rt, result.therapist, now, after)
        return
    client = result.client
    assert client is not None
    client.joined_at = client.joined_at or now
    await repo.add_event(s, client_id=client.id, kind="joined", at=now)
    await effects.start_onboarding(s, rt, client, update, now, after)


async def on_membership(s: AsyncSession, update: Update, now: datetime) -> None:
    """The client blocked or unblocked the bot: evidence for the signals, nothing to send."""
    member = update.my_chat_member
    assert member is not None
    client: Client | None = await repo.client_by_user(s, member.from_user.id)
    if client is None or member.chat.type != "private":
        return
    status = member.new_chat_member.status
    if status in ("kicked", "left"):
        if client.unreachable_at is None:
            client.unreachable_at = now
            await repo.add_event(s, client_id=client.id, kind="blocked", at=now)
    elif client.unreachable_at is not None:
        client.unreachable_at = None
        await repo.add_event(s, client_id=client.id, kind="unblocked", at=now)


__all__ = ["After", "apologise", "commit_update", "deliver", "handle_update", "split_command"]
