"""`rapport demo`, shortened to three weeks: the whole story runs against the sandbox and leaves
its evidence behind (the exit code, summary.json, the digest charts the therapist received)."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devtools.demo import run_demo
from devtools.demo.clock import HeldTimelapse
from devtools.demo.story import (
    CAST,
    CRISIS_CHECKIN,
    CRISIS_COMMENT,
    CRITICAL_COMMENT,
    crisis,
    engaged,
    rupture,
    withdrawal_phases,
    withdrawing,
)
from flows.crisis import match_crisis
from insights.lexicon import is_confrontational

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = 600_000.0  # simulated seconds per wall second; due moments are still met exactly


async def test_three_weeks_of_the_demo_tell_the_story(tmp_path: Path) -> None:
    code = await run_demo(weeks=3, out=tmp_path, speed=FAST, quiet=True)

    summary, charts = _evidence(tmp_path)
    failed = [check for check in summary["checks"] if not check["ok"]]
    assert code == 0, failed
    assert summary["ok"] is True and not failed
    assert summary["weeks"] == 3 and summary["simulated"]["days"] > 21
    assert summary["demo_mode"] == {
        "encryption_key": "throw-away, generated for this run",
        "send_rate": 0,
        "chat_send_rate": 0,
    }

    clients = summary["clients"]
    assert set(clients) == {persona.alias for persona in CAST}
    by_story = {data["story"]: data for data in clients.values()}
    for data in clients.values():
        assert data["checkins"]["sent"] == 6  # Tuesdays and Fridays for three weeks
        assert data["digests_received"] == 3  # one before each Monday session

    engaged = by_story["engaged"]
    assert engaged["checkins"]["answered"] == 6 and engaged["checkins"]["missed"] == 0
    assert engaged["last_digest"]["all_well"] is True
    assert engaged["flagged_before_session"] is False

    withdrawing = by_story["withdrawing"]
    assert withdrawing["checkins"]["missed"] >= 2
    assert withdrawing["flagged_before_session"] is True
    assert {s["code"] for s in withdrawing["last_digest"]["signals"]} & {"silence", "slowing"}

    falling = by_story["falling"]
    assert falling["flagged_before_session"] is True
    codes = {s["code"] for s in falling["last_digest"]["signals"]}
    assert codes & {"falling_alliance", "low_alliance", "item_drop"}

    crisis_alias = next(p.alias for p in CAST if p.story == "crisis")
    alerts = [a for a in summary["crisis_alerts"] if a["client"] == crisis_alias]
    assert len(alerts) == 1 and 0 <= alerts[0]["minutes_after_message"] <= 5
    # the digest after the crisis opens with it, whatever the scores (9s) and comments setting
    checks = {check["check"]: check for check in summary["checks"]}
    assert checks["the crisis client's next digest opens with the urgent alert"]["ok"] is True
    # the therapist taps "I've contacted the client"; the alert shows who did, instead of buttons
    assert alerts[0]["acknowledged"] is True
    assert checks["the therapist acknowledged the urgent alert, and the alert shows it"]["ok"]

    assert summary["bot_log"]["errors"] == 0

    assert sorted(charts) == sorted(summary["charts"])
    assert len(charts) == 15  # every client has answered by the first session
    for name, head in charts.items():
        assert re.fullmatch(r"digest-[A-Za-z0-9_-]+-2026-\d\d-\d\d\.png", name)
        assert head == PNG_SIGNATURE


def _evidence(folder: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """summary.json, and the first bytes of each digest chart by file name."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    charts = {path.name: path.read_bytes()[:8] for path in folder.glob("digest-*.png")}
    return summary, charts


# --- the demo's clock and cast, without the bot -------------------------------------------------


class FakeWall:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_the_clock_runs_at_speed_and_stands_still_while_held() -> None:
    wall = FakeWall()
    clock = HeldTimelapse(START, 3600, monotonic=wall)
    wall.now += 2
    assert clock.now() == START + timedelta(hours=2)
    with clock.hold():
        wall.now += 5
        assert clock.now() == START + timedelta(hours=2)
        clock.advance(timedelta(seconds=30))  # a client thinking between taps
        assert clock.now() == START + timedelta(hours=2, seconds=30)
    wall.now += 1
    assert clock.now() == START + timedelta(hours=3, seconds=30)
    assert clock.held_wall == 5


def test_an_alarm_stops_the_clock_exactly_there_until_dismissed() -> None:
    wall = FakeWall()
    clock = HeldTimelapse(START, 3600, monotonic=wall)
    alarm = clock.alarm(START + timedelta(minutes=90))
    wall.now += 10  # far past the alarm in wall time
    assert clock.now() == START + timedelta(minutes=90)
    assert alarm.reached.is_set() and clock.is_held
    wall.now += 10
    assert clock.now() == START + timedelta(minutes=90)
    alarm.dismiss()
    wall.now += 1
    assert clock.now() == START + timedelta(minutes=150)
    assert not clock.is_held


def test_an_alarm_already_passed_stops_the_clock_at_once_and_time_never_goes_back() -> None:
    wall = FakeWall()
    clock = HeldTimelapse(START, 60, monotonic=wall)
    with clock.hold():
        clock.advance(timedelta(minutes=10))
        late = clock.alarm(START + timedelta(minutes=5))
        assert clock.now() == START + timedelta(minutes=10)
    assert clock.now() == START + timedelta(minutes=10)  # reading the clock rings it
    assert late.reached.is_set() and clock.is_held
    wall.now += 1
    assert clock.now() == START + timedelta(minutes=10)
    late.dismiss()
    clock.set_speed(120)
    wall.now += 1
    assert clock.now() == START + timedelta(minutes=12)
    assert clock.stops == 2


def test_the_cast_says_what_the_detectors_are_meant_to_hear() -> None:
    assert match_crisis(CRISIS_COMMENT) is not None
    assert is_confrontational(CRITICAL_COMMENT)
    rng = random.Random(1)
    for k in range(12):
        reply = engaged(k, 12, rng)
        assert sum(reply.alliance) >= 37 and reply.delay <= timedelta(hours=3)
    slow, quiet = withdrawal_phases(12)
    assert 0 < slow < quiet <= 6
    assert withdrawing(quiet, 12, rng) is None
    assert [rupture(k, 12, rng).tension for k in range(12)].count(True) == 2
    assert crisis(CRISIS_CHECKIN, 12, rng).comment == CRISIS_COMMENT
