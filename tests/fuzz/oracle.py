"""What the database must hold after each move: an answer is stored only when the client gave it
for the item being asked (a tap on that item's button with a valid value, or a typed number or
yes/no it understands), is never changed afterwards, and the stored conversation agrees with the
check-in rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from flows.checkin import COMMENT_LIMIT
from flows.i18n import LANGUAGES, t
from flows.instruments import Item, load_instrument
from flows.parsing import typed_number, yes_or_no
from flows.state import State, load
from flows.visible import visible_text
from storage.models import (
    Answer,
    Checkin,
    Client,
    ClientEvent,
    Invite,
    OutboxMessage,
    Therapist,
    TherapySession,
)
from tests.e2e.harness import World

ITEMS: dict[str, Item] = {item.id: item for item in load_instrument("rapport-brief").flat_items()}
Key = tuple[int, str]  # (check-in id, item id)
Value = int | str | None


@dataclass(frozen=True)
class Snapshot:
    """One client as the database holds it."""

    exists: bool
    status: str = ""
    raw_state: Any = None
    state: State | None = None
    language: str = "en"
    answers: dict[Key, Value] | None = None
    open_checkins: frozenset[int] = frozenset()


async def snapshot(world: World, client_id: int) -> Snapshot:
    async with world.rt.sessions() as s:
        client = await s.get(Client, client_id)
        if client is None:
            return Snapshot(exists=False)
        checkins = (await s.scalars(select(Checkin).where(Checkin.client_id == client_id))).all()
        ids = [c.id for c in checkins]
        rows = (await s.scalars(select(Answer).where(Answer.checkin_id.in_(ids)))).all()
    answers: dict[Key, Value] = {}
    for row in rows:
        value: Value = row.value
        if row.text_enc is not None:
            value = world.rt.cipher.decrypt(row.text_enc)
        answers[(row.checkin_id, row.item)] = value
    return Snapshot(
        exists=True,
        status=client.status,
        raw_state=client.conversation,
        state=load(client.conversation),
        language=client.language or "en",
        answers=answers,
        open_checkins=frozenset(c.id for c in checkins if c.status == "open"),
    )


def _current(before: Snapshot) -> tuple[int, int, Item] | None:
    """(check-in id, index, item) being asked, if a check-in is open."""
    state = before.state
    if state is None or state["machine"] != "checkin" or state["checkin"] is None:
        return None
    checkin = state["checkin"]
    index = checkin["index"]
    if not 0 <= index < len(checkin["items"]):
        return None
    item = ITEMS.get(checkin["items"][index])
    return None if item is None else (checkin["id"], index, item)


def expected_from_tap(before: Snapshot, data: str) -> dict[Key, Value]:
    """The answer a tap must store: only the current item's, with a value its buttons offer."""
    current = _current(before)
    parts = data.split(":")
    if current is None or len(parts) != 4 or parts[0] != "c":
        return {}
    if not all(p.isascii() and p.isdigit() for p in parts[1:3]):
        return {}
    checkin_id, index, item = current
    if int(parts[1]) != checkin_id or int(parts[2]) != index or item.kind == "text":
        return {}
    raw = parts[3]
    if raw == "n":
        return {(checkin_id, item.id): None}
    if raw.isascii() and raw.isdigit() and item.low <= int(raw) <= item.high:
        return {(checkin_id, item.id): int(raw)}
    return {}


def expected_from_text(before: Snapshot, text: str) -> tuple[dict[Key, Value], dict[Key, Value]]:
    """(must, may): a typed answer is stored when no dialog is open; with one open, the dialog
    may take the text instead."""
    current = _current(before)
    if current is None or text.startswith("/"):
        return {}, {}
    checkin_id, _, item = current
    value: Value = None
    if item.kind == "text":
        comment = visible_text(text).strip()
        value = comment[:COMMENT_LIMIT] if comment else None
    elif item.kind == "yesno":
        answer = yes_or_no(before.language, text)
        value = None if answer is None else int(answer)
    elif (number := typed_number(text)) is not None and item.low <= number <= item.high:
        value = number
    entry: dict[Key, Value] = {} if value is None else {(checkin_id, item.id): value}
    assert before.state is not None
    return (entry, {}) if before.state["dialog"] is None else ({}, entry)


