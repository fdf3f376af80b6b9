"""The console against a hostile or unlucky user: a lost phone, a borrowed token, a huge or
malformed upload, and the log while all of this happens."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest

from app import admin
from tests.web.conftest import Practice
from tests.web.test_console_http import BASE, csrf_of, sign_in
from web.app import MAX_BODY, console_app


@pytest.fixture
async def web(practice: Practice) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app(practice.rt))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def test_moving_a_therapists_account_ends_their_console_sessions_and_links(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    """A therapist who lost their phone is moved to a new account: whoever holds the old phone
    (a signed-in console, or a sign-in link from `/web` not used yet) is out too."""
    unused = await practice.link(practice.dana)
    await sign_in(web, await practice.link(practice.dana))
    assert (await web.get("/caseload")).status_code == 200
    async with practice.rt.sessions() as s, s.begin():
        from storage.models import Therapist

        dana = await s.get(Therapist, practice.dana)
        assert dana is not None
        dana.telegram_user_id, dana.chat_id = 4242, 4242  # joined on Telegram
    await admin.move_therapist_account(practice.rt, practice.dana)

    assert (await web.get("/caseload")).status_code == 401
    web.cookies.clear()
    assert (await sign_in(web, unused)).status_code == 403


async def test_a_csrf_token_of_one_session_is_refused_in_another(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    await sign_in(web, await practice.link(practice.dana))
    stolen = csrf_of((await web.get("/caseload")).text)
    web.cookies.clear()
    await sign_in(web, await practice.link(practice.dana))  # Dana's second browser
    code = practice.codes["A.S."]
    answer = await web.post(f"/clients/{code}/cadence", data={"csrf": stolen, "cadence": "off"})
    assert answer.status_code == 403
    assert (await admin.list_clients(practice.rt, practice.dana))[0]["cadence"] is None


async def test_a_huge_body_is_refused_before_it_is_read(
    practice: Practice, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signed-in therapist (not even an admin) posts a file far larger than any calendar to
    any form: refused with 413 from its length, before the form is parsed (which would spool it
    to disk) and before the CSRF check."""
    await sign_in(web, await practice.link(practice.dana))
    csrf = csrf_of((await web.get("/caseload")).text)
    parsed: list[bool] = []
    from starlette.requests import Request

    original = Request.form

    def spy(self: Request, **kwargs: object):  # type: ignore[no-untyped-def]
        parsed.append(True)
        return original(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Request, "form", spy)
    big = b"B" * (MAX_BODY + 1)
    for path in ("/sessions/import", f"/clients/{practice.codes['A.S.']}/pause", "/signin"):
        answer = await web.post(
            path,
            data={"csrf": csrf, "therapist": str(practice.dana)},
            files={"calendar": ("../../../etc/passwd", big, "text/calendar")},
        )
        assert answer.status_code == 413, path
        assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert not parsed

    # Without a length (chunked), counted as it arrives.
    async def chunks() -> AsyncIterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="calendar"; filename="c.ics"\r\n'
            b"Content-Type: text/calendar\r\n\r\n"
        )
        for _ in range(MAX_BODY // (1 << 20) + 2):
            yield b"x" * (1 << 20)
        yield b"\r\n--b--\r\n"

    answer = await web.post(
        f"/clients/{practice.codes['A.S.']}/pause",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert answer.status_code == 413


async def test_a_calendar_just_under_the_limit_is_still_read(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    await sign_in(web, await practice.link(practice.admin))
    csrf = csrf_of((await web.get("/settings")).text)
    calendar = b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"p" * (9 << 20) + b"\r\nEND:VCALENDAR\r\n"
    answer = await web.post(
        "/sessions/import",
        data={"csrf": csrf, "therapist": str(practice.dana), "dry_run": "on"},
        files={"calendar": ("cal.ics", calendar, "text/calendar")},
    )
    assert answer.status_code in (200, 400) and answer.status_code != 413


@pytest.mark.parametrize(
    "calendar",
    [
        b"\xff\xfe\x00garbage",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:99999999T999999Z\r\nEND:VEVENT\r\n",
        b"BEGIN:VCALENDAR\r\n" + b"BEGIN:VEVENT\r\n" * 5000 + b"END:VCALENDAR\r\n",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=../../etc/passwd:"
        b"20260305T140000\r\nSUMMARY:Session #RC-ZZZZ\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260305T140000Z\r\n"
        b"RRULE:FREQ=SECONDLY;COUNT=100000000\r\nSUMMARY:Session #RC-ZZZZ\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n",
    ],
    ids=["binary", "bad-date", "unclosed-nesting", "tzid-traversal", "rrule-bomb"],
)
async def test_a_malformed_calendar_is_refused_in_one_line(
    practice: Practice, web: httpx.AsyncClient, calendar: bytes
) -> None:
    await sign_in(web, await practice.link(practice.admin))
    csrf = csrf_of((await web.get("/settings")).text)
    answer = await web.post(
        "/sessions/import",
        data={"csrf": csrf, "therapist": str(practice.dana), "dry_run": "on"},
        files={"calendar": ("cal.ics", calendar, "text/calendar")},
    )
    assert answer.status_code in (200, 400)
    assert await admin.list_sessions(practice.rt) == []


async def test_no_token_or_name_in_any_log_line(
    practice: Practice,
    web: httpx.AsyncClient,
    process_log: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.exc import OperationalError

    token = await practice.link(practice.dana)
    await sign_in(web, token)
    cookie = next(iter(web.cookies.values()))
    page = await web.get(f"/clients/{practice.codes['A.S.']}")
    csrf = csrf_of(page.text)
    await web.post(
        f"/clients/{practice.codes['A.S.']}/cadence",
        data={"csrf": csrf, "cadence": "every 0 days <b>Alice</b>"},
    )
    await web.get("/clients/RC-ZZZZ")

    async def away(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT 'Alice Smith'", {}, Exception("Alice Smith"))

    monkeypatch.setattr("app.console_pages.staff.set_cadence", away)
    answer = await web.post(
        f"/clients/{practice.codes['A.S.']}/cadence", data={"csrf": csrf, "cadence": "off"}
    )
    assert answer.status_code == 503
    await web.post("/signout", data={"csrf": csrf})
    text = process_log.getvalue()
    assert "database is unavailable" in text  # the capture works: the one line expected
    for secret in (token, cookie, csrf, "Alice", "Smith", "Dana Lee", "signin/"):
        assert secret not in text, secret


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e/%2e%2e/app/config.py",
        "/static/..%5c..%5capp%5cconfig.py",
        "/static//etc/passwd",
        "/static/console.css%00.py",
    ],
)
async def test_static_files_never_leave_their_folder(web: httpx.AsyncClient, path: str) -> None:
    answer = await web.get(path)
    assert answer.status_code in (400, 404), answer.status_code
    assert "import" not in answer.text and "root:" not in answer.text


async def test_a_broken_multipart_body_is_refused_and_changes_nothing(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    await sign_in(web, await practice.link(practice.dana))
    code = practice.codes["A.S."]
    for body, kind in (
        (b'--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n', "boundary=x"),
        (b"garbage", "boundary="),
        (b"a=" + b"%" * 5000, ""),
    ):
        answer = await web.post(
            f"/clients/{code}/pause",
            content=body,
            headers={
                "content-type": f"multipart/form-data; {kind}"
                if kind
                else "application/x-www-form-urlencoded"
            },
        )
        assert answer.status_code in (400, 403), answer.status_code
    assert {c["status"] for c in await admin.list_clients(practice.rt, practice.dana)} == {
        "invited"
    }


async def test_digits_that_are_not_numbers_are_refused_not_a_server_error(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    """`str.isdigit` is true for "²" and "٣": a number field given one is a 400, never a 500."""
    await sign_in(web, await practice.link(practice.admin))
    csrf = csrf_of((await web.get("/settings")).text)
    code = practice.codes["A.S."]
    for odd in ("²", "³⁴", "٣", "①"):
        answers = [
            await web.post(f"/clients/{code}/pause", data={"csrf": csrf, "days": odd}),
            await web.post(
                "/sessions/add",
                data={"csrf": csrf, "code": code, "at": "2027-01-01T10:00", "minutes": odd},
            ),
            await web.post(f"/sessions/{odd}", data={"csrf": csrf, "action": "cancel"}),
            await web.post(
                "/people/add",
                data={"csrf": csrf, "kind": "client", "name": "X Y", "therapist": odd},
            ),
            await web.get(f"/caseload?therapist={odd}"),
        ]
        assert all(a.status_code < 500 for a in answers), [a.status_code for a in answers]


async def test_names_and_aliases_with_markup_are_shown_as_text(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    evil = '<img src=x onerror="alert(1)">'
    added = await admin.add_therapist(practice.rt, f"Eve {evil}", "Europe/Berlin")
    client = await admin.add_client(practice.rt, added["id"], "Mal Ory", alias=f"M{evil}"[:40])
    await sign_in(web, await practice.link(practice.admin))
    pages = [
        await web.get("/caseload"),
        await web.get(f"/caseload?therapist={added['id']}"),
        await web.get(f"/clients/{client['code']}"),
        await web.get("/people"),
        await web.get(f"/audit?client={client['code']}"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert "<img" not in page.text and 'onerror="' not in page.text
