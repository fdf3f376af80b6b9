"""Alerts about a client for clinicians, until someone acts on them: raise one, acknowledge it,
list what is open (for a therapist, for the practice), escalate an urgent one nobody
acknowledged, and send it elsewhere when its recipient blocked the bot. Any front end calls
these (the staff commands in Telegram, the practice console); nothing here knows Telegram.

Every alert message carries the acknowledgement buttons; their data is `ack_data` and is
trusted for nothing: an acknowledgement is taken only from a therapist the alert was shown to,
once. Who is alerted first is decided by the caller (`app.effects` for crisis language).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from app.runtime import Runtime, Session, after_commit
from flows.i18n import t
from flows.statuses import CheckinStatus, ClientStatus
from flows.timing import format_duration
from insights.digest import FlagAcknowledged
from insights.history import Acknowledgement
from insights.practice import Acknowledgement as Verdict
from insights.texts import names
from storage import alerts as store
from storage import audit, checkins, outbox, people
from storage.crypto import Cipher
from storage.models import Alert, AlertMessage, Client, Practice, Therapist

log = logging.getLogger(__name__)

CRISIS = "crisis"
WITHDRAWAL = "withdrawal"
FLAG = "flag"
"""A digest's alert-level signals: the digest's text carries the buttons (`flag_for_digest`)."""

SEEN, CONTACTED, NOT_CONCERN = "seen", "contacted", "not_concern"
_CODES = {SEEN: "s", CONTACTED: "c", NOT_CONCERN: "n"}
_CHOICE_OF = {code: choice for choice, code in _CODES.items()}
ACK_PREFIX = "al"
ALERT_KINDS = ("urgent", "alert")
"""Outbox kinds of the messages that show an alert: the sender keeps their Telegram ids."""
WATCHED = (ClientStatus.ONBOARDING, ClientStatus.ACTIVE, ClientStatus.PAUSED)
"""Clients whose withdrawal is news (one who stopped has said so, and the therapist was told)."""
TEXT_LIMIT = 4096
"""The most characters one Telegram message holds."""
MISSED_IN_A_ROW = 2
"""Check-ins missed in a row, after at least one answered, that make a withdrawal alert."""
UNBLOCKED_AGAIN = timedelta(days=1)
"""After unblocking the bot, a client's next withdrawal is news only this long after the last
withdrawal alert about them."""


class Ack(StrEnum):
    """How an acknowledgement went."""

    DONE = "done"
    ALREADY = "already"  # someone acknowledged it before: nothing changes
    REFUSED = "refused"  # not an alert shown to this therapist, or a choice it does not offer


@dataclass(frozen=True)
class AlertView:
    """An alert as a list shows it: never the client's words."""

    id: int
    client_id: int
    alias: str
    kind: str
    cause: str | None
    urgent: bool
    raised_at: datetime
    escalated_at: datetime | None
    ack_choice: str | None
    ack_by: str | None  # the name of who acknowledged
    ack_at: datetime | None


@dataclass(frozen=True)
class Acknowledged:
    result: Ack
    alert: AlertView | None = None  # with who acknowledged it, and when


def choices(urgent: bool) -> tuple[str, ...]:
    """What a clinician can answer: an urgent alert is never "not a concern"."""
    return (SEEN, CONTACTED) if urgent else (SEEN, CONTACTED, NOT_CONCERN)


def ack_data(alert_id: int, choice: str) -> str:
    return f"{ACK_PREFIX}:{alert_id}:{_CODES[choice]}"


def parse_ack_data(data: str) -> tuple[int, str] | None:
    """(alert id, choice) of a button's data, or None for anything else."""
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != ACK_PREFIX or parts[2] not in _CHOICE_OF:
        return None
    if not parts[1].isascii() or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    return int(parts[1]), _CHOICE_OF[parts[2]]


def buttons(alert_id: int, urgent: bool, lang: str) -> list[list[dict[str, str]]]:
    """The acknowledgement buttons, one per row (the labels are long)."""
    return [
        [{"label": t(lang, f"alert.button_{choice}"), "data": ack_data(alert_id, choice)}]
        for choice in choices(urgent)
    ]


def reachable(therapist: Therapist) -> bool:
    """Whether a message to the therapist reaches a person: they joined (a chat is bound) and
    have not blocked the bot since."""
    return therapist.chat_id is not None and therapist.unreachable_at is None


