"""`/mydata`: everything stored about the client, in their language, readable."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flows.i18n import t
from insights.digest import split_message
from storage import checkins
from storage.models import Client

if TYPE_CHECKING:
    from app.runtime import Runtime, Session


async def render_mydata(s: Session, rt: Runtime, client: Client, now: datetime) -> list[str]:
    lang = client.language or "en"
    lines = [
        t(lang, "mydata.title"),
        t(
            lang,
            "mydata.profile",
            language=lang,
            timezone=client.timezone or "-",
            status=t(lang, f"status.{client.status}"),
            consent=client.consent_at.date().isoformat() if client.consent_at else "-",
        ),
    ]
    for checkin in await checkins.checkins_of(s, client.id):
        answers = await checkins.answers_of(s, checkin.id)
        parts = []
        for a in answers:
            if a.text_enc is not None:
                parts.append(f"{a.item}: “{rt.cipher.decrypt(a.text_enc)}”")
            else:
                parts.append(f"{a.item}: {'-' if a.value is None else a.value}")
        lines.append(
            t(
                lang,
                "mydata.checkin",
                date=checkin.opened_at.date().isoformat(),
                status=t(lang, f"mydata.checkin_{checkin.status}"),
            )
            + ("\n  " + "; ".join(parts) if parts else "")
        )
    for note in await checkins.notes_of(s, client.id):
        line = t(lang, f"mydata.note_{note.kind}", date=note.at.date().isoformat())
        if note.reason:
            line += f": {t(lang, f'stop_reason.{note.reason}')}"
        if note.text_enc is not None:
            line += f"\n  “{rt.cipher.decrypt(note.text_enc)}”"
        lines.append(line)
    lines.append(t(lang, "mydata.footer"))
    return split_message(lines)
