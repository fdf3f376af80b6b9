"""The console's rows: one-time sign-in links, signed-in browsers, roles and supervision.

Tokens are stored as their SHA-256 only (`people.hash_token`); a link is redeemed with one
compare-and-set, so two replicas opening the same link at once let one browser in, not two.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ConsoleLink, ConsoleSession, Supervision, Therapist
from storage.people import hash_token, new_token


async def create_link(s: AsyncSession, therapist_id: int, *, now: datetime, ttl: timedelta) -> str:
    """A new sign-in link's token (only its hash is stored)."""
    token = new_token()
    s.add(
        ConsoleLink(
            token_hash=hash_token(token),
            therapist_id=therapist_id,
            expires_at=now + ttl,
            created_at=now,
        )
    )
    await s.flush()
    return token


async def redeem_link(s: AsyncSession, token: str, *, now: datetime) -> int | None:
    """The therapist a live, unused link is for, marking it used; None for any other token."""
    therapist_id = await s.scalar(
        update(ConsoleLink)
        .where(
            ConsoleLink.token_hash == hash_token(token),
            ConsoleLink.used_at.is_(None),
            ConsoleLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(ConsoleLink.therapist_id)
    )
    return therapist_id


async def open_session(s: AsyncSession, therapist_id: int, *, now: datetime) -> tuple[str, str]:
    """A signed-in browser: its cookie token and CSRF token (only the cookie's hash is kept)."""
    token, csrf = new_token(), secrets.token_urlsafe(32)
    s.add(
        ConsoleSession(
            token_hash=hash_token(token),
            therapist_id=therapist_id,
            csrf=csrf,
            created_at=now,
            seen_at=now,
        )
    )
    await s.flush()
    return token, csrf


async def live_session(
    s: AsyncSession, token: str, *, now: datetime, idle: timedelta, longest: timedelta
) -> tuple[ConsoleSession, Therapist] | None:
    """The session of this cookie and its therapist, if seen within `idle` and opened within
    `longest`; its last sight moves to `now`."""
    row = (
        await s.execute(
            select(ConsoleSession, Therapist)
            .join(Therapist, Therapist.id == ConsoleSession.therapist_id)
            .where(
                ConsoleSession.token_hash == hash_token(token),
                ConsoleSession.seen_at > now - idle,
                ConsoleSession.created_at > now - longest,
            )
        )
    ).first()
    if row is None:
        return None
    session, therapist = row
    session.seen_at = now
    return session, therapist


async def end_session(s: AsyncSession, token: str) -> None:
    await s.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token)))


async def end_sessions_of(s: AsyncSession, therapist_id: int) -> None:
    """Every browser of this person signs in again (their role changed, or their account moved),
    and a sign-in link not used yet no longer opens one."""
    await s.execute(delete(ConsoleSession).where(ConsoleSession.therapist_id == therapist_id))
    await s.execute(
        delete(ConsoleLink).where(
            ConsoleLink.therapist_id == therapist_id, ConsoleLink.used_at.is_(None)
        )
    )


async def forget_stale(s: AsyncSession, *, before: datetime) -> None:
    """Sessions idle since `before` and links that expired before it."""
    await s.execute(delete(ConsoleSession).where(ConsoleSession.seen_at < before))
    await s.execute(delete(ConsoleLink).where(ConsoleLink.expires_at < before))


async def supervised(s: AsyncSession, supervisor_id: int) -> Sequence[int]:
    """The ids of the therapists this supervisor reads."""
    return (
        await s.scalars(
            select(Supervision.therapist_id)
            .where(Supervision.supervisor_id == supervisor_id)
            .order_by(Supervision.therapist_id)
        )
    ).all()


async def set_supervised(s: AsyncSession, supervisor_id: int, therapist_ids: Iterable[int]) -> None:
    """Replace whom this supervisor reads."""
    await s.execute(delete(Supervision).where(Supervision.supervisor_id == supervisor_id))
    for therapist_id in sorted(set(therapist_ids)):
        s.add(Supervision(supervisor_id=supervisor_id, therapist_id=therapist_id))
    await s.flush()
