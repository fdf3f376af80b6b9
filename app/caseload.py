"""A therapist's caseload: what their commands do to data, for any front end (the staff commands
in Telegram, `bot.staff`; the practice console). A therapist only ever reaches their own clients,
and every read of client data is written to the audit log. Invite links name the practice's bot
as stored when it started (`app.invites.deep_link`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from app import effects, invites
from app.admin import check_timezone
from app.digests import enqueue_digest
from app.history import client_history
from app.planning import replan_client
from app.runtime import Runtime, Session
from flows import lifecycle
from flows.i18n import t
from flows.lifecycle import Actor
from flows.timing import parse_quiet_hours
from insights.digest import split_message
from insights.signals import detect, rank_and_merge
from insights.texts import signal_name
from insights.thresholds import Thresholds
from storage import audit, outbox, people
from storage.models import Client, Therapist

if TYPE_CHECKING:
    from app.conversation import After


@dataclass(frozen=True)
class CaseloadEntry:
    """One client as the therapist's list shows them."""

    client_id: int
    alias: str
    status: str
    last_sent_at: datetime | None  # the latest check-in, if any
    last_status: str | None
    signals: tuple[str, ...]  # signal codes, most serious first
    signal_names: tuple[str, ...] = ()  # the same in plain words, in the therapist's language


@dataclass(frozen=True)
class Invited:
    """A client's new invite link, and how many days it lasts."""

    client: Client
    link: str
    days: int
    renewed: bool = False  # the client existed already (an earlier link stops working)


class AlreadyJoined(Exception):
    """The client has joined: a new link would rebind them (a move is explicit)."""

    def __init__(self, client: Client) -> None:
        super().__init__(f"client {client.id} has joined")
        self.client = client


def actor(therapist: Therapist) -> str:
    return f"therapist:{therapist.id}"


async def reply(
    s: Session,
    rt: Runtime,
    therapist: Therapist,
    text: str,
    now: datetime,
    after: After,
    about: int | None = None,
) -> None:
    """Queue a message to the therapist; `about`: the client it quotes or describes (the row
    is erased with them, sent or not). A text longer than Telegram takes (`/clients` of a large
    caseload) goes as several messages, split between lines, instead of being refused whole."""
    assert therapist.chat_id is not None
    for chunk in split_message(text.split("\n")) or [text]:
        await outbox.enqueue(
            s,
            rt.cipher,
            chat_id=therapist.chat_id,
            kind="text",
            payload={"text": chunk},
            now=now,
            therapist_id=therapist.id,
            about_client_id=about,
        )
    after.enqueued = True


async def welcome(
    s: Session, rt: Runtime, therapist: Therapist, now: datetime, after: After
) -> None:
    """A therapist has just bound their account."""
    await audit.audit(s, actor=actor(therapist), action="joined", now=now)
    await reply(s, rt, therapist, t(therapist.language, "therapist.welcome"), now, after)


async def client_named(s: Session, therapist: Therapist, alias: str) -> Client | None:
    """The therapist's own client of that alias (any case); None for another's, as for none."""
    return await people.client_by_alias(s, therapist.id, alias)


async def caseload(
    s: Session, rt: Runtime, therapist: Therapist, now: datetime
) -> list[CaseloadEntry]:
    """Every client of the therapist with their latest check-in and current signals (audited)."""
    clients = await people.list_clients(s, therapist.id)
    if not clients:
        return []
    practice = await people.get_practice(s, now)
    entries = []
    for client in clients:
        history = await client_history(s, rt.cipher, client, practice)
        last = history.checkins[-1] if history.checkins else None
        signals = rank_and_merge(detect(history, now, Thresholds()))
        entries.append(
            CaseloadEntry(
                client_id=client.id,
                alias=client.alias,
                status=client.status,
                last_sent_at=last.sent_at if last else None,
                last_status=last.status if last else None,
                signals=tuple(x.code for x in signals),
                signal_names=tuple(signal_name(x.code, therapist.language) for x in signals),
            )
        )
    await audit.audit(s, actor=actor(therapist), action="list_clients", now=now)
    return entries