# --- raising ----------------------------------------------------------------------------------


async def raise_alert(
    s: Session,
    rt: Runtime,
    *,
    client: Client,
    kind: str,
    cause: str | None,
    urgent: bool,
    recipient: Therapist | None,
    text: str,
    practice: Practice,
    now: datetime,
) -> Alert:
    """Store an alert about `client` and send `text` with the acknowledgement buttons to
    `recipient` (None: nobody could be reached; the alert is kept open all the same). An urgent
    one is due to escalate after the practice's wait (`escalate`)."""
    wait = timedelta(minutes=practice.alert_escalation_minutes)
    alert = await store.add_alert(
        s,
        client_id=client.id,
        kind=kind,
        cause=cause,
        urgent=urgent,
        raised_at=now,
        escalate_at=now + wait if urgent and _escalates(recipient, practice) else None,
    )
    if recipient is not None:
        await show(s, rt, alert, recipient, text, now)
    return alert


def _escalates(recipient: Therapist | None, practice: Practice) -> bool:
    """Whether there may be someone further to tell: it reached a person, not the safety
    contact themself."""
    return recipient is not None and recipient.id != practice.safety_contact_id


async def show(
    s: Session,
    rt: Runtime,
    alert: Alert,
    therapist: Therapist,
    text: str,
    now: datetime,
    *,
    urgent: bool | None = None,
) -> None:
    """Send `text` about the alert to the therapist, with the buttons, and keep the message so
    that it can be edited once someone acknowledges. It goes ahead of everything else if the
    alert is urgent, unless `urgent` says otherwise (a line of a list)."""
    assert therapist.chat_id is not None
    urgent = alert.urgent if urgent is None else urgent
    row = await outbox.enqueue(
        s,
        rt.cipher,
        chat_id=therapist.chat_id,
        kind="urgent" if urgent else "alert",
        payload={"text": text, "buttons": buttons(alert.id, alert.urgent, therapist.language)},
        now=now,
        therapist_id=therapist.id,
        about_client_id=alert.client_id,
        priority=outbox.URGENT if urgent else outbox.NORMAL,
    )
    await store.add_message(
        s,
        alert_id=alert.id,
        therapist_id=therapist.id,
        chat_id=therapist.chat_id,
        outbox_id=row.id,
        text_enc=rt.cipher.encrypt(text),
    )
    after_commit(s, rt.wake_urgent if urgent else rt.wake_sender)


# --- a crisis flood: one open alert per client ---------------------------------------------------


FOLLOW_UP_EVERY = timedelta(minutes=15)
"""While a crisis alert is open, its recipient hears of further crisis texts at most this often."""
SEVERITY = {"death_wish": 1, "safety_item": 1, "self_harm": 2, "suicide": 3, "plan": 4}
"""How grave a crisis cause is: a graver one than any told of is followed up at once."""


@dataclass(frozen=True)
class Gathered:
    """A crisis text gathered into the open alert about the client instead of raising one."""

    alert: Alert
    follow_up: Therapist | None  # who gets a follow-up line now; None: told recently enough


def follow_up_due(
    told: Sequence[tuple[datetime, str | None]], cause: str | None, now: datetime
) -> bool:
    """Whether a further crisis text is worth a line now, given when and of what cause the
    recipient was told so far (the alert, its follow-ups): not within `FOLLOW_UP_EVERY` of the
    last, unless the cause is graver than any they were told of."""
    if not told:
        return True
    if now - max(at for at, _ in told) >= FOLLOW_UP_EVERY:
        return True
    return SEVERITY.get(cause or "", 0) > max(SEVERITY.get(c or "", 0) for _, c in told)


GATHER_FOR = timedelta(days=1)
"""How long an open urgent alert gathers further crisis texts, unless it escalates first."""


