"""Answering check-ins as a client would, and a ledger of what each client really gave, to hold
against what the database stored after the faults."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devtools.sandbox import SandboxUser
from flows.i18n import t
from flows.instruments import load_instrument
from flows.plan import plan_items
from storage.crypto import Cipher
from storage.models import Answer
from tests.e2e.harness import button_data, following, next_with_buttons
from tests.faults.traffic import GUARD

# Item ids by position in the default check-in (no safety item): callback data names positions.
ITEMS = plan_items(load_instrument("rapport-brief"), False)
Value = int | str | None


def parse_answer(data: str) -> tuple[int, str, str] | None:
    """`c:<checkin>:<index>:<value>` -> (checkin id, item id, raw value); None if not one."""
    parts = data.split(":")
    if len(parts) != 4 or parts[0] != "c" or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    index = int(parts[2])
    if index >= len(ITEMS):
        return None
    return int(parts[1]), ITEMS[index], parts[3]


def button(message: dict[str, Any], value: str) -> str:
    """The callback data of the answer button carrying `value` ("7", "1", "n", "s")."""
    for data in button_data(message):
        if data.startswith("c:") and data.rsplit(":", 1)[1] == value:
            return data
    raise AssertionError(f"no button with value {value!r} in {button_data(message)}")


def item_of(message: dict[str, Any]) -> str:
    found = parse_answer(button_data(message)[0])
    assert found is not None, f"not a check-in question: {button_data(message)}"
    return found[1]


class Ledger:
    """Per check-in, the answer each item got from the client (None: "prefer not to say")."""

    def __init__(self) -> None:
        self.given: dict[int, dict[str, Value]] = defaultdict(dict)

    def tapped(self, data: str) -> None:
        found = parse_answer(data)
        assert found is not None
        checkin_id, item, raw = found
        assert item not in self.given[checkin_id], f"{item} answered twice by the test itself"
        self.given[checkin_id][item] = None if raw == "n" else int(raw)

    def typed(self, question: dict[str, Any], value: int) -> None:
        """A number typed in answer to `question` (a scale item) instead of a tap."""
        found = parse_answer(button_data(question)[0])
        assert found is not None
        checkin_id, item, _ = found
        assert item not in self.given[checkin_id], f"{item} answered twice by the test itself"
        self.given[checkin_id][item] = value

    def wrote(self, checkin_id: int, comment: str) -> None:
        self.given[checkin_id]["comment"] = comment

    async def stored(
        self, sessions: async_sessionmaker[AsyncSession], cipher: Cipher
    ) -> dict[int, dict[str, Value]]:
        async with sessions() as s:
            rows = (await s.scalars(select(Answer).order_by(Answer.id))).all()
        found: dict[int, dict[str, Value]] = defaultdict(dict)
        for row in rows:
            assert row.item not in found[row.checkin_id], f"{row.item} stored twice"
            value: Value = row.value
            if row.text_enc is not None:
                value = cipher.decrypt(row.text_enc)
            found[row.checkin_id][row.item] = value
        return dict(found)

    async def assert_stored(
        self, sessions: async_sessionmaker[AsyncSession], cipher: Cipher
    ) -> None:
        """The database holds exactly what the clients gave: nothing lost, doubled or invented."""
        stored = await self.stored(sessions, cipher)
        given = {k: v for k, v in self.given.items() if v}
        assert stored == given, f"stored {stored} but the clients gave {given}"


async def answer(
    user: SandboxUser, question: dict[str, Any], value: str, ledger: Ledger, timeout: float = GUARD
) -> dict[str, Any]:
    """Tap `value` on `question`, note it, and return the next question (with buttons)."""
    data = button(question, value)
    user.skip_to_end()  # only what the tap brings counts as the next question
    await user.tap(question, data)
    ledger.tapped(data)
    return await next_with_buttons(user, timeout=timeout, after=question)


HINT = t("en", "checkin.tap_hint", low=0, high=10)[:30]
"""How the bot's hint to tap or type a number begins."""


async def type_number(
    user: SandboxUser, question: dict[str, Any], value: int, ledger: Ledger, timeout: float = GUARD
) -> dict[str, Any]:
    """Type `value` in answer to `question`, note it, and return the next question. Typed the
    instant `question` shows, the edit that brought it may not be written down as delivered yet
    (another replica sent it): the bot then asks to tap or type again rather than risk filing
    the number under a question not yet seen, and the client types it again, as a person would."""
    for _ in range(5):
        user.skip_to_end()
        mark = len(user.inbox)
        await user.send(str(value))

        def replied(mark: int = mark) -> bool:
            fresh = user.inbox[mark:]
            return any(button_data(m) or HINT in str(m.get("text", "")) for m in fresh)

        await user._sandbox.world.signal.until(replied, timeout)
        if not any(HINT in str(m.get("text", "")) for m in user.inbox[mark:]):
            break
    ledger.typed(question, value)
    return await next_with_buttons(user, timeout=timeout)


def is_thanks(message: dict[str, Any]) -> bool:
    return str(message.get("text", "")).startswith(t("en", "checkin.thanks")[:10])


async def complete_checkin(
    user: SandboxUser,
    question: dict[str, Any],
    values: list[str],
    ledger: Ledger,
    comment: str | None = None,
    timeout: float = GUARD,
) -> None:
    """Tap `values` on the questions in turn up to the comment, then write `comment` or skip."""
    for value in values:
        question = await answer(user, question, value, ledger, timeout)
    assert item_of(question) == "comment", f"still asking {item_of(question)}"
    if comment is None:
        user.skip_to_end()
        await user.tap(question, button(question, "s"))
        assert is_thanks(await following(user, question, timeout)), "thanked in place"
        return
    await user.send(comment)
    found = parse_answer(button(question, "s"))
    assert found is not None
    ledger.wrote(found[0], comment)
    await user.next_message(timeout=timeout, predicate=is_thanks)
