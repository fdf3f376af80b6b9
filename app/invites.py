"""Who may hold a link: the refusals a person hears when opening one, and the admin's side of
binding (no link for someone who has joined; moving them to another account is explicit).

The binding itself is decided in `storage.people.redeem_invite`; this module words its answers
and carries out a move, so that the CLI and the therapists' commands share one rule.
"""

from __future__ import annotations

from datetime import datetime

from app.runtime import Session
from flows.statuses import ClientStatus
from storage import audit, checkins, console, people
from storage.models import Client, Therapist

# What someone opening a refused link is told, by `people.Redemption.reason`.
REFUSALS = {
    "invalid": "chat.invite_invalid",
    "expired": "chat.invite_invalid",  # revoked links read as expired
    "used": "chat.invite_used",
    "taken": "chat.invite_taken",
    "already_joined": "chat.already_joined",
    "already_bound": "chat.invite_other_account",
    "therapist_account": "chat.invite_therapist_account",
    "client_account": "chat.invite_client_account",
}


def deep_link(bot_username: str, token: str) -> str:
    """The link that opens the bot with the invite's token (`/start <token>`)."""
    return f"https://t.me/{bot_username}?start={token}"


def refusal_key(reason: str) -> str:
    return REFUSALS.get(reason, "chat.invite_invalid")


def client_has_joined(client: Client) -> bool:
    """A bound client gets no new link: one would rebind them. A client who stopped may get one,
    which only their own account can use (to start again)."""
    return client.telegram_user_id is not None and client.status != ClientStatus.STOPPED


def therapist_has_joined(therapist: Therapist) -> bool:
    return therapist.telegram_user_id is not None


async def move_client(s: Session, client: Client, *, actor: str, now: datetime) -> tuple[str, int]:
    """End the client's binding to their Telegram account and issue a link for a new one.
    Returns the token and how many messages for the old chat were cancelled."""
    cancelled = await people.unbind_client(s, client, now=now)
    await checkins.add_event(s, client_id=client.id, kind="moved", at=now, data={"by": actor})
    await audit.audit(s, actor=actor, action="client_moved", now=now, client_id=client.id)
    token = await people.create_invite(s, now=now, client_id=client.id)
    return token, cancelled


async def move_therapist(
    s: Session, therapist: Therapist, *, actor: str, now: datetime
) -> tuple[str, int]:
    """`move_client` for a therapist: their digests and alerts wait for the new account."""
    cancelled = await people.unbind_therapist(s, therapist, now=now)
    # Whoever holds the old account (a lost phone) holds its console sessions and `/web` links.
    await console.end_sessions_of(s, therapist.id)
    # The audit trail takes no detail (see `audit.audit`): which therapist goes in the action.
    await audit.audit(s, actor=actor, action=f"therapist_moved:{therapist.id}", now=now)
    token = await people.create_invite(s, now=now, therapist_id=therapist.id)
    return token, cancelled
