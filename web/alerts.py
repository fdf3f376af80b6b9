"""The Alerts page: open urgent alerts and flags across what the viewer reads, with
acknowledgement. The use cases live in `app/` (list-open and acknowledge); this page needs only
the small interface below, which `console_app(alerts=...)` is given. Without one the page and
its menu entry are not served at all (no half page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.console import Viewer
from app.runtime import Runtime

if TYPE_CHECKING:
    from web.app import Console


@dataclass(frozen=True)
class OpenAlert:
    """One open alert or flag as the page shows it: an opaque id, the client by code and alias
    (never a name), what kind, since when, and a short text without the client's words."""

    id: str
    client_code: str
    alias: str
    urgent: bool
    at: datetime
    summary: str


class AlertsSource(Protocol):
    """What the page asks of `app/`: both decide what the viewer may see and do (a supervisor
    reads, never acknowledges) and audit it; an alert the viewer may not touch is as unknown."""

    async def list_open(self, rt: Runtime, viewer: Viewer) -> list[OpenAlert]: ...

    async def acknowledge(self, rt: Runtime, viewer: Viewer, alert_id: str) -> bool:
        """True if it was open and is now acknowledged by the viewer."""
        ...


async def alerts_page(request: Request, c: Console, viewer: Viewer) -> Response:
    assert c.alerts is not None
    alerts = await c.alerts.list_open(c.rt, viewer)
    alerts.sort(key=lambda a: (not a.urgent, a.at))
    done = request.query_params.get("done") == "1"
    return c.render(request, "alerts.html", viewer=viewer, alerts=alerts, done=done)


async def acknowledge(request: Request, c: Console, viewer: Viewer) -> Response:
    assert c.alerts is not None
    alert_id = str(request.state.form.get("alert", ""))[:64]
    if not await c.alerts.acknowledge(c.rt, viewer, alert_id):
        return c.render(request, "refused.html", 404, viewer=viewer, why="not_found")
    return RedirectResponse("/alerts?done=1", status_code=303)


ROUTES = [("/alerts", alerts_page, False), ("/alerts/acknowledge", acknowledge, True)]
