"""The quarantine's arithmetic: backoff from a minute, doubling, capped at an hour; holds are per
kind; success clears; holds no longer tried are forgotten."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from app.quarantine import Quarantine

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def failure() -> ValueError:
    try:
        raise ValueError("stored text: 'I feel hopeless'")
    except ValueError as exc:
        return exc


def test_waits_double_from_a_minute_up_to_an_hour(caplog: pytest.LogCaptureFixture) -> None:
    q = Quarantine()
    now, waits = T0, []
    for _ in range(9):
        q.failed("nudge", 7, now, failure())
        until = now
        while 7 in q.held("nudge", until):
            until += timedelta(seconds=1)
        waits.append(until - now)
        now = until
    minutes = [int(w.total_seconds() // 60) for w in waits]
    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert "hopeless" not in caplog.text
    assert "ValueError at test_quarantine.py:" in caplog.text


def test_holds_are_per_kind_and_cleared_by_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.quarantine")
    q = Quarantine()
    q.failed("digest", 3, T0, failure())
    assert q.held("digest", T0) == [3]
    assert q.held("nudge", T0) == []
    q.cleared("digest", [3, 4])
    assert q.held("digest", T0) == [] and q.count() == 0
    assert "digest 3 handled after earlier failures" in caplog.text
    q.failed("digest", 3, T0, failure())  # a new failure starts from the first wait again
    assert 3 not in q.held("digest", T0 + timedelta(seconds=61))


def test_a_hold_not_tried_again_is_forgotten() -> None:
    q = Quarantine()
    q.failed("opening", 9, T0, failure())
    assert q.count() == 1
    q.held("opening", T0 + timedelta(minutes=30))
    assert q.count() == 1, "still within the longest wait"
    q.held("opening", T0 + timedelta(hours=2))
    assert q.count() == 0
