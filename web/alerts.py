"""The Alerts page: open urgent alerts and flags across what the viewer reads, with
acknowledgement. The use cases live in `app/` (`app.console_alerts.ConsoleAlerts`: who sees and
answers what, and the same acknowledgement as a tap in Telegram); this page needs only the small
interface below, which `console_app(alerts=...)` is given. Without one the page and its menu
entry are not served at all (no half page)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.alerts import Ack
from app.console import Viewer
from app.console_alerts import OpenAlert
from app.runtime import Runtime

if TYPE_CHECKING:
    from web.app import Console

__all__ = ["ROUTES", "AlertsSource", "OpenAlert"]


class AlertsSource(Protocol):
    """What the page asks of `app/`: both decide what the viewer may see and do (a supervisor
    reads, never acknowledges: `ReadOnly`) and audit it; an alert the viewer may not touch is
    as unknown (`Ack.REFUSED`)."""

    async def list_open(self, rt: Runtime, viewer: Viewer) -> list[OpenAlert]: ...

    async def acknowledge(self, rt: Runtime, viewer: Viewer, alert_id: str, choice: str) -> Ack:
        """DONE if it was open and is now acknowledged by the viewer; ALREADY if someone did
        before."""
        ...


async def alerts_page(request: Request, c: Console, viewer: Viewer) -> Response:
    assert c.alerts is not None
    alerts = await c.alerts.list_open(c.rt, viewer)
    alerts.sort(key=lambda a: (not a.urgent, a.at))
    done = request.query_params.get("done", "")
    return c.render(
        request,
        "alerts.html",
        viewer=viewer,
        alerts=alerts,
        done=done if done in ("1", "already") else "",
    )


async def acknowledge(request: Request, c: Console, viewer: Viewer) -> Response:
    assert c.alerts is not None
    form = request.state.form
    alert_id = str(form.get("alert", ""))[:64]
    choice = str(form.get("choice", ""))[:32]
    result = await c.alerts.acknowledge(c.rt, viewer, alert_id, choice)
    if result is Ack.REFUSED:
        return c.render(request, "refused.html", 404, viewer=viewer, why="not_found")
    back = str(form.get("back", ""))
    target = back if _safe_back(back) else "/alerts"
    done = "1" if result is Ack.DONE else "already"
    return RedirectResponse(f"{target}?done={done}", status_code=303)


def _safe_back(path: str) -> bool:
    """Only a client page of this console: never an address elsewhere."""
    code = path.removeprefix("/clients/")
    bare = code.replace("-", "")
    return (
        path.startswith("/clients/") and 0 < len(code) <= 16 and bare.isascii() and bare.isalnum()
    )


ROUTES = [("/alerts", alerts_page, False), ("/alerts/acknowledge", acknowledge, True)]
