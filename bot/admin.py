"""Practice administration, shared by the `rapport` CLI and the therapists' Telegram commands.

Each function runs one transaction and returns plain data (dicts) that both front ends print.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import erasure
from bot.planning import move_client, plan_digest, replan_client, schedule_session
from bot.runtime import Runtime
from flows.cadence import parse_cadence
from flows.instruments import available_instruments, load_instrument
from flows.timing import parse_duration, parse_quiet_hours
from storage import repo
from storage.models import Client, Practice, Therapist, TherapySession

LANGUAGES = ("en", "es", "ru")


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
    return name


def check_cadence(spec: str) -> str:
    try:
        return str(parse_cadence(spec))
    except ValueError as exc:
        raise AdminError(f"cadence: {exc}") from None


async def link(rt: Runtime, token: str) -> str:
    """A deep link to the practice's bot; its username is learnt from Telegram once."""
    async with rt.sessions() as s, s.begin():
        practice = await repo.get_practice(s, rt.clock.now())
        if practice.bot_username is None:
            practice.bot_username = await ask_bot_username(rt)
        username = practice.bot_username or rt.bot_username
    return f"https://t.me/{username}?start={token}"


async def ask_bot_username(rt: Runtime) -> str | None:
    """getMe, when a token is configured; None when Telegram cannot be asked right now."""
    if rt.settings.telegram_token is None:
        return None
    from telegram import Bot
    from telegram.error import TelegramError

    bot = Bot(
        rt.settings.token(),
        base_url=rt.settings.telegram_api_url,
        base_file_url=rt.settings.api_file_url,
    )
    try:
        async with bot:
            return bot.username
    except (TelegramError, OSError):
        return None


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
        "next_checkin_at": c.next_checkin_at.isoformat() if c.next_checkin_at else None,
        "unreachable": c.unreachable_at is not None,
    }
    if with_name:
        view["name"] = rt.cipher.decrypt(c.name_enc)
    return view


