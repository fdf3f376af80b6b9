"""Telegram updates into `app.conversation`, and what it leaves to send out once committed.

An update becomes plain data (who, which chat, which flow event, which language); the use case
identifies the sender, drops duplicates, runs the flow and commits. Nothing is sent before the
commit. Replies to strangers, groups and refused links are sent directly (never through the
outbox); a stranger is told the bot is for invited people once in a while, however often they
write. `bot.intake` receives the updates: it handles each user's one at a time, so their
conversation state never races, and confirms each to Telegram only once it is committed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from telegram import Bot, Update
from telegram.error import TelegramError

from app import conversation
from app.conversation import After, FromPerson, GroupCommand, Incoming, Membership
from bot import direct, staff
from bot.runtime import TelegramSide
from bot.updates import event_of, language_of, split_command, written
from flows.crisis import detect_crisis
from flows.i18n import t

log = logging.getLogger(__name__)

LEFT = ("kicked", "left")
"""A private chat's member status once the person blocked the bot."""


def incoming(update: Update, now: datetime) -> Incoming:
    """What the update means to `app.conversation` (None: nothing a person did)."""
    member = update.my_chat_member
    if member is not None:
        if member.chat.type != "private":
            return None
        blocked = member.new_chat_member.status in LEFT
        return Membership(user_id=member.from_user.id, blocked=blocked)
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return None  # channel posts, polls and other updates with no person behind them
    lang = language_of(update)
    if chat.type != "private":
        message = update.effective_message
        if message is not None and (message.text or "").startswith("/"):
            return GroupCommand(chat_id=chat.id, language=lang)
        return None
    event = event_of(update, now)
    if event is None:
        return None
    return FromPerson(
        user_id=user.id,
        chat_id=chat.id,
        language=lang,
        event=event,
        telegram_language=user.language_code,
    )


async def handle(side: TelegramSide, update: Update) -> After:
    """Handle the update in one transaction (`app.conversation.handle`); what to send after."""
    now = side.rt.clock.now()
    query = update.callback_query
    after = await conversation.handle(
        side.rt,
        update.update_id,
        incoming(update, now),
        now,
        staff=staff.therapist_event,
        callback_id=query.id if query is not None else None,
    )
    user, chat = update.effective_user, update.effective_chat
    # Once a while, however often they write.
    if after.stranger and user and chat and side.strangers_told.first(user.id):
        after.direct.append((chat.id, t(language_of(update), "chat.stranger")))
    return after


async def deliver(side: TelegramSide, bot: Bot, after: After) -> None:
    """What a committed update leaves to do: its outbox rows to the sender, direct replies."""
    rt = side.rt
    if after.handed:
        rt.hand_over(after.handed)
    if after.unhanded or (after.enqueued and not after.handed):
        rt.wake_sender()
    await answer(side, bot, after)


async def answer(side: TelegramSide, bot: Bot, after: After) -> None:
    """The tap's answer at once (it stops the button's spinner; Telegram does not count it as a
    message); direct replies within the send limits, queued while the bot runs."""
    try:
        if after.callback_id is not None:
            await bot.answer_callback_query(after.callback_id, text=after.callback_text)
    except TelegramError as exc:  # a stale query is not our failure
        log.info("post-commit reply not delivered: %s", type(exc).__name__)
    for chat_id, text in after.direct:
        if side.direct is not None:
            side.direct.put(chat_id, text, urgent=after.urgent)
        else:
            await direct.send(bot, side.limiter, chat_id, text, urgent=after.urgent)


def reply_directly(side: TelegramSide, bot: Bot, chat_id: int, text: str) -> None:
    """A reply outside any transaction, within the send limits, without waiting for it."""
    if side.direct is not None:
        side.direct.put(chat_id, text)
    else:  # not running as a service (tests driving the handler)
        task = asyncio.create_task(direct.send(bot, side.limiter, chat_id, text, urgent=False))
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()


async def resources_while_down(update: Update, bot: Bot) -> None:
    """Crisis words in an update the database cannot take yet: the built-in crisis resources at
    once, and the truth that nobody has been told yet (the update stays unconfirmed, and is
    handled, the therapist alerted, once the database is back)."""
    chat = update.effective_chat
    if chat is None or chat.type != "private" or update.callback_query is not None:
        return
    if not detect_crisis(written(update)):
        return
    lang = language_of(update)
    text = t(lang, "crisis.reply_delayed", resources=t(lang, "crisis.default_resources"))
    try:
        await bot.send_message(chat.id, text)
    except TelegramError as exc:
        log.info("crisis resources not delivered: %s", type(exc).__name__)


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


__all__ = ["After", "apologise", "deliver", "handle", "incoming", "split_command"]