async def gather_crisis(
    s: Session, client: Client, recipient: Therapist, cause: str | None, now: datetime
) -> Gathered | None:
    """The one place deciding whether a crisis text that would alert `recipient` raises an
    alert: not while an urgent crisis alert about the client shown to them is open (None:
    raise one; as when the open alert reached nobody, or someone else, say the safety contact
    while the therapist had blocked the bot, for then the one to tell now does not know). The
    event links to the open alert (`crisis_data`), so the digest still lists each one."""
    alert = await store.last_of_kind(s, client.id, CRISIS, open_urgent=True)
    if alert is None or alert.escalated_at is not None or now - alert.raised_at >= GATHER_FOR:
        # Once the open alert has escalated (or is a day old), a new crisis is news again: it
        # raises its own alert, and so its own escalation, rather than a line to someone who
        # has not answered.
        return None
    messages = await store.messages_of(s, alert.id)
    if recipient.id not in {m.therapist_id for m in messages}:
        return None
    told = [
        (datetime.fromisoformat(str(d["told_at"])), _cause(d))
        for e in await checkins.events_of(s, client.id)
        if e.kind == CRISIS and (d := e.data or {}).get("alert") == alert.id and d.get("told_at")
    ]
    told.append((alert.raised_at, alert.cause))
    return Gathered(alert, recipient if follow_up_due(told, cause, now) else None)


def _cause(data: dict[str, Any]) -> str | None:
    """A crisis event's cause, as an alert names it."""
    return "safety_item" if data.get("source") == "safety_item" else data.get("category")


def crisis_data(gathered: Gathered, now: datetime) -> dict[str, Any]:
    """What a gathered crisis event records beside its source, category and who was told: the
    open alert, and when a follow-up line went out, if one did."""
    data: dict[str, Any] = {"alert": gathered.alert.id}
    if gathered.follow_up is not None:
        data["told_at"] = now.isoformat()
    return data


async def follow_up(
    s: Session,
    rt: Runtime,
    gathered: Gathered,
    client: Client,
    cause: str | None,
    extra: Sequence[str],
    now: datetime,
) -> None:
    """The short line to the open alert's recipient: what kind of language, when (their time),
    and `extra` lines (the words, where the practice shows them); with the alert's buttons."""
    recipient = gathered.follow_up
    assert recipient is not None
    lang = recipient.language
    head = t(
        lang,
        "alert.crisis_again",
        client=client.alias,
        kind=crisis_kind_text(cause, lang),
        at=now.astimezone(ZoneInfo(recipient.timezone or "UTC")),
    )
    await show(s, rt, gathered.alert, recipient, "\n\n".join([head, *extra]), now)


# --- acknowledging ----------------------------------------------------------------------------


async def acknowledge(
    s: Session,
    rt: Runtime,
    *,
    alert_id: int,
    therapist: Therapist,
    choice: str,
    now: datetime,
    shown_in: tuple[int, int] | None = None,
    entitled: bool = False,
) -> Acknowledged:
    """`therapist` answers alert `alert_id` with `choice`. Taken once, and only from someone the
    alert was shown to, or whom the caller `entitled` (the console: one who may change the
    client, `app.console_alerts`); the choice is stored and audited, and every message that
    showed the alert is edited to say who acknowledged and how, its buttons gone. `shown_in` is
    the (chat, message) a tap came from, edited too if it is not one of those."""
    alert = await store.get(s, alert_id)
    if alert is None:
        return Acknowledged(Ack.REFUSED)
    messages = await store.messages_of(s, alert.id)
    if not entitled and therapist.id not in {m.therapist_id for m in messages}:
        return Acknowledged(Ack.REFUSED)
    if alert.ack_at is not None:
        return Acknowledged(Ack.ALREADY, await _view(s, rt, alert))
    if choice not in choices(alert.urgent):
        return Acknowledged(Ack.REFUSED)
    if not await store.acknowledge(s, alert.id, choice=choice, by=therapist.id, at=now):
        await s.refresh(alert)
        return Acknowledged(Ack.ALREADY, await _view(s, rt, alert))
    await s.refresh(alert)
    await audit.audit(
        s,
        actor=f"therapist:{therapist.id}",
        action=f"alert_{choice}",
        now=now,
        client_id=alert.client_id,
    )
    view = await _view(s, rt, alert)
    await _edit_messages(s, rt, view, messages, shown_in, therapist, now)
    return Acknowledged(Ack.DONE, view)


