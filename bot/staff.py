"""The therapist's side in Telegram: their commands parsed and answered here, carried out by
`app.caseload` over their own clients only.

A client is named by the alias the therapist chose, never by full name (Telegram chats are not
end-to-end encrypted). An alias that belongs to another therapist's client gets exactly the same
answer as one that does not exist. Every read of client data is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app import alerts, caseload, console
from app.admin import AdminError
from app.caseload import AlreadyJoined, Invited
from app.conversation import After
from app.planning import SessionExists, schedule_session
from app.runtime import Runtime, Session
from flows.cadence import parse_cadence
from flows.events import Command, Event, Tap, Text
from flows.i18n import t
from flows.lifecycle import PAUSABLE
from flows.parsing import is_number
from flows.settings_rules import MAX_NAME
from flows.statuses import ClientStatus
from flows.visible import visible_text
from flows.when import parse_when
from storage.models import Client, Therapist

MAX_PAUSE_DAYS = 365
MAX_LISTED_ALERTS = 20
"""`/alerts` shows at most this many (the oldest) as messages of their own; the title counts
all of them, and acknowledging some brings the rest."""


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


async def therapist_event(
    s: Session, rt: Runtime, therapist: Therapist, event: Event, now: datetime, after: After
) -> None:
    """A therapist's event (`app.conversation.StaffCommands`): a command, or a hint."""
    lang = therapist.language
    if isinstance(event, Tap):
        after.callback_text = await on_tap(s, rt, therapist, event, now)
        return
    if not isinstance(event, Command):
        key = "staff.use_commands" if isinstance(event, Text) else "chat.media"
        await caseload.reply(s, rt, therapist, t(lang, key), now, after)
        return
    handler = COMMANDS.get(event.name)
    if handler is None:
        await caseload.reply(s, rt, therapist, t(lang, "help.therapist"), now, after)
        return
    try:
        answer = await handler(s, rt, therapist, event.args.strip(), now, after)
    except Reply as reply:
        answer = t(lang, reply.key, **reply.params)
        if reply.about is not None:
            answer = About(answer, reply.about)
    text, about = (answer.text, answer.client_id) if isinstance(answer, About) else (answer, None)
    if text:
        await caseload.reply(s, rt, therapist, text, now, after, about)


async def on_tap(s: Session, rt: Runtime, therapist: Therapist, tap: Tap, now: datetime) -> str:
    """A button under an alert: the acknowledgement (`app.alerts.acknowledge`); anything else,
    or a second tap, is answered politely and changes nothing."""
    lang = therapist.language
    parsed = alerts.parse_ack_data(tap.data)
    if parsed is None:
        return t(lang, "chat.button_inactive")
    alert_id, choice = parsed
    assert therapist.chat_id is not None
    done = await alerts.acknowledge(
        s,
        rt,
        alert_id=alert_id,
        therapist=therapist,
        choice=choice,
        now=now,
        shown_in=(therapist.chat_id, tap.message_id),
    )
    if done.result == alerts.Ack.DONE:
        return t(lang, "alert.ack_done")
    if done.result == alerts.Ack.ALREADY and done.alert is not None:
        return alerts.acknowledged_line(done.alert, lang, therapist)
    return t(lang, "alert.ack_refused")


