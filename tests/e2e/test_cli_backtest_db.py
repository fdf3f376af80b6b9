"""`rapport backtest --from-db`: the practice's own history, labelled by observed endings, scored,
with a plain report (in-process through typer's runner, on a database seeded from generated
histories)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.alerts import verdicts
from app.history import _COMMENT
from flows.instruments import DEFAULT_INSTRUMENT
from flows.statuses import CheckinStatus, ClientStatus
from insights.history import history_from_backtest_line
from insights.synthetic import generate
from storage import alerts, checkins, people
from storage.crypto import Cipher
from storage.db import create_engine, session_factory
from storage.models import Client, Therapist
from tests.conftest import TEST_KEY
from tests.e2e import test_cli

NOW = datetime(2026, 6, 1, tzinfo=UTC)
rapport_before_start = test_cli.rapport_before_start
rapport = test_cli.rapport
"""The CLI fixtures of the other CLI tests."""


def seed(db_url: str, client_ids: list[int], lines: list[dict]) -> None:  # type: ignore[type-arg]
    """Write each generated history into the store as the bot would have left it."""
    cipher = Cipher(TEST_KEY)

    async def go() -> None:
        engine = create_engine(db_url)
        async with session_factory(engine)() as s, s.begin():
            for client_id, line in zip(client_ids, lines, strict=True):
                history, _ = history_from_backtest_line(line)
                client = await s.get(Client, client_id)
                assert client is not None
                client.status = ClientStatus.ACTIVE
                client.joined_at = history.checkins[0].sent_at
                client.timezone = history.timezone
                client.cadence = line["cadence"]
                for at in history.sessions:
                    await people.add_session(
                        s, client_id=client_id, starts_at=at, minutes=50, now=at
                    )
                for record in history.checkins:
                    checkin = await checkins.open_checkin(
                        s, client_id=client_id, instrument=DEFAULT_INSTRUMENT, now=record.sent_at
                    )
                    at = record.answered_at
                    if at is not None:
                        for item, value in record.scores.items():
                            await checkins.record_answer(
                                s, cipher, checkin_id=checkin.id, item=item, value=value, at=at
                            )
                        if record.comment:
                            await checkins.record_answer(
                                s,
                                cipher,
                                checkin_id=checkin.id,
                                item=_COMMENT,
                                value=None,
                                at=at,
                                text=record.comment,
                            )
                    status = {"answered": CheckinStatus.ANSWERED, "partial": CheckinStatus.PARTIAL}
                    closed = record.completed_at or record.expired_at or at or record.sent_at
                    await checkins.close(
                        s, [(checkin.id, status.get(record.status, CheckinStatus.MISSED), closed)]
                    )
                for event in history.events:
                    await checkins.add_event(s, client_id=client_id, kind=event.kind, at=event.at)
        await engine.dispose()

    asyncio.run(go())


def test_backtest_from_db_scores_the_practice_and_reports_plainly(  # type: ignore[no-untyped-def]
    rapport, sqlite_url: str, monkeypatch
) -> None:
    monkeypatch.setenv("RAPPORT_CLOCK", f"timelapse:{NOW.isoformat()}x1")
    therapist = json.loads(rapport("therapist", "add", "--name", "Dana Lee", "--json"))
    lines = [line for line in generate(40, 5) if line["events"]]
    ids = []
    for n in range(len(lines)):
        added = rapport(
            "client", "add", "--therapist", str(therapist["id"]), "--name", f"C {n}", "--json"
        )
        ids.append(json.loads(added)["id"])
    seed(sqlite_url, ids, lines)
    rapport("client", "add", "--therapist", str(therapist["id"]), "--name", "Not Joined")
    ended = sum(
        1 for line in lines if any(e["type"] in ("stopped", "blocked") for e in line["events"])
    )
    data = json.loads(rapport("backtest", "--from-db", "--json"))
    assert data["clients"] == len(lines)  # the client who never joined is not counted
    assert data["dropouts"] == ended and ended > 0
    assert data["stayers"] == 0  # every course ended by May: lapsed, not known to have stayed
    assert data["unlabelled"] == len(lines) - ended
    data = json.loads(rapport("backtest", "--from-db", "--json", "--lapse-weeks", "52"))
    assert (data["dropouts"], data["stayers"]) == (ended, len(lines) - ended)
    summary = data["summary"]["rapport"]
    assert summary["tp"] + summary["fn"] == ended
    assert "lines" not in data
    text = rapport("backtest", "--from-db", "--lapse-weeks", "52")
    assert f"{ended} ended their course" in text
    assert "Thresholds: keep the current ones (too few labelled clients" in text
    audit = rapport("audit", "--json")
    assert sum(1 for row in json.loads(audit) if row["action"] == "backtest") == 3 * len(lines)
    assert "C 0" not in text and "Dana" not in text  # no names in the report


def test_backtest_needs_a_file_or_from_db_not_both(rapport, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert "either a FILE or --from-db" in rapport("backtest", code=1)
    data = tmp_path / "x.jsonl"
    data.write_text("")
    assert "either a FILE or --from-db" in rapport("backtest", str(data), "--from-db", code=1)


def acknowledge(db_url: str, verdicts: list[tuple[int, bool, str]]) -> None:
    """Alerts about these clients (client, urgent, choice), acknowledged a day before NOW."""

    async def go() -> None:
        engine = create_engine(db_url)
        async with session_factory(engine)() as s, s.begin():
            by = await s.scalar(select(Therapist.id))
            assert by is not None
            for client_id, urgent, choice in verdicts:
                alert = await alerts.add_alert(
                    s,
                    client_id=client_id,
                    kind="crisis" if urgent else "flag",
                    cause="other" if urgent else "falling_alliance",
                    urgent=urgent,
                    raised_at=NOW - timedelta(days=2),
                    escalate_at=None,
                )
                assert await alerts.acknowledge(
                    s, alert.id, choice=choice, by=by, at=NOW - timedelta(days=1)
                )
        await engine.dispose()

    asyncio.run(go())


def test_acknowledgements_are_the_practices_labels(  # type: ignore[no-untyped-def]
    rapport, sqlite_url: str, monkeypatch
) -> None:
    """A flag or withdrawal marked "not a concern" makes its client a stayer; "seen" and
    "contacted" are concerns; an urgent alert's acknowledgement says nothing of the detector."""
    monkeypatch.setenv("RAPPORT_CLOCK", f"timelapse:{NOW.isoformat()}x1")
    therapist = json.loads(rapport("therapist", "add", "--name", "Dana Lee", "--json"))
    lines = [line for line in generate(40, 5) if line["events"]]
    ids = [
        json.loads(
            rapport(
                "client", "add", "--therapist", str(therapist["id"]), "--name", f"C {n}", "--json"
            )
        )["id"]
        for n in range(len(lines))
    ]
    seed(sqlite_url, ids, lines)
    ended = [any(e["type"] in ("stopped", "blocked") for e in line["events"]) for line in lines]
    before = json.loads(rapport("backtest", "--from-db", "--json"))
    assert before["stayers"] == 0 and before["concern"] == before["not_a_concern"] == 0
    lapsed = [client for client, gone in zip(ids, ended, strict=True) if not gone]
    assert len(lapsed) >= 4

    acknowledge(
        sqlite_url,
        [
            (lapsed[0], False, "not_concern"),
            (lapsed[1], False, "not_concern"),
            (lapsed[2], False, "contacted"),
            (lapsed[3], True, "seen"),
        ],
    )

    async def stored() -> list[tuple[str, bool]]:
        engine = create_engine(sqlite_url)
        async with session_factory(engine)() as s:
            found = await verdicts(s)
        await engine.dispose()
        return [(v.client, v.concern) for v in found]

    assert asyncio.run(stored()) == [
        (str(lapsed[0]), False),
        (str(lapsed[1]), False),
        (str(lapsed[2]), True),
    ]
    after = json.loads(rapport("backtest", "--from-db", "--json"))
    assert after["stayers"] == 2  # the two marked "not a concern"
    assert (after["dropouts"], after["clients"]) == (before["dropouts"], before["clients"])
    assert after["unlabelled"] == before["unlabelled"] - 2
    assert after["concern"] <= 1 and after["not_a_concern"] <= 2
