"""The console as an ASGI app: routes, sign-in, CSRF and security headers; every page and form
calls `app/` (no SQL here, `tests/test_layout.py`).

Rules kept here for every request: a strict Content-Security-Policy (nothing from elsewhere, no
inline script or style), no caching, no referrer; a session cookie that is HttpOnly,
SameSite=Strict and Secure over HTTPS; a CSRF token on every form, checked before anything is
read from it; URLs carry client codes, never names; nothing about a request is logged.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData, Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import console
from app.console import NotYours, ReadOnly, Viewer
from app.ics_import import MAX_ICS_BYTES
from app.runtime import Runtime
from flows.i18n import DEFAULT_LANGUAGE, t
from flows.parsing import is_number
from web import alerts as web_alerts
from web import pages, texts
from web.alerts import AlertsSource

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MAX_BODY = MAX_ICS_BYTES + (64 << 10)
"""The largest request the console reads: a calendar file and the form around it."""
PRE_COOKIE = "rapport_signin"  # the sign-in form's double-submit token, before any session


class SecurityHeaders:
    """Every answer of the console (the webhook's too) carries the same strict headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """A request body over `MAX_BODY`, declared or as it arrives, is refused with 413 before
    any form is read: the form parser would spool an uploaded file to disk whatever its size,
    for anyone signed in and before the CSRF token is checked. Paths in `exempt` (the webhook's
    `/telegram`) keep their own, stricter order: its secret is checked before the size."""

    def __init__(self, app: ASGIApp, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not is_number(declared) or int(declared) > MAX_BODY):
            too_large = Response(status_code=413, headers={"Connection": "close"})
            await too_large(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    raise HTTPException(413)
            return message

        await self.app(scope, counted, send)


class Unavailable:
    """503 with a short page while the database is away; logged by the error's type only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except console.UNAVAILABLE as exc:
            if started or scope["type"] != "http":
                raise
            log.warning("console: the database is unavailable (%s)", type(exc).__name__)
            response = HTMLResponse(UNAVAILABLE_PAGE, 503, headers={"Retry-After": "5"})
            await response(scope, receive, send)


UNAVAILABLE_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Rapport</title>'
    '<link rel="stylesheet" href="/static/console.css"></head><body><main>'
    f"<h1>{t('en', 'console.unavailable.title')}</h1>"
    f"<p>{t('en', 'console.unavailable.text')}</p></main></body></html>"
)
"""English: who is signed in cannot be known without the database."""


class Console:
    """The console's state: the runtime, the templates, and how cookies are set."""

    def __init__(self, rt: Runtime, alerts: AlertsSource | None = None) -> None:
        self.rt = rt
        self.alerts = alerts
        self.secure = rt.settings.console_url.startswith("https://")
        self.cookie = "__Host-rapport" if self.secure else "rapport_session"
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
            enable_async=False,
        )
        pages.register_filters(self.templates)
        self.templates.globals["has_alerts"] = alerts is not None

    def render(self, request: Request, name: str, status: int = 200, **data: Any) -> HTMLResponse:
        """The page in the viewer's language (English before sign-in)."""
        viewer: Viewer | None = data.get("viewer")
        lang = viewer.language if viewer is not None else DEFAULT_LANGUAGE
        html = self.templates.get_template(name).render(
            request=request,
            lang=lang,
            tr=texts.translator(lang),
            local=texts.localizer(lang),
            sparkline=pages.sparkliner(lang),
            **data,
        )
        return HTMLResponse(html, status_code=status)

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    async def viewer(self, request: Request) -> Viewer | None:
        cookie = request.cookies.get(self.cookie)
        return await console.viewer_of(self.rt, cookie) if cookie else None


Handler = Callable[[Request, Console, Viewer], Awaitable[Response]]


