"""The intent executor: runs a client's flow and carries out what it asks for (`flows.intents`),
and every change of a client's status (`flows.lifecycle`), inside the caller's transaction.

This is the one place where intents become rows: answers, events, state, outbox messages. The
rows that can wait (answers, messages, check-ins closed or voided, clients' state) are collected
and written by `Executor.flush` with one statement per kind, so one client's update and a batch
of fifty check-ins opening (`app.opening`) take the same path.
The message texts were localised by the flow already.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, assert_never, cast
from zoneinfo import ZoneInfo

from app import alerts, erasure
from app.alerts import reachable
from app.asking import measures_of, moments_of
from app.history import CRISIS_KIND
from app.planning import move_client, plan_checkin_deadlines, replan_client
from app.runtime import OutboxJob, Session, after_commit
from flows import intents as I
from flows import lifecycle
from flows.conversation import ClientContext, Outcome, handle
from flows.conversation import start_onboarding as flow_start
from flows.events import Event, Expire, OpenCheckin, Tap, Text
from flows.i18n import t
from flows.instruments import Instrument, load_instrument
from flows.keyboards import CHECKIN
from flows.lifecycle import Actor
from flows.state import open_checkin_id
from flows.statuses import CheckinStatus, ClientStatus
from flows.visible import visible_text
from storage import audit, checkins, due, outbox, people
from storage.along import Write, rides
from storage.due import Claimed
from storage.models import Checkin, Client, Practice, Therapist
from storage.people import PracticeSettings

if TYPE_CHECKING:
    from app.conversation import After
    from app.runtime import Runtime

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096
"""Telegram's limit on a message's text."""

CHECKIN_DATA = f"{CHECKIN}:"
"""The start of a check-in answer button's data."""

TALK, STOP_REASON = "talk", "stop_reason"
TALK_TOLD_EVERY = timedelta(days=1)
"""A therapist is told of a client's requests to talk (with no session booked) at most this
often: a client sending `/talk` again and again must not flood their therapist's chat."""
"""The kinds of `storage.models.ClientNote`."""

ALERT_WORDS_LIMIT = 1000
"""At most this much of what the client wrote goes into an alert (a message holds 4,096)."""

Subject = Client | Claimed
"""A client loaded whole, or the row the heartbeat claimed them with (`storage.due`)."""

ClientIntent = (
    I.RecordConsent
    | I.SetLanguage
    | I.SetTimezone
    | I.Pause
    | I.Resume
    | I.Stop
    | I.AskToTalk
    | I.StopReason
    | I.ShowMyData
    | I.TellTherapist
    | I.SetStatus
    | I.LifeEvent
    | I.CloseCheckin
    | I.StartCadence
    | I.TellClient
)
"""The intents that need the whole client (the rest need only its id and chat)."""


@lru_cache(maxsize=16)
def instrument(name: str) -> Instrument:
    return load_instrument(name)


def buttons_payload(buttons: tuple[tuple[I.Button, ...], ...]) -> list[list[dict[str, str]]]:
    return [[{"label": b.label, "data": b.data} for b in row] for row in buttons]


def client_context(
    client: Subject,
    practice: Practice | PracticeSettings,
    therapist_alias: str,
    telegram_language: str | None,
) -> ClientContext:
    """What a flow may know about the client besides its own state."""
    lang = client.language or practice.language
    return ClientContext(
        language=lang,
        timezone=client.timezone,
        instrument=instrument(practice.instrument),
        safety_item=practice.safety_item,
        crisis_resources=practice.crisis_resources.get(lang) or "",
        therapist_alias=therapist_alias,
        telegram_language=telegram_language,
    )


@dataclass(slots=True)
class _Message:
    chat_id: int
    kind: str
    payload: dict[str, Any]
    client_id: int | None = None
    therapist_id: int | None = None
    about_client_id: int | None = None
    priority: int = outbox.NORMAL

    def columns(self) -> dict[str, Any]:
        """As `outbox.queue_message` and `outbox.outbox_values` take them."""
        return {
            "chat_id": self.chat_id,
            "kind": self.kind,
            "payload": self.payload,
            "client_id": self.client_id,
            "therapist_id": self.therapist_id,
            "about_client_id": self.about_client_id,
            "priority": self.priority,
        }


@dataclass(slots=True)
class _Change:
    """A check-in to close (or void), in the order asked; `flush` decides what it comes to."""

    checkin_id: int
    at: datetime
    void: bool = False
    complete: bool = False
    answered: bool = False


@dataclass(slots=True)
class _Known:
    """A check-in as this transaction knows it."""

    status: str | None  # None: voided
    first_answer_at: datetime | None


