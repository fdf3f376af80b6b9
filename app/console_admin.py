"""The console's admin pages: practice settings, people and sessions, the audit log.

Every change goes through the same functions as the `rapport` command (`app.admin`,
`app.calendar_sync`), so the rules and their messages are the CLI's; here only who may (an admin)
and the audit entry that says the console did it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app import admin, calendar_sync, console, export
from app.console import Viewer, require_admin
from app.planning import cadence_of, quiet_of
from app.runtime import Runtime
from flows.timing import format_duration, next_checkin_at
from storage import audit, people

PREVIEW_COUNT = 5
SETTINGS_FIELDS = (
    "name",
    "cadence",
    "quiet_hours",
    "digest_lead",
    "nudge_after",
    "expire_after",
    "language",
    "outcomes",
    "retention",
    "safety_contact",
    "instrument",
    "alert_escalation",
)
"""The practice settings typed into the form; with the two checkboxes (`digest_comments`,
`safety_item`) and the crisis resources per language, every `rapport practice set` option."""


async def _audit(rt: Runtime, viewer: Viewer, action: str, client_id: int | None = None) -> None:
    async with rt.sessions() as s, s.begin():
        await audit.audit(
            s, actor=viewer.actor, action=action, now=rt.clock.now(), client_id=client_id
        )


async def settings(rt: Runtime, viewer: Viewer) -> dict[str, Any]:
    """The practice settings as the form shows them: durations written as they are typed."""
    require_admin(viewer)
    shown = await admin.practice_show(rt)
    return {
        **shown,
        "digest_lead": format_duration(timedelta(minutes=shown["digest_lead_minutes"])),
        "nudge_after": "off"
        if not shown["nudge_after_hours"]
        else format_duration(timedelta(hours=shown["nudge_after_hours"])),
        "expire_after": format_duration(timedelta(hours=shown["expire_after_hours"])),
        "retention": f"{shown['retention_days']}d",
        "safety_contact": "none" if shown["safety_contact"] is None else shown["safety_contact"],
        "alert_escalation": format_duration(timedelta(minutes=shown["alert_escalation_minutes"])),
    }


async def save_settings(
    rt: Runtime,
    viewer: Viewer,
    values: dict[str, str],
    digest_comments: bool,
    crisis: dict[str, str],
    safety_item: bool | None = None,
) -> dict[str, Any]:
    """`rapport practice set` from the form: a field left as shown changes nothing, and one bad
    value stores nothing (`admin.AdminError`, with the CLI's message)."""
    require_admin(viewer)
    current = await settings(rt, viewer)
    changes: dict[str, Any] = {
        field: value.strip()
        for field, value in values.items()
        if field in SETTINGS_FIELDS and value.strip() and value.strip() != str(current[field])
    }
    for field, option in (("instrument", "--instrument"), ("outcomes", "--outcome")):
        if field in changes:
            console.check_shipped(option, changes[field])
    if digest_comments != current["digest_comments"]:
        changes["digest_comments"] = digest_comments
    if safety_item is not None and safety_item != current["safety_item"]:
        changes["safety_item"] = safety_item
    crisis = {
        lang: text.strip()
        for lang, text in crisis.items()
        if text.strip() and text.strip() != current["crisis_resources"].get(lang)
    }
    if crisis:
        changes["crisis_resources"] = sorted(crisis.items())
    if changes:
        await admin.practice_set(rt, **changes)
        await _audit(rt, viewer, "practice_set")
    return changes


def preview(
    cadence: str, quiet_hours: str, zone: str, now: datetime, count: int = PREVIEW_COUNT
) -> list[datetime]:
    """The next check-ins of a sample client who joined now in `zone`, by this cadence and
    these quiet hours (no sessions planned); `admin.AdminError` for a rule that does not read."""
    rule = cadence_of(admin.check_cadence(cadence))
    quiet = quiet_of(admin.check_quiet_hours(quiet_hours))
    admin.check_timezone(zone)
    times: list[datetime] = []
    after, previous = now, None
    while len(times) < count:
        due = next_checkin_at(
            rule, after=after, tz=zone, sessions=[], anchor=now, quiet=quiet, previous=previous
        )
        if due is None:
            break
        times.append(due)
        after, previous = due, due
    return times


@dataclass(frozen=True)
class PeopleView:
    therapists: list[dict[str, Any]]
    clients: list[dict[str, Any]]
    sessions: list[dict[str, Any]]


async def people_view(rt: Runtime, viewer: Viewer) -> PeopleView:
    """Therapists (with roles), clients and the sessions to come (names shown: audited)."""
    require_admin(viewer)
    now = rt.clock.now()
    therapists = await admin.list_therapists(rt)
    roles = await _roles(rt)
    clients = await admin.list_clients(rt)
    codes = {c["id"]: c["code"] for c in clients}
    sessions = [
        {**x, "code": codes.get(x["client"], "?")}
        for x in await admin.list_sessions(rt)
        if not x["cancelled"] and datetime.fromisoformat(x["starts_at"]) > now - timedelta(days=1)
    ]
    await _audit(rt, viewer, "console_people")
    return PeopleView(
        [{**t, "role": roles.get(t["id"], "therapist")} for t in therapists], clients, sessions
    )


async def therapist_choices(rt: Runtime, viewer: Viewer) -> list[tuple[int, str]]:
    """(id, name) of every therapist, for the safety contact's choice."""
    require_admin(viewer)
    return [(x["id"], x["name"]) for x in await admin.list_therapists(rt)]


async def _roles(rt: Runtime) -> dict[int, str]:
    async with rt.sessions() as s:
        return {t.id: t.role for t in await people.list_therapists(s)}


async def set_role(
    rt: Runtime, viewer: Viewer, therapist_id: int, role: str, supervises: list[int]
) -> dict[str, object]:
    """`rapport therapist set ID --role … --supervises …`, audited under the admin's name."""
    require_admin(viewer)
    return await console.set_role(
        rt, therapist_id, role, supervises if role == "supervisor" else None, actor=viewer.actor
    )


async def add_therapist(rt: Runtime, viewer: Viewer, name: str, zone: str) -> dict[str, Any]:
    require_admin(viewer)
    added = await admin.add_therapist(rt, name, zone or "UTC")
    await _audit(rt, viewer, "add_therapist")
    return added


async def add_client(
    rt: Runtime, viewer: Viewer, therapist_id: int, name: str, zone: str | None, alias: str | None
) -> dict[str, Any]:
    require_admin(viewer)
    added = await admin.add_client(rt, therapist_id, name, timezone=zone or None, alias=alias)
    await _audit(rt, viewer, "add_client", added["id"])
    return added


async def _client_id(rt: Runtime, code: str) -> int:
    async with rt.sessions() as s:
        client = await people.client_by_code(s, code.strip().upper())
    if client is None:
        raise admin.AdminError(f"no client with code {code.strip()[:16]!r}")
    return client.id


async def add_session(
    rt: Runtime, viewer: Viewer, code: str, at: datetime, minutes: int
) -> dict[str, Any]:
    require_admin(viewer)
    client_id = await _client_id(rt, code)
    added = await admin.add_session(rt, client_id, at, minutes)
    await _audit(rt, viewer, "add_session", client_id)
    return added


async def move_session(
    rt: Runtime, viewer: Viewer, session_id: int, at: datetime
) -> dict[str, Any]:
    require_admin(viewer)
    moved = await calendar_sync.move_session(rt, session_id, at)
    await _audit(rt, viewer, "move_session", moved["client"])
    return moved


async def cancel_session(rt: Runtime, viewer: Viewer, session_id: int) -> dict[str, Any]:
    require_admin(viewer)
    cancelled = await calendar_sync.cancel_session(rt, session_id)
    await _audit(rt, viewer, "cancel_session", cancelled["client"])
    return cancelled


async def import_calendar(
    rt: Runtime, viewer: Viewer, ics: bytes, therapist_id: int, dry_run: bool, days: int = 90
) -> dict[str, Any]:
    """`rapport session import`, with its dry run and its report."""
    require_admin(viewer)
    report = await calendar_sync.import_ahead(
        rt, ics, therapist_id=therapist_id, days=days, dry_run=dry_run
    )
    if not dry_run:
        await _audit(rt, viewer, "import_calendar")
    return report


def _checked_format(fmt: str) -> str:
    if fmt not in ("csv", "json"):
        raise admin.AdminError("--format must be csv or json")
    return fmt


def _as_text(records: list[dict[str, Any]], fmt: str) -> str:
    return export.to_csv(records) if fmt == "csv" else json.dumps(records, indent=2) + "\n"


async def export_client(rt: Runtime, viewer: Viewer, code: str, fmt: str) -> tuple[str, str]:
    """`rapport export --client` for one client by code: (file name, text), CSV or JSON;
    audited under the admin's name, as every export is."""
    require_admin(viewer)
    _checked_format(fmt)
    client_id = await _client_id(rt, code)
    records = await export.export(rt, client_id, actor=viewer.actor)
    return f"rapport-{code.strip().upper()}.{fmt}", _as_text(records, fmt)


async def export_all(rt: Runtime, viewer: Viewer, fmt: str) -> tuple[str, str]:
    """`rapport export` without `--client`: every client in one file, each export audited
    under the admin's name (one entry a client, as the CLI writes them)."""
    require_admin(viewer)
    _checked_format(fmt)
    records = await export.export(rt, None, actor=viewer.actor)
    return f"rapport-all-clients.{fmt}", _as_text(records, fmt)


MOVE_KINDS = ("client", "therapist")
MAX_ID_DIGITS = 9


async def move_account(
    rt: Runtime, viewer: Viewer, kind: str, who: str, confirmation: str
) -> dict[str, Any]:
    """`rapport client move` / `rapport therapist move`: the old Telegram account is
    disconnected and a new single-use link made, once the client's code (or the therapist's
    id) is typed again, as there is no undo. The use case audits it under the admin's name."""
    require_admin(viewer)
    who = who.strip().upper()
    if kind not in MOVE_KINDS:
        raise admin.AdminError("choose a client or a therapist")
    if not who or confirmation.strip().upper() != who:
        raise admin.AdminError(f"type the {kind}'s {'code' if kind == 'client' else 'id'} again")
    if kind == "client":
        client_id = await _client_id(rt, who)
        return await admin.move_client_account(rt, client_id, actor=viewer.actor)
    if not (who.isascii() and who.isdigit() and len(who) <= MAX_ID_DIGITS):
        raise admin.AdminError(f"no therapist with id {who[:16]!r}")
    return await admin.move_therapist_account(rt, int(who), actor=viewer.actor)


async def erase_client(rt: Runtime, viewer: Viewer, code: str, confirmation: str) -> None:
    """`rapport client erase`: only once the client's code is typed again (no undo)."""
    require_admin(viewer)
    if confirmation.strip().upper() != code.strip().upper():
        raise admin.AdminError("type the client's code to confirm the erasure")
    client_id = await _client_id(rt, code)
    if not await admin.erase_client(rt, client_id, actor=viewer.actor):
        raise admin.AdminError(f"no client with code {code.strip()[:16]!r}")


async def audit_entries(
    rt: Runtime, viewer: Viewer, code: str | None, limit: int = 500
) -> list[dict[str, Any]]:
    """The audit log, newest first, of one client (by code) or all; codes shown, not ids."""
    require_admin(viewer)
    client_id = await _client_id(rt, code) if code else None
    entries = await admin.audit_log(rt, client_id)
    async with rt.sessions() as s:
        clients = {c.id: c.code for c in await people.list_clients(s)}
    return [
        {**e, "code": clients.get(e["client"], "(erased)" if e["client"] else "")}
        for e in reversed(entries[-limit:])
    ]