async def _edit_messages(
    s: Session,
    rt: Runtime,
    view: AlertView,
    messages: Sequence[AlertMessage],
    shown_in: tuple[int, int] | None,
    acker: Therapist,
    now: datetime,
) -> None:
    sent = await store.sent_message_ids(s, messages)
    edited: set[tuple[int, int]] = set()
    for message in messages:
        telegram_id = sent.get(message.id)
        if telegram_id is None:
            continue  # not out yet: it goes with its buttons, which then answer "already"
        reader = await s.get(Therapist, message.therapist_id)
        lang = reader.language if reader is not None else acker.language
        line = acknowledged_line(view, lang, reader)
        text = with_line(rt.cipher.decrypt(message.text_enc), line)
        await _queue_edit(
            s, rt, message.chat_id, telegram_id, text, message.therapist_id, view, now
        )
        edited.add((message.chat_id, telegram_id))
    if shown_in is not None and shown_in not in edited and shown_in[1]:
        # Tapped before its sending was written down: the acker's message not known as sent.
        unknown = [m for m in messages if m.therapist_id == acker.id and m.id not in sent]
        line = acknowledged_line(view, acker.language, acker)
        if unknown:
            line = with_line(rt.cipher.decrypt(unknown[0].text_enc), line)
        await _queue_edit(s, rt, shown_in[0], shown_in[1], line, acker.id, view, now)


def with_line(text: str, line: str) -> str:
    """The message's text with the acknowledgement after it, within one Telegram message: a
    digest's text can be nearly full, so its last lines give way (whole lines, marked "…")."""
    whole = f"{text}\n\n{line}"
    if len(whole) <= TEXT_LIMIT:
        return whole
    room = TEXT_LIMIT - len(line) - len("\n…\n\n")
    cut = text.rfind("\n", 0, room)
    return f"{text[: cut if cut > 0 else room].rstrip()}\n…\n\n{line}"


async def _queue_edit(
    s: Session,
    rt: Runtime,
    chat_id: int,
    message_id: int,
    text: str,
    therapist_id: int | None,
    view: AlertView,
    now: datetime,
) -> None:
    await outbox.enqueue(
        s,
        rt.cipher,
        chat_id=chat_id,
        kind="edit",
        payload={"message_id": message_id, "text": text, "buttons": []},
        now=now,
        therapist_id=therapist_id,
        about_client_id=view.client_id,
    )
    after_commit(s, rt.wake_sender)


def acknowledged_line(view: AlertView, lang: str, reader: Therapist | None) -> str:
    """ "Acknowledged by X on …: I've contacted the client", in the reader's time zone."""
    assert view.ack_at is not None and view.ack_choice is not None
    zone = ZoneInfo(reader.timezone if reader is not None and reader.timezone else "UTC")
    return t(
        lang,
        "alert.acknowledged",
        who=view.ack_by or "?",
        at=view.ack_at.astimezone(zone),
        choice=t(lang, f"alert.button_{view.ack_choice}"),
    )


# --- listing ----------------------------------------------------------------------------------


async def open_for_therapist(s: Session, rt: Runtime, therapist: Therapist) -> list[AlertView]:
    """What is open among the alerts shown to the therapist, oldest first."""
    return [await _view(s, rt, a) for a in await store.open_for_therapist(s, therapist.id)]


async def shown_to(s: Session, alert_id: int) -> set[int]:
    """The therapists an alert was shown to (in Telegram): each of them may acknowledge it."""
    return {m.therapist_id for m in await store.messages_of(s, alert_id)}


async def open_for_practice(
    s: Session, rt: Runtime, client_ids: Collection[int] | None = None
) -> list[AlertView]:
    """Every open alert of the practice (of these clients, if given), oldest first (for whoever
    oversees the practice)."""
    return [await _view(s, rt, a) for a in await store.open_alerts(s, client_ids)]


async def open_shown_to(s: Session, therapist_id: int) -> set[int]:
    """Ids of the open alerts shown to the therapist in Telegram (each of them theirs to
    answer)."""
    return await store.open_ids_shown_to(s, therapist_id)


async def view_of(s: Session, rt: Runtime, alert_id: int) -> AlertView | None:
    alert = await store.get(s, alert_id)
    return None if alert is None else await _view(s, rt, alert)


async def alerts_since(
    s: Session, rt: Runtime, client_id: int, since: datetime | None
) -> list[AlertView]:
    """The client's alerts raised after `since` (all of them if None), oldest first."""
    return [await _view(s, rt, a) for a in await store.alerts_of(s, client_id, since)]


