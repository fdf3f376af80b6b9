"""After the demo: what happened to each client, from the database and from the therapist's chat.

Each received digest is matched with the signals behind it by building the digest again for the
moment it was sent and checking that its text is exactly the text the therapist got; only then are
its signal codes trusted for the checks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.digests import digest_for
from app.runtime import Runtime
from devtools.demo.people import ClientAgent
from devtools.demo.therapist import ReceivedDigest, TherapistView
from insights.digest import render_text
from storage import people
from storage.models import Checkin, Client, Therapist, TherapySession

SERIOUS = ("watch", "alert")


@dataclass
class DigestFacts:
    """One received digest with the signals it listed (codes trusted only when `verified`)."""

    received: ReceivedDigest
    signals: list[dict[str, str]] = field(default_factory=list)
    verified: bool = False

    def serious_codes(self) -> set[str]:
        codes: set[str] = set()
        for signal in self.signals:
            if signal["severity"] in SERIOUS:
                codes.add(signal["code"])
                codes.update(c for c in signal.get("merged", "").split(",") if c)
        return codes


@dataclass
class ClientFacts:
    alias: str
    story: str
    title: str
    checkins: Counter[str]
    reminders: int
    stuck: int
    crisis_sent_at: datetime | None
    crisis_reply_at: datetime | None
    digests: list[DigestFacts]

    def to_json(self) -> dict[str, Any]:
        last = self.digests[-1] if self.digests else None
        flagged = [d for d in self.digests if d.received.flagged]
        return {
            "story": self.story,
            "title": self.title,
            "checkins": {
                "sent": sum(self.checkins.values()),
                "answered": self.checkins["answered"],
                "partial": self.checkins["partial"],
                "missed": self.checkins["missed"],
                "open": self.checkins["open"],
            },
            "reminders": self.reminders,
            "bot_did_not_reply": self.stuck,
            "digests_received": len(self.digests),
            "flagged_before_session": bool(flagged),
            "first_flagged_session": flagged[0].received.session_at.isoformat()
            if flagged
            else None,
            "last_digest": _digest_json(last) if last else None,
        }


def _digest_json(facts: DigestFacts) -> dict[str, Any]:
    received = facts.received
    return {
        "session_at": received.session_at.isoformat(),
        "received_at": received.received_at.isoformat(),
        "all_well": received.all_well,
        "too_little_data": received.too_little_data,
        "urgent_alerts_listed": received.urgent_alerts,
        "signals": facts.signals,
        "signals_match_received_text": facts.verified,
        "chart": received.chart_file,
    }


async def collect(
    rt: Runtime, agents: list[ClientAgent], therapist: TherapistView
) -> list[ClientFacts]:
    facts: list[ClientFacts] = []
    for agent in agents:
        async with rt.sessions() as s:
            statuses = Counter(
                str(status)
                for status in await s.scalars(
                    select(Checkin.status).where(Checkin.client_id == agent.client_id)
                )
            )
        digests = [
            await _explain(rt, d) for d in therapist.digests if d.client_id == agent.client_id
        ]
        facts.append(
            ClientFacts(
                alias=agent.alias,
                story=agent.persona.story,
                title=agent.persona.title,
                checkins=statuses,
                reminders=agent.log.reminders,
                stuck=agent.log.stuck,
                crisis_sent_at=agent.log.crisis_sent_at,
                crisis_reply_at=agent.log.crisis_reply_at,
                digests=digests,
            )
        )
    return facts


async def _explain(rt: Runtime, received: ReceivedDigest) -> DigestFacts:
    """Build the digest again as of when it was sent; trust its signals if the text matches."""
    async with rt.sessions() as s:
        session = await s.scalar(
            select(TherapySession).where(
                TherapySession.client_id == received.client_id,
                TherapySession.starts_at == received.session_at,
            )
        )
        client = await s.get(Client, received.client_id)
        if session is None or client is None or session.digest_sent_at is None:
            return DigestFacts(received)
        therapist = await s.get(Therapist, client.therapist_id)
        practice = await people.get_practice(s, session.digest_sent_at)
        digest, _ = await digest_for(
            s, rt, client, practice, session.digest_sent_at, session.starts_at
        )
    zone = therapist.timezone if therapist is not None else None
    rebuilt = "\n".join(render_text(digest, zone)).strip()
    signals = [
        {
            "code": signal.code,
            "severity": signal.severity,
            **({"merged": ",".join(signal.merged)} if signal.merged else {}),
        }
        for signal in digest.signals
    ]
    return DigestFacts(received, signals, rebuilt == received.text.strip())