async def send_digest(
    s: Session, rt: Runtime, therapist: Therapist, client: Client, now: datetime
) -> None:
    """The client's digest to the therapist now, for their next session if one is planned."""
    upcoming = await people.next_session(s, client.id, now)
    await enqueue_digest(
        s,
        rt,
        client,
        therapist,
        now,
        upcoming.starts_at if upcoming else None,
        actor(therapist),
    )


async def invite(
    s: Session, rt: Runtime, therapist: Therapist, name: str, now: datetime
) -> Invited:
    """A link for the therapist's client of that alias who has not joined (`AlreadyJoined` if
    they have), or else a new client of that name and their first link."""
    existing = await client_named(s, therapist, name)
    if existing is not None:
        return await renew_invite(s, rt, therapist, existing, now)
    client = await people.add_client(s, rt.cipher, therapist_id=therapist.id, name=name, now=now)
    return await _invited(s, therapist, client, now, renewed=False)


async def renew_invite(
    s: Session,
    rt: Runtime,
    therapist: Therapist,
    client: Client,
    now: datetime,
    by: str | None = None,
) -> Invited:
    """A new link for the therapist's client; `by`: who asked, for the audit log (an admin in
    the console), if not the therapist."""
    if invites.client_has_joined(client):
        raise AlreadyJoined(client)
    return await _invited(s, therapist, client, now, renewed=True, by=by)


async def _invited(
    s: Session,
    therapist: Therapist,
    client: Client,
    now: datetime,
    *,
    renewed: bool,
    by: str | None = None,
) -> Invited:
    token = await people.create_invite(s, now=now, client_id=client.id)
    who = by or actor(therapist)
    await audit.audit(s, actor=who, action="invite", now=now, client_id=client.id)
    return Invited(client, await _link(s, token, now), people.INVITE_TTL.days, renewed)


async def move(
    s: Session, rt: Runtime, therapist: Therapist, client: Client, now: datetime
) -> Invited:
    """The client now uses another Telegram account (`invites.move_client`): their new link."""
    token, _ = await invites.move_client(s, client, actor=actor(therapist), now=now)
    return Invited(client, await _link(s, token, now), people.INVITE_TTL.days, renewed=True)


async def _link(s: Session, token: str, now: datetime) -> str:
    username = (await people.get_practice(s, now)).bot_username
    if username is None:
        raise RuntimeError("the bot's username is not known before it starts")
    return invites.deep_link(username, token)


async def cadence_of(s: Session, client: Client, now: datetime) -> str:
    """The client's cadence: their own, else the practice's."""
    return client.cadence or (await people.get_practice(s, now)).cadence


async def set_cadence(
    s: Session, client: Client, cadence: str | None, now: datetime
) -> tuple[str, datetime | None]:
    """Give the client their own cadence (None: the practice's again) and plan their next
    check-in by it; the cadence now in force and that check-in."""
    practice = await people.get_practice(s, now)
    client.cadence = cadence
    await replan_client(s, client, practice, now)
    return client.cadence or practice.cadence, client.next_checkin_at


def set_timezone(therapist: Therapist, zone: str) -> str:
    """The therapist's zone; `app.admin.AdminError` if there is no such zone."""
    therapist.timezone = check_timezone(zone)
    return therapist.timezone


async def quiet_hours_of(s: Session, therapist: Therapist, now: datetime) -> str:
    return therapist.quiet_hours or (await people.get_practice(s, now)).quiet_hours


def set_quiet_hours(therapist: Therapist, spec: str) -> str:
    """The therapist's own quiet hours; ValueError (saying why) if `spec` does not read."""
    spec = spec.strip()
    parse_quiet_hours(spec)
    therapist.quiet_hours = spec
    return spec


async def pause(
    s: Session, rt: Runtime, client: Client, until: datetime | None, now: datetime, after: After
) -> None:
    """The therapist pauses a client: the same pause as the client's own, told to the client."""
    paused = lifecycle.pause(client.status, at=now, until=until, by=Actor.THERAPIST)
    await effects.change(s, rt, client, paused, now, after)


async def resume(s: Session, rt: Runtime, client: Client, now: datetime, after: After) -> None:
    """The therapist resumes a paused client (`flows.lifecycle.resume`)."""
    await effects.change(
        s, rt, client, lifecycle.resume(client.status, at=now, by=Actor.THERAPIST), now, after
    )
