"""Runs a client's flow and carries out its intents inside the caller's transaction.

A flow only says what should happen (`flows.intents`); here those intents become rows: answers,
events, state, and outbox messages. The message texts were localised by the flow already.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_state

from app import erasure
from app.planning import move_client, plan_checkin_deadlines, replan_client
from app.runtime import OutboxJob
from flows import intents as I
from flows.conversation import ClientContext, Outcome, handle
from flows.conversation import start_onboarding as flow_start
from flows.events import Event, OpenCheckin, Tap
from flows.i18n import t
from flows.instruments import Instrument, load_instrument
from storage import repo
from storage.models import Checkin, Client, OutboxMessage, Practice, Therapist

if TYPE_CHECKING:
    from app.conversation import After
    from app.runtime import Runtime

log = logging.getLogger(__name__)


@lru_cache(maxsize=16)
def instrument(name: str) -> Instrument:
    return load_instrument(name)


def buttons_payload(buttons: tuple[tuple[I.Button, ...], ...]) -> list[list[dict[str, str]]]:
    return [[{"label": b.label, "data": b.data} for b in row] for row in buttons]


async def context_for(
    s: AsyncSession, rt: Runtime, client: Client, practice: Practice, telegram_language: str | None
) -> ClientContext:
    lang = client.language or practice.language
    # Loaded with the client by `repo.client_by_user`; looked up otherwise.
    therapist = instance_state(client).dict.get("therapist")
    if therapist is None or therapist.id != client.therapist_id:
        therapist = await s.get(Therapist, client.therapist_id)
    assert therapist is not None
    return ClientContext(
        language=lang,
        timezone=client.timezone,
        instrument=instrument(practice.instrument),
        safety_item=practice.safety_item,
        crisis_resources=practice.crisis_resources.get(lang) or "",
        therapist_alias=rt.cipher.decrypt_name(therapist.name_enc),
        telegram_language=telegram_language,
    )


async def start_onboarding(
    s: AsyncSession,
    rt: Runtime,
    client: Client,
    telegram_language: str | None,
    now: datetime,
    after: After,
) -> None:
    practice = await repo.get_practice(s, now)
    ctx = await context_for(s, rt, client, practice, telegram_language)
    await apply(s, rt, client, practice, flow_start(ctx, now), None, now, after)


async def client_event(
    s: AsyncSession,
    rt: Runtime,
    client: Client,
    event: Event,
    telegram_language: str | None,
    now: datetime,
    after: After | None,
) -> None:
    """Feed one event to the client's conversation and carry out what it returns."""
    practice = await repo.get_practice(s, now)
    ctx = await context_for(s, rt, client, practice, telegram_language)
    outcome = handle(client.conversation, event, ctx)
    await apply(s, rt, client, practice, outcome, event, now, after)


async def apply(
    s: AsyncSession,
    rt: Runtime,
    client: Client,
    practice: Practice,
    outcome: Outcome,
    event: Event | None,
    now: datetime,
    after: After | None,
) -> None:
    if outcome.state != client.conversation:
        # Only a real change marks the client dirty (the same rows would be written either way,
        # but a dirty object costs a flush before every statement that follows).
        client.conversation = outcome.state
    # After erasure or a declined consent nothing may stay tied to the client: the last replies
    # go out as messages of nobody's, and the unbinding happens once they are queued.
    leaving = next(
        (i for i in outcome.intents if isinstance(i, I.EraseAll | I.DeclineConsent)), None
    )
    owner = None if leaving is not None else client.id
    # Crisis resources go out ahead of anything else waiting for the client.
    crisis = any(isinstance(i, I.CrisisAlert) for i in outcome.intents)
    priority = repo.URGENT if crisis else repo.NORMAL
    for intent in outcome.intents:
        if isinstance(intent, I.Reply):
            await reply(s, rt, client, intent, event, now, after, owner, priority)
        elif isinstance(intent, I.Notice):
            if after is not None and after.callback_id is not None:
                after.callback_text = intent.text
            else:
                await send(s, rt, client, intent.text, now, after, owner=owner, priority=priority)
        elif isinstance(intent, I.TellTherapist) and isinstance(leaving, I.EraseAll):
            # The notice that the client erased their data is the one message about them that
            # outlives the erasure: it carries only the alias, and nothing of theirs is stored.
            key = f"therapist.client_{intent.kind}"
            await tell_therapist(s, rt, client, key, now, about=False)
        elif not isinstance(intent, I.EraseAll | I.DeclineConsent):
            await record(s, rt, client, practice, intent, now)
    if (
        client.status == "onboarding"
        and client.consent_at
        and client.timezone
        and outcome.state.get("machine") == "idle"
    ):
        client.status = "active"
        client.cadence_anchor = now
        await replan_client(s, client, practice, now)
        await tell_therapist(s, rt, client, "therapist.client_joined", now)
    if isinstance(leaving, I.EraseAll):
        await erasure.erase_client(s, rt, client.id, now, actor="client")
    elif isinstance(leaving, I.DeclineConsent):
        client.status, client.telegram_user_id, client.chat_id = "declined", None, None
        client.conversation, client.next_checkin_at = None, None
        # Onboarding messages queued earlier must not keep the chat tied to the client either.
        await s.execute(
            update(OutboxMessage).where(OutboxMessage.client_id == client.id).values(client_id=None)
        )
    if after is not None:
        after.enqueued = True


