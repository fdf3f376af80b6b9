"""Turns the pure timing rules (`flows.cadence`, `flows.timing`) into database state: each client's
`next_checkin_at`, each check-in's nudge and expiry, each session's digest time."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.cadence import parse_cadence
from flows.timing import (
    QuietHours,
    SessionSlot,
    digest_at,
    expires_at,
    next_checkin_at,
    nudge_at,
    parse_quiet_hours,
)
from storage import repo
from storage.models import Checkin, Client, Practice, Therapist, TherapySession

ACTIVE = "active"


def client_quiet(client: Client, practice: Practice) -> QuietHours:
    return parse_quiet_hours(client.quiet_hours or practice.quiet_hours)


async def replan_client(
    s: AsyncSession, client: Client, practice: Practice, now: datetime
) -> datetime | None:
    """Recompute when the client's next check-in opens (None: nothing to plan)."""
    if client.status != ACTIVE or client.timezone is None:
        client.next_checkin_at = None
        return None
    cadence = parse_cadence(client.cadence or practice.cadence)
    sessions = [
        SessionSlot(start=x.starts_at, end=x.ends_at) for x in await repo.sessions_of(s, client.id)
    ]
    after = max(now, client.paused_until or now)
    last = await s.scalar(select(func.max(Checkin.opened_at)).where(Checkin.client_id == client.id))
    client.next_checkin_at = next_checkin_at(
        cadence,
        after=after,
        tz=client.timezone,
        sessions=sessions,
        anchor=client.cadence_anchor or client.joined_at or now,
        quiet=client_quiet(client, practice),
        previous=last,
    )
    return client.next_checkin_at


async def plan_checkin_deadlines(
    s: AsyncSession, checkin: Checkin, client: Client, practice: Practice
) -> None:
    upcoming = await repo.next_session(s, client.id, checkin.opened_at)
    checkin.expires_at = expires_at(
        checkin.opened_at,
        upcoming.starts_at if upcoming else None,
        after=timedelta(hours=practice.expire_after_hours),
    )
    checkin.nudge_at = nudge_at(
        checkin.opened_at,
        client.timezone or "UTC",
        client_quiet(client, practice),
        after=timedelta(hours=practice.nudge_after_hours),
        expires=checkin.expires_at,
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


async def schedule_session(
    s: AsyncSession,
    client: Client,
    starts_at: datetime,
    minutes: int,
    now: datetime,
    source_uid: str | None = None,
) -> TherapySession:
    """Store a session, plan its digest and re-plan the client's check-ins around it."""
    session = await repo.add_session(
        s, client_id=client.id, starts_at=starts_at, minutes=minutes, now=now, source_uid=source_uid
    )
    therapist = await s.get(Therapist, client.therapist_id)
    assert therapist is not None
    practice = await repo.get_practice(s, now)
    plan_digest(session, therapist, practice, now)
    await replan_client(s, client, practice, now)
    return session