async def add_therapist(rt: Runtime, name: str, timezone: str = "UTC") -> dict[str, Any]:
    check_timezone(timezone)
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        therapist = await repo.add_therapist(s, rt.cipher, name=name, timezone=timezone, now=now)
        token = await repo.create_invite(s, now=now, therapist_id=therapist.id)
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
    if timezone:
        check_timezone(timezone)
    if language:
        check_language(language)
    cadence = check_cadence(cadence) if cadence else None
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        try:
            client = await repo.add_client(
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
        token = await repo.create_invite(s, now=now, client_id=client.id)
        view = client_view(rt, client)
    return {**view, "invite_link": await link(rt, token)}


async def new_invite(
    rt: Runtime, *, client_id: int | None = None, therapist_id: int | None = None
) -> dict[str, Any]:
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        if client_id is not None and await s.get(Client, client_id) is None:
            raise AdminError(f"no client with id {client_id}")
        if therapist_id is not None and await s.get(Therapist, therapist_id) is None:
            raise AdminError(f"no therapist with id {therapist_id}")
        token = await repo.create_invite(s, now=now, client_id=client_id, therapist_id=therapist_id)
        expires = now + repo.INVITE_TTL
    return {"invite_link": await link(rt, token), "expires_at": expires.isoformat()}


async def list_therapists(rt: Runtime) -> list[dict[str, Any]]:
    async with rt.sessions() as s:
        return [therapist_view(rt, t) for t in await repo.list_therapists(s)]


async def list_clients(rt: Runtime, therapist_id: int | None = None) -> list[dict[str, Any]]:
    async with rt.sessions() as s:
        return [client_view(rt, c) for c in await repo.list_clients(s, therapist_id)]


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
        client = await s.get(Client, client_id)
        if client is None:
            raise AdminError(f"no client with id {client_id}")
        if at <= now:
            raise AdminError(f"{at.isoformat()} has already passed: give a future time")
        session = await schedule_session(s, client, at, minutes, now, source_uid)
        return session_view(session)


async def list_sessions(rt: Runtime, client_id: int | None = None) -> list[dict[str, Any]]:
    async with rt.sessions() as s:
        query = select(TherapySession).order_by(TherapySession.starts_at)
        if client_id is not None:
            query = query.where(TherapySession.client_id == client_id)
        return [session_view(x) for x in await s.scalars(query)]


async def practice_set(rt: Runtime, **changes: Any) -> dict[str, Any]:
    """Change practice defaults; values are validated before anything is written."""
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        practice = await repo.get_practice(s, now)
        for field, value in changes.items():
            if value is None:
                continue
            if field == "cadence":
                value = check_cadence(value)
            elif field == "quiet_hours":
                try:
                    parse_quiet_hours(value)
                except ValueError as exc:
                    raise AdminError(f"quiet hours: {exc}") from None
            elif field == "language":
                check_language(value)
            elif field == "instrument":
                check_instrument(value)
            elif field in ("digest_lead", "nudge_after", "expire_after", "retention"):
                try:
                    delta = parse_duration(value)
                except ValueError as exc:
                    raise AdminError(f"{field.replace('_', ' ')}: {exc}") from None
                field, value = _duration_field(field, delta)
            elif field == "crisis_resources":
                lang, text = value
                value = {**practice.crisis_resources, check_language(lang): text}
            setattr(practice, field, value)
        await _replan_for_practice(s, practice, changes, now)
        return practice_view(practice)


async def _replan_for_practice(
    s: AsyncSession, practice: Practice, changes: dict[str, Any], now: datetime
) -> None:
    """What was planned under the old defaults follows the new ones at once: every active
    client's next check-in (cadence, quiet hours) and the digests not yet sent (lead, quiet)."""
    changed = {field for field, value in changes.items() if value is not None}
    if changed & {"cadence", "quiet_hours"}:
        clients = await s.scalars(
            select(Client).where(Client.practice_id == practice.id, Client.status == "active")
        )
        for client in list(clients):
            await replan_client(s, client, practice, now)
    if changed & {"digest_lead", "quiet_hours"}:
        rows = await s.execute(
            select(TherapySession, Therapist)
            .join(Client, Client.id == TherapySession.client_id)
            .join(Therapist, Therapist.id == Client.therapist_id)
            .where(
                Client.practice_id == practice.id,
                TherapySession.digest_sent_at.is_(None),
                TherapySession.cancelled.is_(False),
                TherapySession.starts_at > now,
            )
        )
        for session, therapist in list(rows.tuples()):
            plan_digest(session, therapist, practice, now)


def _duration_field(field: str, delta: timedelta) -> tuple[str, int]:
    minutes = int(delta.total_seconds() // 60)
    return {
        "digest_lead": ("digest_lead_minutes", minutes),
        "nudge_after": ("nudge_after_hours", minutes // 60),
        "expire_after": ("expire_after_hours", minutes // 60),
        "retention": ("retention_days", minutes // (60 * 24)),
    }[field]


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
    }


async def practice_show(rt: Runtime) -> dict[str, Any]:
    async with rt.sessions() as s, s.begin():
        return practice_view(await repo.get_practice(s, rt.clock.now()))


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
) -> dict[str, Any]:
    """Per-client overrides; 'default' clears one. The next check-in is re-planned at once."""
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        client = await s.get(Client, client_id)
        if client is None:
            raise AdminError(f"no client with id {client_id}")
        if cadence is not None:
            client.cadence = None if cadence == "default" else check_cadence(cadence)
        if timezone is not None:
            move_client(client, check_timezone(timezone))
        if language is not None:
            client.language = check_language(language)
        if quiet_hours is not None:
            if quiet_hours != "default":
                try:
                    parse_quiet_hours(quiet_hours)
                except ValueError as exc:
                    raise AdminError(f"quiet hours: {exc}") from None
            client.quiet_hours = None if quiet_hours == "default" else quiet_hours
        await replan_client(s, client, await repo.get_practice(s, now), now)
        return client_view(rt, client, with_name=False)


async def audit_log(rt: Runtime, client_id: int | None = None) -> list[dict[str, Any]]:
    async with rt.sessions() as s:
        return [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "client": e.client_id}
            for e in await repo.audit_log(s, client_id)
        ]


async def rotate_keys(rt: Runtime) -> int:
    """Re-encrypt every encrypted column with the first configured key."""
    from storage.models import Answer, OutboxMessage

    columns = (
        (Therapist, "name_enc"),
        (Client, "name_enc"),
        (Answer, "text_enc"),
        (OutboxMessage, "payload_enc"),
    )
    count = 0
    async with rt.sessions() as s, s.begin():
        for model, column in columns:
            for row in await s.scalars(select(model)):
                value = getattr(row, column)
                if value is not None:
                    setattr(row, column, rt.cipher.rotate(value))
                    count += 1
    return count
