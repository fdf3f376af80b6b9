"""The admin's pages: practice settings (with a preview of the cadence), people, roles and
sessions (with the ICS import and its dry run), moving a person to a new Telegram account, the
export of every client, the audit log. Each asks `app.console_admin`.
The rules' messages are the CLI's own (English), so a refusal reads the same everywhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from app import console_admin
from app.admin import LANGUAGES, AdminError
from app.console import Role, Viewer, require_admin
from app.ics_import import MAX_ICS_BYTES
from flows.i18n import t
from flows.instruments import available_instruments
from flows.parsing import is_number
from web.texts import local

if TYPE_CHECKING:
    from web.app import Console

Page = Callable[[Request, "Console", Viewer], Awaitable[Response]]


def _field(request: Request, name: str) -> str:
    value = request.state.form.get(name, "")
    return value[:2000] if isinstance(value, str) else ""


async def settings(request: Request, c: Console, viewer: Viewer, **extra: Any) -> Response:
    shown = await console_admin.settings(c.rt, viewer)
    status = extra.pop("status", 200)
    therapists = await console_admin.therapist_choices(c.rt, viewer)
    return c.render(
        request,
        "settings.html",
        status=status,
        viewer=viewer,
        s=shown,
        languages=LANGUAGES,
        instruments=available_instruments(),
        therapists=therapists,
        default_resources={lang: t(lang, "crisis.default_resources") for lang in LANGUAGES},
        preview_zone=extra.pop("preview_zone", viewer.timezone),
        **extra,
    )


async def save_settings(request: Request, c: Console, viewer: Viewer) -> Response:
    values = {name: _field(request, name) for name in console_admin.SETTINGS_FIELDS}
    try:
        changed = await console_admin.save_settings(
            c.rt,
            viewer,
            values,
            digest_comments=_field(request, "digest_comments") == "on",
            crisis={lang: _field(request, f"crisis_{lang}") for lang in LANGUAGES},
            safety_item=_field(request, "safety_item") == "on",
        )
    except AdminError as exc:
        return await settings(request, c, viewer, error=str(exc), status=400)
    lang = viewer.language
    note = (
        t(lang, "console.settings.saved", fields=", ".join(sorted(changed)))
        if changed
        else t(lang, "console.settings.unchanged")
    )
    return await settings(request, c, viewer, notice=note)


async def preview(request: Request, c: Console, viewer: Viewer) -> Response:
    """Next check-in times for a sample client by the cadence typed (nothing is saved)."""
    require_admin(viewer)
    zone = _field(request, "zone").strip() or viewer.timezone
    try:
        times = console_admin.preview(
            _field(request, "cadence"), _field(request, "quiet_hours"), zone, c.rt.clock.now()
        )
    except AdminError as exc:
        return await settings(request, c, viewer, error=str(exc), status=400, preview_zone=zone)
    return await settings(
        request,
        c,
        viewer,
        preview=[local(x, zone, lang=viewer.language) for x in times],
        preview_zone=zone,
        preview_cadence=_field(request, "cadence"),
    )


async def people_page(request: Request, c: Console, viewer: Viewer, **extra: Any) -> Response:
    view = await console_admin.people_view(c.rt, viewer)
    return c.render(
        request,
        "people.html",
        status=extra.pop("status", 200),
        viewer=viewer,
        view=view,
        max_ics_mib=MAX_ICS_BYTES // (1 << 20),
        roles=[r.value for r in Role],
        **extra,
    )


async def add_person(request: Request, c: Console, viewer: Viewer) -> Response:
    kind = _field(request, "kind")
    name, zone = _field(request, "name"), _field(request, "timezone").strip()
    try:
        if kind == "therapist":
            added = await console_admin.add_therapist(c.rt, viewer, name, zone)
        else:
            therapist = _field(request, "therapist")
            if not is_number(therapist):
                raise AdminError("choose the client's therapist")
            alias = _field(request, "alias").strip() or None
            added = await console_admin.add_client(
                c.rt, viewer, int(therapist), name, zone or None, alias
            )
    except AdminError as exc:
        return await people_page(request, c, viewer, error=str(exc), status=400)
    return await people_page(request, c, viewer, added=added, added_kind=kind)


async def set_role(request: Request, c: Console, viewer: Viewer) -> Response:
    """A therapist's role, and whom a supervisor supervises (ids, comma-separated)."""
    therapist, role = _field(request, "therapist"), _field(request, "role")
    listed = [x.strip() for x in _field(request, "supervises").split(",") if x.strip()]
    try:
        if not therapist.isdigit() or not all(x.isascii() and x.isdigit() for x in listed):
            raise AdminError("--supervises: therapist ids, comma-separated")
        done = await console_admin.set_role(
            c.rt, viewer, int(therapist), role, [int(x) for x in listed]
        )
    except AdminError as exc:
        return await people_page(request, c, viewer, error=str(exc), status=400)
    note = t(viewer.language, "console.people.role_set", id=done["id"], role=done["role"])
    return await people_page(request, c, viewer, notice=note)


def _when(request: Request, viewer: Viewer) -> datetime:
    """A `datetime-local` field read in the viewer's zone (or an ISO time with its offset)."""
    text = _field(request, "at").strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise AdminError(f"{text[:40]!r} is not a date and time") from None
    return when if when.tzinfo else when.replace(tzinfo=ZoneInfo(viewer.timezone))


