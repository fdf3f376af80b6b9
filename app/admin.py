"""Practice administration, shared by the `rapport` CLI and the therapists' Telegram commands.

Each function runs one transaction and returns plain data (dicts) that both front ends print.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app import erasure, invites
from app.planning import (
    SessionExists,
    move_client,
    plan_digest,
    replan_client,
    schedule_session,
)
from app.runtime import Runtime, Session
from flows import settings_rules as rules
from flows.cadence import parse_cadence
from flows.instruments import available_instruments, load_instrument, stored_name
from flows.measures import format_measures, parse_measures
from flows.timing import parse_quiet_hours
from storage import audit, keyring, people
from storage.models import Client, Practice, Therapist, TherapySession

LANGUAGES = ("en", "es", "ru")

_Person = TypeVar("_Person", Client, Therapist)
_Moved = TypeVar("_Moved", Client, Therapist, contravariant=True)


class _Move(Protocol[_Moved]):
    """`invites.move_client` or `invites.move_therapist`: the new token, messages cancelled."""

    async def __call__(
        self, s: Session, person: _Moved, /, *, actor: str, now: datetime
    ) -> tuple[str, int]: ...


class AdminError(ValueError):
    """A request an operator can fix; the message says how."""


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        hint = "use an IANA name such as Europe/Berlin"
        raise AdminError(f"unknown time zone {name!r} ({hint})") from None
    return name


def check_language(code: str) -> str:
    if code not in LANGUAGES:
        raise AdminError(f"unsupported language {code!r} (choose from {', '.join(LANGUAGES)})")
    return code


def check_instrument(name: str) -> str:
    """An instrument that loads: shipped by name, or a practice's own YAML file by path."""
    try:
        load_instrument(name)
    except (OSError, ValueError) as exc:
        shipped = ", ".join(available_instruments())
        raise AdminError(f"instrument: {exc} (shipped: {shipped})") from None
    return stored_name(name)


def check_outcomes(specs: str | list[str] | tuple[str, ...]) -> str:
    """Outcome measures and their intervals (`flows.measures`), in their stored spelling."""
    try:
        return format_measures(parse_measures(specs))
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def check_cadence(spec: str) -> str:
    try:
        return str(parse_cadence(spec))
    except ValueError as exc:
        raise AdminError(f"cadence: {exc}") from None


async def client_of(s: Session, client_id: int) -> Client:
    """The client with this id, or the operator's one-line error."""
    client = await people.client_by_id(s, client_id)
    if client is None:
        raise AdminError(f"no client with id {client_id}")
    return client


async def therapist_of(s: Session, therapist_id: int) -> Therapist:
    """The therapist with this id, or the operator's one-line error."""
    therapist = await people.therapist_by_id(s, therapist_id)
    if therapist is None:
        raise AdminError(f"no therapist with id {therapist_id}")
    return therapist


def check_quiet_hours(text: str) -> str:
    try:
        parse_quiet_hours(text)
    except ValueError as exc:
        raise AdminError(f"quiet hours: {exc}") from None
    return text


def no_username(who: str, ident: int) -> str:
    """Why there is no invite link, and what to do (the README's "Going live", step 5)."""
    return (
        "no invite link: the bot's Telegram username is not known yet; start the bot once "
        f"(`rapport run` learns it from Telegram), then `rapport invite --{who} {ident}`"
    )


async def bot_username(rt: Runtime) -> str | None:
    """The practice's bot, as Telegram named it: stored once the bot has started, or asked of
    Telegram (`Runtime.ask_bot_username`, when a token is configured). None when neither: a link
    to a guessed username would hand the client's single-use token to somebody else's bot."""
    async with rt.sessions() as s, s.begin():
        practice = await people.get_practice(s, rt.clock.now())
        if practice.bot_username is None and rt.ask_bot_username is not None:
            practice.bot_username = await rt.ask_bot_username()
        return practice.bot_username


async def remember_bot_username(rt: Runtime, username: str) -> None:
    """The running bot's username, as Telegram told it at start: the invite links name it."""
    async with rt.sessions() as s, s.begin():
        practice = await people.get_practice(s, rt.clock.now())
        practice.bot_username = username


async def link(rt: Runtime, token: str) -> str | None:
    """A deep link to the practice's bot, or None while its username is not known."""
    username = await bot_username(rt)
    return None if username is None else invites.deep_link(username, token)


def therapist_view(rt: Runtime, t: Therapist) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": rt.cipher.decrypt(t.name_enc),
        "timezone": t.timezone,
        "joined": t.telegram_user_id is not None,
    }