async def acknowledgements(
    s: Session, cipher: Cipher, alert_ids: Sequence[int]
) -> dict[int, Acknowledgement]:
    """Who acknowledged each of these alerts, and when (the digest's risk lines)."""
    found: dict[int, Acknowledgement] = {}
    names: dict[int, str] = {}
    for alert_id in alert_ids:
        alert = await store.get(s, alert_id)
        if alert is None:
            continue
        by = None
        if alert.ack_by is not None:
            if alert.ack_by not in names:
                names[alert.ack_by] = await _name_of(s, cipher, alert.ack_by)
            by = names[alert.ack_by]
        found[alert_id] = Acknowledgement(by=by, at=alert.ack_at if by else None)
    return found


async def _name_of(s: Session, cipher: Cipher, therapist_id: int) -> str:
    therapist = await s.get(Therapist, therapist_id)
    return cipher.decrypt_name(therapist.name_enc) if therapist is not None else "?"


async def _view(s: Session, rt: Runtime, alert: Alert) -> AlertView:
    client = await s.get(Client, alert.client_id)
    by = None if alert.ack_by is None else await _name_of(s, rt.cipher, alert.ack_by)
    return AlertView(
        id=alert.id,
        client_id=alert.client_id,
        alias=client.alias if client is not None else "?",
        kind=alert.kind,
        cause=alert.cause,
        urgent=alert.urgent,
        raised_at=alert.raised_at,
        escalated_at=alert.escalated_at,
        ack_choice=alert.ack_choice,
        ack_by=by,
        ack_at=alert.ack_at,
    )


# --- when nobody acts, or the message cannot reach them -----------------------------------------


async def escalate(s: Session, rt: Runtime, alert_id: int, now: datetime) -> bool:
    """An urgent alert still unacknowledged after the practice's wait goes, once, to the
    safety contact (never back to someone who has it already). Quiet hours do not delay it.
    True if it was sent."""
    if not await store.claim_escalation(s, alert_id, now):
        return False
    alert = await store.get(s, alert_id)
    assert alert is not None
    practice = await people.get_practice(s, now)
    wait = timedelta(minutes=practice.alert_escalation_minutes)
    return await _to_safety_contact(s, rt, alert, practice, now, why=("unacknowledged", wait))


async def delivery_failed(s: Session, rt: Runtime, outbox_id: int, now: datetime) -> None:
    """The message of an alert could not be delivered because its recipient blocked the bot:
    an urgent one goes to the safety contact instead, and a client who was told their
    therapist knows is told the truth. Should the safety contact the client was told of have
    blocked the bot too, the client learns that nobody could be told."""
    message = await store.message_by_outbox(s, outbox_id)
    if message is None:
        return
    alert = await store.get(s, message.alert_id)
    if alert is None or not alert.urgent or alert.ack_at:
        return
    client = await s.get(Client, alert.client_id)
    if client is None:
        return
    messages = await store.messages_of(s, alert.id)
    if next(m for m in messages if m.therapist_id == message.therapist_id).id != message.id:
        return  # a later copy (a line of a list): nobody further
    practice = await people.get_practice(s, now)
    original = message.id == messages[0].id
    if original and message.therapist_id == client.therapist_id and not alert.escalated_at:
        alert.escalate_at = None
        told = await _to_safety_contact(s, rt, alert, practice, now, why=("blocked", None))
        alerted = "safety_contact" if told else "nobody"
    elif await _who_was_told(s, alert) == "safety_contact":
        alerted = "nobody"  # the copy the client was told of, to the safety contact
    else:
        return  # an escalation on top of a delivered alert: the client was told the truth
    await _record_who_was_told(s, alert, alerted)
    if alert.kind == CRISIS and client.chat_id is not None:
        lang = client.language or practice.language
        key = "crisis.correction_practice" if alerted != "nobody" else "crisis.correction_nobody"
        text = t(lang, key, resources=_resources(practice, lang))
        await outbox.enqueue(
            s,
            rt.cipher,
            chat_id=client.chat_id,
            kind="text",
            payload={"text": text},
            now=now,
            client_id=client.id,
            priority=outbox.URGENT,
        )
        after_commit(s, rt.wake_urgent)


async def _who_was_told(s: Session, alert: Alert) -> str | None:
    """Who the crisis event of the alert says was told ("therapist", "safety_contact", ...)."""
    for event in await checkins.events_of(s, alert.client_id):
        data = event.data or {}
        if event.kind == CRISIS and data.get("alert") == alert.id:
            return str(data.get("alerted"))
    return None