async def send(
    s: AsyncSession,
    rt: Runtime,
    client: Client,
    text: str,
    now: datetime,
    after: After | None,
    *,
    buttons: list[list[dict[str, str]]] | None = None,
    owner: int | bool | None = True,
    priority: int = repo.NORMAL,
) -> None:
    """Queue a message to the client; `owner` False/None queues it as nobody's (see `apply`)."""
    assert client.chat_id is not None
    payload: dict[str, Any] = {"text": text}
    if buttons:
        payload["buttons"] = buttons
    client_id = client.id if owner is True or owner == client.id else None
    await queue(s, rt, after, client.chat_id, "text", payload, now, client_id, priority)
    if after is not None:
        after.enqueued = True


async def queue(
    s: AsyncSession,
    rt: Runtime,
    after: After | None,
    chat_id: int,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    client_id: int | None,
    priority: int = repo.NORMAL,
) -> None:
    """Queue a message of an update's answer. While this process's sender runs, the row claims
    itself for it (if it heads its chat's queue) and goes to the sender once the update's
    transaction has committed, so the answer leaves without another round trip to the database.
    """
    worker = rt.handoff.worker if after is not None and rt.handoff is not None else None
    message_id, claimed = await repo.queue_message(
        s,
        rt.cipher,
        chat_id=chat_id,
        kind=kind,
        payload=payload,
        now=now,
        client_id=client_id,
        claim_by=worker,
        priority=priority,
    )
    if priority == repo.URGENT:
        urgent_after_commit(s, rt)
    if after is not None:
        job = OutboxJob(message_id, chat_id, kind, payload, priority=priority) if claimed else None
        after.queued(chat_id, job)


async def reply(
    s: AsyncSession,
    rt: Runtime,
    client: Client,
    intent: I.Reply,
    event: Event | None,
    now: datetime,
    after: After | None,
    owner: int | None,
    priority: int = repo.NORMAL,
) -> None:
    buttons = buttons_payload(intent.buttons)
    if intent.edit and isinstance(event, Tap) and event.message_id:
        assert client.chat_id is not None
        payload = {"message_id": event.message_id, "text": intent.text, "buttons": buttons}
        await queue(s, rt, after, client.chat_id, "edit", payload, now, owner, priority)
        return
    await send(
        s, rt, client, intent.text, now, after, buttons=buttons, owner=owner, priority=priority
    )