def client_view(rt: Runtime, c: Client, *, with_name: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": c.id,
        "therapist": c.therapist_id,
        "alias": c.alias,
        "code": c.code,
        "status": c.status,
        "timezone": c.timezone,
        "language": c.language,
        "cadence": c.cadence,
        "outcomes": c.outcomes,
        "next_checkin_at": c.next_checkin_at.isoformat() if c.next_checkin_at else None,
        "unreachable": c.unreachable_at is not None,
    }
    if with_name:
        view["name"] = rt.cipher.decrypt(c.name_enc)
    return view


async def add_therapist(rt: Runtime, name: str, timezone: str = "UTC") -> dict[str, Any]:
    name = checked_name("--name", name)
    check_timezone(timezone)
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        therapist = await people.add_therapist(s, rt.cipher, name=name, timezone=timezone, now=now)
        token = await people.create_invite(s, now=now, therapist_id=therapist.id)
        view = therapist_view(rt, therapist)
    return {**view, "invite_link": await link(rt, token)}


async def add_client(
    rt: Runtime,
    therapist_id: int,
    name: str,
    *,
    timezone: str | None = None,
    cadence: str | None = None,
    language: str | None = None,
    alias: str | None = None,
) -> dict[str, Any]:
    name = checked_name("--name", name)
    alias = None if alias is None else checked_name("--alias", alias)
    if timezone is not None:
        check_timezone(timezone)
    if language is not None:
        check_language(language)
    cadence = check_cadence(cadence) if cadence is not None else None
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        try:
            client = await people.add_client(
                s,
                rt.cipher,
                therapist_id=therapist_id,
                name=name,
                now=now,
                alias=alias,
                timezone=timezone,
                cadence=cadence,
                language=language,
            )
        except LookupError as exc:
            raise AdminError(str(exc)) from None
        token = await people.create_invite(s, now=now, client_id=client.id)
        view = client_view(rt, client)
    return {**view, "invite_link": await link(rt, token)}


async def new_invite(
    rt: Runtime, *, client_id: int | None = None, therapist_id: int | None = None
) -> dict[str, Any]:
    """A fresh link (older unused ones stop working); refused for someone who has joined, since
    a link must never move an account: that is `move_client_account`."""
    if await bot_username(rt) is None:  # refused: a link to a guessed bot is worse than none
        who, ident = ("client", client_id) if client_id is not None else ("therapist", therapist_id)
        raise AdminError(no_username(who, ident or 0))
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        if client_id is not None and invites.client_has_joined(await client_of(s, client_id)):
            raise AdminError(_joined("client", client_id))
        if therapist_id is not None and invites.therapist_has_joined(
            await therapist_of(s, therapist_id)
        ):
            raise AdminError(_joined("therapist", therapist_id))
        token = await people.create_invite(
            s, now=now, client_id=client_id, therapist_id=therapist_id
        )
    return await _fresh_link(rt, token, now)


async def _fresh_link(rt: Runtime, token: str, now: datetime) -> dict[str, Any]:
    """A new invite's link and when it stops working."""
    expires = now + people.INVITE_TTL
    return {"invite_link": await link(rt, token), "expires_at": expires.isoformat()}


def _joined(who: str, ident: int) -> str:
    return (
        f"{who} {ident} has joined on Telegram already; to move them to "
        f"another Telegram account: rapport {who} move {ident}"
    )


async def move_client_account(rt: Runtime, client_id: int, actor: str = "cli") -> dict[str, Any]:
    """Disconnect the client's Telegram account and give a link for their new one (audited)."""
    return await _move_account(rt, "client", client_id, client_of, invites.move_client, actor)


async def move_therapist_account(
    rt: Runtime, therapist_id: int, actor: str = "cli"
) -> dict[str, Any]:
    """`move_client_account` for a therapist."""
    return await _move_account(
        rt, "therapist", therapist_id, therapist_of, invites.move_therapist, actor
    )


async def _move_account(
    rt: Runtime,
    who: str,
    ident: int,
    find: Callable[[Session, int], Awaitable[_Person]],
    move: _Move[_Person],
    actor: str,
) -> dict[str, Any]:
    """One way to move either kind of person: `invites.move_client` or `move_therapist`."""
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        person = await find(s, ident)
        if person.telegram_user_id is None:
            raise AdminError(
                f"{who} {ident} has no Telegram account to move from; "
                f"for a new link: rapport invite --{who} {ident}"
            )
        token, cancelled = await move(s, person, actor=actor, now=now)
    return {who: ident, **await _fresh_link(rt, token, now), "cancelled_messages": cancelled}


