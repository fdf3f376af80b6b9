"""The caseload and client pages and their forms: each asks `app.console_pages` and renders.

Texts come from the catalogue (`flows/locales/console.*.yaml`) in the viewer's language; dates
are shown in the viewer's own zone, with their language's names of days and months.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import console_pages
from app.admin import AdminError
from app.console import Viewer
from flows.crisis import CATEGORIES
from flows.i18n import LANGUAGES, t
from flows.parsing import is_number
from flows.statuses import ClientStatus
from insights import config
from web import admin_pages, svg
from web.texts import local

if TYPE_CHECKING:
    from web.app import Console

Page = Callable[[Request, "Console", Viewer], Awaitable[Response]]


def register_filters(env: Environment) -> None:
    env.globals["qr_code"] = svg.qr_code
    env.filters["fromiso"] = datetime.fromisoformat
    env.globals["TOTAL_MAX"] = config.TOTAL_MAX
    env.globals["CUTOFF"] = config.CUTOFF
    env.globals["ALLIANCE_ITEMS"] = config.ALLIANCE_ITEMS
    env.globals["WELLBEING_ITEM"] = config.WELLBEING_ITEM
    env.globals["CRISIS_KINDS"] = (*CATEGORIES, "other")
    env.globals["ALERTED"] = ("therapist", "safety_contact", "nobody")
    env.globals["status_labels"] = status_labels
    env.globals["LANGUAGES"] = LANGUAGES


@cache
def status_labels(lang: str) -> dict[str, str]:
    """Each client status in `lang` (a long list asks once, not once a row)."""
    return {s.value: t(lang, f"console.status.{s.value}") for s in ClientStatus}


def _totals(values: Sequence[int | None], lang: str) -> str:
    missed = t(lang, "console.chart.missed")
    return ", ".join(missed if v is None else str(v) for v in values)


@cache
def sparkliner(lang: str) -> Callable[[Sequence[int | None]], Markup]:
    """The caseload's sparkline, described for screen readers in `lang` (the templates'
    `sparkline`)."""

    def draw(values: Sequence[int | None]) -> Markup:
        label = (
            t(lang, "console.chart.spark_label", totals=_totals(values, lang))
            if values
            else t(lang, "console.chart.no_checkins")
        )
        return Markup(svg.sparkline(list(values), config.TOTAL_MAX, label))

    return draw


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
    lang = viewer.language
    chronological = list(reversed(page.checkins))
    chart = svg.trend_chart(
        [x.total for x in chronological],
        [x.wellbeing for x in chronological],
        config.TOTAL_MAX,
        config.CUTOFF,
        10,
        t(
            lang,
            "console.chart.trend_label",
            totals=_totals([x.total for x in chronological], lang),
        ),
    )
    return c.render(
        request,
        "client.html",
        status=extra.pop("status", 200),
        viewer=viewer,
        page=page,
        alerts=page.alerts if c.alerts is not None else (),
        done=request.query_params.get("done", ""),
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
    note = t(
        viewer.language,
        "console.client.cadence_set",
        cadence=in_force,
        next=local(upcoming, viewer.timezone, lang=viewer.language),
    )
    return await client(request, c, viewer, notice=note)


async def set_client(request: Request, c: Console, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    fields = [str(form_value(request, name))[:64] for name in ("timezone", "language", "quiet")]
    fields.append(str(form_value(request, "outcomes")))  # never cut: a cut list could still parse
    try:
        await console_pages.set_client(c.rt, viewer, code, *fields)
    except AdminError as exc:
        return await client(request, c, viewer, error=str(exc), status=400)
    return await client(request, c, viewer, notice=t(viewer.language, "console.client.saved"))


async def pause(request: Request, c: Console, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    days_text = str(form_value(request, "days")).strip()
    if days_text and not is_number(days_text):
        error = t(viewer.language, "console.client.pause_days")
        return await client(request, c, viewer, error=error, status=400)
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
    ("/clients/{code}/settings", set_client, True),
    ("/clients/{code}/pause", pause, True),
    ("/clients/{code}/resume", resume, True),
    ("/clients/{code}/invite", invite, True),
    *admin_pages.ROUTES,
]
"""(path, handler, is a form): GET pages and POST forms, all for a signed-in viewer."""