def check_move(
    before: Snapshot, after: Snapshot, must: dict[Key, Value], may: dict[Key, Value], move: str
) -> None:
    """Nothing lost (every `must` stored), nothing invented, nothing changed or doubled."""
    if not after.exists:
        return  # erased by the client's own /delete: nothing of theirs may remain, checked apart
    assert before.answers is not None and after.answers is not None
    for key, value in before.answers.items():
        assert after.answers.get(key, "<gone>") == value, f"{move}: answer {key} changed"
    added = {k: v for k, v in after.answers.items() if k not in before.answers}
    for key, value in must.items():
        assert added.get(key, "<missing>") == value, f"{move}: lost answer {key}={value!r}"
    for key, value in added.items():
        allowed = {**may, **must}
        assert key in allowed and allowed[key] == value, f"{move}: stored {key}={value!r}"


def check_consistent(snap: Snapshot, label: str) -> None:
    """The stored conversation loads, and agrees with the check-in rows and their answers."""
    if not snap.exists or snap.status in ("invited", "declined"):
        return
    assert snap.state is not None, f"{label}: stored conversation does not load: {snap.raw_state}"
    checkin = snap.state["checkin"]
    if snap.state["machine"] == "checkin":
        assert checkin is not None
        assert snap.open_checkins == {checkin["id"]}, f"{label}: {snap.open_checkins} open"
        assert snap.answers is not None
        stored = {
            item: value
            for (cid, item), value in snap.answers.items()
            if cid == checkin["id"] and item != "comment"
        }
        assert stored == checkin["answers"], f"{label}: state and answers disagree"
    else:
        assert snap.open_checkins == frozenset(), f"{label}: a check-in open with none asked"


# --- people who are not clients mid-check-in ------------------------------------------------

STRANGER_KEYS = (
    "chat.stranger",
    "chat.stranger_crisis",
    "chat.group",
    "chat.invite_invalid",
    "chat.invite_used",
    "chat.error",
)


def stranger_may_read(text: str) -> bool:
    """A stranger is told only that the bot is for invited people (or where to turn in a
    crisis, or that an invite is not valid): every such reply begins like one of those texts."""
    return any(
        text.startswith(t(lang, key).split("{", 1)[0][:40])
        for lang in LANGUAGES
        for key in STRANGER_KEYS
    )


async def rows_about(world: World, client_id: int) -> dict[str, int]:
    """Rows anywhere in the database that name this client (audit rows keep the bare id)."""
    checkins = select(Checkin.id).where(Checkin.client_id == client_id)
    queries = {
        "client": select(func.count()).select_from(Client).where(Client.id == client_id),
        "checkin": select(func.count()).where(Checkin.client_id == client_id),
        "answer": select(func.count()).where(Answer.checkin_id.in_(checkins)),
        "event": select(func.count()).where(ClientEvent.client_id == client_id),
        "session": select(func.count()).where(TherapySession.client_id == client_id),
        "invite": select(func.count()).where(Invite.client_id == client_id),
        "outbox": select(func.count()).where(
            or_(OutboxMessage.client_id == client_id, OutboxMessage.about_client_id == client_id)
        ),
    }
    async with world.rt.sessions() as s:
        counts = {name: int(await s.scalar(query) or 0) for name, query in queries.items()}
    return {name: n for name, n in counts.items() if n}


async def bound_to(world: World, user_id: int, chat_id: int) -> list[str]:
    """What the database binds to, or queues for, a Telegram account."""
    async with world.rt.sessions() as s:
        found = []
        if await s.scalar(select(Client.id).where(Client.telegram_user_id == user_id)):
            found.append("a client")
        if await s.scalar(select(Therapist.id).where(Therapist.telegram_user_id == user_id)):
            found.append("a therapist")
        if await s.scalar(select(OutboxMessage.id).where(OutboxMessage.chat_id == chat_id)):
            found.append("an outbox row")
    return found