async def list_therapists(rt: Runtime) -> list[dict[str, Any]]:
    async with rt.sessions() as s:
        return [therapist_view(rt, t) for t in await people.list_therapists(s)]


async def list_clients(rt: Runtime, therapist_id: int | None = None) -> list[dict[str, Any]]:
    async with rt.sessions() as s:
        return [client_view(rt, c) for c in await people.list_clients(s, therapist_id)]


def session_view(x: TherapySession) -> dict[str, Any]:
    return {
        "id": x.id,
        "client": x.client_id,
        "starts_at": x.starts_at.isoformat(),
        "ends_at": x.ends_at.isoformat(),
        "digest_at": x.digest_at.isoformat() if x.digest_at else None,
        "digest_sent": x.digest_sent_at is not None,
        "cancelled": x.cancelled,
    }


async def add_session(
    rt: Runtime, client_id: int, at: datetime, minutes: int = 50, source_uid: str | None = None
) -> dict[str, Any]:
    if at.tzinfo is None:
        raise AdminError("the session time needs a UTC offset, e.g. 2026-03-02T15:00:00+01:00")
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        client = await client_of(s, client_id)
        if at <= now:
            raise AdminError(f"{at.isoformat()} has already passed: give a future time")
        try:
            session = await schedule_session(s, client, at, minutes, now, source_uid)
        except SessionExists as exc:
            raise AdminError(
                f"client {client_id} already has session {exc.session.id} at "
                f"{exc.session.starts_at.isoformat()}: nothing added"
            ) from None
        return session_view(session)


async def list_sessions(rt: Runtime, client_id: int | None = None) -> list[dict[str, Any]]:
    async with rt.sessions() as s:
        return [session_view(x) for x in await people.list_sessions(s, client_id)]


async def practice_set(rt: Runtime, **changes: Any) -> dict[str, Any]:
    """Change practice defaults; values are validated before anything is written."""
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        practice = await people.get_practice(s, now)
        for field, value in changes.items():
            if value is None:
                continue
            if field == "cadence":
                value = check_cadence(value)
            elif field == "quiet_hours":
                check_quiet_hours(value)
            elif field == "language":
                check_language(value)
            elif field == "instrument":
                check_instrument(value)
            elif field == "outcomes":
                value = check_outcomes(value)
            elif field in _STORED_AS:
                field, value = _STORED_AS[field], _checked(field, value)
            elif field == "crisis_resources":  # (LANG, TEXT), or a list of them
                pairs = value if isinstance(value, list) else [value]
                value = {**practice.crisis_resources}
                for lang, text in pairs:
                    try:
                        text = rules.crisis_resources(text)
                    except ValueError as exc:
                        raise AdminError(str(exc)) from None
                    value[check_language(lang)] = text
            elif field == "safety_contact":
                field, value = "safety_contact_id", await _safety_contact(s, value)
            setattr(practice, field, value)
        try:
            rules.nudge_before_expiry(practice.nudge_after_hours, practice.expire_after_hours)
        except ValueError as exc:
            raise AdminError(str(exc)) from None  # the transaction rolls back: nothing stored
        await _replan_for_practice(s, practice, changes, now)
        return practice_view(practice)


async def _safety_contact(s: Session, value: str) -> int | None:
    """A therapist's id, or None for "none": who is alerted when a client's therapist cannot
    be reached."""
    if value.strip().lower() == "none":
        return None
    try:
        therapist = await people.therapist_by_id(s, int(value))
    except ValueError:
        therapist = None
    if therapist is None:
        raise AdminError(f"--safety-contact: no therapist with id {value} (or 'none')")
    return therapist.id


async def _replan_for_practice(
    s: Session, practice: Practice, changes: dict[str, Any], now: datetime
) -> None:
    """What was planned under the old defaults follows the new ones at once: every active
    client's next check-in (cadence, quiet hours) and the digests not yet sent (lead, quiet)."""
    changed = {field for field, value in changes.items() if value is not None}
    if changed & {"cadence", "quiet_hours"}:
        for client in await people.active_clients(s, practice.id):
            await replan_client(s, client, practice, now)
    if changed & {"digest_lead", "quiet_hours"}:
        for session, therapist in await people.undigested_sessions(s, practice.id, now):
            plan_digest(session, therapist, practice, now)


_STORED_AS = {
    "digest_lead": "digest_lead_minutes",
    "nudge_after": "nudge_after_hours",
    "expire_after": "expire_after_hours",
    "retention": "retention_days",
    "alert_escalation": "alert_escalation_minutes",
    "name": "name",
}
"""Practice settings written as text and stored in another form (see `flows.settings_rules`)."""


