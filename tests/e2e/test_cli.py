"""The `rapport` command as a practice admin uses it (in-process through typer's runner)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import commands
from storage.crypto import Cipher
from tests.conftest import TEST_KEY

BOT_USERNAME = "rapport_test_bot"


def bot_has_started(run, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    """What the bot's first start leaves behind: the username Telegram gave it, stored."""
    run("practice", "show")
    with contextlib.closing(sqlite3.connect(sqlite_url.split("///", 1)[1])) as db, db:
        db.execute("UPDATE practice SET bot_username = ?", (BOT_USERNAME,))


@pytest.fixture
def rapport_before_start(sqlite_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The CLI on a database whose bot has never started (no Telegram token configured)."""
    monkeypatch.setenv("RAPPORT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RAPPORT_ENCRYPTION_KEY", TEST_KEY)
    monkeypatch.delenv("RAPPORT_TELEGRAM_TOKEN", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(commands, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return run


@pytest.fixture
def rapport(rapport_before_start, sqlite_url: str):  # type: ignore[no-untyped-def]
    """The CLI as a practice uses it once the bot has run (README, "Going live")."""
    bot_has_started(rapport_before_start, sqlite_url)
    return rapport_before_start


def test_people_sessions_and_listings(rapport) -> None:  # type: ignore[no-untyped-def]
    therapist = json.loads(rapport("therapist", "add", "--name", "Dana Lee", "--json"))
    assert therapist["invite_link"].startswith(f"https://t.me/{BOT_USERNAME}?start=")
    client = json.loads(
        rapport(
            "client",
            "add",
            "--therapist",
            str(therapist["id"]),
            "--name",
            "Alice Smith",
            "--timezone",
            "Europe/Berlin",
            "--json",
        )
    )
    assert client["alias"] == "A.S." and client["code"].startswith("RC-")
    session = json.loads(
        rapport(
            "session",
            "add",
            "--client",
            str(client["id"]),
            "--at",
            "2030-03-11T15:00:00+01:00",
            "--json",
        )
    )
    assert session["digest_at"].startswith("2030-03-11T11:00")  # 3 h before, in UTC
    listed = json.loads(rapport("client", "list", "--json"))
    assert [c["alias"] for c in listed] == ["A.S."]
    invite = json.loads(rapport("invite", "--client", str(client["id"]), "--json"))
    assert invite["invite_link"] != client["invite_link"]
    digest = json.loads(rapport("digest", "--client", str(client["id"]), "--format", "json"))
    assert digest["too_little_data"] is True
    audit = json.loads(rapport("audit", "--json"))
    assert [e["action"] for e in audit] == ["digest"]


def test_operator_mistakes_get_one_line(rapport) -> None:  # type: ignore[no-untyped-def]
    for args in (
        ("practice", "set", "--cadence", "hourly"),
        ("practice", "set", "--instrument", "srs-unlicensed"),
        ("practice", "set", "--quiet-hours", "25:00-09:00"),
        ("client", "add", "--therapist", "99", "--name", "Nobody"),
        ("session", "add", "--client", "1", "--at", "next week"),
        ("invite", "--client", "1", "--therapist", "1"),
    ):
        out = rapport(*args, code=1)
        assert out.count("\n") == 1 and out.startswith("rapport: "), (args, out)


def test_an_unknown_id_is_named_in_one_line(rapport, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    calendar = tmp_path / "cal.ics"
    calendar.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n", encoding="utf-8")
    for args in (
        ("client", "move", "99", "--yes"),
        ("client", "set", "99", "--language", "en"),
        ("invite", "--client", "99"),
        ("session", "add", "--client", "99", "--at", "2030-03-11T15:00:00+01:00"),
        ("export", "--format", "json", "--client", "99"),
        ("digest", "--client", "99"),
    ):
        assert rapport(*args, code=1) == "rapport: no client with id 99\n", args
    for args in (
        ("therapist", "move", "98", "--yes"),
        ("invite", "--therapist", "98"),
        ("session", "import", str(calendar), "--therapist", "98"),
    ):
        assert rapport(*args, code=1) == "rapport: no therapist with id 98\n", args


def test_practice_settings_round_trip(rapport) -> None:  # type: ignore[no-untyped-def]
    shown = json.loads(
        rapport(
            "practice",
            "set",
            "--cadence",
            "weekdays tue,fri at 18:00",
            "--digest-lead",
            "2h",
            "--safety-item",
            "--crisis-resources",
            "es=Llama al 112",
            "--retention",
            "365d",
            "--no-digest-comments",
            "--json",
        )
    )
    assert shown["cadence"] == "weekdays tue,fri at 18:00"
    assert shown["digest_lead_minutes"] == 120 and shown["retention_days"] == 365
    assert shown["safety_item"] is True and shown["digest_comments"] is False
    assert shown["crisis_resources"] == {"es": "Llama al 112"}


def test_the_safety_contact_is_a_therapist_and_can_be_cleared(rapport) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(rapport("practice", "show", "--json"))["safety_contact"] is None
    sam = json.loads(rapport("therapist", "add", "--name", "Sam Reyes", "--json"))
    shown = json.loads(rapport("practice", "set", "--safety-contact", str(sam["id"]), "--json"))
    assert shown["safety_contact"] == sam["id"]
    assert f"safety_contact: {sam['id']}" in rapport("practice", "show")
    for wrong in ("99", "Sam"):
        out = rapport("practice", "set", "--safety-contact", wrong, code=1)
        assert out.startswith("rapport: ") and "--safety-contact" in out, out
    assert json.loads(rapport("practice", "show", "--json"))["safety_contact"] == sam["id"]
    cleared = json.loads(rapport("practice", "set", "--safety-contact", "none", "--json"))
    assert cleared["safety_contact"] is None


def test_keys_rotate_moves_every_value_to_the_new_key(  # type: ignore[no-untyped-def]
    rapport, monkeypatch: pytest.MonkeyPatch
) -> None:
    rapport("therapist", "add", "--name", "Dana Lee")
    new_key = Cipher.generate_key()
    monkeypatch.setenv("RAPPORT_ENCRYPTION_KEY", f"{new_key},{TEST_KEY}")
    assert "re-encrypted" in rapport("keys", "rotate")
    monkeypatch.setenv("RAPPORT_ENCRYPTION_KEY", new_key)  # the old key is retired
    assert json.loads(rapport("therapist", "list", "--json"))[0]["name"] == "Dana Lee"


def test_backtest_prints_signals_and_a_summary(rapport, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from insights.synthetic import write

    data = tmp_path / "clients.jsonl"
    with data.open("w", encoding="utf-8") as out:
        write(60, 3, out)
    out = rapport("backtest", str(data))
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 61 and "summary" in lines[-1]
    assert {"client", "signals", "first_alert_at"} <= set(lines[0])
    summary = rapport("backtest", str(data), "--summary")
    assert set(json.loads(summary)["summary"]) >= {"rapport", "baseline"}


def bind(db_url: str, table: str, person_id: int, user_id: int) -> None:
    """Bind a Telegram account as joining would (straight in the database)."""
    from sqlalchemy import text

    from storage.db import create_engine

    async def go() -> None:
        engine = create_engine(db_url)
        async with engine.begin() as conn:
            await conn.execute(
                text(f"UPDATE {table} SET telegram_user_id = :u, chat_id = :u WHERE id = :id"),
                {"u": user_id, "id": person_id},
            )
        await engine.dispose()

    asyncio.run(go())


def test_no_invite_for_someone_who_joined_and_moving_them(  # type: ignore[no-untyped-def]
    rapport, sqlite_url: str
) -> None:
    therapist = json.loads(rapport("therapist", "add", "--name", "Dana Lee", "--json"))
    client = json.loads(
        rapport("client", "add", "--therapist", str(therapist["id"]), "--name", "Al Bo", "--json")
    )
    cid, tid = str(client["id"]), str(therapist["id"])
    out = rapport("client", "move", cid, "--yes", code=1)  # nobody to move from yet
    assert out.count("\n") == 1 and f"rapport invite --client {cid}" in out
    bind(sqlite_url, "client", client["id"], 501)
    bind(sqlite_url, "therapist", therapist["id"], 502)
    out = rapport("invite", "--client", cid, code=1)
    assert out.count("\n") == 1 and out.startswith(f"rapport: client {cid} has joined")
    assert f"rapport client move {cid}" in out
    out = rapport("invite", "--therapist", tid, code=1)
    assert out.count("\n") == 1 and f"rapport therapist move {tid}" in out

    rapport("client", "move", cid, code=1)  # asked to confirm; the answer is no
    moved = rapport("client", "move", cid, "--yes")
    assert "old Telegram account is disconnected" in moved and "https://t.me/" in moved
    assert json.loads(rapport("client", "list", "--json"))[0]["status"] == "invited"
    moved_t = json.loads(rapport("therapist", "move", tid, "--yes", "--json"))
    assert moved_t["invite_link"].startswith("https://t.me/")
    assert json.loads(rapport("therapist", "list", "--json"))[0]["joined"] is False
    actions = [(e["actor"], e["action"]) for e in json.loads(rapport("audit", "--json"))]
    assert actions == [("cli", "client_moved"), ("cli", f"therapist_moved:{tid}")]
    assert "has joined" not in rapport("invite", "--client", cid)  # unbound again: a link
