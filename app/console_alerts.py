"""Alerts in the practice console: what is open among what the viewer reads, and the
acknowledgement, through the same `app.alerts.acknowledge` as a tap on the bot's buttons (the
Telegram messages are edited the same way: who, how, buttons gone).

Who sees and answers what is decided here, once: an alert is seen by whoever may read its
client (`app.console.may_read`) or was shown it in Telegram (a safety contact); it is answered
by whoever may change the client (`may_edit`: never a supervisor for their supervisees) or was
shown it, as in Telegram. Anything else is "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app import alerts
from app.alerts import Ack, AlertView
from app.console import ReadOnly, Viewer, may_edit, may_read
from app.runtime import Runtime, Session
from flows.i18n import t
from storage import audit, people
from storage.models import Client


@dataclass(frozen=True)
class OpenAlert:
    """One open alert as a page shows it: its id, the client by code and alias (never a name),
    urgent or not, since when, a short phrase without the client's words, and the answers the
    viewer may give (none: read only). `linked`: the viewer may open the client's page."""

    id: str
    client_code: str
    alias: str
    urgent: bool
    at: datetime
    summary: str
    choices: tuple[tuple[str, str], ...] = ()  # (choice, label)
    linked: bool = True


def _entry(view: AlertView, client: Client, viewer: Viewer, shown: bool) -> OpenAlert:
    lang = viewer.language
    answerable = may_edit(viewer, client) or shown
    return OpenAlert(
        id=str(view.id),
        client_code=client.code,
        alias=view.alias,
        urgent=view.urgent,
        at=view.raised_at,
        summary=alerts.kind_text(view, lang),
        choices=tuple((c, t(lang, f"alert.button_{c}")) for c in alerts.choices(view.urgent))
        if answerable
        else (),
        linked=may_read(viewer, client),
    )


async def visible(
    s: Session, rt: Runtime, viewer: Viewer, client_ids: set[int] | None = None
) -> list[OpenAlert]:
    """The open alerts the viewer sees (of these clients only, if given), oldest first."""
    shown = await alerts.open_shown_to(s, viewer.therapist_id)
    found = []
    for view in await alerts.open_for_practice(s, rt, client_ids):
        client = await people.client_by_id(s, view.client_id)
        if client is not None and (may_read(viewer, client) or view.id in shown):
            found.append(_entry(view, client, viewer, view.id in shown))
    return found


class ConsoleAlerts:
    """The Alerts page's source (`web.alerts.AlertsSource`)."""

    async def list_open(self, rt: Runtime, viewer: Viewer) -> list[OpenAlert]:
        now = rt.clock.now()
        async with rt.sessions() as s, s.begin():
            found = await visible(s, rt, viewer)
            await audit.audit(s, actor=viewer.actor, action="console_alerts", now=now)
        return found

    async def acknowledge(self, rt: Runtime, viewer: Viewer, alert_id: str, choice: str) -> Ack:
        """`Ack.REFUSED` for an alert the viewer does not see (or a choice it does not offer);
        `ReadOnly` for one they see but may not answer (a supervisor)."""
        if not (alert_id.isascii() and alert_id.isdigit() and len(alert_id) <= 12):
            return Ack.REFUSED
        now = rt.clock.now()
        async with rt.sessions() as s, s.begin():
            view = await alerts.view_of(s, rt, int(alert_id))
            client = None if view is None else await people.client_by_id(s, view.client_id)
            if view is None or client is None:
                return Ack.REFUSED
            shown = viewer.therapist_id in await alerts.shown_to(s, view.id)
            if not (shown or may_read(viewer, client)):
                return Ack.REFUSED
            if not (shown or may_edit(viewer, client)):
                raise ReadOnly
            therapist = await people.therapist_by_id(s, viewer.therapist_id)
            assert therapist is not None
            done = await alerts.acknowledge(
                s, rt, alert_id=view.id, therapist=therapist, choice=choice, now=now, entitled=True
            )
        return done.result
