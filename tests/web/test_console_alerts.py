"""The Alerts page over `app.console_alerts`: open alerts of the clients the viewer reads, urgent
first, acknowledged through a form with its CSRF token by the same `app.alerts.acknowledge` as a
tap; a supervisor reads and never acknowledges; another therapist's alert is "not found",
however its id is typed. The caseload and the client page show the open ones too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from app import alerts
from app.console_alerts import ConsoleAlerts
from storage import people
from storage.models import Alert, AuditEvent
from tests.web.conftest import Practice
from tests.web.test_console_http import BASE, csrf_of, sign_in
from web.app import console_app


async def raise_alert(practice: Practice, alias: str, *, urgent: bool) -> int:
    """An alert about a client, as the bot raises one (nobody's chat is bound here)."""
    rt = practice.rt
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        client = await people.client_by_code(s, practice.codes[alias])
        assert client is not None
        raised = await alerts.raise_alert(
            s,
            rt,
            client=client,
            kind=alerts.CRISIS if urgent else alerts.WITHDRAWAL,
            cause="suicide" if urgent else "missed",
            urgent=urgent,
            recipient=None,
            text="",
            practice=await people.get_practice(s, now),
            now=now,
        )
        return raised.id


async def stored(practice: Practice) -> dict[int, tuple[str | None, int | None]]:
    async with practice.rt.sessions() as s:
        return {a.id: (a.ack_choice, a.ack_by) for a in await s.scalars(select(Alert))}


async def actions(practice: Practice) -> list[tuple[str, str, int | None]]:
    async with practice.rt.sessions() as s:
        rows = await s.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(r.actor, r.action, r.client_id) for r in rows]


@pytest.fixture
async def web(practice: Practice) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app(practice.rt, alerts=ConsoleAlerts()))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@pytest.fixture
async def raised(practice: Practice) -> dict[str, int]:
    flag = await raise_alert(practice, "A.S.", urgent=False)
    practice.rt.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    crisis = await raise_alert(practice, "B.T.", urgent=True)
    others = await raise_alert(practice, "C.U.", urgent=True)
    return {"flag": flag, "crisis": crisis, "others": others}


async def test_urgent_first_and_acknowledged_with_the_token(
    practice: Practice, web: httpx.AsyncClient, raised: dict[str, int]
) -> None:
    await sign_in(web, await practice.link(practice.dana))
    page = await web.get("/alerts")
    assert page.status_code == 200 and 'href="/alerts"' in page.text
    assert page.text.index("B.T.") < page.text.index("A.S.") and "C.U." not in page.text
    assert page.text.count('value="not_concern"') == 1  # an urgent alert is never "not a concern"
    crisis = str(raised["crisis"])
    no_token = await web.post("/alerts/acknowledge", data={"alert": crisis, "choice": "seen"})
    assert no_token.status_code == 403
    token = csrf_of(page.text)
    wrong = {"alert": crisis, "choice": "not_concern", "csrf": token}
    assert (await web.post("/alerts/acknowledge", data=wrong)).status_code == 404
    assert all(choice is None for choice, _ in (await stored(practice)).values())

    done = await web.post(
        "/alerts/acknowledge", data={"alert": crisis, "choice": "contacted", "csrf": token}
    )
    assert done.status_code == 303 and done.headers["location"] == "/alerts?done=1"
    assert (await stored(practice))[raised["crisis"]] == ("contacted", practice.dana)
    log = await actions(practice)
    assert (f"therapist:{practice.dana}", "console_alerts", None) in log
    assert log[-1][:2] == (f"therapist:{practice.dana}", "alert_contacted")
    again = await web.post(
        "/alerts/acknowledge", data={"alert": crisis, "choice": "seen", "csrf": token}
    )
    assert again.headers["location"] == "/alerts?done=already"
    assert (await stored(practice))[raised["crisis"]] == ("contacted", practice.dana)
    assert "B.T." not in (await web.get("/alerts")).text