def signed_in(handler: Handler, *, form: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A page or form for a signed-in viewer: else to the sign-in page. A form must carry the
    session's CSRF token (403 without it, before anything is done). Refusals look alike."""

    async def endpoint(request: Request) -> Response:
        c: Console = request.app.state.console
        viewer = await c.viewer(request)
        if viewer is None:
            return c.render(request, "signed_out.html", status=401, viewer=None)
        if form:
            data = await request.form(max_files=1, max_fields=40)
            given = str(data.get("csrf", ""))
            if not hmac.compare_digest(given.encode(), viewer.csrf.encode()):
                return c.render(request, "refused.html", 403, viewer=viewer, why="csrf")
            request.state.form = data
        try:
            return await handler(request, c, viewer)
        except NotYours:
            return c.render(request, "refused.html", 404, viewer=viewer, why="not_found")
        except ReadOnly:
            return c.render(request, "refused.html", 403, viewer=viewer, why="read_only")

    return endpoint


def form_of(request: Request) -> FormData:
    data: FormData = request.state.form
    return data


async def signin_page(request: Request) -> Response:
    """The link from `/web` opens this page; only its button signs in. (Link previews fetch
    the page, so a GET must never spend the one-time link.)"""
    c: Console = request.app.state.console
    token = request.path_params["token"]
    pre = secrets.token_urlsafe(24)
    response = c.render(request, "signin.html", viewer=None, token=token, pre=pre)
    c.set_cookie(response, PRE_COOKIE, pre, 600)
    return response


async def signin(request: Request) -> Response:
    c: Console = request.app.state.console
    data = await request.form(max_files=0, max_fields=4)
    pre = request.cookies.get(PRE_COOKIE, "")
    given = str(data.get("pre", ""))
    if not pre or not hmac.compare_digest(pre.encode(), given.encode()):
        return c.render(request, "refused.html", 403, viewer=None, why="csrf")
    opened = await console.sign_in(c.rt, str(data.get("token", "")))
    if opened is None:
        return c.render(request, "refused.html", 403, viewer=None, why="link")
    cookie, _csrf = opened
    response = RedirectResponse("/caseload", status_code=303)
    c.set_cookie(response, c.cookie, cookie, int(console.LONGEST.total_seconds()))
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


async def signout(request: Request, c: Console, viewer: Viewer) -> Response:
    await console.sign_out(c.rt, request.cookies.get(c.cookie, ""))
    response = RedirectResponse("/signed-out", status_code=303)
    response.delete_cookie(c.cookie, path="/")
    return response


async def signed_out(request: Request) -> Response:
    c: Console = request.app.state.console
    return c.render(request, "signed_out.html", viewer=None)


async def home(request: Request) -> Response:
    return RedirectResponse("/caseload", status_code=303)


def console_routes(alerts: bool = False) -> list[BaseRoute]:
    """The console's routes, to serve alone or beside `/telegram` in one app; the Alerts page
    only with a source of alerts (`web.alerts`)."""
    return [
        Route("/", home),
        Route("/signin/{token}", signin_page),
        Route("/signin", signin, methods=["POST"]),
        Route("/signed-out", signed_out),
        Route("/signout", signed_in(signout, form=True), methods=["POST"]),
        *[
            Route(path, signed_in(handler, form=is_form), methods=["POST"] if is_form else ["GET"])
            for path, handler, is_form in [*pages.ROUTES, *(web_alerts.ROUTES if alerts else [])]
        ],
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def console_app(
    rt: Runtime, extra: list[BaseRoute] | None = None, alerts: AlertsSource | None = None
) -> Starlette:
    """The console alone (`rapport web`), or with other routes such as `/telegram`."""
    own_limits = frozenset(route.path for route in extra or [] if isinstance(route, Route))
    app = Starlette(
        routes=[*(extra or []), *console_routes(alerts is not None)],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(Unavailable),
            Middleware(BodyLimit, exempt=own_limits),
        ],
    )
    app.state.console = Console(rt, alerts)
    return app