def _checked(field: str, value: str) -> int | str:
    """A setting in its stored form, or one line naming the option (`flows.settings_rules`)."""
    try:
        if field == "digest_lead":
            return rules.digest_lead_minutes(value)
        if field == "nudge_after":
            return rules.nudge_hours(value)
        if field == "expire_after":
            return rules.whole_hours("--expire-after", value)
        if field == "retention":
            return rules.retention_days(value)
        if field == "alert_escalation":
            return rules.alert_escalation_minutes(value)
        return rules.display_name("--name", value)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def checked_name(option: str, value: str) -> str:
    """A person's name or alias as it will be shown, or one line naming the option."""
    try:
        return rules.display_name(option, value)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def practice_view(p: Any) -> dict[str, Any]:
    return {
        "name": p.name,
        "cadence": p.cadence,
        "quiet_hours": p.quiet_hours,
        "digest_lead_minutes": p.digest_lead_minutes,
        "nudge_after_hours": p.nudge_after_hours,
        "expire_after_hours": p.expire_after_hours,
        "language": p.language,
        "instrument": p.instrument,
        "safety_item": p.safety_item,
        "crisis_resources": p.crisis_resources,
        "retention_days": p.retention_days,
        "digest_comments": p.digest_comments,
        "safety_contact": p.safety_contact_id,
        "alert_escalation_minutes": p.alert_escalation_minutes,
        "outcomes": p.outcomes,
    }


async def practice_show(rt: Runtime) -> dict[str, Any]:
    async with rt.sessions() as s, s.begin():
        return practice_view(await people.get_practice(s, rt.clock.now()))


async def erase_client(rt: Runtime, client_id: int, actor: str = "cli") -> bool:
    async with rt.sessions() as s, s.begin():
        return await erasure.erase_client(s, rt, client_id, rt.clock.now(), actor)


async def client_set(
    rt: Runtime,
    client_id: int,
    *,
    cadence: str | None = None,
    timezone: str | None = None,
    language: str | None = None,
    quiet_hours: str | None = None,
    outcomes: list[str] | None = None,
) -> dict[str, Any]:
    """Per-client overrides; 'default' clears one. The next check-in is re-planned at once."""
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        client = await client_of(s, client_id)
        if cadence is not None:
            client.cadence = None if cadence == "default" else check_cadence(cadence)
        if timezone is not None:
            move_client(client, check_timezone(timezone))
        if language is not None:
            client.language = check_language(language)
        if quiet_hours == "default":
            client.quiet_hours = None
        elif quiet_hours is not None:
            client.quiet_hours = check_quiet_hours(quiet_hours)
        if outcomes == ["default"]:
            client.outcomes = None
        elif outcomes:
            client.outcomes = check_outcomes(outcomes)
        await replan_client(s, client, await people.get_practice(s, now), now)
        return client_view(rt, client, with_name=False)


async def audit_log(rt: Runtime, client_id: int | None = None) -> list[dict[str, Any]]:
    async with rt.sessions() as s:
        return [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "client": e.client_id}
            for e in await audit.audit_log(s, client_id)
        ]


async def key_status(rt: Runtime) -> dict[str, Any]:
    """Key ids only (never a key, nothing decrypted but the canaries): which keys are configured,
    which the database holds data under, and which bots run with which, for the rotation steps."""
    from app.instances import exited, wall_now

    now = wall_now()
    async with rt.sessions() as s:
        held = await keyring.canaries(s)
        bots = await keyring.instances(s)
    alive = {b.id for b in keyring.live(bots, now, {b.id for b in bots if exited(b.id)})}
    return {
        "configured": list(rt.cipher.key_ids),
        "held": sorted(held),
        "unreadable": keyring.unreadable(held, rt.cipher),
        "bots": [
            {
                "id": b.id,
                "keys": list(b.key_ids),
                "seen_seconds_ago": round((now - b.seen_at).total_seconds()),
                "alive": b.id in alive,
            }
            for b in bots
        ],
    }


async def rotate_keys(rt: Runtime) -> dict[str, Any]:
    """Re-encrypt every encrypted column with the first configured key, in one transaction that
    first checks that every running bot already encrypts with that key (`storage.keyring`), and
    then drops the canaries of the keys that no longer seal anything."""
    from app.instances import exited, wall_now

    async with rt.sessions() as s, s.begin():
        await keyring.admit(s, rt.cipher, now=wall_now(), mode="rotate", exited=exited)
        count = await keyring.reseal(s, rt.cipher)
        retired = await keyring.retire(s, rt.cipher)
    return {"count": count, "key": rt.cipher.key_ids[0], "retired": retired}
