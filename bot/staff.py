"""The therapist's side in Telegram: commands over their own clients only.

A client is named by the alias the therapist chose, never by full name (Telegram chats are not
end-to-end encrypted). An alias that belongs to another therapist's client gets exactly the same
answer as one that does not exist. Every read of client data is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app import effects, invites
from app.digests import enqueue_digest
from app.history import client_history
from app.planning import SessionExists, replan_client, schedule_session
from flows import lifecycle
from flows.cadence import parse_cadence
from flows.events import Command, Event, Tap, Text
from flows.i18n import t
from flows.lifecycle import Actor, ClientStatus
from flows.settings_rules import MAX_NAME
from flows.timing import parse_quiet_hours
from flows.visible import visible_text
from flows.when import parse_when
from insights.signals import detect, rank_and_merge
from insights.thresholds import Thresholds
from storage import repo
from storage.models import Client, Therapist

if TYPE_CHECKING:
    from app.runtime import Runtime
    from bot.dispatch import After

MAX_PAUSE_DAYS = 365


class Reply(Exception):
    """Ends a command early with one message for the therapist; `about` names the client it
    describes, if any (see `About`)."""

    def __init__(self, key: str, *, about: int | None = None, **params: object) -> None:
        super().__init__(key)
        self.key, self.params, self.about = key, params, about


@dataclass(frozen=True)
class About:
    """A reply that quotes or describes one client: its outbox row is erased with the client,
    sent or not."""

    text: str
    client_id: int


async def say(
    s: AsyncSession,
    rt: Runtime,
    therapist: Therapist,
    text: str,
    now: datetime,
    after: After,
    about: int | None = None,
) -> None:
    assert therapist.chat_id is not None
    await repo.enqueue(
        s,
        rt.cipher,
        chat_id=therapist.chat_id,
        kind="text",
        payload={"text": text},
        now=now,
        therapist_id=therapist.id,
        about_client_id=about,
    )
    after.enqueued = True


async def welcome(
    s: AsyncSession, rt: Runtime, therapist: Therapist, now: datetime, after: After
) -> None:
    await repo.audit(s, actor=f"therapist:{therapist.id}", action="joined", now=now)
    await say(s, rt, therapist, t(therapist.language, "therapist.welcome"), now, after)


async def therapist_event(
    s: AsyncSession, rt: Runtime, therapist: Therapist, event: Event, now: datetime, after: After
) -> None:
    lang = therapist.language
    if isinstance(event, Tap):
        after.callback_text = t(lang, "chat.button_inactive")
        return
    if not isinstance(event, Command):
        key = "staff.use_commands" if isinstance(event, Text) else "chat.media"
        await say(s, rt, therapist, t(lang, key), now, after)
        return
    handler = COMMANDS.get(event.name)
    if handler is None:
        await say(s, rt, therapist, t(lang, "help.therapist"), now, after)
        return
    try:
        answer = await handler(s, rt, therapist, event.args.strip(), now, after)
    except Reply as reply:
        answer = t(lang, reply.key, **reply.params)
        if reply.about is not None:
            answer = About(answer, reply.about)
    text, about = (answer.text, answer.client_id) if isinstance(answer, About) else (answer, None)
    if text:
        await say(s, rt, therapist, text, now, after, about)


async def own_client(s: AsyncSession, therapist: Therapist, args: str) -> tuple[Client, str]:
    """The therapist's client named first in `args`, and the rest of `args`."""
    alias, _, rest = args.partition(" ")
    if not alias:
        raise Reply("staff.needs_alias")
    client = await repo.client_by_alias(s, therapist.id, alias)
    if client is None:
        raise Reply("staff.unknown_alias", alias=alias[:40])
    return client, rest.strip()


