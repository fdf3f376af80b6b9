"""The console's rules over HTTP, without a browser: sign-in links, sessions, CSRF, who may
read and change what, and the headers every answer carries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from app import admin
from app.console import IDLE, LINK_TTL, set_role
from app.runtime import Runtime
from tests.web.conftest import Practice
from web.app import console_app

BASE = "http://console.test"


@pytest.fixture
async def web(practice: Practice) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app(practice.rt))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def sign_in(web: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await web.get(f"/signin/{token}")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre is not None
    return await web.post("/signin", data={"token": token, "pre": pre.group(1)})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def test_a_link_signs_in_once_and_the_cookie_is_strict(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    token = await practice.link(practice.dana)
    assert (await web.get("/caseload")).status_code == 401
    answer = await sign_in(web, token)
    assert answer.status_code == 303 and answer.headers["location"] == "/caseload"
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "rapport_session=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    caseload = await web.get("/caseload")
    assert caseload.status_code == 200
    assert "A.S." in caseload.text and "B.T." in caseload.text and "C.U." not in caseload.text
    # The same link again, in another browser: refused.
    web.cookies.clear()
    assert (await sign_in(web, token)).status_code == 403
    assert (await web.get("/caseload")).status_code == 401


async def test_a_link_expires_after_ten_minutes_and_a_session_when_idle(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    stale = await practice.link(practice.dana)
    practice.rt.clock.advance(LINK_TTL + timedelta(seconds=1))  # type: ignore[attr-defined]
    assert (await sign_in(web, stale)).status_code == 403
    assert (await sign_in(web, await practice.link(practice.dana))).status_code == 303
    assert (await web.get("/caseload")).status_code == 200
    practice.rt.clock.advance(IDLE - timedelta(minutes=1))  # type: ignore[attr-defined]
    assert (await web.get("/caseload")).status_code == 200  # seen: the idle clock restarts
    practice.rt.clock.advance(IDLE + timedelta(seconds=1))  # type: ignore[attr-defined]
    assert (await web.get("/caseload")).status_code == 401


async def test_a_page_never_spends_the_link(practice: Practice, web: httpx.AsyncClient) -> None:
    """A link preview fetches the page: only the button's POST signs in."""
    token = await practice.link(practice.dana)
    for _ in range(3):
        assert (await web.get(f"/signin/{token}")).status_code == 200
    assert (await sign_in(web, token)).status_code == 303


async def test_garbage_tokens_are_refused_alike(practice: Practice, web: httpx.AsyncClient) -> None:
    for token in ("x", "A" * 43, "\u200b" * 30, "A" * 500):
        assert (await sign_in(web, token)).status_code in (403, 404)


