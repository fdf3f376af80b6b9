"""The pre-session digest: built from the client's history, sent to the therapist as one pair of
messages (the chart with a short caption, then one text), in the therapist's language. Every build
is a therapist read: audited. A digest with alert-level flags raises an alert (`app.alerts`),
whose acknowledgement buttons its text carries."""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from app import alerts
from app.effects import TALK
from app.history import client_history
from app.runtime import Runtime, Session
from flows.instruments import outcome_instruments
from flows.measures import stored_measures
from insights.digest import Digest, TalkRequest, build_digest, caption, render_text, to_json
from insights.history import ClientHistory
from insights.thresholds import Thresholds
from storage import audit, checkins, outbox, people
from storage.models import Client, Practice, Therapist, TherapySession

log = logging.getLogger(__name__)


async def digest_for(
    s: Session,
    rt: Runtime,
    client: Client,
    practice: Practice,
    now: datetime,
    session_at: datetime | None,
    *,
    lang: str | None = None,
) -> tuple[Digest, Any]:
    """The digest and the history behind it, in `lang` (default: the client's therapist's)."""
    history = await client_history(s, rt.cipher, client, practice)
    talks = [
        TalkRequest(note.at, rt.cipher.decrypt(note.text_enc) if note.text_enc else None)
        for note in await checkins.notes_of(s, client.id, TALK, unshown=True)
    ]
    digest = build_digest(
        history,
        now,
        session_at,
        Thresholds(),
        lang=lang or await reader_language(s, client),
        include_comments=practice.digest_comments,
        talk_requests=talks,
        instruments=outcome_instruments(practice.instrument, *measures_of(client, practice)),
    )
    ack = await alerts.flag_acknowledgement(s, rt.cipher, client.id, digest.alert_codes)
    if ack is not None:
        digest = replace(digest, flag_ack=ack)
    return digest, history


def digest_chart(digest: Digest, history: ClientHistory) -> bytes:
    """The digest's chart: titled with its finding, its outcome measures beside wellbeing."""
    # matplotlib is imported on the first digest, not at start-up (a third of a second and tens
    # of megabytes a bot without sessions never needs).
    from insights.chart import render_chart

    return render_chart(
        history,
        digest.now,
        None,
        lang=digest.lang,
        finding=digest.headline,
        outcomes=digest.outcomes,
    )


def measures_of(client: Client, practice: Practice) -> list[str]:
    """The outcome measures the client is asked (their own setting, else the practice's)."""
    setting = client.outcomes if client.outcomes is not None else practice.outcomes
    return [measure.name for measure in stored_measures(setting)]


async def reader_language(s: Session, client: Client) -> str:
    """The language the client's therapist reads Rapport in."""
    therapist = await people.therapist_by_id(s, client.therapist_id)
    return therapist.language if therapist is not None and therapist.language else "en"


async def enqueue_digest(
    s: Session,
    rt: Runtime,
    client: Client,
    therapist: Therapist,
    now: datetime,
    session_at: datetime | None,
    actor: str,
) -> Digest:
    """Put the digest (chart, caption, text chunks) in the therapist's outbox, in order."""
    assert therapist.chat_id is not None
    practice = await people.get_practice(s, now)
    digest, history = await digest_for(
        s, rt, client, practice, now, session_at, lang=therapist.language or "en"
    )
    chunks = render_text(digest, therapist.timezone)
    # Every row quotes the client (chart, comments): erased with them, even if not yet sent.
    common = {
        "chat_id": therapist.chat_id,
        "now": now,
        "therapist_id": therapist.id,
        "about_client_id": client.id,
    }
    if history.checkins:
        # Drawing takes a tenth of a second or more: off the event loop, so updates keep flowing.
        png = await asyncio.to_thread(digest_chart, digest, history)
        await outbox.enqueue(
            s,
            rt.cipher,
            kind="photo",
            payload={
                "photo": base64.b64encode(png).decode(),
                "caption": caption(digest, therapist.timezone),  # times as the text gives them
            },
            **common,  # type: ignore[arg-type]
        )
    # Alert-level flags: the text carries the acknowledgement buttons (its last message, when
    # it takes more than one), once per episode (`app.alerts.flag_for_digest`).
    flag = await alerts.flag_for_digest(s, rt, client, digest.alert_codes, now)
    for i, chunk in enumerate(chunks):
        if flag is not None and i == len(chunks) - 1:
            await alerts.show(s, rt, flag, therapist, chunk, now)
            continue
        await outbox.enqueue(s, rt.cipher, kind="text", payload={"text": chunk}, **common)  # type: ignore[arg-type]
    await audit.audit(s, actor=actor, action="digest", now=now, client_id=client.id)
    rt.wake_sender()
    return digest


async def send_digest(s: Session, rt: Runtime, session: TherapySession, now: datetime) -> bool:
    """The heartbeat's digest before a session (already claimed by the caller)."""
    client = await people.client_by_id(s, session.client_id)
    if client is None:
        return False
    therapist = await people.therapist_by_id(s, client.therapist_id)
    if therapist is None or therapist.chat_id is None:
        log.warning("digest for session %s not sent: therapist has not joined", session.id)
        return False
    talks = await checkins.notes_of(s, client.id, TALK, unshown=True)
    await enqueue_digest(s, rt, client, therapist, now, session.starts_at, "heartbeat")
    # Pinned until a pre-session digest has carried them (one asked for by hand does not count).
    await checkins.mark_notes_shown(s, [note.id for note in talks if note.at <= now], now)
    return True


def digest_json(digest: Digest) -> dict[str, Any]:
    return to_json(digest)