class Executor:
    """Carries out intents for one or many clients in one transaction; `flush` writes what was
    collected (each function at the end of this module ends with it).

    A client is a `Client`, or a row the heartbeat claimed: rows get their messages, check-in
    changes and columns written by `flush` for the whole batch; a row whose intents need more is
    loaded whole (`clients`) and from then on handled as any client. With `after` (an update
    being handled) each message claims itself for this process's sender as it is written."""

    def __init__(
        self,
        s: Session,
        rt: Runtime,
        practice: Practice | PracticeSettings,
        now: datetime,
        after: After | None = None,
        aliases: dict[int, str] | None = None,
    ) -> None:
        self.s, self.rt, self.practice, self.now, self.after = s, rt, practice, now, after
        self.aliases: dict[int, str] = {} if aliases is None else aliases
        self.clients: dict[int, Client] = {}  # claimed rows whose intents needed the client
        self._messages: list[_Message] = []
        self._changes: list[_Change] = []
        self._answers: list[checkins.NewAnswer] = []
        self._known: dict[int, _Known] = {}
        self._voiding: set[int] = set()
        self._rows: dict[int, dict[str, Any]] = {}  # columns to store of clients known as rows
        # The check-ins the conversation had answers for before this event: their first
        # answer's time is stored already.
        self._answered: frozenset[int] = frozenset()
        self._shown: dict[int, list[outbox.Shown]] = {}  # a client's chat before this event
        self._merge_into: int | None = None  # the tapped question, at the chat's bottom

    # --- what callers use ---------------------------------------------------------------------

    async def client_event(
        self, subject: Subject, event: Event, telegram_language: str | None = None
    ) -> None:
        """Feed one event to the client's conversation and carry out what it returns."""
        subject = self._current(subject)
        ctx = await self.context(subject, telegram_language)
        state = self._state(subject)
        if isinstance(event, Text) and open_checkin_id(state) is not None:
            shown = await self._chat(subject)
            ctx = replace(
                ctx, on_its_way=frozenset(d for m in shown if _on_its_way(m) for d in m.data)
            )
        await self.apply(subject, handle(state, event, ctx), event)

    async def context(self, subject: Subject, telegram_language: str | None) -> ClientContext:
        alias = await self.therapist_alias(subject.therapist_id)
        return client_context(subject, self.practice, alias, telegram_language)

    async def apply(self, subject: Subject, outcome: Outcome, event: Event | None) -> None:
        """Store the conversation's new state and carry out its intents, in order."""
        subject = self._current(subject)
        self._answered = _answered_checkin(self._state(subject))
        self._set(subject, "conversation", outcome.state)
        # After erasure or a declined consent nothing may stay tied to the client: the last
        # replies go out as messages of nobody's, and the unbinding happens once they are queued.
        leaving = next(
            (i for i in outcome.intents if isinstance(i, I.EraseAll | I.DeclineConsent)), None
        )
        owned = leaving is None
        # Crisis resources go out ahead of anything else waiting for the client.
        crisis = any(isinstance(i, I.CrisisAlert) for i in outcome.intents)
        priority = outbox.URGENT if crisis else outbox.NORMAL
        erasing = isinstance(leaving, I.EraseAll)
        if isinstance(event, Text) and owned and _answered(outcome.intents):
            await self._retire_buttons(subject)
        for intent in outcome.intents:
            await self._carry_out(subject, intent, event, owned, priority, erasing)
        subject = self._current(subject)
        if subject.status == ClientStatus.ONBOARDING:
            client = await self._whole(subject)
            joined = lifecycle.activate(
                client.status,
                at=self.now,
                consented=client.consent_at is not None,
                has_timezone=bool(client.timezone),
                onboarded=outcome.state["machine"] == "idle",
            )
            await self.run(client, joined)
        if leaving is not None:
            await self._leave(await self._whole(subject), leaving)
        if self.after is not None:
            self.after.enqueued = True

    async def run(self, client: Client, intents: Iterable[I.Intent]) -> None:
        """Carry out intents that are not a flow's answer to an event (`flows.lifecycle`)."""
        for intent in intents:
            await self._carry_out(client, intent, None, True, outbox.NORMAL, False)

    async def close_checkin(self, client: Client, at: datetime, only: int | None = None) -> None:
        """End the client's open check-in quietly, as its expiry does: the conversation leaves
        it, then any check-in still open (`only` that one) is closed, partial if something was
        answered, else missed."""
        if open_checkin_id(self._state(client)) is not None:
            await self.client_event(client, Expire(at=at))
        left = (await checkins.open_of(self.s, [client.id])).get(client.id, ())
        left = [row for row in left if only is None or row.id == only]
        for row in left:
            self.know(row.id, row.first_answer_at)
        self.close_left_open([row.id for row in left], at)

    def know(self, checkin_id: int, first_answer_at: datetime | None) -> None:
        """An open check-in the caller has loaded already: `flush` need not read it again."""
        self._known.setdefault(checkin_id, _Known(CheckinStatus.OPEN, first_answer_at))

    def close_left_open(self, checkin_ids: Iterable[int], at: datetime) -> None:
        """Close these check-ins if they are still open once the flows' own changes are made
        (the conversation had lost them)."""
        self._changes.extend(_Change(checkin_id, at) for checkin_id in checkin_ids)

    def voided(self, checkin_id: int) -> bool:
        """Whether a flow asked for this check-in to be voided."""
        return checkin_id in self._voiding

    def set_next_checkin(self, subject: Subject, at: datetime | None) -> None:
        self._set(self._current(subject), "next_checkin_at", at)

    async def whole_practice(self) -> Practice:
        """The practice as an ORM object, for what takes one: one given as its settings (an
        update's, `people.FoundClient`) is loaded."""
        if isinstance(self.practice, Practice):
            return self.practice
        practice = await self.s.get(Practice, self.practice.id)
        assert practice is not None
        self.practice = practice
        return practice

    async def therapist_alias(self, therapist_id: int) -> str:
        """How the therapist is named to their clients (looked up once per executor)."""
        alias = self.aliases.get(therapist_id)
        if alias is None:
            therapist = await self.s.get(Therapist, therapist_id)
            assert therapist is not None
            alias = self.aliases[therapist_id] = self.rt.cipher.decrypt_name(therapist.name_enc)
        return alias

    async def flush(self) -> None:
        """Write what was collected: answers and check-ins, then messages, then clients'
        columns. An update's answer and its client's columns go with its last message, in one
        statement where writes ride along (`storage.along`); an answer only when no check-in
        changes, which are written before it."""
        along: list[Write] = []
        if self.after is not None and self._messages and rides(self.s):
            if len(self._answers) == 1 and not self._changes:
                along += checkins.answer_writes(self.rt.cipher, self._answers.pop())
            if len(self._rows) == 1:
                along.append(due.client_write(*self._rows.popitem()))
        await self._write_answers_and_checkins()
        rows, self._rows = self._rows, {}
        await self._write_messages(along)
        await due.update_clients(self.s, rows)

    # --- one intent -----------------------------------------------------------------------------

    async def _carry_out(
        self,
        subject: Subject,
        intent: I.Intent,
        event: Event | None,
        owned: bool,
        priority: int,
        erasing: bool,
    ) -> None:
        """`owned` False: messages to the client are queued as nobody's (see `apply`)."""
        match intent:
            case I.Reply():
                await self._reply(subject, intent, event, owned, priority)
            case I.Notice(text=text):
                if self.after is not None and self.after.callback_id is not None:
                    self.after.callback_text = text
                else:
                    self.send(subject, text, owned=owned, priority=priority)
            case I.RecordAnswer(checkin_id=checkin_id, item=item, value=value, at=at):
                first = checkin_id not in self._answered
                self._answers.append(checkins.NewAnswer(checkin_id, item, value, at, None, first))
            case I.RecordComment(checkin_id=checkin_id, text=text, at=at):
                self._answers.append(checkins.NewAnswer(checkin_id, "comment", None, at, text))
            case I.FinishCheckin(checkin_id=checkin_id, at=at, complete=complete):
                answered = intent.answered > 0
                self._changes.append(_Change(checkin_id, at, complete=complete, answered=answered))
            case I.DiscardCheckin(checkin_id=checkin_id, at=at):
                self._changes.append(_Change(checkin_id, at, void=True))
                self._voiding.add(checkin_id)
            case I.EraseAll() | I.DeclineConsent():
                pass  # once the last replies are queued (`_leave`)
            case I.CrisisAlert():
                await self._write_answers_and_checkins()
                await self._crisis(await self._whole(subject), intent, owned, about=not erasing)
            case I.TellTherapist() if erasing:
                # The notice that the client erased their data is the one message about them
                # that outlives the erasure: it carries only the alias.
                await self._tell_therapist(await self._whole(subject), intent, about=False)
            case _:
                # What follows may read answers and check-ins: those asked so far are written first.
                await self._write_answers_and_checkins()
                await self._record(await self._whole(subject), intent)

    async def _record(self, client: Client, intent: ClientIntent) -> None:
        """Intents that change the client or what is known about them."""
        s, now = self.s, self.now
        match intent:
            case I.RecordConsent(version=version, at=at):
                client.consent_version, client.consent_at = version, at
                await checkins.add_event(
                    s, client_id=client.id, kind="consented", at=at, data={"version": version}
                )
            case I.SetLanguage(code=code):
                client.language = code
            case I.SetTimezone(name=name):
                move_client(client, name)
                if client.status == ClientStatus.ACTIVE:
                    await replan_client(s, client, await self.whole_practice(), now)
            case I.Pause(until=until):
                await self.run(
                    client, lifecycle.pause(client.status, at=now, until=until, by=Actor.CLIENT)
                )
            case I.Resume():
                await self.run(client, lifecycle.resume(client.status, at=now, by=Actor.CLIENT))
            case I.Stop():
                await self.run(client, lifecycle.stop(client.status, at=now))
            case I.AskToTalk(text=text, at=at):
                await checkins.add_note(
                    s, self.rt.cipher, client_id=client.id, kind=TALK, at=at, text=text
                )
                await self._talk_without_session(client)
            case I.StopReason(reason=reason, text=text, at=at):
                await checkins.add_note(
                    s,
                    self.rt.cipher,
                    client_id=client.id,
                    kind=STOP_REASON,
                    at=at,
                    reason=reason,
                    text=text,
                )
                await self._tell_why(client, reason, text)
            case I.ShowMyData():
                from app.mydata import render_mydata

                for chunk in await render_mydata(s, self.rt, client, now):
                    self.send(client, chunk)
                await audit.audit(s, actor="client", action="mydata", now=now, client_id=client.id)
            case I.TellTherapist():
                await self._tell_therapist(client, intent)
            case I.SetStatus(status=status, paused_until=paused_until):
                client.status, client.paused_until = status, paused_until
                if status == ClientStatus.ACTIVE:
                    await replan_client(s, client, await self.whole_practice(), now)
                else:
                    client.next_checkin_at = None
            case I.LifeEvent(kind=kind, at=at, by=by):
                data = None if by is Actor.CLIENT else {"by": str(by)}
                await checkins.add_event(s, client_id=client.id, kind=kind, at=at, data=data)
            case I.CloseCheckin(at=at):
                await self.close_checkin(client, at)
            case I.StartCadence(at=at):
                client.cadence_anchor = at
            case I.TellClient(key=key):
                if client.chat_id is not None:
                    therapist = await self.therapist_alias(client.therapist_id)
                    lang = client.language or self.practice.language
                    self.send(client, t(lang, key, therapist=therapist))
            case _:
                assert_never(intent)

    # --- messages -------------------------------------------------------------------------------

    def send(
        self,
        subject: Subject,
        text: str,
        *,
        buttons: list[list[dict[str, str]]] | None = None,
        owned: bool = True,
        priority: int = outbox.NORMAL,
    ) -> None:
        """Queue a message to the client (as nobody's unless `owned`: see `apply`)."""
        payload: dict[str, Any] = {"text": text}
        if buttons:
            payload["buttons"] = buttons
        self._to_client(subject, "text", payload, owned, priority)

    def _to_client(
        self, subject: Subject, kind: str, payload: dict[str, Any], owned: bool, priority: int
    ) -> None:
        assert subject.chat_id is not None
        client_id = subject.id if owned else None
        self._messages.append(
            _Message(subject.chat_id, kind, payload, client_id, priority=priority)
        )

    async def _reply(
        self,
        subject: Subject,
        intent: I.Reply,
        event: Event | None,
        owned: bool,
        priority: int,
    ) -> None:
        buttons = buttons_payload(intent.buttons)
        if intent.edit and isinstance(event, Tap) and event.message_id:
            if event.data.startswith(CHECKIN_DATA) and not await self._tapped_copy(subject, event):
                return  # not a question's copy (forged onto another message): left as it is
            payload = {"message_id": event.message_id, "text": intent.text, "buttons": buttons}
            self._to_client(subject, "edit", payload, owned, priority)
            return
        if isinstance(event, Tap) and self._onto_edit(subject, event, intent.text, buttons, owned):
            return
        self.send(subject, intent.text, buttons=buttons, owned=owned, priority=priority)

    def _onto_edit(
        self,
        subject: Subject,
        tap: Tap,
        text: str,
        buttons: list[list[dict[str, str]]],
        owned: bool,
    ) -> bool:
        """A check-in answer is acknowledged in place: the tapped question becomes the
        acknowledgement followed by what comes next (the next question with its buttons, or the
        thanks), one edit instead of an edit and a message. Only right behind the edit of the
        same tap (nothing queued in between, e.g. crisis resources), within one message, and only
        when the tapped message is the chat's newest (`_tapped_copy`), so the next question is
        asked at the bottom of the chat."""
        if not tap.data.startswith(CHECKIN_DATA) or not self._messages:
            return False
        last = self._messages[-1]
        payload = last.payload
        if (
            last.kind != "edit"
            or last.chat_id != subject.chat_id
            or last.client_id != (subject.id if owned else None)
            or last.priority != outbox.NORMAL
            or payload.get("message_id") != tap.message_id
            or tap.message_id != self._merge_into
            or payload.get("buttons")
        ):
            return False
        merged = f"{payload['text']}\n\n{text}"
        if len(merged.encode("utf-16-le")) // 2 > MESSAGE_LIMIT:  # Telegram counts UTF-16 units
            return False
        last.payload = {**payload, "text": merged, "buttons": buttons, "or_send": True}
        return True

    async def _chat(self, subject: Subject) -> list[outbox.Shown]:
        """The client's recent messages as the outbox knows them before this event."""
        shown = self._shown.get(subject.id)
        if shown is None:
            shown = await outbox.recent_messages(self.s, self.rt.cipher, subject.id, CHECKIN_DATA)
            self._shown[subject.id] = shown
        return shown

    async def _tapped_copy(self, subject: Subject, tap: Tap) -> bool:
        """A tapped check-in answer: whether the tapped message shows a question's buttons, as
        far as the rows read tell (its acknowledgement then edits it; a forged tap on another
        message leaves that as it is). The next question is edited in only when the tapped
        message is the chat's newest, below everything else; every other copy of a question
        loses its buttons."""
        shown = await self._chat(subject)
        tapped = next((m for m in shown if m.message_id == tap.message_id), None)
        if tapped is None:
            shown, tapped = self._sent_unmarked(subject, shown, tap)
        live = tapped is None or bool(tapped.data)  # None: older than the rows read
        # Newest by Telegram's message ids, not by rows: a later row may only take the buttons
        # off an older message, and a message not sent yet comes below everything.
        below = any(m.message_id is None and m.kind == "text" for m in shown)
        last = max((m.message_id for m in shown if m.message_id is not None), default=None)
        newest = (
            tapped is not None and bool(tapped.data) and not below and tapped.message_id == last
        )
        self._merge_into = tap.message_id if newest else None
        await self._retire_buttons(subject, keep=tap.message_id if live else None)
        return live

    def _sent_unmarked(
        self, subject: Subject, shown: list[outbox.Shown], tap: Tap
    ) -> tuple[list[outbox.Shown], outbox.Shown | None]:
        """The tapped message among those that went out but are not marked sent yet (a sender
        marks a moment later; with replicas, another process's): the newest such question whose
        buttons the tap's data is among, when the tapped message is newer than every message
        known, which the client's tap then shows to be it. The chat as read, with that message's
        Telegram id filled in, and the message; or the chat as it was, and None."""
        known = max((m.message_id for m in shown if m.message_id is not None), default=0)
        found = next(
            (
                m
                for m in shown
                if m.message_id is None and m.claimed and m.kind == "text" and tap.data in m.data
            ),
            None,
        )
        if found is None or tap.message_id <= known:
            return shown, None
        tapped = replace(found, message_id=tap.message_id)
        shown = [tapped if m is found else m for m in shown]
        self._shown[subject.id] = shown
        return shown, tapped

    async def _retire_buttons(self, subject: Subject, keep: int | None = None) -> None:
        """An answered question keeps no live copy (a typed answer, or a tap on any copy: the
        one tapped, `keep`, is edited instead): a sent one loses its buttons, its text stays;
        one still on its way goes out without them."""
        for m in await self._chat(subject):
            if not m.data or (keep is not None and m.message_id == keep):
                continue
            if m.message_id is None:
                await outbox.drop_buttons(self.s, self.rt.cipher, m)
                if m.claimed:  # maybe on the wire with them: they go once it is sent
                    payload = {outbox.MARKUP_OF: m.row_id}
                    self._messages.append(_Message(m.chat_id, "markup", payload, subject.id))
            else:
                payload = {"message_id": m.message_id}
                self._messages.append(_Message(m.chat_id, "markup", payload, subject.id))

    async def _crisis(
        self, client: Client, intent: I.CrisisAlert, owned: bool, *, about: bool = True
    ) -> None:
        """The urgent alert goes to a person who can be reached: the client's therapist, else
        the practice's safety contact; the client is told which, or that nobody could be, and
        gets the crisis resources either way. Both go ahead of everything else queued. While that
        person has an open alert about the client, the text is gathered into it (`_gathered`;
        the rule is `alerts.gather_crisis`)."""
        cause = "safety_item" if intent.source == "safety_item" else intent.category
        therapist = await self.s.get(Therapist, client.therapist_id)
        assert therapist is not None
        recipient: Therapist | None = therapist
        alerted, reply = "therapist", intent.replies.therapist
        if not reachable(therapist):
            contact_id = self.practice.safety_contact_id
            contact = None if contact_id is None else await self.s.get(Therapist, contact_id)
            if contact is not None and contact.id != therapist.id and reachable(contact):
                recipient, alerted, reply = contact, "safety_contact", intent.replies.practice
            else:
                recipient, alerted, reply = None, "nobody", intent.replies.nobody
                log.warning("urgent alert about client %s reached nobody", client.id)
        self.send(client, reply, owned=owned, priority=outbox.URGENT)
        if about and recipient is not None:
            gathered = await alerts.gather_crisis(self.s, client, recipient, cause, self.now)
            if gathered is not None:
                await self._gathered(client, intent, gathered, alerted, cause)
                return
        text = (
            ""
            if recipient is None
            else await self._alert_text(recipient, therapist, client, intent)
        )
        data: dict[str, Any] = {
            "source": intent.source,
            "category": intent.category,
            "alerted": alerted,
        }
        if recipient is not None and not about:
            # The client is being erased: a plain message that outlives nothing of theirs.
            self._alert(recipient, client, text, urgent=True, about=False)
        elif about:  # stored and kept open, even when it reached nobody (digest, lists)
            alert = await alerts.raise_alert(
                self.s,
                self.rt,
                client=client,
                kind=alerts.CRISIS,
                cause=cause,
                urgent=True,
                recipient=recipient,
                text=text,
                practice=await self.whole_practice(),
                now=self.now,
            )
            data["alert"] = alert.id
        await checkins.add_event(
            self.s, client_id=client.id, kind=CRISIS_KIND, at=intent.at, data=data
        )

    async def _gathered(
        self,
        client: Client,
        intent: I.CrisisAlert,
        gathered: alerts.Gathered,
        alerted: str,
        cause: str | None,
    ) -> None:
        """A crisis text while the person it would alert has an open alert about the client:
        they get a short follow-up line at most every `alerts.FOLLOW_UP_EVERY`, and the event is
        kept, linked to the open alert (the client had their reply and resources already)."""
        if gathered.follow_up is not None:
            words = self._words_line(gathered.follow_up, intent)
            extra = [words] if words else []
            await alerts.follow_up(self.s, self.rt, gathered, client, cause, extra, self.now)
        data = {"source": intent.source, "category": intent.category, "alerted": alerted}
        data |= alerts.crisis_data(gathered, self.now)
        await checkins.add_event(
            self.s, client_id=client.id, kind=CRISIS_KIND, at=intent.at, data=data
        )

    async def _alert_text(
        self, recipient: Therapist, therapist: Therapist, client: Client, intent: I.CrisisAlert
    ) -> str:
        """What kind and when, why the recipient gets it if it is not the client's therapist,
        the words where the practice shows them, and the client's crisis resources."""
        lines = [self._alert_head(recipient, client, intent)]
        if recipient is not therapist:
            why = "blocked" if therapist.chat_id is not None else "not_joined"
            lines.append(
                t(
                    recipient.language,
                    "therapist.alert_safety_contact",
                    client=client.alias,
                    therapist=await self.therapist_alias(therapist.id),
                    why=t(recipient.language, f"therapist.unreachable_{why}"),
                )
            )
        words = self._words_line(recipient, intent)
        if words:
            lines.append(words)
        lines.append(
            t(recipient.language, "therapist.alert_crisis_resources", resources=intent.resources)
        )
        return "\n\n".join(lines)

    def _words_line(self, recipient: Therapist, intent: I.CrisisAlert) -> str | None:
        """What the client wrote, for a clinician, only where the practice shows comments."""
        # The words as a person sees them: no bidirectional override reordering the line.
        words = visible_text(intent.words or "").strip()[:ALERT_WORDS_LIMIT]
        if not words or not self.practice.digest_comments:
            return None
        return t(recipient.language, "therapist.alert_crisis_words", words=words)

    @staticmethod
    def _alert_head(recipient: Therapist, client: Client, intent: I.CrisisAlert) -> str:
        """What kind of language and when, in the recipient's language and time zone."""
        lang = recipient.language
        at = intent.at.astimezone(ZoneInfo(recipient.timezone or "UTC"))
        if intent.source == "safety_item":
            return t(lang, "therapist.alert_crisis_safety", client=client.alias, at=at)
        kind = t(lang, f"therapist.crisis_kind.{intent.category or 'other'}")
        return t(lang, "therapist.alert_crisis_text", client=client.alias, kind=kind, at=at)

    async def _tell_therapist(
        self, client: Client, intent: I.TellTherapist, *, about: bool = True
    ) -> None:
        """A short note to the client's therapist, naming the client by alias only. It is about
        the client (erased with them) unless `about` is False."""
        params: dict[str, str] = {}
        match intent:
            case I.TellTherapist(kind="paused", until=None):
                key = "therapist.client_paused_open"
            case I.TellTherapist(kind=kind, until=until):
                key = f"therapist.client_{kind}"
                if until is not None:
                    day = until.astimezone(ZoneInfo(client.timezone or "UTC")).date()
                    params["date"] = day.isoformat()
        therapist = await self.s.get(Therapist, client.therapist_id)
        if therapist is None or therapist.chat_id is None:
            log.info("therapist of client %s has not joined; note %s not sent", client.id, key)
            return
        text = t(therapist.language, key, client=client.alias, **params)
        if intent.kind == "stopped" and about:
            # Withdrawal: a note the therapist acknowledges, like any between-session alert.
            await alerts.raise_alert(
                self.s,
                self.rt,
                client=client,
                kind=alerts.WITHDRAWAL,
                cause="stopped",
                urgent=False,
                recipient=therapist,
                text=text,
                practice=await self.whole_practice(),
                now=self.now,
            )
            return
        self._alert(therapist, client, text, urgent=False, about=about)

    async def _talk_without_session(self, client: Client) -> None:
        """A request to talk waits for the next digest, pinned at its top; with no session
        booked no digest is coming, so the therapist is told now (the words stay in Rapport)."""
        facts = await checkins.asking_facts(self.s, [client.id], (), self.now)
        if facts[client.id].has_upcoming_session:
            return
        therapist = await self.s.get(Therapist, client.therapist_id)
        if therapist is None or therapist.chat_id is None:
            return
        talks = await checkins.notes_of(self.s, client.id, TALK)
        if sum(1 for note in talks if note.at > self.now - TALK_TOLD_EVERY) > 1:
            return  # told of an earlier one today; this one is kept all the same
        text = t(therapist.language, "therapist.client_talk_no_session", client=client.alias)
        self._alert(therapist, client, text, urgent=False, about=True)

    async def _tell_why(self, client: Client, reason: str | None, words: str | None) -> None:
        """Why the client stopped, to their therapist (after the stop notice): the reason chosen
        and, where the practice shows clients' words to therapists, what they wrote."""
        therapist = await self.s.get(Therapist, client.therapist_id)
        if therapist is None or therapist.chat_id is None:
            return
        lang = therapist.language
        lines = [
            t(
                lang,
                "therapist.client_stop_reason",
                client=client.alias,
                reason=t(lang, f"therapist.stop_reason.{reason or 'own_words'}"),
            )
        ]
        if words and self.practice.digest_comments:
            lines.append(t(lang, "therapist.client_words", words=words[:ALERT_WORDS_LIMIT]))
        self._alert(therapist, client, "\n".join(lines), urgent=False, about=True)

    def _alert(
        self, therapist: Therapist, client: Client, text: str, *, urgent: bool, about: bool
    ) -> None:
        """Queue a message about the client for a therapist who has a chat; an urgent one goes
        before everything else in the outbox."""
        assert therapist.chat_id is not None
        self._messages.append(
            _Message(
                therapist.chat_id,
                "urgent" if urgent else "text",
                {"text": text},
                therapist_id=therapist.id,
                about_client_id=client.id if about else None,
                priority=outbox.URGENT if urgent else outbox.NORMAL,
            )
        )
        self.rt.wake_sender()

    async def _write_messages(self, along: Sequence[Write] = ()) -> None:
        """`along`: writes stored with the last message (`outbox.queue_message`); only for an
        update's messages."""
        messages, self._messages = self._messages, []
        if not messages:
            assert not along
            return
        if self.after is not None:
            for n, message in enumerate(messages, 1):
                await self._queue(message, self.after, along if n == len(messages) else ())
        else:
            cipher, now = self.rt.cipher, self.now
            rows = [outbox.outbox_values(cipher, now=now, **m.columns()) for m in messages]
            await due.insert_outbox(self.s, rows)
        if any(m.priority == outbox.URGENT for m in messages):
            urgent_after_commit(self.s, self.rt)

    async def _queue(self, m: _Message, after: After, along: Sequence[Write]) -> None:
        """A message of an update's answer. While this process's sender runs, the row claims
        itself for it (if it heads its chat's queue) and goes to the sender once the update's
        transaction has committed, without another round trip to the database."""
        handoff = self.rt.handoff
        head = after.head_of(m.chat_id, m.priority) if handoff is not None else None
        message_id, claimed = await outbox.queue_message(
            self.s,
            self.rt.cipher,
            now=self.now,
            claim_by=handoff.worker if handoff is not None else None,
            behind=None if head is None else (head.id, head.rows()[-1].id),
            along=along,
            **m.columns(),
        )
        job = OutboxJob(message_id, m.chat_id, m.kind, m.payload, priority=m.priority)
        after.queued(m.chat_id, job if claimed else None, behind=head)

    # --- check-ins ------------------------------------------------------------------------------

    async def _write_answers_and_checkins(self) -> None:
        """Carry out the check-in changes asked so far, in order: a change counts only for a
        check-in still open (`flows.lifecycle.closed_status` says what a closed one is). The
        answers collected so far are stored first: what follows may read them."""
        answers, self._answers = self._answers, []
        for answer in answers:
            await checkins.store_answer(self.s, self.rt.cipher, answer)
        changes, self._changes = self._changes, []
        if not changes:
            return
        unknown = {c.checkin_id for c in changes} - self._known.keys()
        for checkin_id, row in (await checkins.states(self.s, unknown)).items():
            self._known[checkin_id] = _Known(row.status, row.first_answer_at)
        closing: dict[int, tuple[CheckinStatus, datetime]] = {}
        voiding: list[int] = []
        for change in changes:
            known = self._known.get(change.checkin_id)
            if known is None or known.status != CheckinStatus.OPEN:
                continue
            if change.void:
                known.status = None
                voiding.append(change.checkin_id)
                continue
            answered = change.answered or known.first_answer_at is not None
            known.status = lifecycle.closed_status(complete=change.complete, answered=answered)
            closing[change.checkin_id] = (known.status, change.at)
        await checkins.close(self.s, [(cid, status, at) for cid, (status, at) in closing.items()])
        await checkins.discard(self.s, voiding)

    # --- the client -----------------------------------------------------------------------------

    def _current(self, subject: Subject) -> Subject:
        """The whole client if a claimed row was loaded whole meanwhile."""
        if isinstance(subject, Client):
            return subject
        return self.clients.get(subject.id, subject)

    def _state(self, subject: Subject) -> dict[str, Any] | None:
        """The conversation as stored, or as this transaction left it."""
        pending = self._rows.get(subject.id)
        if pending is not None and "conversation" in pending:
            return cast(dict[str, Any] | None, pending["conversation"])
        return cast(dict[str, Any] | None, subject.conversation)

    def _set(self, subject: Subject, column: str, value: Any) -> None:
        """Set a column of the client: on the object, or to be written by `flush` for a claimed
        row (always: the claim changed the row since it was read). A loaded client's
        conversation is written by `flush` too, in one prepared UPDATE: through the ORM it was a
        unit-of-work flush on every update a client sends. (Nothing sets the conversation the
        ORM's way before `flush`; `_leave` does, after it.)"""
        if not isinstance(subject, Client):
            self._rows.setdefault(subject.id, {})[column] = value
        elif getattr(subject, column) != value:
            if column == "conversation":
                due.set_as_loaded(subject, column, value)
                self._rows.setdefault(subject.id, {})[column] = value
                return
            # Only a real change marks the client dirty (a dirty object costs a flush before
            # every statement that follows).
            setattr(subject, column, value)

    async def _whole(self, subject: Subject) -> Client:
        """The client as an ORM object: a claimed row is loaded, with what was set on it."""
        if isinstance(subject, Client):
            return subject
        client = self.clients.get(subject.id)
        if client is None:
            client = await self.s.get(Client, subject.id)
            assert client is not None
            for column, value in self._rows.pop(subject.id, {}).items():
                setattr(client, column, value)
            self.clients[subject.id] = client
        return client

    async def _leave(self, client: Client, leaving: I.EraseAll | I.DeclineConsent) -> None:
        await self.flush()
        if isinstance(leaving, I.EraseAll):
            await erasure.erase_client(self.s, self.rt, client.id, self.now, actor="client")
            return
        client.status, client.telegram_user_id, client.chat_id = ClientStatus.DECLINED, None, None
        client.conversation, client.next_checkin_at = None, None
        # Onboarding messages queued earlier must not keep the chat tied to the client either.
        await outbox.disown_messages(self.s, client.id)


