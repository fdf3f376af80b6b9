"""A real PTB Application, long polling the sandbox: handlers see what Telegram would send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from devtools.sandbox import DEFAULT_TOKEN, Sandbox


@dataclass
class Seen:
    """What the handlers saw, with an event-driven wait for tests."""

    update_ids: list[int] = field(default_factory=list)
    edits: list[str] = field(default_factory=list)
    memberships: list[tuple[int, str, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self) -> None:
        self.changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


Context = ContextTypes.DEFAULT_TYPE


def build_app(sandbox: Sandbox, seen: Seen) -> Application[Any, Any, Any, Any, Any, Any]:
    app = (
        ApplicationBuilder()
        .token(DEFAULT_TOKEN)
        .base_url(sandbox.api_url)
        .base_file_url(sandbox.file_url)
        .build()
    )

    async def every_update(update: Update, context: Context) -> None:
        seen.update_ids.append(update.update_id)
        seen.note()

    async def start(update: Update, context: Context) -> None:
        assert update.effective_message is not None
        scale = InlineKeyboardMarkup(
            [[InlineKeyboardButton(str(n), callback_data=f"heard:{n}") for n in (0, 5, 10)]]
        )
        await update.effective_message.reply_text(
            f"Welcome, token={' '.join(context.args or [])}", reply_markup=scale
        )

    async def text(update: Update, context: Context) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(f"Got {len(update.message.text)} characters")

    async def media(update: Update, context: Context) -> None:
        message = update.message
        assert message is not None
        kinds = [k for k in ("sticker", "photo", "voice", "document") if getattr(message, k)]
        await message.reply_text(f"media:{kinds[0]}")

    async def tapped(update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Saved")
        await query.edit_message_text(f"You chose {query.data}")

    async def edited(update: Update, context: Context) -> None:
        assert update.edited_message is not None
        seen.edits.append(update.edited_message.text or "")
        seen.note()

    async def membership(update: Update, context: Context) -> None:
        change = update.my_chat_member
        assert change is not None
        seen.memberships.append(
            (change.chat.id, change.old_chat_member.status, change.new_chat_member.status)
        )
        seen.note()

    async def hello_group(update: Update, context: Context) -> None:
        assert update.effective_chat is not None and update.effective_message is not None
        await update.effective_message.reply_text(f"hello {update.effective_chat.type}")

    app.add_handler(TypeHandler(Update, every_update), group=-1)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("hello", hello_group))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, edited))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text))
    app.add_handler(
        MessageHandler(
            filters.Sticker.ALL | filters.PHOTO | filters.VOICE | filters.Document.ALL, media
        )
    )
    app.add_handler(CallbackQueryHandler(tapped))
    app.add_handler(ChatMemberHandler(membership, ChatMemberHandler.MY_CHAT_MEMBER))
    return app


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def running_app(
    sandbox: Sandbox, seen: Seen
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    app = build_app(sandbox, seen)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


@pytest.mark.usefixtures("running_app")
async def test_deep_link_start_text_and_button_tap(sandbox: Sandbox) -> None:
    alice = sandbox.user("Alice")
    await alice.send("/start inv_Abc-123")
    welcome = await alice.next_message()
    assert welcome["text"] == "Welcome, token=inv_Abc-123"
    query = await alice.tap(welcome, "heard:5")
    assert await alice.answer_to(query) == {"text": "Saved", "show_alert": False}
    await sandbox.wait_until(lambda: alice.inbox[0]["text"] == "You chose heard:5")
    assert "reply_markup" not in alice.inbox[0]
    await alice.send("It went fine")
    assert (await alice.next_message())["text"] == "Got 12 characters"


@pytest.mark.usefixtures("running_app")
async def test_oversized_user_text_reaches_the_bot_whole(sandbox: Sandbox) -> None:
    alice = sandbox.user()
    await alice.send("x" * 5000)
    assert (await alice.next_message())["text"] == "Got 5000 characters"


@pytest.mark.usefixtures("running_app")
async def test_media_messages_parse_in_ptb(sandbox: Sandbox) -> None:
    alice = sandbox.user()
    await alice.send_sticker()
    assert (await alice.next_message())["text"] == "media:sticker"
    await alice.send_photo(caption="my week")
    assert (await alice.next_message())["text"] == "media:photo"
    await alice.send_voice(duration=4)
    assert (await alice.next_message())["text"] == "media:voice"
    await alice.send_document(file_name="journal.pdf")
    assert (await alice.next_message())["text"] == "media:document"


@pytest.mark.usefixtures("running_app")
async def test_edited_message_reaches_the_edit_handler(sandbox: Sandbox, seen: Seen) -> None:
    alice = sandbox.user()
    original = await alice.send("I feel ok")
    await alice.next_message()
    await alice.edit(original, "I feel awful, actually")
    await seen.until(lambda: seen.edits == ["I feel awful, actually"])


@pytest.mark.usefixtures("running_app")
async def test_blocking_sends_my_chat_member_kicked(sandbox: Sandbox, seen: Seen) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    await alice.next_message()
    await alice.block()
    await seen.until(lambda: (alice.chat_id, "member", "kicked") in seen.memberships)
    await alice.unblock()
    await seen.until(lambda: (alice.chat_id, "kicked", "member") in seen.memberships)


@pytest.mark.usefixtures("running_app")
async def test_group_command_arrives_with_group_chat(sandbox: Sandbox, seen: Seen) -> None:
    alice, bob = sandbox.user("Alice"), sandbox.user("Bob")
    group = sandbox.group("Practice team", [alice, bob])
    await seen.until(lambda: (group.id, "left", "member") in seen.memberships)
    await group.send(bob, "/hello@rapport_demo_bot")
    reply = await group.next_message()
    assert reply["text"] == "hello group"
    assert reply["chat"]["type"] == "group" and reply["chat"]["id"] < 0
    assert reply["chat"]["title"] == "Practice team"


@pytest.mark.usefixtures("running_app")
async def test_duplicate_delivery_repeats_update_ids(sandbox: Sandbox, seen: Seen) -> None:
    sandbox.faults.duplicate_updates(True)
    alice = sandbox.user()
    await alice.send("once")
    first = await alice.next_message()
    second = await alice.next_message()
    assert first["text"] == second["text"] == "Got 4 characters"
    assert len(seen.update_ids) == 2 and seen.update_ids[0] == seen.update_ids[1]
    await sandbox.wait_until(lambda: sandbox.default_bot.pending_update_count == 0)


async def test_a_clean_run_leaves_no_errors_behind(sandbox: Sandbox, seen: Seen) -> None:
    app = build_app(sandbox, seen)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        alice = sandbox.user()
        await alice.send("/start")
        await alice.next_message()
        await app.updater.stop()
        await app.stop()
    assert sandbox.stats.errors == 0
    assert sandbox.default_bot.pending_update_count == 0