def local(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%a %d %b %Y %H:%M")


async def cmd_help(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    return t(therapist.language, "help.therapist")


async def cmd_clients(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    lang = therapist.language
    clients = await repo.list_clients(s, therapist.id)
    if not clients:
        return t(lang, "staff.no_clients")
    practice = await repo.get_practice(s, now)
    lines = [t(lang, "staff.clients_title")]
    for client in clients:
        history = await client_history(s, rt.cipher, client, practice)
        last = history.checkins[-1] if history.checkins else None
        signals = rank_and_merge(detect(history, now, Thresholds()))
        lines.append(
            t(
                lang,
                "staff.client_line",
                alias=client.alias,
                status=t(lang, f"status.{client.status}"),
                last=(
                    f"{local(last.sent_at, therapist.timezone)[:10]} ({last.status})"
                    if last
                    else "-"
                ),
                signals=", ".join(x.code for x in signals[:3]) or t(lang, "staff.no_signals"),
            )
        )
    await repo.audit(s, actor=f"therapist:{therapist.id}", action="list_clients", now=now)
    return "\n".join(lines)


async def cmd_digest(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    client, _ = await own_client(s, therapist, args)
    upcoming = await repo.next_session(s, client.id, now)
    await enqueue_digest(
        s,
        rt,
        client,
        therapist,
        now,
        upcoming.starts_at if upcoming else None,
        f"therapist:{therapist.id}",
    )
    after.enqueued = True
    return ""


async def cmd_session(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    client, when_text = await own_client(s, therapist, args)
    try:
        when = parse_when(when_text, now=now, tz=therapist.timezone)
    except ValueError as exc:
        raise Reply("staff.session_bad_time", about=client.id, reason=str(exc)) from None
    if when <= now:
        raise Reply("staff.session_in_past", about=client.id, when=local(when, therapist.timezone))
    try:
        session = await schedule_session(s, client, when, 50, now)
    except SessionExists:
        raise Reply(
            "staff.session_exists",
            about=client.id,
            alias=client.alias,
            when=local(when, therapist.timezone),
            zone=therapist.timezone,
        ) from None
    digest = local(session.digest_at, therapist.timezone) if session.digest_at else "-"
    text = t(
        therapist.language,
        "staff.session_added",
        alias=client.alias,
        when=local(when, therapist.timezone),
        zone=therapist.timezone,
        digest=digest,
    )
    return About(text, client.id)


async def cmd_invite(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    """`/invite <name>` adds a client and gives their link; `/invite <alias>` of one of the
    therapist's clients who has not joined gives a new link (the earlier one stops working)."""
    name = " ".join(visible_text(args).split())[:MAX_NAME]  # an invisible-only name is none
    if not name:
        raise Reply("staff.invite_usage")
    existing = await repo.client_by_alias(s, therapist.id, name)
    if existing is not None:
        return await renew_invite(s, rt, therapist, existing, now)
    client = await repo.add_client(s, rt.cipher, therapist_id=therapist.id, name=name, now=now)
    token = await repo.create_invite(s, now=now, client_id=client.id)
    await repo.audit(
        s, actor=f"therapist:{therapist.id}", action="invite", now=now, client_id=client.id
    )
    return with_link(rt, therapist, "staff.invite_created", client, token)


def with_link(rt: Runtime, therapist: Therapist, key: str, client: Client, token: str) -> About:
    """A reply to the therapist that carries a client's invite link and how long it lasts."""
    text = t(
        therapist.language,
        key,
        alias=client.alias,
        link=rt.invite_link(token),
        days=repo.INVITE_TTL.days,
    )
    return About(text, client.id)


async def renew_invite(
    s: AsyncSession, rt: Runtime, therapist: Therapist, client: Client, now: datetime
) -> About:
    if invites.client_has_joined(client):
        raise Reply("staff.invite_joined", about=client.id, alias=client.alias)
    token = await repo.create_invite(s, now=now, client_id=client.id)
    await repo.audit(
        s, actor=f"therapist:{therapist.id}", action="invite", now=now, client_id=client.id
    )
    return with_link(rt, therapist, "staff.invite_renewed", client, token)


async def cmd_move(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> About:
    """`/move <client>`: the client now uses another Telegram account (`invites.move_client`)."""
    client, _ = await own_client(s, therapist, args)
    if client.telegram_user_id is None:
        raise Reply("staff.move_not_joined", about=client.id, alias=client.alias)
    token, _ = await invites.move_client(s, client, actor=f"therapist:{therapist.id}", now=now)
    return with_link(rt, therapist, "staff.moved", client, token)


async def cmd_pause(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    """`/pause <client> [days]`: the same pause as the client's own (`flows.lifecycle.pause`)."""
    client, rest = await own_client(s, therapist, args)
    if client.status not in lifecycle.PAUSABLE:
        raise Reply(
            "staff.not_active",
            about=client.id,
            alias=client.alias,
            status=t(therapist.language, f"status.{client.status}"),
        )
    until = None
    if rest:
        if not rest.isdigit() or not 1 <= int(rest) <= MAX_PAUSE_DAYS:
            raise Reply("staff.pause_usage", about=client.id, max=MAX_PAUSE_DAYS)
        until = now + timedelta(days=int(rest))
    paused = lifecycle.pause(client.status, at=now, until=until, by=Actor.THERAPIST)
    await effects.change(s, rt, client, paused, now, after)
    if until is None:
        return About(t(therapist.language, "staff.paused_open", alias=client.alias), client.id)
    text = t(
        therapist.language,
        "staff.paused",
        alias=client.alias,
        date=local(until, therapist.timezone)[:15],
    )
    return About(text, client.id)


async def cmd_resume(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    client, _ = await own_client(s, therapist, args)
    if client.status != ClientStatus.PAUSED:
        raise Reply("staff.not_paused", about=client.id, alias=client.alias)
    resumed = lifecycle.resume(client.status, at=now, by=Actor.THERAPIST)
    await effects.change(s, rt, client, resumed, now, after)
    return About(t(therapist.language, "staff.resumed", alias=client.alias), client.id)


async def cmd_cadence(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    client, spec = await own_client(s, therapist, args)
    practice = await repo.get_practice(s, now)
    if not spec:
        raise Reply(
            "staff.cadence_show",
            about=client.id,
            alias=client.alias,
            cadence=client.cadence or practice.cadence,
        )
    if spec.lower() == "default":
        client.cadence = None
    else:
        try:
            client.cadence = str(parse_cadence(spec))
        except ValueError as exc:
            raise Reply("staff.cadence_bad", about=client.id, reason=str(exc)) from None
    await replan_client(s, client, practice, now)
    upcoming = client.next_checkin_at
    text = t(
        therapist.language,
        "staff.cadence_set",
        alias=client.alias,
        cadence=client.cadence or practice.cadence,
        next=local(upcoming, client.timezone or "UTC") if upcoming else "-",
    )
    return About(text, client.id)


async def cmd_timezone(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    from app.admin import AdminError, check_timezone

    if not args:
        return t(therapist.language, "staff.timezone_show", zone=therapist.timezone)
    try:
        therapist.timezone = check_timezone(args)
    except AdminError:
        raise Reply("staff.timezone_bad", zone=args[:60]) from None
    return t(
        therapist.language,
        "staff.timezone_set",
        zone=therapist.timezone,
        time=local(now, therapist.timezone)[-5:],
    )


async def cmd_quiet(
    s: AsyncSession, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    practice = await repo.get_practice(s, now)
    if not args:
        return t(
            therapist.language,
            "staff.quiet_show",
            quiet=therapist.quiet_hours or practice.quiet_hours,
        )
    try:
        parse_quiet_hours(args)
    except ValueError as exc:
        raise Reply("staff.quiet_bad", reason=str(exc)) from None
    therapist.quiet_hours = args.strip()
    return t(therapist.language, "staff.quiet_set", quiet=therapist.quiet_hours)


COMMANDS = {
    "help": cmd_help,
    "start": cmd_help,
    "clients": cmd_clients,
    "digest": cmd_digest,
    "session": cmd_session,
    "invite": cmd_invite,
    "move": cmd_move,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "cadence": cmd_cadence,
    "timezone": cmd_timezone,
    "quiet": cmd_quiet,
}
