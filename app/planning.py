"""Turns the pure timing rules (`flows.cadence`, `flows.timing`) into database state: each client's
`next_checkin_at`, each check-in's nudge and expiry, each session's digest time."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from app.runtime import Session
from flows.cadence import AfterSession, BeforeSession, Cadence, Midway, parse_cadence
from flows.statuses import ClientStatus
from flows.timing import (
    CheckinDeadlines,
    QuietHours,
    SessionSlot,
    checkin_deadlines,
    digest_at,
    next_checkin_at,
    parse_quiet_hours,
    same_local_day,
)
from storage import checkins, people
from storage.models import Checkin, Client, Practice, Therapist, TherapySession


@lru_cache(maxsize=256)
def cadence_of(spec: str) -> Cadence:
    """A parsed cadence; cached because every client of a practice usually shares one spec."""
    return parse_cadence(spec)


@lru_cache(maxsize=256)
def quiet_of(spec: str) -> QuietHours:
    """Parsed quiet hours, cached for the same reason as `cadence_of`."""
    return parse_quiet_hours(spec)


def uses_sessions(cadence: Cadence) -> bool:
    """Whether the cadence's instants depend on the client's sessions (else they are not read)."""
    return any(isinstance(rule, AfterSession | BeforeSession | Midway) for rule in cadence.rules)


def client_quiet(client: Client | Any, practice: Practice) -> QuietHours:
    """The client's own quiet hours, else the practice's (a `Client` or a row with the column)."""
    return quiet_of(client.quiet_hours or practice.quiet_hours)


def plan_next_checkin(
    client: Client | Any,
    practice: Practice,
    *,
    now: datetime,
    sessions: Sequence[Any],
    last_opened: datetime | None,
) -> datetime | None:
    """The next check-in of an active client: a `Client`, or a row with its columns, with their
    sessions (anything with `starts_at` and `ends_at`) and their last opening. One rule for
    `replan_client` and for the heartbeat's batches, which load these for many clients at once.
    None: no time zone yet, nothing to plan."""
    if client.timezone is None:
        return None
    cadence = cadence_of(client.cadence or practice.cadence)
    slots = (
        [SessionSlot(start=x.starts_at, end=x.ends_at) for x in sessions]
        if uses_sessions(cadence)
        else []
    )
    return next_checkin_at(
        cadence,
        after=max(now, client.paused_until or now),
        tz=client.timezone,
        sessions=slots,
        anchor=client.cadence_anchor or client.joined_at or now,
        quiet=client_quiet(client, practice),
        previous=last_opened,
    )


def move_client(client: Client, tz: str) -> None:
    """Set the client's zone, keeping their `every N days` check-ins on the same local days
    (`flows.timing.same_local_day`). The caller re-plans."""
    anchor = client.cadence_anchor or client.joined_at
    if anchor is not None and client.timezone is not None and client.timezone != tz:
        with contextlib.suppress(ValueError):  # the old zone no longer exists: nothing to keep
            client.cadence_anchor = same_local_day(anchor, client.timezone, tz)
    client.timezone = tz


async def replan_client(
    s: Session, client: Client, practice: Practice, now: datetime
) -> datetime | None:
    """Recompute when the client's next check-in opens (None: nothing to plan)."""
    if client.status != ClientStatus.ACTIVE or client.timezone is None:
        client.next_checkin_at = None
        return None
    sessions = await people.sessions_of(s, client.id)
    last = await checkins.last_opened_of(s, client.id)
    client.next_checkin_at = plan_next_checkin(
        client, practice, now=now, sessions=sessions, last_opened=last
    )
    return client.next_checkin_at


async def plan_checkin_deadlines(
    s: Session, checkin: Checkin, client: Client, practice: Practice
) -> None:
    upcoming = await people.next_session(s, client.id, checkin.opened_at)
    deadlines = deadlines_for(
        checkin.opened_at,
        tz=client.timezone or "UTC",
        quiet=client_quiet(client, practice),
        next_session_start=upcoming.starts_at if upcoming else None,
        practice=practice,
    )
    checkin.expires_at, checkin.nudge_at = deadlines.expires_at, deadlines.nudge_at


def deadlines_for(
    opened_at: datetime,
    *,
    tz: str,
    quiet: QuietHours,
    next_session_start: datetime | None,
    practice: Practice,
) -> CheckinDeadlines:
    """Expiry (after the practice's delay, or at the next session) and the one nudge."""
    return checkin_deadlines(
        opened_at,
        tz=tz,
        quiet=quiet,
        next_session_start=next_session_start,
        nudge_after=timedelta(hours=practice.nudge_after_hours)
        if practice.nudge_after_hours
        else None,  # 0: `--nudge-after off`
        expire_after=timedelta(hours=practice.expire_after_hours),
    )


def plan_digest(
    session: TherapySession, therapist: Therapist, practice: Practice, now: datetime
) -> None:
    """A fresh digest time for a session whose digest has not gone out; none once it has begun."""
    if session.digest_sent_at is not None:
        return
    if session.starts_at <= now:
        session.digest_at = None
        return
    session.digest_at = digest_at(
        session.starts_at,
        lead=timedelta(minutes=practice.digest_lead_minutes),
        therapist_tz=therapist.timezone,
        therapist_quiet=parse_quiet_hours(therapist.quiet_hours or practice.quiet_hours),
    )


class SessionExists(ValueError):
    """The client already has a session (not cancelled) starting then: the same appointment
    twice would send the therapist every digest twice."""

    def __init__(self, session: TherapySession) -> None:
        super().__init__(f"session {session.id} already starts then")
        self.session = session


async def schedule_session(
    s: Session,
    client: Client,
    starts_at: datetime,
    minutes: int,
    now: datetime,
    source_uid: str | None = None,
) -> TherapySession:
    """Store a session, plan its digest and re-plan the client's check-ins around it; raises
    `SessionExists` when the client already has one starting at that instant."""
    existing = await people.live_session_at(s, client.id, starts_at)
    if existing is not None:
        raise SessionExists(existing)
    session = await people.add_session(
        s, client_id=client.id, starts_at=starts_at, minutes=minutes, now=now, source_uid=source_uid
    )
    therapist = await people.therapist_by_id(s, client.therapist_id)
    assert therapist is not None
    practice = await people.get_practice(s, now)
    plan_digest(session, therapist, practice, now)
    await replan_client(s, client, practice, now)
    return session
