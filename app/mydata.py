"""`/mydata`: everything stored about the client, in their language, readable."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flows.i18n import has_key, t
from flows.instruments import (
    DEFAULT_INSTRUMENT,
    SAFETY_INSTRUMENT,
    Instrument,
    Item,
    available_instruments,
    load_instrument,
)
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
                name = _name(lang, a.item)
                parts.append(
                    t(lang, "mydata.answer_text", item=name, text=rt.cipher.decrypt(a.text_enc))
                )
            else:
                parts.append(_answer(lang, a.item, a.value))
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


def _name(lang: str, item_id: str) -> str:
    """The question in a few plain words ("tension or misunderstanding"), or which question of
    which questionnaire it was ("PHQ-9 (depression), question 3"), never its code."""
    key = f"mydata.item.{item_id}"
    if has_key(key):
        return t(lang, key)
    for instrument in _instruments():
        ids = [item.id for item in instrument.flat_items()]
        if item_id in ids:
            title = instrument.title_for(lang)
            return t(lang, "mydata.item_of", title=title, n=ids.index(item_id) + 1)
    return item_id.replace("_", " ")


def _answer(lang: str, item_id: str, value: int | None) -> str:
    """'tension or misunderstanding: no', 'how you have been: 7/10', a choice by its label."""
    item = _item(item_id)
    if value is None:
        shown = t(lang, "mydata.no_answer")
    elif item is not None and item.kind == "yesno":
        shown = t(lang, "mydata.yes" if value else "mydata.no")
    elif item is not None and item.choices is not None and value in item.choices:
        shown = item.localized(item.choices[value], lang)
    elif item is not None and item.kind == "scale":
        shown = f"{value}/{item.high}"
    else:
        shown = str(value)
    return t(lang, "mydata.answer", item=_name(lang, item_id), value=shown)


def _item(item_id: str) -> Item | None:
    for instrument in _instruments():
        found = instrument.find(item_id)
        if found is not None:
            return found
    return None


def _instruments() -> list[Instrument]:
    """The brief check and the safety item first (their wording wins), then every shipped one."""
    first = [DEFAULT_INSTRUMENT, SAFETY_INSTRUMENT]
    names = first + [name for name in available_instruments() if name not in first]
    return [load_instrument(name) for name in names]
