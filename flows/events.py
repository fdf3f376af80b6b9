"""What can happen to a client's conversation: one value per incoming update or scheduler tick.

The Telegram layer translates updates into these; the scheduler produces the last three. Every
event carries `at`, the aware UTC instant it happened, so flows never read a clock themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flows.moments import SESSION, Moment

MEDIA_KINDS = ("sticker", "photo", "voice", "document", "video", "other")


@dataclass(frozen=True, slots=True)
class Text:
    """A plain text message (not a command)."""

    at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class Tap:
    """An inline-keyboard button press; `message_id` is the message that carried the button."""

    at: datetime
    data: str
    message_id: int


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command; `name` with or without the slash or a `@botname` suffix, any case."""

    at: datetime
    name: str
    args: str = ""


@dataclass(frozen=True, slots=True)
class Media:
    """Anything that is neither text nor a button: a sticker, photo, voice note, file... Only its
    caption is read, and only for crisis language."""

    at: datetime
    kind: str
    text: str = ""  # the caption


@dataclass(frozen=True, slots=True)
class Edited:
    """The client edited an earlier message; flows act only on originals, except that crisis
    language in the new text is answered like any other."""

    at: datetime
    text: str = ""


@dataclass(frozen=True, slots=True)
class OpenCheckin:
    """The scheduler opened check-in `checkin_id` for this client, at `moment`
    (`flows.moments.moment_for`: whether there is a session to rate), asking the outcome
    `measures` due (`flows.moments.measures_due`) beside the alliance check."""

    at: datetime
    checkin_id: int
    moment: Moment = SESSION
    measures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Nudge:
    """The open check-in is due its single reminder."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Expire:
    """The open check-in ran out of time."""

    at: datetime


Event = Text | Tap | Command | Media | Edited | OpenCheckin | Nudge | Expire
