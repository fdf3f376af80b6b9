"""`rapport digest`: the digest for a client as it would be sent now, in the therapist's language
(an audited read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.admin import client_of
from app.digests import digest_chart, digest_for
from app.runtime import Runtime
from insights.digest import render_text, to_json
from storage import audit, people


@dataclass
class DigestNow:
    chunks: list[str]
    as_json: dict[str, Any]
    png: bytes | None


async def digest_now(rt: Runtime, client_id: int, actor: str = "cli") -> DigestNow:
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        client = await client_of(s, client_id)
        therapist = await people.therapist_by_id(s, client.therapist_id)
        practice = await people.get_practice(s, now)
        upcoming = await people.next_session(s, client.id, now)
        digest, history = await digest_for(
            s,
            rt,
            client,
            practice,
            now,
            upcoming.starts_at if upcoming else None,
            lang=therapist.language if therapist else None,
        )
        await audit.audit(s, actor=actor, action="digest", now=now, client_id=client.id)
    zone = therapist.timezone if therapist else "UTC"
    png = None
    if history.checkins:
        png = digest_chart(digest, history)
    return DigestNow(render_text(digest, zone), to_json(digest), png)