async def test_another_therapist_s_alert_is_not_found_however_typed(
    practice: Practice, web: httpx.AsyncClient, raised: dict[str, int]
) -> None:
    await sign_in(web, await practice.link(practice.dana))
    token = csrf_of((await web.get("/alerts")).text)
    for alert_id in (str(raised["others"]), "999999", "-1", "1e3", "", "٣", "1" * 40):
        answer = await web.post(
            "/alerts/acknowledge", data={"alert": alert_id, "choice": "seen", "csrf": token}
        )
        assert answer.status_code == 404, alert_id
    assert (await stored(practice))[raised["others"]] == (None, None)
    # An address elsewhere is never where the form sends back to.
    for back in ("https://evil.test/", "//evil.test", "/clients/../signout", "/clients/"):
        answer = await web.post(
            "/alerts/acknowledge",
            data={"alert": str(raised["flag"]), "choice": "seen", "csrf": token, "back": back},
        )
        assert answer.headers["location"].startswith("/alerts?"), back


async def test_a_supervisor_reads_but_never_acknowledges(
    practice: Practice, web: httpx.AsyncClient, raised: dict[str, int]
) -> None:
    await sign_in(web, await practice.link(practice.supervisor))
    page = await web.get("/alerts")
    assert "A.S." in page.text and "B.T." in page.text and "C.U." not in page.text
    assert 'name="choice"' not in page.text and "(read only)" in page.text
    refused = await web.post(
        "/alerts/acknowledge",
        data={"alert": str(raised["crisis"]), "choice": "seen", "csrf": csrf_of(page.text)},
    )
    assert refused.status_code == 403
    assert all(choice is None for choice, _ in (await stored(practice)).values())


async def test_an_admin_acknowledges_any_and_the_caseload_and_client_page_show_them(
    practice: Practice, web: httpx.AsyncClient, raised: dict[str, int]
) -> None:
    await sign_in(web, await practice.link(practice.dana))
    caseload = await web.get("/caseload")
    rows = caseload.text.split("<tbody>", 1)[1]
    assert rows.index("B.T.") < rows.index("A.S.")  # an open urgent alert comes first
    assert "open urgent: 1" in rows and "open flags: 1" in rows
    code = practice.codes["A.S."]
    client = await web.get(f"/clients/{code}")
    assert 'id="alerts"' in client.text and client.text.count('name="choice"') == 3
    done = await web.post(
        "/alerts/acknowledge",
        data={
            "alert": str(raised["flag"]),
            "choice": "not_concern",
            "csrf": csrf_of(client.text),
            "back": f"/clients/{code}",
        },
    )
    assert done.headers["location"] == f"/clients/{code}?done=1"
    assert 'id="alerts"' not in (await web.get(f"/clients/{code}")).text

    web.cookies.clear()
    await sign_in(web, await practice.link(practice.admin))
    page = await web.get("/alerts")
    assert "C.U." in page.text
    done = await web.post(
        "/alerts/acknowledge",
        data={"alert": str(raised["others"]), "choice": "seen", "csrf": csrf_of(page.text)},
    )
    assert done.status_code == 303
    assert (await stored(practice))[raised["others"]] == ("seen", practice.admin)


async def test_without_a_source_there_is_no_alerts_page(practice: Practice) -> None:
    transport = httpx.ASGITransport(app=console_app(practice.rt))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        await sign_in(client, await practice.link(practice.dana))
        assert (await client.get("/alerts")).status_code == 404
        assert 'href="/alerts"' not in (await client.get("/caseload")).text


async def test_the_client_s_alias_not_name_is_all_a_page_shows(
    practice: Practice, web: httpx.AsyncClient, raised: dict[str, int]
) -> None:
    await sign_in(web, await practice.link(practice.dana))
    page = await web.get("/alerts")
    assert "B.T." in page.text and "Bob" not in page.text and "Tate" not in page.text