async def add_session(request: Request, c: Console, viewer: Viewer) -> Response:
    minutes = _field(request, "minutes").strip() or "50"
    try:
        if not is_number(minutes) or not 5 <= int(minutes) <= 600:
            raise AdminError("minutes: between 5 and 600")
        added = await console_admin.add_session(
            c.rt, viewer, _field(request, "code"), _when(request, viewer), int(minutes)
        )
    except AdminError as exc:
        return await people_page(request, c, viewer, error=str(exc), status=400)
    note = t(viewer.language, "console.people.session_added", id=added["id"])
    return await people_page(request, c, viewer, notice=note)


async def change_session(request: Request, c: Console, viewer: Viewer) -> Response:
    ident = request.path_params["id"]
    try:
        if not is_number(ident):
            raise AdminError("no such session")
        if _field(request, "action") == "cancel":
            await console_admin.cancel_session(c.rt, viewer, int(ident))
            note = t(viewer.language, "console.people.session_cancelled", id=ident)
        else:
            await console_admin.move_session(c.rt, viewer, int(ident), _when(request, viewer))
            note = t(viewer.language, "console.people.session_moved", id=ident)
    except AdminError as exc:
        return await people_page(request, c, viewer, error=str(exc), status=400)
    return await people_page(request, c, viewer, notice=note)


async def import_ics(request: Request, c: Console, viewer: Viewer) -> Response:
    upload = request.state.form.get("calendar")
    therapist = _field(request, "therapist")
    try:
        if not isinstance(upload, UploadFile):
            raise AdminError("choose a calendar file (.ics)")
        if not is_number(therapist):
            raise AdminError("choose whose calendar it is")
        ics = await upload.read(MAX_ICS_BYTES + 1)
        if len(ics) > MAX_ICS_BYTES:
            raise AdminError("larger than 10 MiB, not a calendar export this can read")
        report = await console_admin.import_calendar(
            c.rt, viewer, ics, int(therapist), dry_run=_field(request, "dry_run") == "on"
        )
    except AdminError as exc:
        return await people_page(request, c, viewer, error=str(exc), status=400)
    return await people_page(request, c, viewer, report=report)


async def export_client(request: Request, c: Console, viewer: Viewer) -> Response:
    """The client's data as a file to save (POST: nothing about the client in a URL)."""
    code = request.path_params["code"]
    try:
        name, text = await console_admin.export_client(
            c.rt, viewer, code, _field(request, "format")
        )
    except AdminError as exc:
        return await people_page(request, c, viewer, error=str(exc), status=400)
    return _download(name, text)


def _download(name: str, text: str) -> Response:
    media = "text/csv" if name.endswith(".csv") else "application/json"
    disposition = f'attachment; filename="{name}"'
    return Response(text, media_type=media, headers={"Content-Disposition": disposition})


async def export_all(request: Request, c: Console, viewer: Viewer) -> Response:
    """Every client's data as one file (`rapport export` without `--client`)."""
    try:
        name, text = await console_admin.export_all(c.rt, viewer, _field(request, "format"))
    except AdminError as exc:
        return await people_page(request, c, viewer, error=str(exc), status=400)
    return _download(name, text)


async def move_account(request: Request, c: Console, viewer: Viewer) -> Response:
    """A person to a new Telegram account: `person` is `client:CODE` or `therapist:ID` (in the
    form's body, never the URL), `confirm` the code or id typed again."""
    kind, _, who = _field(request, "person").partition(":")
    try:
        moved = await console_admin.move_account(
            c.rt, viewer, kind, who, _field(request, "confirm")
        )
    except AdminError as exc:
        return await people_page(request, c, viewer, error=str(exc), status=400)
    label = (
        who.strip().upper()
        if kind == "client"
        else t(viewer.language, "console.people.therapist_n", id=who.strip())
    )
    return await people_page(request, c, viewer, moved=moved, moved_who=label)


async def erase_client(request: Request, c: Console, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    try:
        await console_admin.erase_client(c.rt, viewer, code, _field(request, "confirm"))
    except AdminError as exc:
        return await people_page(request, c, viewer, error=str(exc), status=400)
    note = t(viewer.language, "console.people.erased", code=code.strip().upper()[:16])
    return await people_page(request, c, viewer, notice=note)


async def audit_page(request: Request, c: Console, viewer: Viewer) -> Response:
    code = request.query_params.get("client", "").strip()[:16]
    try:
        entries = await console_admin.audit_entries(c.rt, viewer, code or None)
        error = None
    except AdminError as exc:
        entries, error = [], str(exc)
    return c.render(request, "audit.html", viewer=viewer, entries=entries, code=code, error=error)


ROUTES: list[tuple[str, Page, bool]] = [
    ("/settings", settings, False),
    ("/settings", save_settings, True),
    ("/settings/preview", preview, True),
    ("/people", people_page, False),
    ("/people/add", add_person, True),
    ("/people/role", set_role, True),
    ("/people/move", move_account, True),
    ("/people/export", export_all, True),
    ("/sessions/add", add_session, True),
    ("/sessions/import", import_ics, True),
    ("/sessions/{id}", change_session, True),
    ("/audit", audit_page, False),
    ("/clients/{code}/export", export_client, True),
    ("/clients/{code}/erase", erase_client, True),
]