async def _record_who_was_told(s: Session, alert: Alert, alerted: str) -> None:
    """The crisis event of the alert (what the digest reads) names who was told in the end."""
    for event in await checkins.events_of(s, alert.client_id):
        data = event.data or {}
        if event.kind == CRISIS and data.get("alert") == alert.id:
            event.data = {**data, "alerted": alerted}


async def _to_safety_contact(
    s: Session,
    rt: Runtime,
    alert: Alert,
    practice: Practice,
    now: datetime,
    why: tuple[str, timedelta | None],
) -> bool:
    client = await s.get(Client, alert.client_id)
    contact_id = practice.safety_contact_id
    contact = None if contact_id is None else await s.get(Therapist, contact_id)
    shown = {m.therapist_id for m in await store.messages_of(s, alert.id)}
    if client is None or contact is None or contact.id in shown or not reachable(contact):
        log.warning("alert %s could not go to a safety contact", alert.id)
        return False
    name = await _name_of(s, rt.cipher, client.therapist_id)
    lang = contact.language
    reason, wait = why
    params = {"wait": format_duration(wait)} if wait is not None else {}
    head = t(
        lang,
        "alert.to_safety_contact",
        client=client.alias,
        kind=kind_text(alert, lang),
        at=alert.raised_at.astimezone(ZoneInfo(contact.timezone or "UTC")),
        therapist=name,
        why=t(lang, f"alert.why_{reason}", **params),
    )
    resources = t(
        lang,
        "therapist.alert_crisis_resources",
        resources=_resources(practice, client.language or practice.language),
    )
    alert.escalated_at = now
    await show(s, rt, alert, contact, f"{head}\n\n{resources}", now)
    return True


def _resources(practice: Practice, lang: str) -> str:
    return practice.crisis_resources.get(lang) or t(lang, "crisis.default_resources")


def kind_text(alert: AlertView | Alert, lang: str) -> str:
    """What the alert is about, as a phrase after the alias ("A.S. wrote about …")."""
    if alert.kind == CRISIS:
        return crisis_kind_text(alert.cause, lang)
    if alert.kind == FLAG:
        return t(lang, "alert.kind_flag", signals=names(alert.cause or "", lang))
    return t(lang, f"alert.withdrawal_{alert.cause or 'missed'}")


def crisis_kind_text(cause: str | None, lang: str) -> str:
    """What crisis language of this cause was, as a phrase after the alias."""
    if cause == "safety_item":
        return t(lang, "alert.kind_safety_item")
    return t(lang, f"therapist.crisis_kind.{cause or 'other'}")


# --- between sessions: a client withdrawing -----------------------------------------------------


async def check_missed(s: Session, rt: Runtime, client: Client, now: datetime) -> None:
    """After a check-in closed: two missed in a row, after having answered at least one, is a
    withdrawal (`note_withdrawal`)."""
    closed = [c for c in await checkins.statuses_of(s, client.id) if c.status != CheckinStatus.OPEN]
    last = closed[-MISSED_IN_A_ROW:]
    if len(last) < MISSED_IN_A_ROW or any(c.status != CheckinStatus.MISSED for c in last):
        return
    answered = (CheckinStatus.ANSWERED, CheckinStatus.PARTIAL)
    if not any(c.status in answered for c in closed[:-MISSED_IN_A_ROW]):
        return
    await note_withdrawal(s, rt, client, "missed", now)


async def note_withdrawal(
    s: Session, rt: Runtime, client: Client, cause: str, now: datetime
) -> Alert | None:
    """An alert-level withdrawal (`cause` "missed" or "blocked"): the therapist gets a short
    alert with the buttons now, booked session or not, once per episode; a new episode starts
    only once the client answers a check-in again or unblocks the bot (`_episode_alerted`)."""
    if client.status not in WATCHED or await _episode_alerted(s, client, now):
        return None
    practice = await people.get_practice(s, now)
    therapist = await s.get(Therapist, client.therapist_id)
    recipient = therapist if therapist is not None and reachable(therapist) else None
    lang = recipient.language if recipient is not None else practice.language
    text = t(
        lang,
        "alert.withdrawal",
        client=client.alias,
        what=t(lang, f"alert.withdrawal_{cause}"),
    )
    return await raise_alert(
        s,
        rt,
        client=client,
        kind=WITHDRAWAL,
        cause=cause,
        urgent=False,
        recipient=recipient,
        text=text,
        practice=practice,
        now=now,
    )