def _answered_checkin(state: dict[str, Any] | None) -> frozenset[int]:
    """The open check-in of a stored conversation if it has answers already (its first answer
    was recorded in an earlier transaction, with the state that says so)."""
    current = (state or {}).get("checkin")
    if isinstance(current, dict) and current.get("answers"):
        return frozenset({int(current["id"])})
    return frozenset()


def _on_its_way(m: outbox.Shown) -> bool:
    """Whether the message shows its question only once an edit not yet sent arrives: until
    then the client sees the one before it (`ClientContext.on_its_way`)."""
    return m.kind == "edit" and not m.sent


def _answered(intents: Iterable[I.Intent]) -> bool:
    """Whether the intents answer the check-in's current question (or end the check-in)."""
    return any(isinstance(i, I.RecordAnswer | I.RecordComment | I.FinishCheckin) for i in intents)


def urgent_after_commit(s: Session, rt: Runtime) -> None:
    """Once this transaction commits, wake the sender's urgent lane: an urgent message must not
    wait for the messages already on their way to go out (`OutboxSender`). (A transaction that
    rolls back wakes nobody; its session is not used again.)"""
    after_commit(s, rt.wake_urgent)


# --- one client, one transaction -----------------------------------------------------------------


async def start_onboarding(
    s: Session,
    rt: Runtime,
    client: Client,
    telegram_language: str | None,
    now: datetime,
    after: After,
) -> None:
    ex = Executor(s, rt, await people.get_practice(s, now), now, after)
    ctx = await ex.context(client, telegram_language)
    await ex.apply(client, flow_start(ctx, now), None)
    await ex.flush()


