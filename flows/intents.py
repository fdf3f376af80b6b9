"""What a flow wants done: the Telegram layer renders and stores these in one transaction.

Flows never send or store anything themselves. Intents come out in the order they should be
carried out (for example the edit acknowledging a tap comes before the next question).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `flows.lifecycle` builds these intents
    from flows.lifecycle import Actor, ClientStatus

MAX_CALLBACK_BYTES = 64


@dataclass(frozen=True, slots=True)
class Button:
    """One inline button; `data` comes back in a `Tap`. Flows keep it within Telegram's
    64 bytes (`MAX_CALLBACK_BYTES`; checked by the tests, not on every construction, because
    keyboards are built on the hot path)."""

    label: str
    data: str


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """A message to the client: final, localized plain text (the renderer escapes it).

    `edit=True` replaces the message whose button was just tapped (text and keyboard) instead of
    sending a new one; it only ever appears in answer to a `Tap`.
    """

    text: str
    buttons: Keyboard = ()
    edit: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    """Answer the tapped button's callback query with this short text; send no message."""

    text: str


@dataclass(frozen=True, slots=True)
class RecordConsent:
    """The client agreed to the onboarding wording of `version` at `at`."""

    version: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeclineConsent:
    """The client said no during onboarding: store nothing more and unbind them."""

    at: datetime


@dataclass(frozen=True, slots=True)
class SetLanguage:
    code: str


@dataclass(frozen=True, slots=True)
class SetTimezone:
    """An IANA zone name that `zoneinfo.ZoneInfo` accepts."""

    name: str


@dataclass(frozen=True, slots=True)
class RecordAnswer:
    """One item of one check-in; `value` None means "prefer not to answer"; yes/no is 1/0."""

    checkin_id: int
    item: str
    value: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RecordComment:
    """The client's free-text comment (at most 2,000 characters; store it encrypted)."""

    checkin_id: int
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class FinishCheckin:
    """The check-in is over. `complete` is True when every owed item got an answer (prefer-not
    counts; `flows.plan.Plan.owed`: not the comment, nor an outcome measure's items);
    `answered` is how many items were answered, so that an incomplete check-in with zero
    answers is a missed one and with some answers a partial one."""

    checkin_id: int
    at: datetime
    complete: bool
    answered: int = 0


@dataclass(frozen=True, slots=True)
class DiscardCheckin:
    """The check-in could not be opened (onboarding unfinished, or the client stopped):
    void it; it is neither answered nor missed."""

    checkin_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Pause:
    """The client asks for a pause until `until` (aware UTC), or until they resume when None
    (`flows.lifecycle.pause` says what that does)."""

    until: datetime | None


@dataclass(frozen=True, slots=True)
class Resume:
    """The client asks for check-ins again (`flows.lifecycle.resume`)."""


@dataclass(frozen=True, slots=True)
class Stop:
    """The client wants no more check-ins (`flows.lifecycle.stop`); their data stays until
    erased."""


@dataclass(frozen=True, slots=True)
class AskToTalk:
    """The client would like to talk with their therapist about how the work is going, with an
    optional sentence (at most 2,000 characters; store it encrypted). Shown at the top of the
    next digest; with no session booked (so no digest coming) the therapist is told at once."""

    text: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class StopReason:
    """Why the client stopped: one of `flows.dialogs.STOP_REASONS` and/or their own words (at
    most 2,000 characters; store them encrypted). Their therapist is told."""

    reason: str | None
    text: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class EraseAll:
    """Delete everything about this client, for good."""


@dataclass(frozen=True, slots=True)
class ShowMyData:
    """Send the client a readable copy of what is stored about them."""


@dataclass(frozen=True, slots=True)
class CrisisReplies:
    """The client's answer to crisis language, one per outcome: the flow cannot know who can be
    reached, so the executor picks the one that is true once it has chosen the recipient."""

    therapist: str  # their own therapist was told
    practice: str  # the practice's safety contact was told
    nobody: str  # nobody could be: the resources, and no word of anyone informed


@dataclass(frozen=True, slots=True)
class CrisisAlert:
    """Alert a person at once (the executor decides who: `app.effects`) and answer the client
    with the reply that is true. `source` is "text" (crisis language in a message, `category`
    from `flows.crisis.CATEGORIES`) or "safety_item" (a positive safety answer). `words` is
    what was written, shown to the clinician only where the practice shows comments in
    digests; `resources` are the crisis resources the client was given."""

    source: str
    at: datetime
    replies: CrisisReplies
    resources: str
    category: str | None = None
    words: str | None = None


@dataclass(frozen=True, slots=True)
class TellTherapist:
    """Let the therapist know of a change: `kind` is "joined", "paused" (with `until`, or None
    for a pause until resumed), "resumed", "stopped", "deleted" or "declined"."""

    kind: str
    until: datetime | None = None


# What a change of the client's status comes to (`flows.lifecycle` produces these) -----------


@dataclass(frozen=True, slots=True)
class SetStatus:
    """Store the client's new status. An active client gets its next check-in planned; any
    other status has none."""

    status: ClientStatus
    paused_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class LifeEvent:
    """Keep a life event as evidence for the signals ("paused", "resumed", "stopped"), with who
    caused it unless it was the client."""

    kind: str
    at: datetime
    by: Actor


@dataclass(frozen=True, slots=True)
class CloseCheckin:
    """End the client's open check-in now without a word, as its expiry would: the conversation
    leaves it, and a check-in still open is counted partial if anything was answered, else
    missed."""

    at: datetime


@dataclass(frozen=True, slots=True)
class StartCadence:
    """Check-ins start: the cadence counts from `at`."""

    at: datetime


@dataclass(frozen=True, slots=True)
class TellClient:
    """A catalog text (`key`) for the client from their therapist's side, in the client's
    language; `{therapist}` is the therapist's name."""

    key: str


Intent = (
    Reply
    | Notice
    | RecordConsent
    | DeclineConsent
    | SetLanguage
    | SetTimezone
    | RecordAnswer
    | RecordComment
    | FinishCheckin
    | DiscardCheckin
    | Pause
    | Resume
    | Stop
    | AskToTalk
    | StopReason
    | EraseAll
    | ShowMyData
    | CrisisAlert
    | TellTherapist
    | SetStatus
    | LifeEvent
    | CloseCheckin
    | StartCadence
    | TellClient
)
