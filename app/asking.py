"""What a check-in opening now asks: the moment (`flows.moments`) from the client's sessions and
their last session rating, for one client or a batch (one pair of queries either way)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from app.runtime import Session
from flows.instruments import Instrument
from flows.moments import Moment, moment_for
from storage import checkins


async def moments_of(
    s: Session, instrument: Instrument, client_ids: Collection[int], now: datetime
) -> dict[int, Moment]:
    """Each client's moment for a check-in opening at `now`."""
    facts = await checkins.asking_facts(s, client_ids, instrument.session_items, now)
    rates = bool(instrument.session_items)
    return {
        client_id: moment_for(
            f.last_session_ended, f.has_upcoming_session, f.last_rated, rates_sessions=rates
        )
        for client_id, f in facts.items()
    }
