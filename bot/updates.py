"""Telegram updates translated into flow events, and the language to answer a sender in."""

from __future__ import annotations

from datetime import datetime

from telegram import Update

from flows.events import Command, Edited, Event, Media, Tap, Text
from flows.i18n import LANGUAGES

MEDIA_KINDS = (
    "sticker",
    "photo",
    "voice",
    "video_note",
    "video",
    "animation",
    "audio",
    "document",
    "location",
    "contact",
    "poll",
    "dice",
)


def language_of(update: Update, fallback: str = "en") -> str:
    user = update.effective_user
    code = (user.language_code or "").split("-")[0].lower() if user else ""
    return code if code in LANGUAGES else fallback


def split_command(text: str) -> tuple[str, str]:
    """'/pause@rapport_bot 3' -> ('pause', '3')."""
    head, _, args = text.strip().partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    return name, args.strip()


def event_of(update: Update, at: datetime) -> Event | None:
    """The flow event an update means, or None for updates a flow has no use for."""
    if update.callback_query is not None:
        query = update.callback_query
        message_id = query.message.message_id if query.message is not None else 0
        return Tap(at=at, data=query.data or "", message_id=message_id)
    if update.edited_message is not None:
        edited = update.edited_message
        return Edited(at=at, text=edited.text or edited.caption or "")
    message = update.message
    if message is None:
        return None
    if message.text is not None:
        if message.text.startswith("/"):
            name, args = split_command(message.text)
            return Command(at=at, name=name, args=args)
        return Text(at=at, text=message.text)
    for kind in MEDIA_KINDS:
        if getattr(message, kind, None):
            return Media(at=at, kind=kind, text=message.caption or "")
    return Media(at=at, kind="other", text=message.caption or "")


def written(update: Update) -> str:
    """The words of a message or an edited one (its text or caption), before any parsing: what
    crisis language is looked for in when the update is not handled in full."""
    message = update.message or update.edited_message
    return (message.text or message.caption or "") if message is not None else ""
