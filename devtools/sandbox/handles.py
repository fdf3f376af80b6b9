"""The people, groups and channels a test acts through; each wraps one chat with one bot."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from devtools.sandbox import actions
from devtools.sandbox.files import (
    blank_png,
    document_json,
    image_size,
    photo_sizes_json,
    sticker_json,
    voice_json,
)
from devtools.sandbox.keyboards import buttons_of
from devtools.sandbox.wire import Chat, Person, caption_content, detect_entities
from devtools.sandbox.world import Conversation, SandboxBot

if TYPE_CHECKING:
    from devtools.sandbox.control import Sandbox

MessageRef = dict[str, Any] | int
Predicate = Callable[[dict[str, Any]], bool]
T = TypeVar("T")


def _message_id(message: MessageRef) -> int:
    return message if isinstance(message, int) else int(message["message_id"])


def describe_message(message: dict[str, Any]) -> str:
    """One line for error messages: id, start of the text, and the buttons."""
    text = message.get("text") or message.get("caption") or ""
    if not text:
        kinds = [k for k in ("photo", "document", "voice", "sticker") if k in message]
        text = f"<{kinds[0] if kinds else 'message'}>"
    short = text if len(text) <= 60 else text[:57] + "..."
    buttons = [b.get("callback_data", b.get("url", "")) for b in buttons_of(message)]
    suffix = f" buttons={buttons}" if buttons else ""
    return f"#{message['message_id']} {short!r}{suffix}"


class _ChatView:
    """Shared waiting logic over the bot's messages in one conversation."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._cursor = 0

    @property
    def bot(self) -> SandboxBot:
        raise NotImplementedError

    def _conversation(self) -> Conversation:
        raise NotImplementedError

    def _label(self) -> str:
        raise NotImplementedError

    # --- what someone in the chat does, as every kind of chat does it ---------------------------

    async def _post(
        self, sender: Person | None, content: dict[str, Any], reply_to: MessageRef | None
    ) -> dict[str, Any]:
        reply_id = None if reply_to is None else _message_id(reply_to)
        world, conversation = self._sandbox.world, self._conversation()
        posted = actions.post(world, self.bot, conversation, sender, content, reply_id)
        return await _settled(posted)

    async def _edit(
        self, sender: Person | None, message: MessageRef, new_text: str
    ) -> dict[str, Any]:
        world, message_id = self._sandbox.world, _message_id(message)
        edited = actions.edit(world, self.bot, self._conversation(), sender, message_id, new_text)
        return await _settled(edited)

    async def _tap(
        self,
        sender: Person,
        message: MessageRef,
        data: str | None,
        button_text: str | None,
        forge: bool,
    ) -> dict[str, Any]:
        conversation, message_id = self._conversation(), _message_id(message)
        data = _button_data(conversation, message_id, data, button_text, forge)
        query = actions.tap(self._sandbox.world, self.bot, conversation, sender, message_id, data)
        return await _settled(query)

    def _bot_messages(self) -> list[dict[str, Any]]:
        conversation = self._conversation()
        return [conversation.messages[i] for i in conversation.bot_message_ids]

    async def next_message(
        self,
        timeout: float = 5.0,
        predicate: Predicate | None = None,
    ) -> dict[str, Any]:
        """The next bot message not yet returned here (matching `predicate`), edits applied."""
        found: list[dict[str, Any]] = []

        def arrived() -> bool:
            messages = self._bot_messages()
            while self._cursor < len(messages):
                message = messages[self._cursor]
                self._cursor += 1
                if predicate is None or predicate(message):
                    found.append(message)
                    return True
            return False

        if await self._sandbox.world.signal.until(arrived, timeout):
            return copy.deepcopy(found[0])
        seen = [describe_message(m) for m in self._bot_messages()] or ["nothing"]
        raise TimeoutError(
            f"{self._label()} got no new bot message within {timeout} s"
            f"{' matching the predicate' if predicate else ''}; messages so far: "
            + "; ".join(seen)
            + self._sandbox.recent_calls_text()
        )

    def skip_to_end(self) -> None:
        """Treat every message so far as seen by next_message."""
        self._cursor = len(self._bot_messages())


