"""The synthetic data set: reproducible, in the fixed format, realistic enough to be fair."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from insights.baseline_rule import cutoff_alert_at, two_missed_alert_at
from insights.history import history_from_backtest_line
from insights.synthetic import ARCHETYPES, command, generate, generate_client


@pytest.fixture(scope="module")
def clients() -> list[dict]:
    return list(generate(400, seed=31))


def test_the_same_seed_gives_the_same_clients() -> None:
    assert generate_client(7, 3) == generate_client(7, 3)
    assert generate_client(7, 3) != generate_client(8, 3)
    assert next(iter(generate(3, seed=7, first=2))) == generate_client(7, 2)


def test_every_line_is_in_the_backtest_format_and_in_time_order(clients: list[dict]) -> None:
    for client in clients:
        times = [datetime.fromisoformat(e["at"]) for e in client["events"]]
        assert times == sorted(times)
        history, label = history_from_backtest_line(json.loads(json.dumps(client)))
        assert label is not None
        assert (
            8 * 7 - 7 <= (max(times) - min(times)).days <= 16 * 7
            or client["archetype"] == "late_joiner"
            or label.dropout
        )
        if label.dropout:
            assert label.at is not None and history.sessions[-1] < label.at
        else:
            assert "at" not in client["label"]
        assert {c.status for c in history.checkins} <= {"answered", "partial", "missed", "open"}


def test_all_archetypes_appear_in_about_their_shares(clients: list[dict]) -> None:
    counts = Counter(client["archetype"] for client in clients)
    for name, share, _ in ARCHETYPES:
        assert counts[name] > 0
        assert abs(counts[name] / len(clients) - share) < 0.07, name
    dropouts = sum(client["label"]["dropout"] for client in clients)
    assert 0.2 < dropouts / len(clients) < 0.45


def test_simple_rules_fire_on_clients_who_stay(clients: list[dict]) -> None:
    stayers = [history_from_backtest_line(c)[0] for c in clients if not c["label"]["dropout"]]
    cutoff = sum(cutoff_alert_at(h) is not None for h in stayers) / len(stayers)
    missed = sum(two_missed_alert_at(h) is not None for h in stayers) / len(stayers)
    assert cutoff > 0.5
    assert 0.05 < missed < 0.4


def test_withdrawal_shows_gradually_before_the_drop_out(clients: list[dict]) -> None:
    """Share of check-ins missed or answered late (after 12 h): low early, rising 1–3 weeks out."""
    early: list[bool] = []
    late: list[bool] = []
    delays_early: list[float] = []
    delays_late: list[float] = []
    for client in clients:
        if client["archetype"] != "silent_withdrawal":
            continue
        history, label = history_from_backtest_line(client)
        assert label is not None and label.at is not None
        for record in history.checkins:
            if record.status == "open":
                continue
            hours = (
                (record.answered_at - record.sent_at).total_seconds() / 3600
                if record.answered_at is not None
                else None
            )
            days_before = (label.at - record.sent_at).days
            bucket, delays = (
                (early, delays_early)
                if days_before > 35
                else (late, delays_late)
                if 7 <= days_before <= 21
                else (None, None)
            )
            if bucket is None or delays is None:
                continue
            bucket.append(hours is None or hours > 12)
            if hours is not None:
                delays.append(hours)
    assert sum(late) / len(late) > 2 * sum(early) / len(early)
    assert statistics.median(delays_late) > statistics.median(delays_early)


def test_comments_come_from_short_english_pools(clients: list[dict]) -> None:
    comments = [e["comment"] for c in clients for e in c["events"] if "comment" in e]
    assert comments and max(len(comment) for comment in comments) < 60


def test_the_command_line_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "clients.jsonl"
    assert (
        CliRunner().invoke(command, ["--clients", "12", "--seed", "4", "--out", str(out)]).exit_code
        == 0
    )
    lines = out.read_text().splitlines()
    assert len(lines) == 12
    assert json.loads(lines[0]) == generate_client(4, 0)


def test_the_command_line_refuses_a_negative_count() -> None:
    refused = CliRunner().invoke(command, ["--clients", "-1"])
    assert refused.exit_code == 2 and "--clients" in refused.output
