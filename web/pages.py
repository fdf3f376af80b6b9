"""The caseload and client pages and their forms: each asks `app.console_pages` and renders.

Texts are English for now (the bot's catalogue is for Telegram); the dates are shown in the
viewer's own zone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import console_pages
from app.admin import AdminError
from app.console import Viewer
from flows.parsing import is_number
from insights import config
from web import admin_pages, svg

if TYPE_CHECKING:
    from web.app import Console

Page = Callable[[Request, "Console", Viewer], Awaitable[Response]]


def local(moment: datetime | None, zone: str, fmt: str = "%a %d %b %Y %H:%M") -> str:
    if moment is None:
        return "—"
    return moment.astimezone(ZoneInfo(zone)).strftime(fmt)


def register_filters(env: Environment) -> None:
    env.globals["local"] = local
    env.globals["qr_code"] = svg.qr_code
    env.filters["fromiso"] = datetime.fromisoformat
    env.globals["TOTAL_MAX"] = config.TOTAL_MAX
    env.globals["CUTOFF"] = config.CUTOFF
    env.globals["ALLIANCE_ITEMS"] = config.ALLIANCE_ITEMS
    env.globals["WELLBEING_ITEM"] = config.WELLBEING_ITEM
    env.globals["sparkline"] = lambda values: svg.sparkline(
        values,
        config.TOTAL_MAX,
        "alliance totals: " + ", ".join("missed" if v is None else str(v) for v in values)
        if values
        else "no check-ins yet",
    )


async def caseload(request: Request, c: Console, viewer: Viewer) -> Response:
    therapist = request.query_params.get("therapist", "")
    chosen = int(therapist) if is_number(therapist) else None
    rows = await console_pages.caseload(c.rt, viewer, chosen)
    choices = await console_pages.caseload_choices(c.rt, viewer)
    return c.render(
        request, "caseload.html", viewer=viewer, rows=rows, chosen=chosen, choices=choices
    )


async def client(request: Request, c: Console, viewer: Viewer, **extra: Any) -> Response:
    page = await console_pages.client_page(c.rt, viewer, request.path_params["code"])
    chronological = list(reversed(page.checkins))
    chart = svg.trend_chart(
        [x.total for x in chronological],
        [x.wellbeing for x in chronological],
        config.TOTAL_MAX,
        config.CUTOFF,
        10,
        "alliance total over time: "
        + ", ".join("missed" if x.total is None else str(x.total) for x in chronological),
    )
    return c.render(
        request,
        "client.html",
        status=extra.pop("status", 200),
        viewer=viewer,
        page=page,
        chart=Markup(chart) if chronological else None,
        **extra,
    )


async def set_cadence(request: Request, c: Console, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    spec = str(form_value(request, "cadence"))[:200]
    try:
        in_force, upcoming = await console_pages.set_cadence(c.rt, viewer, code, spec)
    except AdminError as exc:
        return await client(request, c, viewer, error=str(exc), status=400)
    note = f"Cadence now “{in_force}”; next check-in {local(upcoming, viewer.timezone)}."
    return await client(request, c, viewer, notice=note)


async def pause(request: Request, c: Console, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    days_text = str(form_value(request, "days")).strip()
    if days_text and not is_number(days_text):
        return await client(request, c, viewer, error="pause: a number of days", status=400)
    try:
        await console_pages.pause(c.rt, viewer, code, int(days_text) if days_text else None)
    except AdminError as exc:
        return await client(request, c, viewer, error=str(exc), status=400)
    return RedirectResponse(f"/clients/{code}", status_code=303)


async def resume(request: Request, c: Console, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    try:
        await console_pages.resume(c.rt, viewer, code)
    except AdminError as exc:
        return await client(request, c, viewer, error=str(exc), status=400)
    return RedirectResponse(f"/clients/{code}", status_code=303)


async def invite(request: Request, c: Console, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    try:
        link, days = await console_pages.new_invite(c.rt, viewer, code)
    except AdminError as exc:
        return await client(request, c, viewer, error=str(exc), status=400)
    return await client(request, c, viewer, invite_link=link, invite_days=days)


def form_value(request: Request, name: str) -> str:
    value = request.state.form.get(name, "")
    return value if isinstance(value, str) else ""


ROUTES: list[tuple[str, Page, bool]] = [
    ("/caseload", caseload, False),
    ("/clients/{code}", client, False),
    ("/clients/{code}/cadence", set_cadence, True),
    ("/clients/{code}/pause", pause, True),
    ("/clients/{code}/resume", resume, True),
    ("/clients/{code}/invite", invite, True),
    *admin_pages.ROUTES,
]
"""(path, handler, is a form): GET pages and POST forms, all for a signed-in viewer."""
