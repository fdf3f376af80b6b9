"""The Alerts page against its interface (`web.alerts.AlertsSource`), with a source kept in
memory here: the page lists what the source gives the viewer, urgent first, and acknowledges
only through a form with its CSRF token. Without a source there is no page and no menu entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from app.console import Viewer
from app.runtime import Runtime
from tests.web.conftest import Practice
from tests.web.test_console_http import BASE, csrf_of, sign_in
from web.alerts import OpenAlert
from web.app import console_app


class Remembered:
    """Alerts of Dana's clients; only Dana may acknowledge (as `app/` would decide)."""

    def __init__(self, practice: Practice) -> None:
        now = practice.rt.clock.now()
        self.dana = practice.dana
        self.open = {
            "a1": OpenAlert("a1", practice.codes["A.S."], "A.S.", False, now, "falling alliance"),
            "a2": OpenAlert(
                "a2", practice.codes["B.T."], "B.T.", True, now + timedelta(hours=1), "crisis"
            ),
        }

    async def list_open(self, rt: Runtime, viewer: Viewer) -> list[OpenAlert]:
        readable = viewer.therapist_id == self.dana or self.dana in viewer.supervised
        return list(self.open.values()) if readable else []

    async def acknowledge(self, rt: Runtime, viewer: Viewer, alert_id: str) -> bool:
        if viewer.therapist_id != self.dana or alert_id not in self.open:
            return False
        del self.open[alert_id]
        return True


@pytest.fixture
async def web(practice: Practice) -> AsyncIterator[tuple[httpx.AsyncClient, Remembered]]:
    source = Remembered(practice)
    transport = httpx.ASGITransport(app=console_app(practice.rt, alerts=source))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client, source


async def test_urgent_first_and_acknowledged_with_the_token(
    practice: Practice, web: tuple[httpx.AsyncClient, Remembered]
) -> None:
    client, source = web
    await sign_in(client, await practice.link(practice.dana))
    page = await client.get("/alerts")
    assert page.status_code == 200 and 'href="/alerts"' in page.text
    assert page.text.index("B.T.") < page.text.index("A.S.")
    assert (await client.post("/alerts/acknowledge", data={"alert": "a2"})).status_code == 403
    assert set(source.open) == {"a1", "a2"}
    done = await client.post(
        "/alerts/acknowledge", data={"alert": "a2", "csrf": csrf_of(page.text)}
    )
    assert done.status_code == 303 and set(source.open) == {"a1"}
    again = await client.post(
        "/alerts/acknowledge", data={"alert": "a2", "csrf": csrf_of(page.text)}
    )
    assert again.status_code == 404


async def test_a_supervisor_reads_but_the_source_refuses_the_acknowledgement(
    practice: Practice, web: tuple[httpx.AsyncClient, Remembered]
) -> None:
    client, source = web
    await sign_in(client, await practice.link(practice.supervisor))
    page = await client.get("/alerts")
    assert "A.S." in page.text
    refused = await client.post(
        "/alerts/acknowledge", data={"alert": "a1", "csrf": csrf_of(page.text)}
    )
    assert refused.status_code == 404 and set(source.open) == {"a1", "a2"}


async def test_without_a_source_there_is_no_alerts_page(practice: Practice) -> None:
    transport = httpx.ASGITransport(app=console_app(practice.rt))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        await sign_in(client, await practice.link(practice.dana))
        assert (await client.get("/alerts")).status_code == 404
        assert 'href="/alerts"' not in (await client.get("/caseload")).text
