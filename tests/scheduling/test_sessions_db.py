"""Sessions in the database: calendar import, moves and cancellations, and the `session` CLI.

The async tests run once per backend (`db_url`); the CLI tests drive the real `rapport` command on
SQLite with a time-lapse clock that starts at the same instant as the `clock` fixture.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app import admin
from app.calendar_sync import (
    NO_CODE,
    SEVERAL_CODES,
    UNKNOWN_CODE,
    cancel_session,
    import_calendar,
    move_session,
)
from app.clock import ManualClock
from app.config import load_settings
from app.runtime import Runtime
from cli.main import commands
from storage.crypto import Cipher
from storage.models import Client, TherapySession
from tests.conftest import START, TEST_KEY

LEAD = timedelta(hours=3)


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def calendar(*events: str) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Rapport tests//EN"]
    for event in events:
        lines.extend(line.strip() for line in event.strip().splitlines())
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def event(uid: str, start: str, summary: str, *extra: str, minutes: int = 50) -> str:
    begin = datetime.strptime(start, "%Y%m%dT%H%M%SZ")
    end = (begin + timedelta(minutes=minutes)).strftime("%Y%m%dT%H%M%SZ")
    body = [f"UID:{uid}", f"DTSTART:{start}", f"DTEND:{end}", f"SUMMARY:{summary}", *extra]
    return "\n".join(["BEGIN:VEVENT", *body, "END:VEVENT"])


def weekly(uid: str, start: str, summary: str, count: int, *extra: str) -> str:
    return event(uid, start, summary, f"RRULE:FREQ=WEEKLY;COUNT={count}", *extra)


def instance(uid: str, original: str, start: str, summary: str, *extra: str) -> str:
    return event(uid, start, summary, f"RECURRENCE-ID:{original}", *extra)


@pytest.fixture
async def rt(db_url: str, cipher: Cipher, clock: ManualClock) -> AsyncIterator[Runtime]:
    settings = load_settings(database_url=db_url, encryption_key=TEST_KEY, telegram_token=None)
    runtime = Runtime.create(settings, clock=clock, cipher=cipher)
    yield runtime
    await runtime.close()


async def add_client(
    rt: Runtime, therapist_id: int, name: str, cadence: str | None = None
) -> dict[str, Any]:
    """An active client in UTC (as if they had finished onboarding at the test's start)."""
    client = await admin.add_client(rt, therapist_id, name, timezone="UTC", cadence=cadence)
    async with rt.sessions() as s, s.begin():
        row = await s.get(Client, client["id"])
        assert row is not None
        row.status, row.joined_at = "active", rt.clock.now()
    return client


async def import_ics(rt: Runtime, therapist_id: int, ics: bytes, **kw: Any) -> dict[str, Any]:
    now = rt.clock.now()
    return await import_calendar(
        rt,
        ics,
        therapist_id=therapist_id,
        window_start=now - timedelta(days=1),
        window_end=now + timedelta(days=90),
        **kw,
    )


def counts(report: dict[str, Any]) -> dict[str, int]:
    return {k: report[k] for k in ("created", "moved", "cancelled", "unchanged")}


async def stored(rt: Runtime, client_id: int | None = None) -> list[TherapySession]:
    async with rt.sessions() as s:
        query = select(TherapySession).order_by(TherapySession.starts_at)
        if client_id is not None:
            query = query.where(TherapySession.client_id == client_id)
        return list(await s.scalars(query))


async def next_checkin(rt: Runtime, client_id: int) -> datetime | None:
    async with rt.sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None
        return client.next_checkin_at


@pytest.fixture
async def people(rt: Runtime) -> dict[str, Any]:
    therapist = await admin.add_therapist(rt, "Dana Lee", "UTC")
    ana = await add_client(rt, therapist["id"], "Ana Perez")
    ben = await add_client(rt, therapist["id"], "Ben Okafor")
    return {"therapist": therapist["id"], "ana": ana, "ben": ben}


# --- import -----------------------------------------------------------------------------------


async def test_import_creates_sessions_with_digest_before_and_again_changes_nothing(
    rt: Runtime, people: dict[str, Any]
) -> None:
    ana, ben = people["ana"], people["ben"]
    ics = calendar(
        event("one@cal", "20260304T150000Z", f"Session #{ana['code']}"),
        weekly("weekly@cal", "20260305T140000Z", f"[{ben['code'].lower()}] weekly", 3),
    )
    first = await import_ics(rt, people["therapist"], ics)
    assert counts(first) == {"created": 4, "moved": 0, "cancelled": 0, "unchanged": 0}
    assert first["unmatched"] == [] and first["missing"] == []

    sessions = await stored(rt)
    assert [(x.client_id, x.starts_at, x.ends_at) for x in sessions] == [
        (ana["id"], utc(3, 4, 15), utc(3, 4, 15, 50)),
        (ben["id"], utc(3, 5, 14), utc(3, 5, 14, 50)),
        (ben["id"], utc(3, 12, 14), utc(3, 12, 14, 50)),
        (ben["id"], utc(3, 19, 14), utc(3, 19, 14, 50)),
    ]
    assert all(x.digest_at == x.starts_at - LEAD for x in sessions)
    assert [x.source_uid for x in sessions] == [
        "one@cal",
        "weekly@cal@20260305T140000Z",
        "weekly@cal@20260312T140000Z",
        "weekly@cal@20260319T140000Z",
    ]

    again = await import_ics(rt, people["therapist"], ics)
    assert counts(again) == {"created": 0, "moved": 0, "cancelled": 0, "unchanged": 4}
    assert again["changes"] == []
    after = await stored(rt)
    assert [(x.id, x.starts_at, x.digest_at, x.cancelled) for x in after] == [
        (x.id, x.starts_at, x.digest_at, x.cancelled) for x in sessions
    ]


async def test_a_moved_instance_moves_its_session_and_digest(
    rt: Runtime, people: dict[str, Any]
) -> None:
    code = people["ana"]["code"]
    series = weekly("w@cal", "20260305T140000Z", f"#{code}", 3)
    await import_ics(rt, people["therapist"], calendar(series))
    before = await stored(rt)

    # The second Thursday moves to Friday 10:00: 07:00 is inside the therapist's quiet hours
    # (21:00-09:00), so the digest goes at 20:55 the evening before.
    moved = instance("w@cal", "20260312T140000Z", "20260313T100000Z", f"#{code}")
    report = await import_ics(rt, people["therapist"], calendar(series, moved))
    assert (report["moved"], report["created"], report["unchanged"]) == (1, 0, 2)
    assert report["changes"] == [
        {
            "action": "moved",
            "session": before[1].id,
            "client": people["ana"]["id"],
            "starts_at": utc(3, 13, 10).isoformat(),
        }
    ]
    after = {x.id: x for x in await stored(rt)}
    assert len(after) == 3
    assert after[before[1].id].starts_at == utc(3, 13, 10)
    assert after[before[1].id].ends_at == utc(3, 13, 10, 50)
    assert after[before[1].id].digest_at == utc(3, 12, 20, 55)
    assert after[before[0].id].starts_at == before[0].starts_at


async def test_a_session_follows_its_event_moved_beyond_the_window(
    rt: Runtime, people: dict[str, Any]
) -> None:
    code, therapist = people["ana"]["code"], people["therapist"]
    series = weekly("w@cal", "20260305T140000Z", f"#{code}", 2)
    await import_ics(rt, therapist, calendar(series))
    # The window ends 90 days after 2026-03-02; the instance moves past it, into June.
    moved = instance("w@cal", "20260312T140000Z", "20260605T140000Z", f"#{code}")
    report = await import_ics(rt, therapist, calendar(series, moved))
    assert counts(report) == {"created": 0, "moved": 1, "cancelled": 0, "unchanged": 1}
    assert [(x.starts_at, x.cancelled) for x in await stored(rt)] == [
        (utc(3, 5, 14), False),
        (utc(6, 5, 14), False),
    ]
    # A new event that far ahead is not imported yet.
    later = event("new@cal", "20260606T140000Z", f"#{code}")
    assert (await import_ics(rt, therapist, calendar(series, moved, later)))["created"] == 0


async def test_a_moved_one_off_event_moves_its_session(rt: Runtime, people: dict[str, Any]) -> None:
    code, therapist = people["ana"]["code"], people["therapist"]
    await import_ics(rt, therapist, calendar(event("x@cal", "20260304T150000Z", f"#{code}")))
    report = await import_ics(
        rt, therapist, calendar(event("x@cal", "20260306T160000Z", f"#{code}", minutes=60))
    )
    assert report["moved"] == 1
    [session] = await stored(rt)
    assert (session.starts_at, session.ends_at) == (utc(3, 6, 16), utc(3, 6, 17))
    assert session.digest_at == utc(3, 6, 13)


async def test_cancelled_events_and_removed_occurrences_cancel_their_sessions(
    rt: Runtime, people: dict[str, Any]
) -> None:
    code = people["ana"]["code"]
    series = weekly("w@cal", "20260305T140000Z", f"#{code}", 4)
    await import_ics(rt, people["therapist"], calendar(series))
    ids = [x.id for x in await stored(rt)]

    cancelled = instance(
        "w@cal", "20260312T140000Z", "20260312T140000Z", f"#{code}", "STATUS:CANCELLED"
    )
    report = await import_ics(rt, people["therapist"], calendar(series, cancelled))
    assert (report["cancelled"], report["unchanged"]) == (1, 3)
    state = {x.id: x.cancelled for x in await stored(rt)}
    assert state == {ids[0]: False, ids[1]: True, ids[2]: False, ids[3]: False}

    # The practice deletes the fourth instance instead (an EXDATE): the series is in the file
    # and says that instance does not exist, so its session is cancelled too.
    trimmed = weekly("w@cal", "20260305T140000Z", f"#{code}", 4, "EXDATE:20260326T140000Z")
    report = await import_ics(rt, people["therapist"], calendar(trimmed, cancelled))
    assert report["cancelled"] == 1
    assert report["changes"][0]["session"] == ids[3]
    assert {x.id: x.cancelled for x in await stored(rt)}[ids[3]] is True

    # Restoring the instance in the calendar brings the session back, with its digest.
    report = await import_ics(rt, people["therapist"], calendar(series))
    assert report["restored"] == 2
    assert all(not x.cancelled and x.digest_at == x.starts_at - LEAD for x in await stored(rt))


async def test_a_deleted_one_off_event_is_reported_missing_not_cancelled(
    rt: Runtime, people: dict[str, Any]
) -> None:
    code = people["ana"]["code"]
    one = event("one@cal", "20260304T150000Z", f"#{code}")
    other = event("two@cal", "20260311T150000Z", f"#{code}")
    await import_ics(rt, people["therapist"], calendar(one, other))
    report = await import_ics(rt, people["therapist"], calendar(other))
    [kept, _] = await stored(rt)
    assert report["cancelled"] == 0
    assert report["missing"] == [
        {"session": kept.id, "client": people["ana"]["id"], "starts_at": utc(3, 4, 15).isoformat()}
    ]
    assert kept.cancelled is False


async def test_unmatched_events_are_listed_with_a_reason_and_without_their_text(
    rt: Runtime, people: dict[str, Any]
) -> None:
    ana, ben = people["ana"]["code"], people["ben"]["code"]
    ics = calendar(
        event("plain@cal", "20260303T100000Z", "Intake Confidential Smith"),
        event("both@cal", "20260303T120000Z", f"Couple Smith #{ana} #{ben}"),
        event("typo@cal", "20260303T140000Z", "Smith #RC-ZZZZ"),
        event("gone@cal", "20260303T160000Z", "Smith", "STATUS:CANCELLED"),
        event("later@cal", "20260801T100000Z", "Smith outside the window"),
        event("ok@cal", "20260303T180000Z", f"Smith #{ana} #followup"),
    )
    report = await import_ics(rt, people["therapist"], ics)
    assert report["unmatched"] == [
        {"uid": "plain@cal", "start": utc(3, 3, 10).isoformat(), "reason": NO_CODE},
        {"uid": "both@cal", "start": utc(3, 3, 12).isoformat(), "reason": SEVERAL_CODES},
        {"uid": "typo@cal", "start": utc(3, 3, 14).isoformat(), "reason": UNKNOWN_CODE},
    ]
    assert report["created"] == 1
    assert "Smith" not in json.dumps(report)
    assert [x.source_uid for x in await stored(rt)] == ["ok@cal"]


async def test_another_therapists_client_code_is_not_matched(
    rt: Runtime, people: dict[str, Any]
) -> None:
    other = await admin.add_therapist(rt, "Lee Park", "UTC")
    theirs = await add_client(rt, other["id"], "Cara Diaz")
    ics = calendar(
        event("a@cal", "20260304T150000Z", f"#{theirs['code']}"),
        event("b@cal", "20260305T150000Z", f"#{theirs['code']} #{people['ana']['code']}"),
    )
    report = await import_ics(rt, people["therapist"], ics)
    assert report["unmatched"] == [
        {"uid": "a@cal", "start": utc(3, 4, 15).isoformat(), "reason": UNKNOWN_CODE}
    ]
    assert await stored(rt, theirs["id"]) == []
    assert [x.source_uid for x in await stored(rt, people["ana"]["id"])] == ["b@cal"]


async def test_an_event_given_to_another_client_moves_the_session_to_them(
    rt: Runtime, people: dict[str, Any]
) -> None:
    ana, ben, therapist = people["ana"], people["ben"], people["therapist"]
    await import_ics(rt, therapist, calendar(event("e@cal", "20260304T150000Z", f"#{ana['code']}")))
    report = await import_ics(
        rt, therapist, calendar(event("e@cal", "20260304T150000Z", f"#{ben['code']}"))
    )
    assert (report["cancelled"], report["created"]) == (1, 1)
    [old] = await stored(rt, ana["id"])
    [new] = await stored(rt, ben["id"])
    assert old.cancelled and not new.cancelled
    assert new.starts_at == old.starts_at


async def test_dry_run_reports_and_writes_nothing(rt: Runtime, people: dict[str, Any]) -> None:
    ics = calendar(weekly("w@cal", "20260305T140000Z", f"#{people['ana']['code']}", 2))
    report = await import_ics(rt, people["therapist"], ics, dry_run=True)
    assert report["dry_run"] is True
    assert report["created"] == 2
    assert [c["session"] for c in report["changes"]] == [None, None]
    assert await stored(rt) == []
    assert (await import_ics(rt, people["therapist"], ics))["created"] == 2


async def test_a_session_that_has_begun_gets_no_digest(rt: Runtime, people: dict[str, Any]) -> None:
    # Yesterday afternoon is inside the window (now - 1 day): the session is stored, because
    # session-relative cadences need it, but no digest goes out for it afterwards.
    ics = calendar(event("y@cal", "20260301T150000Z", f"#{people['ana']['code']}"))
    assert (await import_ics(rt, people["therapist"], ics))["created"] == 1
    [session] = await stored(rt)
    assert session.digest_at is None


async def test_bad_input_is_an_operator_error(rt: Runtime, people: dict[str, Any]) -> None:
    with pytest.raises(admin.AdminError, match="no therapist"):
        await import_ics(rt, 999, calendar())
    with pytest.raises(admin.AdminError, match="calendar"):
        await import_ics(rt, people["therapist"], b"not a calendar")
    with pytest.raises(admin.AdminError, match="UTC offset"):
        await import_calendar(
            rt,
            calendar(),
            therapist_id=people["therapist"],
            window_start=datetime(2026, 3, 1),
            window_end=utc(4, 1),
        )


# --- cadence follows sessions -----------------------------------------------------------------


async def test_after_session_cadence_follows_a_moved_and_a_cancelled_session(rt: Runtime) -> None:
    therapist = await admin.add_therapist(rt, "Dana Lee", "UTC")
    client = await add_client(rt, therapist["id"], "Ana Perez", cadence="after-session 24h")
    code = client["code"]
    await import_ics(rt, therapist["id"], calendar(event("s@cal", "20260304T150000Z", f"#{code}")))
    assert await next_checkin(rt, client["id"]) == utc(3, 5, 15, 50)

    await import_ics(rt, therapist["id"], calendar(event("s@cal", "20260306T100000Z", f"#{code}")))
    assert await next_checkin(rt, client["id"]) == utc(3, 7, 10, 50)

    [session] = await stored(rt)
    await move_session(rt, session.id, utc(3, 9, 12))
    assert await next_checkin(rt, client["id"]) == utc(3, 10, 12, 50)

    await cancel_session(rt, session.id)
    assert await next_checkin(rt, client["id"]) is None


# --- by hand ----------------------------------------------------------------------------------


async def test_move_session_replans_the_digest_and_keeps_the_length(
    rt: Runtime, people: dict[str, Any]
) -> None:
    added = await admin.add_session(rt, people["ana"]["id"], utc(3, 4, 15), 50)
    view = await move_session(rt, added["id"], datetime.fromisoformat("2026-03-05T17:00:00+01:00"))
    assert view["starts_at"] == utc(3, 5, 16).isoformat()
    assert view["ends_at"] == utc(3, 5, 16, 50).isoformat()
    assert view["digest_at"] == utc(3, 5, 13).isoformat()
    assert view["from_calendar"] is False
    view = await move_session(rt, added["id"], utc(3, 5, 16), minutes=90)
    assert view["ends_at"] == utc(3, 5, 17, 30).isoformat()


async def test_a_digest_that_went_out_is_not_sent_again_after_a_move(
    rt: Runtime, people: dict[str, Any]
) -> None:
    added = await admin.add_session(rt, people["ana"]["id"], utc(3, 2, 15), 50)
    async with rt.sessions() as s, s.begin():
        row = await s.get(TherapySession, added["id"])
        assert row is not None
        row.digest_sent_at = utc(3, 2, 12)
    view = await move_session(rt, added["id"], utc(3, 2, 17))
    assert view["digest_sent"] is True
    assert view["digest_at"] == added["digest_at"]


async def test_cancel_session_is_idempotent_and_blocks_moves(
    rt: Runtime, people: dict[str, Any]
) -> None:
    added = await admin.add_session(rt, people["ana"]["id"], utc(3, 4, 15), 50)
    assert (await cancel_session(rt, added["id"]))["cancelled"] is True
    assert (await cancel_session(rt, added["id"]))["cancelled"] is True
    with pytest.raises(admin.AdminError, match="cancelled"):
        await move_session(rt, added["id"], utc(3, 5, 15))
    with pytest.raises(admin.AdminError, match="no session"):
        await cancel_session(rt, 999)
    with pytest.raises(admin.AdminError, match="UTC offset"):
        await move_session(rt, added["id"], datetime(2026, 3, 5, 15))


# --- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray rapport.toml
    monkeypatch.setenv("RAPPORT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RAPPORT_ENCRYPTION_KEY", TEST_KEY)
    monkeypatch.setenv("RAPPORT_CLOCK", f"timelapse:{START.isoformat()}x1")
    return CliRunner()


def rapport(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(commands, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_session_import_move_and_cancel(cli: CliRunner, tmp_path: Path) -> None:
    therapist = json.loads(rapport(cli, "therapist", "add", "--name", "Dana Lee", "--json"))
    client = json.loads(
        rapport(
            cli,
            "client",
            "add",
            "--therapist",
            str(therapist["id"]),
            "--name",
            "Ana Perez",
            "--json",
        )
    )
    ics = tmp_path / "practice.ics"
    ics.write_bytes(
        calendar(
            event("one@cal", "20260304T150000Z", f"#{client['code']}"),
            event("two@cal", "20260305T150000Z", "Intake Smith"),
        )
    )
    args = ["session", "import", str(ics), "--therapist", str(therapist["id"])]

    dry = json.loads(rapport(cli, *args, "--dry-run", "--json"))
    assert (dry["dry_run"], dry["created"]) == (True, 1)
    assert json.loads(rapport(cli, "session", "list", "--json")) == []

    report = json.loads(rapport(cli, *args, "--json"))
    assert report["created"] == 1
    assert report["unmatched"] == [
        {"uid": "two@cal", "start": utc(3, 5, 15).isoformat(), "reason": NO_CODE}
    ]
    text = rapport(cli, *args)
    assert "0 created" in text and "1 unchanged" in text and "no client code" in text
    assert "Smith" not in text

    [listed] = json.loads(rapport(cli, "session", "list", "--json"))
    assert listed["digest_at"] == utc(3, 4, 12).isoformat()
    moved = json.loads(
        rapport(
            cli,
            "session",
            "move",
            str(listed["id"]),
            "--at",
            "2026-03-06T10:00:00+00:00",
            "--minutes",
            "60",
            "--json",
        )
    )
    assert (moved["starts_at"], moved["ends_at"]) == (
        utc(3, 6, 10).isoformat(),
        utc(3, 6, 11).isoformat(),
    )
    assert "came from a calendar" in rapport(cli, "session", "cancel", str(listed["id"]))
    [after] = json.loads(rapport(cli, "session", "list", "--json"))
    assert after["cancelled"] is True


def test_cli_session_errors_are_one_line(cli: CliRunner, tmp_path: Path) -> None:
    missing = rapport(
        cli, "session", "import", str(tmp_path / "none.ics"), "--therapist", "1", code=1
    )
    assert missing.startswith("rapport: ") and len(missing.strip().splitlines()) == 1
    assert "no session with id 5" in rapport(cli, "session", "cancel", "5", code=1)
    assert "not an ISO date-time" in rapport(cli, "session", "move", "5", "--at", "soon", code=1)