async def test_a_form_without_its_csrf_token_changes_nothing(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    await sign_in(web, await practice.link(practice.dana))
    code = practice.codes["A.S."]
    before = (await admin.list_clients(practice.rt, practice.dana))[0]["cadence"]
    for data in ({"cadence": "every 3 days at 10:00"}, {"cadence": "off", "csrf": "forged"}):
        answer = await web.post(f"/clients/{code}/cadence", data=data)
        assert answer.status_code == 403
    assert (await admin.list_clients(practice.rt, practice.dana))[0]["cadence"] == before
    page = await web.get(f"/clients/{code}")
    answer = await web.post(
        f"/clients/{code}/cadence",
        data={"cadence": "every 3 days at 10:00", "csrf": csrf_of(page.text)},
    )
    assert answer.status_code == 200 and "every 3 days at 10:00" in answer.text


async def test_another_therapists_client_is_not_found_even_by_guessing(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    await sign_in(web, await practice.link(practice.eli))
    page = await web.get(f"/clients/{practice.codes['C.U.']}")
    csrf = csrf_of(page.text)
    for code in (practice.codes["A.S."], "RC-ZZZZ", "%00", "1", "A.S."):
        assert (await web.get(f"/clients/{code}")).status_code == 404
    answer = await web.post(
        f"/clients/{practice.codes['A.S.']}/pause", data={"csrf": csrf, "days": "3"}
    )
    assert answer.status_code == 404
    assert (await web.get(f"/caseload?therapist={practice.dana}")).status_code == 404
    clients = await admin.list_clients(practice.rt, practice.dana)
    assert {c["status"] for c in clients} == {"invited"}


async def test_a_supervisor_reads_but_may_not_change(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    await sign_in(web, await practice.link(practice.supervisor))
    caseload = await web.get("/caseload")
    assert "A.S." in caseload.text and "C.U." not in caseload.text
    page = await web.get(f"/clients/{practice.codes['A.S.']}")
    assert page.status_code == 200 and "Read only" in page.text and "Set cadence" not in page.text
    answer = await web.post(
        f"/clients/{practice.codes['A.S.']}/cadence",
        data={"cadence": "off", "csrf": csrf_of(page.text)},
    )
    assert answer.status_code == 403
    assert (await admin.list_clients(practice.rt, practice.dana))[0]["cadence"] is None
    assert (await web.get(f"/clients/{practice.codes['C.U.']}")).status_code == 404


async def test_reads_are_audited_and_nothing_names_a_client_in_a_url(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    await sign_in(web, await practice.link(practice.dana))
    caseload = await web.get("/caseload")
    hrefs = re.findall(r'(?:href|action)="([^"]+)"', caseload.text)
    assert hrefs and not any("Alice" in h or "A.S." in h for h in hrefs)
    await web.get(f"/clients/{practice.codes['A.S.']}")
    log = await admin.audit_log(practice.rt)
    actions = [(e["actor"], e["action"], e["client"]) for e in log]
    who = f"therapist:{practice.dana}"
    assert (who, "console_caseload", None) in actions
    client_id = (await admin.list_clients(practice.rt, practice.dana))[0]["id"]
    assert (who, "console_client", client_id) in actions


async def test_every_answer_carries_the_strict_headers(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    for path in ("/caseload", "/signin/abc", "/static/console.css", "/nowhere"):
        answer = await web.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"


async def test_signing_out_or_a_new_role_ends_the_session(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    await sign_in(web, await practice.link(practice.dana))
    page = await web.get("/caseload")
    kept = dict(web.cookies)
    answer = await web.post("/signout", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 303
    web.cookies.update(kept)  # the old cookie, kept by someone: no longer a session
    assert (await web.get("/caseload")).status_code == 401
    web.cookies.clear()
    await sign_in(web, await practice.link(practice.dana))
    assert (await web.get("/caseload")).status_code == 200
    await set_role(practice.rt, practice.dana, "admin")
    assert (await web.get("/caseload")).status_code == 401


async def test_another_replica_serves_the_same_session(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    """Sessions live in the database: a second process on it knows the browser."""
    await sign_in(web, await practice.link(practice.dana))
    other_rt = Runtime.create(
        practice.rt.settings, clock=practice.rt.clock, cipher=practice.rt.cipher
    )
    try:
        transport = httpx.ASGITransport(app=console_app(other_rt))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as other:
            other.cookies.update(web.cookies)
            answer = await other.get("/caseload")
            assert answer.status_code == 200 and "A.S." in answer.text
    finally:
        await other_rt.close()


async def test_over_https_the_cookie_is_secure_and_host_bound(practice: Practice) -> None:
    settings = practice.rt.settings.model_copy(
        update={"console_url": "https://rapport.example.org"}
    )
    rt = Runtime.create(settings, clock=practice.rt.clock, cipher=practice.rt.cipher)
    try:
        transport = httpx.ASGITransport(app=console_app(rt))
        async with httpx.AsyncClient(
            transport=transport, base_url="https://rapport.example.org"
        ) as web:
            answer = await sign_in(web, await practice.link(practice.dana))
            cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
            session = next(v for v in cookies if v.startswith("__Host-rapport="))
            assert "Secure" in session and "HttpOnly" in session and "Path=/" in session
            assert "Domain" not in session
            assert (await web.get("/caseload")).status_code == 200
    finally:
        await rt.close()


async def test_a_database_away_gets_503_and_changes_nothing(
    practice: Practice, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import OperationalError

    await sign_in(web, await practice.link(practice.dana))
    page = await web.get(f"/clients/{practice.codes['A.S.']}")

    async def away(*args: object, **kwargs: object) -> None:
        raise OperationalError("UPDATE client SET cadence='secret words'", {}, Exception("down"))

    monkeypatch.setattr("app.console_pages.staff.set_cadence", away)
    answer = await web.post(
        f"/clients/{practice.codes['A.S.']}/cadence",
        data={"csrf": csrf_of(page.text), "cadence": "off"},
    )
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "secret" not in caplog.text and "OperationalError" in caplog.text


async def test_the_client_s_zone_language_and_quiet_hours_by_the_cli_s_rules(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    code = practice.codes["A.S."]
    await sign_in(web, await practice.link(practice.dana))
    token = csrf_of((await web.get(f"/clients/{code}")).text)
    bad = await web.post(
        f"/clients/{code}/settings", data={"csrf": token, "timezone": "Mars/Olympus"}
    )
    assert bad.status_code == 400 and "Mars/Olympus" in bad.text
    done = await web.post(
        f"/clients/{code}/settings",
        data={"csrf": token, "timezone": "Asia/Tokyo", "language": "es", "quiet": "22:00-08:00"},
    )
    assert done.status_code == 200 and "Saved." in done.text
    (alice,) = [c for c in await admin.list_clients(practice.rt) if c["code"] == code]
    assert (alice["timezone"], alice["language"]) == ("Asia/Tokyo", "es")
    assert 'value="22:00-08:00"' in done.text
    others = await web.post(
        f"/clients/{practice.codes['C.U.']}/settings", data={"csrf": token, "language": "ru"}
    )
    assert others.status_code == 404
    web.cookies.clear()
    await sign_in(web, await practice.link(practice.supervisor))
    token = csrf_of((await web.get(f"/clients/{code}")).text)
    read_only = await web.post(f"/clients/{code}/settings", data={"csrf": token, "language": "ru"})
    assert read_only.status_code == 403
    assert {c["language"] for c in await admin.list_clients(practice.rt)} == {None, "es"}


async def test_the_client_s_own_outcome_measures_by_the_cli_s_rules(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    """The client page sets what `rapport client set --outcome` sets: checked by the same rule,
    "default" back to the practice's, and a long list refused whole rather than cut to a shorter
    list that would still parse."""
    code = practice.codes["A.S."]
    await sign_in(web, await practice.link(practice.dana))
    page = await web.get(f"/clients/{code}")
    token = csrf_of(page.text)
    assert 'id="c_outcomes"' in page.text and 'placeholder="off"' in page.text

    async def own() -> str | None:
        (client,) = [c for c in await admin.list_clients(practice.rt) if c["code"] == code]
        return client["outcomes"]  # type: ignore[no-any-return]

    bad = await web.post(f"/clients/{code}/settings", data={"csrf": token, "outcomes": "phq-9:3d"})
    assert bad.status_code == 400 and "--outcome" in bad.text and await own() is None
    padded = "phq-9:14d" + " " * 500 + ",gad-7:28d"
    done = await web.post(f"/clients/{code}/settings", data={"csrf": token, "outcomes": padded})
    assert done.status_code == 200 and await own() == "phq-9:14d,gad-7:28d"
    assert 'value="phq-9:14d,gad-7:28d"' in done.text
    kept = await web.post(f"/clients/{code}/settings", data={"csrf": token, "language": "es"})
    assert kept.status_code == 200 and await own() == "phq-9:14d,gad-7:28d"
    back = await web.post(f"/clients/{code}/settings", data={"csrf": token, "outcomes": "default"})
    assert back.status_code == 200 and await own() is None