async def record(
    s: AsyncSession, rt: Runtime, client: Client, practice: Practice, intent: Any, now: datetime
) -> None:
    """Intents that change stored data (answers, settings, life events)."""
    if isinstance(intent, I.RecordAnswer):
        await repo.record_answer(
            s,
            rt.cipher,
            checkin_id=intent.checkin_id,
            item=intent.item,
            value=intent.value,
            at=intent.at,
        )
    elif isinstance(intent, I.RecordComment):
        await repo.record_answer(
            s,
            rt.cipher,
            checkin_id=intent.checkin_id,
            item="comment",
            value=None,
            at=intent.at,
            text=intent.text,
        )
    elif isinstance(intent, I.FinishCheckin):
        checkin = await s.get(Checkin, intent.checkin_id)
        if checkin is not None and checkin.status == "open":
            answered = intent.answered > 0 or checkin.first_answer_at is not None
            partial_or_missed = "partial" if answered else "missed"
            checkin.status = "answered" if intent.complete else partial_or_missed
            checkin.closed_at = intent.at
    elif isinstance(intent, I.RecordConsent):
        client.consent_version, client.consent_at = intent.version, intent.at
        await repo.add_event(
            s, client_id=client.id, kind="consented", at=intent.at, data={"version": intent.version}
        )
    elif isinstance(intent, I.SetLanguage):
        client.language = intent.code
    elif isinstance(intent, I.SetTimezone):
        move_client(client, intent.name)
        if client.status == "active":
            await replan_client(s, client, practice, now)
    elif isinstance(intent, I.Pause):
        client.status, client.paused_until = "paused", intent.until
        client.next_checkin_at = None
        await repo.add_event(s, client_id=client.id, kind="paused", at=now)
        if intent.until is None:
            await tell_therapist(s, rt, client, "therapist.client_paused_open", now)
        else:
            day = intent.until.astimezone(ZoneInfo(client.timezone or "UTC")).date()
            await tell_therapist(
                s, rt, client, "therapist.client_paused", now, date=day.isoformat()
            )
    elif isinstance(intent, I.Resume):
        if client.status == "paused":
            client.status, client.paused_until = "active", None
            await repo.add_event(s, client_id=client.id, kind="resumed", at=now)
            await replan_client(s, client, practice, now)
            await tell_therapist(s, rt, client, "therapist.client_resumed", now)
    elif isinstance(intent, I.Stop):
        client.status, client.next_checkin_at = "stopped", None
        await repo.add_event(s, client_id=client.id, kind="stopped", at=now)
    elif isinstance(intent, I.CrisisAlert):
        await repo.add_event(
            s, client_id=client.id, kind="crisis", at=intent.at, data={"source": intent.source}
        )
        key = "alert_crisis_safety" if intent.source == "safety_item" else "alert_crisis_text"
        await tell_therapist(s, rt, client, f"therapist.{key}", now, urgent=True)
    elif isinstance(intent, I.TellTherapist):
        await tell_therapist(s, rt, client, f"therapist.client_{intent.kind}", now)
    elif isinstance(intent, I.DiscardCheckin):
        checkin = await s.get(Checkin, intent.checkin_id)
        if checkin is not None and checkin.status == "open":
            await s.delete(checkin)
    elif isinstance(intent, I.ShowMyData):
        from app.mydata import render_mydata

        for chunk in await render_mydata(s, rt, client, now):
            await send(s, rt, client, chunk, now, None)
        await repo.audit(s, actor="client", action="mydata", now=now, client_id=client.id)
    else:
        log.warning("intent %s not handled", type(intent).__name__)


async def tell_therapist(
    s: AsyncSession,
    rt: Runtime,
    client: Client,
    key: str,
    now: datetime,
    *,
    urgent: bool = False,
    about: bool = True,
    **params: str,
) -> None:
    """A short note to the client's therapist, naming the client by alias only. It is about the
    client (erased with them) unless `about` is False; an urgent one goes before everything
    else in the outbox."""
    therapist = await s.get(Therapist, client.therapist_id)
    if therapist is None or therapist.chat_id is None:
        log.warning(
            "therapist of client %s has not joined; note %s kept for the digest", client.id, key
        )
        return
    text = t(therapist.language, key, client=client.alias, **params)
    await repo.queue_message(
        s,
        rt.cipher,
        chat_id=therapist.chat_id,
        kind="urgent" if urgent else "text",
        payload={"text": text},
        now=now,
        therapist_id=therapist.id,
        about_client_id=client.id if about else None,
    )
    if urgent:
        urgent_after_commit(s, rt)
    rt.wake_sender()


def urgent_after_commit(s: AsyncSession, rt: Runtime) -> None:
    """Once this transaction commits, wake the sender's urgent lane: an urgent message must not
    wait for the messages already on their way to go out (`OutboxSender`). (A transaction that
    rolls back wakes nobody; its session is not used again.)"""
    event.listen(s.sync_session, "after_commit", lambda _session: rt.wake_urgent(), once=True)


async def open_checkin(
    s: AsyncSession, rt: Runtime, client: Client, practice: Practice, now: datetime
) -> Checkin:
    """The heartbeat opens a check-in: row, deadlines, and the first question in the outbox."""
    checkin = await repo.open_checkin(
        s, client_id=client.id, instrument=practice.instrument, now=now
    )
    await plan_checkin_deadlines(s, checkin, client, practice)
    await client_event(s, rt, client, OpenCheckin(at=now, checkin_id=checkin.id), None, now, None)
    return checkin