async def _episode_alerted(s: Session, client: Client, now: datetime) -> bool:
    """Whether this withdrawal was alerted already: a withdrawal alert raised after the client
    last answered a check-in, and after they last unblocked the bot unless that alert is less
    than `UNBLOCKED_AGAIN` old (a client toggling the block is one episode, not an alert each
    time)."""
    last = await store.last_of_kind(s, client.id, WITHDRAWAL)
    if last is None:
        return False
    answered = [c.first_answer_at for c in await checkins.statuses_of(s, client.id)]
    if any(at is not None and at > last.raised_at for at in answered):
        return False
    back = [e.at for e in await checkins.events_of(s, client.id) if e.kind == "unblocked"]
    unblocked = any(at > last.raised_at for at in back)
    return not (unblocked and now - last.raised_at >= UNBLOCKED_AGAIN)


async def list_item(
    s: Session, rt: Runtime, alert_id: int, therapist: Therapist, text: str, now: datetime
) -> None:
    """Show one open alert again, with its buttons, to a therapist it was shown to (`/alerts`,
    which lists `open_for_therapist`)."""
    alert = await store.get(s, alert_id)
    assert alert is not None and alert.ack_at is None
    await show(s, rt, alert, therapist, text, now, urgent=False)


# --- a digest's alert-level flags ---------------------------------------------------------------


CAUSE_LIMIT = 200
"""The most characters a stored cause holds (`storage.models.Alert.cause`)."""


def flag_cause(codes: Iterable[str]) -> str:
    """A flag's cause: its alert-level signal codes, sorted, joined by "," (whole codes only,
    within the column)."""
    cause = ",".join(sorted(set(codes)))
    while len(cause) > CAUSE_LIMIT and "," in cause:
        cause = cause.rsplit(",", 1)[0]
    return cause[:CAUSE_LIMIT]


def _flag_codes(alert: Alert) -> set[str]:
    return {code for code in (alert.cause or "").split(",") if code}


async def flag_for_digest(
    s: Session, rt: Runtime, client: Client, codes: Collection[str], now: datetime
) -> Alert | None:
    """The alert whose buttons a digest with these alert-level signal codes carries, if any.

    Once per episode: a flag still going (raised by an earlier digest, and every digest since
    showed one of its signals) is not raised again; while open, this digest carries its buttons
    too, and once acknowledged none (the digest says who acknowledged, `flag_acknowledgement`).
    A digest without any of its signals ends the episode; one with signals it did not name
    raises a new flag for all of them."""
    current = set(codes)
    going = await store.ongoing_flag(s, client.id, FLAG, lock=True)
    if going is not None:
        named = _flag_codes(going)
        if current and current <= named:
            return going if going.ack_at is None else None
        going.ended_at = now  # gone from the digest, or grown: a new flag names them all
    if not current:
        return None
    practice = await people.get_practice(s, now)
    return await raise_alert(
        s,
        rt,
        client=client,
        kind=FLAG,
        cause=flag_cause(current),
        urgent=False,
        recipient=None,  # the digest's text shows it (`show`), with its buttons
        text="",
        practice=practice,
        now=now,
    )


async def flag_acknowledgement(
    s: Session, cipher: Cipher, client_id: int, codes: Collection[str]
) -> FlagAcknowledged | None:
    """Who acknowledged the flag these alert-level signals continue, how and when (a line of the
    next digest); None if there is none, or it is still open."""
    going = await store.ongoing_flag(s, client_id, FLAG)
    if going is None or not set(codes) & _flag_codes(going):
        return None
    if going.ack_at is None or going.ack_choice is None:
        return None
    by = "?" if going.ack_by is None else await _name_of(s, cipher, going.ack_by)
    return FlagAcknowledged(by=by, at=going.ack_at, choice=going.ack_choice)


# --- acknowledgements as labels for the detector ------------------------------------------------


async def verdicts(s: Session) -> list[Verdict]:
    """Therapists' acknowledgements of alerts about how a client is doing (flags and
    withdrawals), as the practice backtest's labels: "not a concern" is a false alarm, "seen" or
    "contacted" a concern. Urgent alerts answer crisis language, not the detector: left out."""
    return [
        Verdict(client=str(client_id), at=at, concern=choice != NOT_CONCERN)
        for client_id, at, choice in await store.acknowledged(s, urgent=False)
    ]
