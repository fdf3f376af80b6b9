"""The same appointment entered twice (the CLI, a calendar import, the therapist's /session) is one
session, and the therapist gets one digest for it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from cli.main import commands
from flows.i18n import t
from storage.models import Client, TherapySession
from tests.conftest import TEST_KEY
from tests.e2e.test_scheduling import BERLIN, MONDAY, D, MakeWorld, aware, join, run_until
from tests.e2e.test_scheduling import make_world as make_world  # the fixture
from tests.e2e.test_sessions_e2e import DIGEST, digests_received
from tests.e2e.test_therapist import command
from tests.scheduling.test_sessions_db import calendar, event

WEDNESDAY_3PM = aware(D(2026, 1, 7, 15, 0), BERLIN)


def cli(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        commands,
        list(args),
        env={
            "RAPPORT_DATABASE_URL": db_url,
            "RAPPORT_ENCRYPTION_KEY": TEST_KEY,
            "RAPPORT_CLOCK": f"timelapse:{MONDAY.isoformat()}x1",
        },
    )
    return result.exit_code, result.output


async def test_one_appointment_entered_three_ways_is_one_session_and_one_digest(
    make_world: MakeWorld, sqlite_url: str, tmp_path: Path
) -> None:
    world = await make_world(MONDAY, cadence="off")
    dana = await world.join_therapist("Dana Lee", BERLIN)
    alice = await join(world, dana, "Alice Smith", BERLIN)
    at = WEDNESDAY_3PM.isoformat()

    code, out = await asyncio.to_thread(
        cli, sqlite_url, "session", "add", "--client", "1", "--at", at
    )
    assert code == 0, out
    code, out = await asyncio.to_thread(
        cli, sqlite_url, "session", "add", "--client", "1", "--at", at
    )
    assert code == 1 and out.count("\n") == 1, out
    assert out.startswith("rapport: client 1 already has session 1 at"), out

    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None
        code_, alias = client.code, client.alias
    ics = tmp_path / "dana.ics"
    ics.write_bytes(calendar(event("appt-1", "20260107T140000Z", f"Alice #{code_}")))
    code, out = await asyncio.to_thread(
        cli, sqlite_url, "session", "import", str(ics), "--therapist", "1"
    )
    assert code == 0, out
    assert "0 created" in out and "kept as that one session" in out, out

    reply = await command(world, dana, f"/session {alias} wed 15:00")
    assert reply == t(
        "en",
        "staff.session_exists",
        alias=alias,
        when=reply.split(" on ")[1].split(" (")[0],
        zone=BERLIN,
    )
    async with world.rt.sessions() as s:
        live = await s.scalar(
            select(func.count()).where(
                TherapySession.client_id == alice.id, TherapySession.cancelled.is_(False)
            )
        )
    assert live == 1

    await run_until(world, WEDNESDAY_3PM + timedelta(hours=1))
    assert [title for _, title in digests_received(dana, BERLIN)] == [DIGEST + alias]
