r"""The client lifecycle: the statuses a client and a check-in can have, and every change of a
client's status, as pure functions that say what must happen (intents, carried out by the
executor in `app.effects`). Whoever asks for a change (the client, their therapist, the schedule),
it goes through the one function here, so a pause is the same pause from either side.

    invited -> onboarding -> active <-> paused
                   |            \--------\-> stopped   (a stopped client may rejoin: onboarding)
                   \-> declined

The values are the strings stored in `client.status` and `checkin.status` (plain text columns):
these enums name them, they do not change them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flows.intents import (
    CloseCheckin,
    Intent,
    LifeEvent,
    SetStatus,
    StartCadence,
    TellClient,
    TellTherapist,
)
from flows.statuses import CheckinStatus, ClientStatus


class Actor(StrEnum):
    """Who changed a client's status (kept with the life event, except for the client's own)."""

    CLIENT = "client"
    THERAPIST = "therapist"
    SCHEDULE = "schedule"  # a pause with an end date ran out


PAUSABLE = frozenset({ClientStatus.ACTIVE, ClientStatus.PAUSED})
"""A pause of a paused client replaces its end date."""


def closed_status(*, complete: bool, answered: bool) -> CheckinStatus:
    """How a check-in that ends is counted: answered when complete, else partial if anything was
    answered, else missed (missed check-ins are the evidence of silence; partial ones of
    check-ins started and abandoned)."""
    if complete:
        return CheckinStatus.ANSWERED
    return CheckinStatus.PARTIAL if answered else CheckinStatus.MISSED


def pause(status: str, *, at: datetime, until: datetime | None, by: Actor) -> tuple[Intent, ...]:
    """Stop asking: the open check-in ends now (so the digest counts it and no nudge follows), no
    check-in until `until` (None: until resumed), and the other side is told. Nothing for a
    client who is neither active nor paused."""
    if status not in PAUSABLE:
        return ()
    told: Intent = (
        TellTherapist("paused", until=until)
        if by is Actor.CLIENT
        else TellClient("staff.paused_by_therapist")
    )
    return (
        CloseCheckin(at),
        SetStatus(ClientStatus.PAUSED, paused_until=until),
        LifeEvent("paused", at, by),
        told,
    )


def resume(status: str, *, at: datetime, by: Actor) -> tuple[Intent, ...]:
    """Check-ins are on again (the next one is planned anew). The therapist hears of it when the
    client resumed; nothing for a client who is not paused."""
    if status != ClientStatus.PAUSED:
        return ()
    on: tuple[Intent, ...] = (SetStatus(ClientStatus.ACTIVE), LifeEvent("resumed", at, by))
    return (*on, TellTherapist("resumed")) if by is Actor.CLIENT else on


def stop(status: str, *, at: datetime) -> tuple[Intent, ...]:
    """No more check-ins (the client's /stop): the open check-in ends, the therapist is told."""
    if status in (ClientStatus.STOPPED, ClientStatus.DECLINED):
        return ()
    return (
        CloseCheckin(at),
        SetStatus(ClientStatus.STOPPED),
        LifeEvent("stopped", at, Actor.CLIENT),
        TellTherapist("stopped"),
    )


def activate(
    status: str, *, at: datetime, consented: bool, has_timezone: bool, onboarded: bool
) -> tuple[Intent, ...]:
    """Onboarding is over once consent, a time zone and the end of the conversation's onboarding
    are all there: check-ins start (their cadence counts from now) and the therapist is told."""
    if status != ClientStatus.ONBOARDING or not (consented and has_timezone and onboarded):
        return ()
    return (StartCadence(at), SetStatus(ClientStatus.ACTIVE), TellTherapist("joined"))
