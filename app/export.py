"""Data rights for the practice: a complete, readable export of one client or all, as JSON or CSV.

Exports decrypt names and comments (that is their purpose), so each one is written to the audit log.
Every text is shown as a person saw it (`flows.visible`: no bidi overrides or zero widths, old rows
too); the CSV also neutralises cells a spreadsheet would run as a formula (`spreadsheet_safe`), the
JSON keeps the text exactly as the client wrote it otherwise.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from app.admin import client_of
from app.runtime import Runtime, Session
from flows.visible import visible_text
from storage import audit, checkins, people
from storage.models import Client


async def client_record(rt: Runtime, client: Client, s: Session) -> dict[str, Any]:
    cipher = rt.cipher
    rows: list[dict[str, Any]] = []
    answered: dict[int, list[dict[str, Any]]] = defaultdict(list)
    # One query for the client's answers, not one a check-in: every client's export stays fast.
    for a in await checkins.answers_of_client(s, client.id):
        answered[a.checkin_id].append(
            {
                "item": a.item,
                "value": a.value,
                "text": None if a.text_enc is None else visible_text(cipher.decrypt(a.text_enc)),
                "answered_at": a.answered_at.isoformat(),
            }
        )
    for checkin in await checkins.checkins_of(s, client.id):
        answers = answered.get(checkin.id, [])
        rows.append(
            {
                "id": checkin.id,
                "instrument": checkin.instrument,
                "status": checkin.status,
                "opened_at": checkin.opened_at.isoformat(),
                "closed_at": checkin.closed_at.isoformat() if checkin.closed_at else None,
                "answers": answers,
            }
        )
    return {
        "id": client.id,
        "name": visible_text(cipher.decrypt(client.name_enc)),
        "alias": visible_text(client.alias),
        "therapist": client.therapist_id,
        "status": client.status,
        "language": client.language,
        "timezone": client.timezone,
        "cadence": client.cadence,
        "consent": {
            "version": client.consent_version,
            "at": client.consent_at.isoformat() if client.consent_at else None,
        },
        "joined_at": client.joined_at.isoformat() if client.joined_at else None,
        "sessions": [
            {
                "starts_at": x.starts_at.isoformat(),
                "ends_at": x.ends_at.isoformat(),
                "cancelled": x.cancelled,
            }
            for x in await people.sessions_of(s, client.id)
        ],
        "events": [
            {"kind": e.kind, "at": e.at.isoformat()} for e in await checkins.events_of(s, client.id)
        ],
        "checkins": rows,
        "notes": [
            {
                "kind": n.kind,
                "at": n.at.isoformat(),
                "reason": n.reason,
                "text": None if n.text_enc is None else visible_text(cipher.decrypt(n.text_enc)),
            }
            for n in await checkins.notes_of(s, client.id)
        ],
    }


async def export(rt: Runtime, client_id: int | None, actor: str = "cli") -> list[dict[str, Any]]:
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        if client_id is not None:
            clients = [await client_of(s, client_id)]
        else:
            clients = list(await people.list_clients(s))
        records = [await client_record(rt, c, s) for c in clients]
        for c in clients:
            await audit.audit(s, actor=actor, action="export", now=now, client_id=c.id)
    return records


CSV_COLUMNS = (
    "client_id",
    "alias",
    "checkin_id",
    "opened_at",
    "checkin_status",
    "item",
    "value",
    "text",
    "answered_at",
)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes Excel, LibreOffice or Google Sheets read a cell as a formula (OWASP: CSV injection)"""


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: invisible characters removed, and one starting
    like a formula (`=HYPERLINK(...)`, `+1`, `-2`, `@SUM`, tab, CR) prefixed with a single quote,
    as OWASP recommends. Numbers and empty cells pass unchanged."""
    if not isinstance(value, str):
        return value
    seen = visible_text(value)
    return "'" + seen if seen.startswith(FORMULA_STARTS) else seen


def to_csv(records: list[dict[str, Any]]) -> str:
    """One row per answer and per note; a client with no answers still gets one row. Every text
    cell is made spreadsheet-safe, whatever its column."""
    out = io.StringIO()
    writer = _SafeWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for record in records:
        base = {"client_id": record["id"], "alias": record["alias"]}
        if not record["checkins"]:
            writer.writerow(base)
        for checkin in record["checkins"]:
            row = {
                **base,
                "checkin_id": checkin["id"],
                "opened_at": checkin["opened_at"],
                "checkin_status": checkin["status"],
            }
            if not checkin["answers"]:
                writer.writerow(row)
            for answer in checkin["answers"]:
                writer.writerow(
                    {**row, **{k: answer[k] for k in ("item", "value", "text", "answered_at")}}
                )
        for note in record.get("notes", ()):
            # A request to talk, why they stopped: `note:talk`, `note:stop_reason:<reason>`.
            item = ":".join(x for x in ("note", note["kind"], note["reason"]) if x)
            writer.writerow({**base, "item": item, "text": note["text"], "answered_at": note["at"]})
    return out.getvalue()


class _SafeWriter(csv.DictWriter):
    """A DictWriter that makes every cell spreadsheet-safe on its way out."""

    def writerow(self, rowdict: Any) -> Any:
        return super().writerow({k: spreadsheet_safe(v) for k, v in rowdict.items()})
