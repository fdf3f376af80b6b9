"""The admin's pages over HTTP: settings checked by the CLI's rules, the cadence preview,
people, sessions, the ICS import with its dry run, the audit log; nobody else gets in."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app import admin
from flows.instruments import INSTRUMENTS_DIR
from storage import checkins, people
from tests.web.conftest import Practice
from tests.web.test_console_http import BASE, csrf_of, sign_in
from web.app import console_app


@pytest.fixture
async def web(practice: Practice) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app(practice.rt))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@pytest.fixture
async def as_admin(practice: Practice, web: httpx.AsyncClient) -> str:
    await sign_in(web, await practice.link(practice.admin))
    return csrf_of((await web.get("/settings")).text)


def ics(code: str, start: str, uid: str = "e1") -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTART:{start}\r\nDTEND:{start[:-5]}5000Z\r\n"
        f"SUMMARY:Session #{code}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


async def test_only_an_admin_sees_the_admin_pages(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    for who in (practice.dana, practice.supervisor):
        web.cookies.clear()
        await sign_in(web, await practice.link(who))
        csrf = csrf_of((await web.get("/caseload")).text)
        for path in ("/settings", "/people", "/audit"):
            assert (await web.get(path)).status_code == 403
        answer = await web.post("/settings", data={"csrf": csrf, "cadence": "off"})
        assert answer.status_code == 403
    assert (await admin.practice_show(practice.rt))["cadence"] != "off"


async def test_settings_take_the_clis_rules_and_messages(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    bad = await web.post("/settings", data={"csrf": as_admin, "digest_lead": "9d"})
    assert bad.status_code == 400
    with pytest.raises(admin.AdminError) as cli:
        await admin.practice_set(practice.rt, digest_lead="9d")
    assert str(cli.value) in bad.text.replace("&#39;", "'")
    good = await web.post(
        "/settings",
        data={"csrf": as_admin, "cadence": "weekdays tue,fri at 18:00", "digest_comments": "on"},
    )
    assert good.status_code == 200 and "Saved: cadence" in good.text
    assert (await admin.practice_show(practice.rt))["cadence"] == "weekdays tue,fri at 18:00"
    measures = await web.post("/settings", data={"csrf": as_admin, "outcomes": "PHQ-9:14d"})
    assert measures.status_code == 200 and 'value="phq-9:14d"' in measures.text
    assert (await admin.practice_show(practice.rt))["outcomes"] == "phq-9:14d"
    wrong = await web.post("/settings", data={"csrf": as_admin, "outcomes": "phq-9:2d"})
    assert wrong.status_code == 400 and "--outcome: phq-9: every 2 days" in wrong.text
    assert (await admin.practice_show(practice.rt))["outcomes"] == "phq-9:14d"


async def test_the_console_names_shipped_instruments_only(
    practice: Practice, web: httpx.AsyncClient, as_admin: str, tmp_path: Path
) -> None:
    """A file on the server is the operator's to choose (the CLI takes a path); a page refuses
    one without opening it, so the answer is the same whether the file exists or not."""
    real = tmp_path / "own.yaml"
    shutil.copy(INSTRUMENTS_DIR / "gad-7.yaml", real)
    before = await admin.practice_show(practice.rt)
    for field, value in (
        ("instrument", str(real)),
        ("instrument", str(tmp_path / "missing.yaml")),
        ("instrument", str(tmp_path)),
        ("outcomes", f"phq-9:14d,{real}:28d"),
        ("outcomes", "/etc/passwd:14d"),
    ):
        answer = await web.post("/settings", data={"csrf": as_admin, field: value})
        assert answer.status_code == 400, (field, value)
        assert str(tmp_path) not in answer.text and "/etc" not in answer.text
        assert "the console offers gad-7, phq-9, rapport-brief" in answer.text
    assert await admin.practice_show(practice.rt) == before
    typo = await web.post("/settings", data={"csrf": as_admin, "instrument": "PHQ-9"})
    assert typo.status_code == 400 and "/flows/" not in typo.text
    shipped = await web.post("/settings", data={"csrf": as_admin, "instrument": "phq-9"})
    assert shipped.status_code == 200
    assert (await admin.practice_show(practice.rt))["instrument"] == "phq-9"
    # the operator's own file, by the CLI, is shown and kept when the form is saved unchanged
    await admin.practice_set(practice.rt, instrument=str(real))
    page = await web.get("/settings")
    kept = await web.post("/settings", data={"csrf": as_admin, "instrument": str(real)})
    assert str(real) in page.text and kept.status_code == 200
    assert (await admin.practice_show(practice.rt))["instrument"] == str(real)


async def test_the_preview_shows_the_next_checkins_in_the_sample_zone(
    web: httpx.AsyncClient, as_admin: str
) -> None:
    answer = await web.post(
        "/settings/preview",
        data={
            "csrf": as_admin,
            "cadence": "weekdays tue,fri at 18:00",
            "quiet_hours": "21:00-09:00",
            "zone": "America/New_York",
        },
    )
    assert answer.status_code == 200
    assert answer.text.count("18:00</li>") == 5  # local time in the sample's zone
    assert "Tue 03 Mar 2026 18:00" in answer.text
    bad = await web.post(
        "/settings/preview",
        data={"csrf": as_admin, "cadence": "sometimes", "quiet_hours": "21:00-09:00"},
    )
    assert bad.status_code == 400 and "cadence:" in bad.text


async def test_people_and_sessions(
    practice: Practice, web: httpx.AsyncClient, as_admin: str, caplog: pytest.LogCaptureFixture
) -> None:
    added = await web.post(
        "/people/add",
        data={"csrf": as_admin, "kind": "client", "name": "Dora Vale", "therapist": practice.eli},
    )
    assert added.status_code == 200 and "https://t.me/rapport_test_bot?start=" in added.text
    assert '<svg role="img" aria-label="QR code of the invite link"' in added.text
    code = practice.codes["A.S."]
    at = (practice.rt.clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    made = await web.post("/sessions/add", data={"csrf": as_admin, "code": code, "at": at})
    assert made.status_code == 200, made.text
    (session,) = await admin.list_sessions(practice.rt)
    moved = await web.post(
        f"/sessions/{session['id']}",
        data={"csrf": as_admin, "action": "move", "at": at[:-5] + "15:30"},
    )
    assert moved.status_code == 200
    (after_move,) = await admin.list_sessions(practice.rt)
    assert after_move["starts_at"] != session["starts_at"]
    await web.post(f"/sessions/{session['id']}", data={"csrf": as_admin, "action": "cancel"})
    assert (await admin.list_sessions(practice.rt))[0]["cancelled"]
    renewed = await web.post(f"/clients/{code}/invite", data={"csrf": as_admin})
    assert renewed.status_code == 200 and "start=" in renewed.text
    log = await admin.audit_log(practice.rt)
    assert (f"therapist:{practice.admin}", "invite") in {(e["actor"], e["action"]) for e in log}
    assert "Dora" not in caplog.text and "Alice" not in caplog.text


async def test_an_ics_upload_has_the_clis_dry_run(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    calendar = ics(practice.codes["A.S."], "20260305T140000Z")
    files = {"calendar": ("cal.ics", calendar, "text/calendar")}
    dry = await web.post(
        "/sessions/import",
        data={"csrf": as_admin, "therapist": str(practice.dana), "dry_run": "on"},
        files=files,
    )
    assert dry.status_code == 200 and "1 created" in dry.text and "dry run" in dry.text
    assert await admin.list_sessions(practice.rt) == []
    real = await web.post(
        "/sessions/import", data={"csrf": as_admin, "therapist": str(practice.dana)}, files=files
    )
    assert "1 created" in real.text and "dry run" not in real.text
    assert len(await admin.list_sessions(practice.rt)) == 1
    junk = await web.post(
        "/sessions/import",
        data={"csrf": as_admin, "therapist": str(practice.dana)},
        files={"calendar": ("x.ics", b"\x00not a calendar", "text/calendar")},
    )
    assert junk.status_code == 400


async def test_the_audit_log_filters_by_client_code(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    code = practice.codes["B.T."]
    await web.get(f"/clients/{code}")
    page = await web.get(f"/audit?client={code}")
    assert page.status_code == 200 and "console client" in page.text and code in page.text
    assert practice.codes["A.S."] not in page.text
    assert "no client with code" in (await web.get("/audit?client=RC-NONE")).text


async def test_an_admin_opens_one_therapists_caseload_at_a_time(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    own = await web.get("/caseload")
    assert own.status_code == 200 and "No clients yet" in own.text and "Dana Lee" in own.text
    dana = await web.get(f"/caseload?therapist={practice.dana}")
    assert "A.S." in dana.text and "B.T." in dana.text and "C.U." not in dana.text


async def test_hostile_input_is_refused_in_one_line(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    invisible = await web.post(
        "/people/add",
        data={"csrf": as_admin, "kind": "therapist", "name": "\u202e\u200b\u2060", "timezone": ""},
    )
    assert invisible.status_code == 400 and "--name" in invisible.text
    page = await web.get(f"/clients/{practice.codes['A.S.']}")
    for spec in ("x" * 100_000, "every 0 days at 25:00", "<script>alert(1)</script>"):
        answer = await web.post(
            f"/clients/{practice.codes['A.S.']}/cadence",
            data={"csrf": csrf_of(page.text), "cadence": spec},
        )
        assert answer.status_code == 400 and "<script>alert" not in answer.text
    many = {f"f{i}": "v" for i in range(500)}
    crowded = await web.post("/settings", data={"csrf": as_admin, **many})
    assert crowded.status_code in (200, 400)
    zone = await web.post(
        "/settings/preview",
        data={
            "csrf": as_admin,
            "cadence": "off",
            "quiet_hours": "21:00-09:00",
            "zone": "Mars/Base",
        },
    )
    assert zone.status_code == 400 and "unknown time zone" in zone.text


async def test_the_settings_page_has_every_option_of_the_cli(
    web: httpx.AsyncClient, as_admin: str
) -> None:
    """So that a practice needs no terminal for its settings: each `rapport practice set`
    option has its field (the crisis resources one per language)."""
    import inspect

    from cli.main import practice_set
    from flows.i18n import LANGUAGES

    page = (await web.get("/settings")).text
    for option in inspect.signature(practice_set).parameters:
        if option == "as_json":
            continue
        names = (
            [f"crisis_{lang}" for lang in LANGUAGES]
            if option == "crisis_resources"
            else ["outcomes"]  # the repeatable --outcome: one field, comma-separated
            if option == "outcome"
            else [option]
        )
        for name in names:
            assert f'name="{name}"' in page, option


async def test_safety_settings_and_crisis_resources_per_language(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    form = {"csrf": as_admin, "digest_comments": "on", "safety_item": "on"}
    bad = await web.post("/settings", data={**form, "alert_escalation": "2d"})
    assert bad.status_code == 400 and "--alert-escalation: 2d is outside 5m to 1d" in bad.text
    nobody = await web.post("/settings", data={**form, "safety_contact": "999"})
    assert nobody.status_code == 400 and "no therapist with id 999" in nobody.text
    good = await web.post(
        "/settings",
        data={
            **form,
            "safety_contact": str(practice.eli),
            "alert_escalation": "45m",
            "crisis_es": "Llame al 024",
            "crisis_ru": "Звоните 112",
            "crisis_en": "",
            "retention": "400d",
        },
    )
    assert good.status_code == 200
    shown = await admin.practice_show(practice.rt)
    assert shown["safety_contact"] == practice.eli
    assert shown["alert_escalation_minutes"] == 45
    assert shown["retention_days"] == 400
    assert shown["crisis_resources"] == {"es": "Llame al 024", "ru": "Звоните 112"}
    page = good.text
    assert 'value="45m"' in page and "Llame al 024</textarea>" in page
    assert f'<option value="{practice.eli}" selected>' in page
    # The page as shown, sent back unchanged, changes nothing.
    again = await web.post(
        "/settings",
        data={**form, "crisis_es": "Llame al 024", "alert_escalation": "45m", "retention": "400d"},
    )
    assert "Nothing changed." in again.text


async def test_roles_are_set_from_the_people_page(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    answer = await web.post(
        "/people/role",
        data={
            "csrf": as_admin,
            "therapist": str(practice.eli),
            "role": "supervisor",
            "supervises": str(practice.dana),
        },
    )
    assert answer.status_code == 200 and "is now: supervisor" in answer.text
    log = await admin.audit_log(practice.rt)
    assert (f"therapist:{practice.admin}", "set_role") in {(e["actor"], e["action"]) for e in log}
    for bad in ({"role": "owner"}, {"role": "supervisor", "supervises": "1; drop"}):
        refused = await web.post(
            "/people/role", data={"csrf": as_admin, "therapist": str(practice.eli), **bad}
        )
        assert refused.status_code == 400
    web.cookies.clear()
    await sign_in(web, await practice.link(practice.eli))
    caseload = await web.get(f"/caseload?therapist={practice.dana}")
    assert caseload.status_code == 200 and "A.S." in caseload.text


async def test_an_admin_exports_and_erases_a_client(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    import json

    code = practice.codes["A.S."]
    page = await web.get(f"/clients/{code}")
    assert 'action="/clients/' + code + '/erase"' in page.text
    csv = await web.post(f"/clients/{code}/export", data={"csrf": as_admin, "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"] == f'attachment; filename="rapport-{code}.csv"'
    assert csv.text.startswith("client_id,alias") and "A.S." in csv.text
    as_json = await web.post(f"/clients/{code}/export", data={"csrf": as_admin, "format": "json"})
    (record,) = json.loads(as_json.text)
    assert record["alias"] == "A.S."
    bad = await web.post(f"/clients/{code}/export", data={"csrf": as_admin, "format": "xml"})
    assert bad.status_code == 400
    log = await admin.audit_log(practice.rt)
    exports = [e for e in log if e["action"] == "export"]
    assert len(exports) == 2 and {e["actor"] for e in exports} == {f"therapist:{practice.admin}"}

    unconfirmed = await web.post(
        f"/clients/{code}/erase", data={"csrf": as_admin, "confirm": "RC-0000"}
    )
    assert unconfirmed.status_code == 400
    assert code in {c["code"] for c in await admin.list_clients(practice.rt)}
    erased = await web.post(f"/clients/{code}/erase", data={"csrf": as_admin, "confirm": code})
    assert erased.status_code == 200 and f"Client {code} erased" in erased.text
    assert code not in {c["code"] for c in await admin.list_clients(practice.rt)}
    assert (await web.get(f"/clients/{code}")).status_code == 404


async def test_only_an_admin_exports_or_erases(practice: Practice, web: httpx.AsyncClient) -> None:
    code = practice.codes["A.S."]
    await sign_in(web, await practice.link(practice.dana))
    page = await web.get(f"/clients/{code}")
    assert "/erase" not in page.text
    token = csrf_of(page.text)
    for path, data in (("export", {"format": "csv"}), ("erase", {"confirm": code})):
        answer = await web.post(f"/clients/{code}/{path}", data={"csrf": token, **data})
        assert answer.status_code == 403, path
    assert code in {c["code"] for c in await admin.list_clients(practice.rt)}


async def joined_client(practice: Practice, alias: str, user_id: int) -> int:
    """Bind the client to a Telegram account through an invite, as `/start TOKEN` does."""
    code = practice.codes[alias]
    now = practice.rt.clock.now()
    async with practice.rt.sessions() as s, s.begin():
        client = await people.client_by_code(s, code)
        assert client is not None
        token = await people.create_invite(s, now=now, client_id=client.id)
        assert (await people.redeem_invite(s, token, user_id=user_id, chat_id=user_id, now=now)).ok
        return client.id


async def account_of(practice: Practice, user_id: int) -> tuple[int | None, int | None]:
    """(client id, therapist id) the bot would recognise this Telegram account as."""
    async with practice.rt.sessions() as s:
        client = await people.client_by_user(s, user_id)
        therapist = await people.therapist_by_user(s, user_id)
    return (client.client.id if client else None, therapist.id if therapist else None)


async def test_an_admin_moves_a_client_to_a_new_account(
    practice: Practice, web: httpx.AsyncClient, as_admin: str, caplog: pytest.LogCaptureFixture
) -> None:
    client_id = await joined_client(practice, "A.S.", 4242)
    code = practice.codes["A.S."]
    page = await web.get("/people")
    assert f'<option value="client:{code}">' in page.text and 'action="/people/move"' in page.text
    assert f'<option value="client:{practice.codes["B.T."]}">' not in page.text  # not joined
    unconfirmed = await web.post(
        "/people/move", data={"csrf": as_admin, "person": f"client:{code}", "confirm": "RC-0000"}
    )
    assert unconfirmed.status_code == 400 and "type the client&#39;s code again" in unconfirmed.text
    assert await account_of(practice, 4242) == (client_id, None)  # nothing moved

    moved = await web.post(
        "/people/move", data={"csrf": as_admin, "person": f"client:{code}", "confirm": code.lower()}
    )
    assert moved.status_code == 200, moved.text
    assert f"{code}: the old Telegram account is disconnected" in moved.text
    assert "https://t.me/rapport_test_bot?start=" in moved.text
    assert '<svg role="img" aria-label="QR code of the invite link"' in moved.text
    assert await account_of(practice, 4242) == (None, None)  # the old account is nobody now
    token = re.search(r"start=([\w-]+)", moved.text)
    assert token is not None
    async with practice.rt.sessions() as s, s.begin():
        now = practice.rt.clock.now()
        assert (await people.redeem_invite(s, token[1], user_id=77, chat_id=77, now=now)).ok
        again = await people.redeem_invite(s, token[1], user_id=78, chat_id=78, now=now)
    assert not again.ok  # single use
    assert await account_of(practice, 77) == (client_id, None)
    trail = [(e["actor"], e["action"], e["client"]) for e in await admin.audit_log(practice.rt)]
    assert (f"therapist:{practice.admin}", "client_moved", client_id) in trail

    nobody = await web.post(  # no account to move from now: the CLI's message, nothing done
        "/people/move",
        data={
            "csrf": as_admin,
            "person": f"client:{practice.codes['B.T.']}",
            "confirm": practice.codes["B.T."],
        },
    )
    assert nobody.status_code == 400 and "has no Telegram account to move from" in nobody.text
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "Alice" not in logged and token[1] not in logged


async def test_an_admin_moves_a_therapist_and_their_console_sessions_end(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    async with practice.rt.sessions() as s, s.begin():
        eli = await people.therapist_by_id(s, practice.eli)
        assert eli is not None
        token = await people.create_invite(s, now=practice.rt.clock.now(), therapist_id=eli.id)
        now = practice.rt.clock.now()
        assert (await people.redeem_invite(s, token, user_id=900, chat_id=900, now=now)).ok
    eli_web = httpx.AsyncClient(transport=web._transport, base_url=BASE)
    await sign_in(eli_web, await practice.link(practice.eli))
    assert (await eli_web.get("/caseload")).status_code == 200
    who = f"therapist:{practice.eli}"
    assert f'<option value="{who}">' in (await web.get("/people")).text
    wrong = await web.post(
        "/people/move", data={"csrf": as_admin, "person": who, "confirm": str(practice.dana)}
    )
    assert wrong.status_code == 400 and await account_of(practice, 900) == (None, practice.eli)
    moved = await web.post(
        "/people/move", data={"csrf": as_admin, "person": who, "confirm": str(practice.eli)}
    )
    assert moved.status_code == 200 and f"therapist {practice.eli}: the old" in moved.text
    assert await account_of(practice, 900) == (None, None)
    assert (await eli_web.get("/caseload")).status_code in (303, 401, 403)  # signed out
    await eli_web.aclose()
    trail = [(e["actor"], e["action"]) for e in await admin.audit_log(practice.rt)]
    assert (f"therapist:{practice.admin}", f"therapist_moved:{practice.eli}") in trail
    for bad in ("therapist:x1", "therapist:99999999999999", "nobody:1", "client:"):
        answer = await web.post(
            "/people/move", data={"csrf": as_admin, "person": bad, "confirm": bad.split(":")[1]}
        )
        assert answer.status_code == 400, bad


async def test_only_an_admin_moves_accounts_or_exports_everyone(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    await joined_client(practice, "A.S.", 4242)
    code = practice.codes["A.S."]
    move = {"person": f"client:{code}", "confirm": code}
    for who in (practice.dana, practice.supervisor):
        web.cookies.clear()
        await sign_in(web, await practice.link(who))
        token = csrf_of((await web.get("/caseload")).text)
        assert (await web.post("/people/move", data={"csrf": token, **move})).status_code == 403
        answer = await web.post("/people/export", data={"csrf": token, "format": "json"})
        assert answer.status_code == 403 and "A.S." not in answer.text
    web.cookies.clear()
    await sign_in(web, await practice.link(practice.admin))
    for data in (move, {"format": "csv"}):  # an admin, but no CSRF token, or a forged one
        for forged in ({}, {"csrf": "forged"}):
            path = "/people/move" if "person" in data else "/people/export"
            answer = await web.post(path, data={**data, **forged})
            assert answer.status_code == 403 and "client_id" not in answer.text
    assert await account_of(practice, 4242) != (None, None)  # still bound
    assert not [e for e in await admin.audit_log(practice.rt) if e["action"] == "export"]


async def test_an_admin_exports_every_client_at_once(
    practice: Practice, web: httpx.AsyncClient, as_admin: str
) -> None:
    import json

    as_json = await web.post("/people/export", data={"csrf": as_admin, "format": "json"})
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    assert (
        as_json.headers["content-disposition"] == 'attachment; filename="rapport-all-clients.json"'
    )
    records = json.loads(as_json.text)
    everyone = await admin.list_clients(practice.rt)
    assert sorted(r["id"] for r in records) == sorted(c["id"] for c in everyone)
    assert {r["name"] for r in records} == {"Alice Smith", "Bob Tate", "Cleo Umber"}
    assert all(r["checkins"] for r in records)
    async with practice.rt.sessions() as s:  # each answer under its own check-in, none lost
        for r in records:
            stored = await checkins.answers_of_client(s, r["id"])
            shown = [(c["id"], a["item"]) for c in r["checkins"] for a in c["answers"]]
            assert sorted(shown) == sorted((a.checkin_id, a.item) for a in stored) and shown
    csv = await web.post("/people/export", data={"csrf": as_admin, "format": "csv"})
    assert csv.status_code == 200 and csv.text.startswith("client_id,alias")
    assert {"A.S.", "B.T.", "C.U."} <= set(csv.text.replace("\r\n", ",").split(","))
    bad = await web.post("/people/export", data={"csrf": as_admin, "format": "xml"})
    assert bad.status_code == 400 and "--format must be csv or json" in bad.text
    exports = [e for e in await admin.audit_log(practice.rt) if e["action"] == "export"]
    assert sorted(e["client"] for e in exports) == sorted(2 * [c["id"] for c in everyone])
    assert {e["actor"] for e in exports} == {f"therapist:{practice.admin}"}