class SandboxUser(_ChatView):
    """A person with a Telegram account, talking privately to one bot (default: the first)."""

    def __init__(self, sandbox: Sandbox, person: Person, bot: SandboxBot | None = None) -> None:
        super().__init__(sandbox)
        self.person = person
        self._bot = bot

    @property
    def id(self) -> int:
        return self.person.id

    @property
    def chat_id(self) -> int:
        return self.person.id

    @property
    def first_name(self) -> str:
        return self.person.first_name

    @property
    def username(self) -> str | None:
        return self.person.username

    @property
    def json(self) -> dict[str, Any]:
        return self.person.json()

    @property
    def bot(self) -> SandboxBot:
        return self._bot or self._sandbox.default_bot

    def with_bot(self, bot: SandboxBot) -> SandboxUser:
        """The same person talking to another bot."""
        return SandboxUser(self._sandbox, self.person, bot)

    def _conversation(self) -> Conversation:
        world = self._sandbox.world
        return world.conversation(self.bot, world.chats[self.person.id])

    def _label(self) -> str:
        return f"{self.person.first_name} (chat {self.chat_id})"

    # --- what the person does -------------------------------------------------------------------

    async def send(self, text: str, *, reply_to: MessageRef | None = None) -> dict[str, Any]:
        """Send text (commands and `/start payload` deep links get their bot_command entity)."""
        return await self._post(self.person, actions.text_message(text), reply_to)

    async def send_sticker(self, emoji: str = "👍", set_name: str = "HotCherry") -> dict[str, Any]:
        stored = self._sandbox.world.files.add(
            _webp_512(), kind="stickers", extension="webp", mime_type="image/webp"
        )
        return await self._post(
            self.person, {"sticker": sticker_json(stored, emoji, set_name)}, None
        )

    async def send_photo(
        self, data: bytes | None = None, *, caption: str | None = None
    ) -> dict[str, Any]:
        payload = data if data is not None else blank_png()
        size = image_size(payload)
        if size is None:
            raise actions.ActionError("a photo must be a PNG, JPEG, GIF or WebP image")
        store = self._sandbox.world.files
        stored = store.add(payload, kind="photos", extension="jpg", mime_type="image/jpeg")
        content: dict[str, Any] = {"photo": photo_sizes_json(store, stored, size)}
        content.update(_user_caption(caption))
        return await self._post(self.person, content, None)

    async def send_voice(self, duration: int = 3, data: bytes | None = None) -> dict[str, Any]:
        payload = data if data is not None else b"OggS" + bytes(2000 * max(1, duration))
        stored = self._sandbox.world.files.add(
            payload, kind="voice", extension="oga", mime_type="audio/ogg"
        )
        return await self._post(self.person, {"voice": voice_json(stored, duration)}, None)

    async def send_document(
        self,
        data: bytes = b"%PDF-1.4\n%sandbox\n",
        *,
        file_name: str = "notes.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> dict[str, Any]:
        extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = self._sandbox.world.files.add(
            data, kind="documents", extension=extension, mime_type=mime_type, file_name=file_name
        )
        content: dict[str, Any] = {"document": document_json(stored)}
        content.update(_user_caption(caption))
        return await self._post(self.person, content, None)

    async def edit(self, message: MessageRef, new_text: str) -> dict[str, Any]:
        """Edit one of this person's text messages: the bot gets an edited_message update."""
        return await self._edit(self.person, message, new_text)

    async def tap(
        self,
        message: MessageRef,
        data: str | None = None,
        *,
        button_text: str | None = None,
        forge: bool = False,
    ) -> dict[str, Any]:
        """Tap an inline button by its callback_data or its label; returns the CallbackQuery.

        A real client can only tap buttons the message currently shows; `forge=True` sends any
        `data` anyway, as a modified client could.
        """
        return await self._tap(self.person, message, data, button_text, forge)

    async def answer_to(
        self,
        query: dict[str, Any] | str,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Wait for the bot's answerCallbackQuery to a tap: {text, show_alert, ...}."""
        return await self._sandbox.callback_answer(query, timeout)

    async def block(self) -> None:
        """Block the bot: its sends to this chat now fail with 403; it gets my_chat_member."""
        actions.set_blocked(self._sandbox.world, self.bot, self.person, True)
        await asyncio.sleep(0)

    async def unblock(self) -> None:
        actions.set_blocked(self._sandbox.world, self.bot, self.person, False)
        await asyncio.sleep(0)

    async def deactivate(self) -> None:
        """Delete the Telegram account: sends fail with 403 "user is deactivated"."""
        self._sandbox.world.deactivated.add(self.person.id)
        self._sandbox.world.notify()
        await asyncio.sleep(0)

    @property
    def blocked(self) -> bool:
        return self._conversation().blocked

    # --- what the person sees -------------------------------------------------------------------

    @property
    def inbox(self) -> list[dict[str, Any]]:
        """The bot's messages in this chat as the person sees them now (edits applied)."""
        conversation = self._conversation()
        return [
            copy.deepcopy(conversation.messages[i])
            for i in conversation.bot_message_ids
            if i not in conversation.deleted
        ]

    @property
    def last_message(self) -> dict[str, Any] | None:
        inbox = self.inbox
        return inbox[-1] if inbox else None

    @property
    def reply_keyboard(self) -> dict[str, Any] | None:
        """The custom reply keyboard the bot last set (None when removed or never set)."""
        return copy.deepcopy(self._conversation().reply_keyboard)

    @property
    def chat_action(self) -> str | None:
        return self._conversation().last_action


class _BotInChat(_ChatView):
    """A group or a channel with one bot in it."""

    def __init__(self, sandbox: Sandbox, chat: Chat, bot: SandboxBot) -> None:
        super().__init__(sandbox)
        self.chat = chat
        self._in_chat = bot

    @property
    def bot(self) -> SandboxBot:
        return self._in_chat

    @property
    def id(self) -> int:
        return self.chat.id

    def _conversation(self) -> Conversation:
        return self._sandbox.world.conversation(self.bot, self.chat)


class SandboxGroup(_BotInChat):
    """A basic group with the bot in it; members speak with `group.send(member, text)`."""

    @property
    def title(self) -> str:
        return self.chat.title or ""

    def _label(self) -> str:
        return f"group {self.title!r} ({self.id})"

    def add_member(self, user: SandboxUser) -> None:
        self.chat.member_ids.add(user.id)

    def _member(self, user: SandboxUser) -> Person:
        if user.id not in self.chat.member_ids:
            raise actions.ActionError(f"{user.first_name} is not a member of this group")
        return user.person

    async def send(
        self, user: SandboxUser, text: str, *, reply_to: MessageRef | None = None
    ) -> dict[str, Any]:
        """A member writes in the group (a bot in privacy mode sees only what addresses it)."""
        return await self._post(self._member(user), actions.text_message(text), reply_to)

    async def edit(self, user: SandboxUser, message: MessageRef, new_text: str) -> dict[str, Any]:
        return await self._edit(self._member(user), message, new_text)

    async def tap(
        self,
        user: SandboxUser,
        message: MessageRef,
        data: str | None = None,
        *,
        button_text: str | None = None,
        forge: bool = False,
    ) -> dict[str, Any]:
        return await self._tap(self._member(user), message, data, button_text, forge)

    async def remove_bot(self, by: SandboxUser) -> None:
        actions.remove_from_group(self._sandbox.world, self.bot, self.chat, self._member(by))
        await asyncio.sleep(0)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message in the group as members see it, from people and from the bot."""
        conversation = self._conversation()
        return [
            copy.deepcopy(m)
            for i, m in conversation.messages.items()
            if i not in conversation.deleted
        ]


class SandboxChannel(_BotInChat):
    """A channel the bot administers: its posts reach the bot as channel_post updates."""

    def _label(self) -> str:
        return f"channel {self.chat.title!r} ({self.id})"

    async def post(self, text: str) -> dict[str, Any]:
        return await self._post(None, actions.text_message(text), None)

    async def edit(self, message: MessageRef, new_text: str) -> dict[str, Any]:
        return await self._edit(None, message, new_text)


def _button_data(
    conversation: Conversation,
    message_id: int,
    data: str | None,
    button_text: str | None,
    forge: bool,
) -> str:
    message = conversation.get(message_id)
    if message is None:
        raise actions.ActionError(f"no message {message_id} in this chat (deleted?)")
    buttons = [b for b in buttons_of(message) if "callback_data" in b]
    if button_text is not None:
        for button in buttons:
            if button["text"] == button_text:
                return str(button["callback_data"])
        raise actions.ActionError(
            f"no button labelled {button_text!r}; the message shows {[b['text'] for b in buttons]}"
        )
    if data is None:
        raise actions.ActionError("tap() needs the button's callback data or button_text=")
    if not forge and data not in [b["callback_data"] for b in buttons]:
        raise actions.ActionError(
            f"message {message_id} has no button with data {data!r}; it shows "
            f"{[b['callback_data'] for b in buttons]} (use forge=True to send it anyway)"
        )
    return data


async def _settled(result: T) -> T:
    """`result` once the bot's tasks have had a turn to see what was done."""
    await asyncio.sleep(0)
    return result


def _user_caption(caption: str | None) -> dict[str, Any]:
    if caption is None:
        return {}
    text = caption.strip()
    return caption_content(text, detect_entities(text))


def _webp_512() -> bytes:
    """A minimal WebP (VP8X) header declaring 512×512, like a sticker file."""
    body = b"VP8X" + (10).to_bytes(4, "little") + bytes(4)
    body += (511).to_bytes(3, "little") + (511).to_bytes(3, "little")
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP" + body