async def update_event(
    s: Session,
    rt: Runtime,
    found: people.FoundClient,
    event: Event,
    telegram_language: str | None,
    now: datetime,
    after: After,
) -> None:
    """Feed an event of the client's own update to their conversation, the client as the
    update found them (a row; loaded whole only for what needs it), and carry out what it
    returns."""
    client = found.client
    alias = rt.cipher.decrypt_name(found.therapist_name_enc)
    ex = Executor(s, rt, found.practice, now, after, aliases={client.therapist_id: alias})
    await ex.client_event(client, event, telegram_language)
    await ex.flush()


async def client_event(
    s: Session,
    rt: Runtime,
    client: Client,
    event: Event,
    telegram_language: str | None,
    now: datetime,
    after: After | None,
) -> None:
    """Feed one event to the client's conversation and carry out what it returns."""
    ex = Executor(s, rt, await people.get_practice(s, now), now, after)
    await ex.client_event(client, event, telegram_language)
    await ex.flush()


async def change(
    s: Session,
    rt: Runtime,
    client: Client,
    intents: Iterable[I.Intent],
    now: datetime,
    after: After | None = None,
) -> None:
    """Carry out a change of the client's status (`flows.lifecycle`) asked for from outside
    their conversation: by their therapist, or by the schedule."""
    ex = Executor(s, rt, await people.get_practice(s, now), now, after)
    await ex.run(client, intents)
    await ex.flush()


async def expire(s: Session, rt: Runtime, client: Client, checkin_id: int, now: datetime) -> None:
    """Check-in `checkin_id` ran out of time (`Executor.close_checkin`)."""
    ex = Executor(s, rt, await people.get_practice(s, now), now)
    await ex.close_checkin(client, now, only=checkin_id)
    await ex.flush()


async def open_checkin(
    s: Session, rt: Runtime, client: Client, practice: Practice, now: datetime
) -> Checkin:
    """Open a check-in for one client: row, deadlines, and the first question in the outbox (the
    heartbeat opens them a batch at a time: `app.opening`)."""
    checkin = await checkins.open_checkin(
        s, client_id=client.id, instrument=practice.instrument, now=now
    )
    await plan_checkin_deadlines(s, checkin, client, practice)
    asks = instrument(practice.instrument)
    moment = (await moments_of(s, asks, [client.id], now))[client.id]
    measures = (await measures_of(s, practice.outcomes, asks, [client], now))[client.id]
    event = OpenCheckin(at=now, checkin_id=checkin.id, moment=moment, measures=measures)
    await client_event(s, rt, client, event, None, now, None)
    return checkin