async def cmd_alerts(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    """`/alerts`: each open alert shown to the therapist, one message each with its buttons."""
    lang = therapist.language
    open_alerts = await alerts.open_for_therapist(s, rt, therapist)
    if not open_alerts:
        return t(lang, "alert.none_open")
    title = t(lang, "alert.open_title", count=len(open_alerts))
    await caseload.reply(s, rt, therapist, title, now, after)
    for view in open_alerts[:MAX_LISTED_ALERTS]:
        line = t(
            lang,
            "alert.open_line",
            client=view.alias,
            kind=alerts.kind_text(view, lang),
            at=view.raised_at.astimezone(ZoneInfo(therapist.timezone or "UTC")),
        )
        await alerts.list_item(s, rt, view.id, therapist, line, now)
    after.enqueued = True
    return ""


async def own_client(s: Session, therapist: Therapist, args: str) -> tuple[Client, str]:
    """The therapist's client named first in `args`, and the rest of `args`."""
    alias, _, rest = args.partition(" ")
    if not alias:
        raise Reply("staff.needs_alias")
    client = await caseload.client_named(s, therapist, alias)
    if client is None:
        raise Reply("staff.unknown_alias", alias=alias[:40])
    return client, rest.strip()


def local(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%a %d %b %Y %H:%M")


async def cmd_help(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    return t(therapist.language, "help.therapist")


async def cmd_clients(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    lang = therapist.language
    entries = await caseload.caseload(s, rt, therapist, now)
    if not entries:
        return t(lang, "staff.no_clients")
    lines = [t(lang, "staff.clients_title")]
    for entry in entries:
        last = (
            f"{local(entry.last_sent_at, therapist.timezone)[:10]} "
            f"({t(lang, f'mydata.checkin_{entry.last_status}')})"
            if entry.last_sent_at is not None
            else "-"
        )
        lines.append(
            t(
                lang,
                "staff.client_line",
                alias=entry.alias,
                status=t(lang, f"status.{entry.status}"),
                last=last,
                signals=", ".join(entry.signal_names[:3]) or t(lang, "staff.no_signals"),
            )
        )
    return "\n".join(lines)


async def cmd_digest(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    client, _ = await own_client(s, therapist, args)
    await caseload.send_digest(s, rt, therapist, client, now)
    after.enqueued = True
    return ""


async def cmd_session(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
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
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    """`/invite <name>` adds a client and gives their link; `/invite <alias>` of one of the
    therapist's clients who has not joined gives a new link (the earlier one stops working)."""
    name = " ".join(visible_text(args).split())[:MAX_NAME]  # an invisible-only name is none
    if not name:
        raise Reply("staff.invite_usage")
    try:
        invited = await caseload.invite(s, rt, therapist, name, now)
    except AlreadyJoined as joined:
        raise Reply(
            "staff.invite_joined", about=joined.client.id, alias=joined.client.alias
        ) from None
    key = "staff.invite_renewed" if invited.renewed else "staff.invite_created"
    return with_link(therapist, key, invited)


def with_link(therapist: Therapist, key: str, invited: Invited) -> About:
    """A reply to the therapist that carries a client's invite link and how long it lasts."""
    client = invited.client
    text = t(therapist.language, key, alias=client.alias, link=invited.link, days=invited.days)
    return About(text, client.id)


async def cmd_move(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> About:
    """`/move <client>`: the client now uses another Telegram account (`caseload.move`)."""
    client, _ = await own_client(s, therapist, args)
    if client.telegram_user_id is None:
        raise Reply("staff.move_not_joined", about=client.id, alias=client.alias)
    return with_link(therapist, "staff.moved", await caseload.move(s, rt, therapist, client, now))


async def cmd_pause(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    """`/pause <client> [days]`: the same pause as the client's own (`flows.lifecycle.pause`)."""
    client, rest = await own_client(s, therapist, args)
    if client.status not in PAUSABLE:
        raise Reply(
            "staff.not_active",
            about=client.id,
            alias=client.alias,
            status=t(therapist.language, f"status.{client.status}"),
        )
    until = None
    if rest:
        if not is_number(rest) or not 1 <= int(rest) <= MAX_PAUSE_DAYS:
            raise Reply("staff.pause_usage", about=client.id, max=MAX_PAUSE_DAYS)
        until = now + timedelta(days=int(rest))
    await caseload.pause(s, rt, client, until, now, after)
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
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    client, _ = await own_client(s, therapist, args)
    if client.status != ClientStatus.PAUSED:
        raise Reply("staff.not_paused", about=client.id, alias=client.alias)
    await caseload.resume(s, rt, client, now, after)
    return About(t(therapist.language, "staff.resumed", alias=client.alias), client.id)


async def cmd_cadence(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    client, spec = await own_client(s, therapist, args)
    if not spec:
        raise Reply(
            "staff.cadence_show",
            about=client.id,
            alias=client.alias,
            cadence=await caseload.cadence_of(s, client, now),
        )
    cadence = None
    if spec.lower() != "default":
        try:
            cadence = str(parse_cadence(spec))
        except ValueError as exc:
            raise Reply("staff.cadence_bad", about=client.id, reason=str(exc)) from None
    in_force, upcoming = await caseload.set_cadence(s, client, cadence, now)
    text = t(
        therapist.language,
        "staff.cadence_set",
        alias=client.alias,
        cadence=in_force,
        next=local(upcoming, client.timezone or "UTC") if upcoming else "-",
    )
    return About(text, client.id)


async def cmd_timezone(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    if not args:
        return t(therapist.language, "staff.timezone_show", zone=therapist.timezone)
    try:
        zone = caseload.set_timezone(therapist, args)
    except AdminError:
        raise Reply("staff.timezone_bad", zone=args[:60]) from None
    return t(therapist.language, "staff.timezone_set", zone=zone, time=local(now, zone)[-5:])


async def cmd_quiet(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    if not args:
        quiet = await caseload.quiet_hours_of(s, therapist, now)
        return t(therapist.language, "staff.quiet_show", quiet=quiet)
    try:
        quiet = caseload.set_quiet_hours(therapist, args)
    except ValueError as exc:
        raise Reply("staff.quiet_bad", reason=str(exc)) from None
    return t(therapist.language, "staff.quiet_set", quiet=quiet)


async def cmd_web(
    s: Session, rt: Runtime, therapist: Therapist, args: str, now: datetime, after: After
) -> str | About:
    """`/web`: a one-time sign-in link to the practice console (`app.console`)."""
    token = await console.link_token(s, therapist, now)
    link = f"{rt.settings.console_url}/signin/{token}"
    minutes = int(console.LINK_TTL.total_seconds() // 60)
    return t(therapist.language, "staff.web_link", link=link, minutes=minutes)


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
    "alerts": cmd_alerts,
    "web": cmd_web,
}
