"""The client lifecycle as pure functions: which changes are allowed from which status, and what
each one asks the executor to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flows import lifecycle
from flows.intents import (
    CloseCheckin,
    LifeEvent,
    SetStatus,
    StartCadence,
    TellClient,
    TellTherapist,
)
from flows.lifecycle import Actor
from flows.statuses import CheckinStatus, ClientStatus

AT = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
UNTIL = AT + timedelta(days=3)


def test_the_statuses_are_the_stored_strings() -> None:
    assert [s.value for s in ClientStatus] == [
        "invited", "onboarding", "active", "paused", "stopped", "declined",
    ]  # fmt: skip
    assert [s.value for s in CheckinStatus] == ["open", "answered", "partial", "missed"]
    assert ClientStatus("paused") is ClientStatus.PAUSED and ClientStatus.PAUSED == "paused"


@pytest.mark.parametrize(
    ("complete", "answered", "status"),
    [
        (True, True, CheckinStatus.ANSWERED),
        (True, False, CheckinStatus.ANSWERED),  # only optional items were left
        (False, True, CheckinStatus.PARTIAL),
        (False, False, CheckinStatus.MISSED),
    ],
)
def test_a_closed_check_in_is_answered_partial_or_missed(
    complete: bool, answered: bool, status: CheckinStatus
) -> None:
    assert lifecycle.closed_status(complete=complete, answered=answered) is status


@pytest.mark.parametrize("status", ["active", "paused"])
def test_a_pause_closes_the_check_in_whoever_pauses(status: str) -> None:
    by_client = lifecycle.pause(status, at=AT, until=UNTIL, by=Actor.CLIENT)
    by_therapist = lifecycle.pause(status, at=AT, until=None, by=Actor.THERAPIST)
    assert by_client == (
        CloseCheckin(AT),
        SetStatus(ClientStatus.PAUSED, paused_until=UNTIL),
        LifeEvent("paused", AT, Actor.CLIENT),
        TellTherapist("paused", until=UNTIL),
    )
    assert by_therapist == (
        CloseCheckin(AT),
        SetStatus(ClientStatus.PAUSED, paused_until=None),
        LifeEvent("paused", AT, Actor.THERAPIST),
        TellClient("staff.paused_by_therapist"),
    )


@pytest.mark.parametrize("status", ["invited", "onboarding", "stopped", "declined"])
def test_only_active_or_paused_clients_pause(status: str) -> None:
    assert lifecycle.pause(status, at=AT, until=None, by=Actor.THERAPIST) == ()


def test_resume_from_a_pause_only_and_the_therapist_hears_of_the_clients_own() -> None:
    assert lifecycle.resume("paused", at=AT, by=Actor.CLIENT) == (
        SetStatus(ClientStatus.ACTIVE),
        LifeEvent("resumed", AT, Actor.CLIENT),
        TellTherapist("resumed"),
    )
    for by in (Actor.THERAPIST, Actor.SCHEDULE):
        assert lifecycle.resume("paused", at=AT, by=by) == (
            SetStatus(ClientStatus.ACTIVE),
            LifeEvent("resumed", AT, by),
        )
    for status in ("active", "stopped", "onboarding"):
        assert lifecycle.resume(status, at=AT, by=Actor.CLIENT) == ()


def test_stop_once() -> None:
    assert lifecycle.stop("paused", at=AT) == (
        CloseCheckin(AT),
        SetStatus(ClientStatus.STOPPED),
        LifeEvent("stopped", AT, Actor.CLIENT),
        TellTherapist("stopped"),
    )
    assert lifecycle.stop("stopped", at=AT) == ()


def test_activation_needs_consent_a_zone_and_the_end_of_onboarding() -> None:
    ready = {"consented": True, "has_timezone": True, "onboarded": True}
    assert lifecycle.activate("onboarding", at=AT, **ready) == (
        StartCadence(AT),
        SetStatus(ClientStatus.ACTIVE),
        TellTherapist("joined"),
    )
    for missing in ready:
        assert lifecycle.activate("onboarding", at=AT, **{**ready, missing: False}) == ()
    assert lifecycle.activate("active", at=AT, **ready) == ()
