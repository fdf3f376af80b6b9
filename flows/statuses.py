"""The statuses a client and a check-in can have: the strings stored in `client.status` and
`checkin.status` (plain text columns), named. Plain data, so `storage` may use them too; who may
change a status, and how, is `flows.lifecycle`."""

from __future__ import annotations

from enum import StrEnum


class ClientStatus(StrEnum):
    INVITED = "invited"  # added, no Telegram account bound yet (or moved to a new one)
    ONBOARDING = "onboarding"  # bound; language, consent and time zone not all settled
    ACTIVE = "active"  # receives check-ins
    PAUSED = "paused"  # no check-ins until `paused_until`, or until resumed
    STOPPED = "stopped"  # no more check-ins; the data stays until erased
    DECLINED = "declined"  # said no to consent: unbound, nothing more stored


class CheckinStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"  # every owed item got an answer (`flows.plan.Plan.owed`)
    PARTIAL = "partial"  # started and left
    MISSED = "missed"  # nothing answered in time
