"""Builds the plain `insights.history.ClientHistory` of one client from the database.

Comments are decrypted here, for the digest only; nothing here is logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from app import alerts
from app.runtime import Session
from flows.instruments import DEFAULT_INSTRUMENT, load_instrument
from flows.statuses import CheckinStatus
from insights.history import (
    Acknowledgement,
    CheckinRecord,
    ClientHistory,
    CrisisEvent,
    LifeEvent,
    cadence_days_from_spec,
)
from storage import checkins, people
from storage.crypto import Cipher
from storage.models import Answer, Checkin, Client, ClientEvent, Practice, TherapySession

_ENDED_UNANSWERED = (CheckinStatus.MISSED, CheckinStatus.PARTIAL)
LIFE_KINDS = {"paused", "resumed", "stopped", "blocked", "unblocked"}
CRISIS_KIND = "crisis"  # the client event an urgent alert leaves (`app.effects`)
"""The client event an urgent alert leaves behind (see `app.effects`)."""
_BRIEF = load_instrument(DEFAULT_INSTRUMENT)
_TENSION, _TALKED = _BRIEF.rupture_probe
(_COMMENT,) = (item.id for item in _BRIEF.flat_items() if item.kind == "text")
YES = 1


async def client_history(
    s: Session, cipher: Cipher, client: Client, practice: Practice
) -> ClientHistory:
    rows = await checkins.checkins_of(s, client.id)
    answers = await checkins.answers_of_client(s, client.id) if rows else ()
    events = await checkins.events_of(s, client.id)
    sessions = await people.sessions_of(s, client.id)
    acks = await crisis_acknowledgements(s, cipher, events)
    return build_history(cipher, client, practice, rows, answers, events, sessions, acks)


async def crisis_acknowledgements(
    s: Session, cipher: Cipher, events: Sequence[ClientEvent]
) -> dict[int, Acknowledgement]:
    """Who acknowledged the urgent alert each crisis event left, by alert id."""
    ids = [
        int(alert)
        for e in events
        if e.kind == CRISIS_KIND and (alert := (e.data or {}).get("alert"))
    ]
    return await alerts.acknowledgements(s, cipher, ids) if ids else {}


async def caseload_histories(
    s: Session, cipher: Cipher, clients: Sequence[Client], practice: Practice
) -> dict[int, ClientHistory]:
    """`client_history` of many clients in four queries (the console's caseload)."""
    ids = [c.id for c in clients]
    rows = await checkins.checkins_of_clients(s, ids)
    answers = await checkins.answers_of_clients(s, ids)
    events = await checkins.events_of_clients(s, ids)
    sessions = await people.sessions_of_clients(s, ids)
    acks = await crisis_acknowledgements(s, cipher, [e for found in events.values() for e in found])
    return {
        c.id: build_history(
            cipher,
            c,
            practice,
            rows.get(c.id, ()),
            answers.get(c.id, ()),
            events.get(c.id, ()),
            sessions.get(c.id, ()),
            acks,
        )
        for c in clients
    }


def build_history(
    cipher: Cipher,
    client: Client,
    practice: Practice,
    rows: Sequence[Checkin | Any],
    all_answers: Sequence[Answer | Any],
    stored: Sequence[ClientEvent],
    planned: Sequence[TherapySession],
    acks: Mapping[int, Acknowledgement] | None = None,
) -> ClientHistory:
    """One client's history from their rows (check-ins by opening, answers as given): ORM
    objects, or rows with the same columns; `acks` by alert id (`crisis_acknowledgements`)."""
    acks = acks or {}
    answers: dict[int, list[Answer | Any]] = {}
    for a in all_answers:
        answers.setdefault(a.checkin_id, []).append(a)
    records = []
    for c in rows:
        got = answers.get(c.id, [])
        scores = {a.item: a.value for a in got if a.item not in _BRIEF.score_free_ids}
        by_item = {a.item: a for a in got}
        comment = by_item.get(_COMMENT)
        tension = by_item.get(_TENSION) if _TENSION else None
        talked = by_item.get(_TALKED) if _TALKED else None
        records.append(
            CheckinRecord(
                id=str(c.id),
                sent_at=c.opened_at,
                status=c.status,  # type: ignore[arg-type]
                answered_at=c.first_answer_at,
                completed_at=c.closed_at if c.status == CheckinStatus.ANSWERED else None,
                scores=scores,
                tension=None if tension is None or tension.value is None else tension.value == YES,
                talked_through=None
                if talked is None or talked.value is None
                else talked.value == YES,
                comment=cipher.decrypt(comment.text_enc) if comment and comment.text_enc else None,
                expired_at=c.closed_at if c.status in _ENDED_UNANSWERED else None,
            )
        )
    events = [
        LifeEvent(kind=e.kind, at=e.at)  # type: ignore[arg-type]
        for e in stored
        if e.kind in LIFE_KINDS
    ]
    crises = [_crisis(e.at, e.data or {}, acks) for e in stored if e.kind == CRISIS_KIND]
    sessions = [x.starts_at for x in planned]
    return ClientHistory(
        client=str(client.id),
        alias=client.alias,
        timezone=client.timezone or "UTC",
        cadence_days=cadence_days_from_spec(
            client.cadence or practice.cadence, [r.sent_at for r in records], sessions
        ),
        checkins=tuple(records),
        events=tuple(events),
        sessions=tuple(sessions),
        crises=tuple(crises),
    )


def _crisis(at: datetime, data: dict[str, Any], acks: Mapping[int, Acknowledgement]) -> CrisisEvent:
    """A stored crisis event as the digest sees it (older rows may lack category, recipient or
    alert)."""
    category, alerted, alert = data.get("category"), data.get("alerted"), data.get("alert")
    return CrisisEvent(
        at=at,
        source=str(data.get("source") or "text"),
        category=str(category) if category else None,
        alerted=str(alerted) if alerted else None,
        ack=acks.get(int(alert)) if alert else None,
    )
