"""PTB's real Bot, over HTTP, against the sandbox: results parse and errors map as on Telegram."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

from app.clock import ManualClock
from devtools.sandbox import DISCONNECT, Sandbox
from devtools.sandbox.files import blank_png


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


async def test_get_me_describes_the_registered_bot(ptb_bot: telegram.Bot) -> None:
    me = await ptb_bot.get_me()
    assert me.is_bot
    assert me.username == "rapport_demo_bot"
    assert me.first_name == "Rapport"
    assert me.id == 7000000001
    assert me.can_read_all_group_messages is False


async def test_send_message_returns_a_telegram_message(
    sandbox: Sandbox, ptb_bot: telegram.Bot, clock: ManualClock
) -> None:
    alice = sandbox.user("Alice", last_name="Liddell", username="alice")
    await alice.send("/start")
    later = clock.advance(timedelta(minutes=5))
    sent = await ptb_bot.send_message(alice.chat_id, "Hello")
    assert sent.text == "Hello"
    assert sent.message_id == 2  # the user's /start was message 1 of this chat
    assert sent.chat.id == alice.chat_id
    assert sent.chat.type == "private"
    assert sent.chat.first_name == "Alice" and sent.chat.username == "alice"
    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.from_user.username == "rapport_demo_bot"
    assert sent.date == later
    again = await ptb_bot.send_message(alice.chat_id, "Again")
    assert again.message_id == 3
    assert [m["text"] for m in alice.inbox] == ["Hello", "Again"]


async def test_message_ids_are_counted_per_chat(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice, bob = sandbox.user("Alice"), sandbox.user("Bob")
    await alice.send("hi")
    await bob.send("hi")
    first = await ptb_bot.send_message(alice.chat_id, "a")
    second = await ptb_bot.send_message(bob.chat_id, "b")
    assert first.message_id == second.message_id == 2


async def test_inline_keyboard_round_trips(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(str(n), callback_data=f"score:{n}") for n in range(0, 6)],
            [InlineKeyboardButton("Privacy", url="https://example.org/privacy")],
        ]
    )
    sent = await ptb_bot.send_message(alice.chat_id, "How heard did you feel?", reply_markup=markup)
    assert sent.reply_markup == markup
    stored = alice.inbox[-1]["reply_markup"]["inline_keyboard"]
    assert stored[0][5] == {"text": "5", "callback_data": "score:5"}
    assert stored[1][0] == {"text": "Privacy", "url": "https://example.org/privacy"}


async def test_html_is_parsed_into_entities(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sent = await ptb_bot.send_message(
        alice.chat_id, "<b>Check-in</b> &amp; <i>notes</i>", parse_mode=ParseMode.HTML
    )
    assert sent.text == "Check-in & notes"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 8),
        ("italic", 11, 5),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("<b>open", "can't find end tag"),
        ("<b>a</i>", "unmatched end tag"),
        ("line<br>break", 'unsupported start tag "br"'),
    ],
)
async def test_malformed_html_is_refused(
    sandbox: Sandbox, ptb_bot: telegram.Bot, text: str, fragment: str
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    with pytest.raises(BadRequest) as caught:
        await ptb_bot.send_message(alice.chat_id, text, parse_mode=ParseMode.HTML)
    assert "can't parse entities" in caught.value.message.lower()
    assert fragment in caught.value.message.lower()


async def test_unescaped_markdown_v2_is_refused(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    with pytest.raises(BadRequest, match="reserved and must be escaped"):
        await ptb_bot.send_message(alice.chat_id, "Thanks.", parse_mode=ParseMode.MARKDOWN_V2)
    ok = await ptb_bot.send_message(alice.chat_id, "*Thanks*\\.", parse_mode=ParseMode.MARKDOWN_V2)
    assert ok.text == "Thanks."


async def test_edit_message_text_and_its_refusals(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sent = await ptb_bot.send_message(alice.chat_id, "Question", reply_markup=keyboard("1", "2"))
    edited = await ptb_bot.edit_message_text(
        "Thanks!", chat_id=alice.chat_id, message_id=sent.message_id
    )
    assert isinstance(edited, telegram.Message)
    assert edited.text == "Thanks!"
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # editing text without a markup drops the keyboard
    assert alice.inbox[-1]["text"] == "Thanks!"
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await ptb_bot.edit_message_text(
            "Thanks!", chat_id=alice.chat_id, message_id=sent.message_id
        )
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await ptb_bot.edit_message_text("x", chat_id=alice.chat_id, message_id=999)
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await ptb_bot.edit_message_text("x", chat_id=alice.chat_id, message_id=1)


async def test_edit_reply_markup_and_caption(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    photo = await ptb_bot.send_photo(alice.chat_id, blank_png(64, 48), caption="Week 1")
    changed = await ptb_bot.edit_message_caption(
        chat_id=alice.chat_id, message_id=photo.message_id, caption="Week 2"
    )
    assert isinstance(changed, telegram.Message) and changed.caption == "Week 2"
    text = await ptb_bot.send_message(alice.chat_id, "Pick", reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match=r"(?i)no caption in the message"):
        await ptb_bot.edit_message_caption(
            chat_id=alice.chat_id, message_id=text.message_id, caption="x"
        )
    swapped = await ptb_bot.edit_message_reply_markup(
        chat_id=alice.chat_id, message_id=text.message_id, reply_markup=keyboard("b")
    )
    assert isinstance(swapped, telegram.Message)
    assert swapped.reply_markup == keyboard("b")
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await ptb_bot.send_photo(alice.chat_id, blank_png(8, 8), caption="x" * 1025)


async def test_send_photo_uploads_multipart_and_can_be_downloaded(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    png = blank_png(1000, 500)
    sent = await ptb_bot.send_photo(alice.chat_id, png, caption="Alliance over time")
    assert sent.caption == "Alliance over time"
    sizes = [(p.width, p.height) for p in sent.photo]
    assert sizes[-1] == (1000, 500)
    assert sizes[0] == (90, 45)
    assert sandbox.calls_to("sendPhoto")[-1].params["photo"]["size"] == len(png)
    telegram_file = await sent.photo[-1].get_file()
    assert telegram_file.file_size == len(png)
    assert bytes(await telegram_file.download_as_bytearray()) == png
    resent = await ptb_bot.send_photo(alice.chat_id, sent.photo[-1].file_id)
    assert resent.photo[-1].file_unique_id == sent.photo[-1].file_unique_id
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await ptb_bot.send_photo(alice.chat_id, b"not an image at all")
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await ptb_bot.send_photo(alice.chat_id, "AgACAgIAAxkBAAnonexistent")


async def test_send_document_keeps_name_type_and_bytes(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    data = b"client,score\nc17,34\n"
    sent = await ptb_bot.send_document(alice.chat_id, data, filename="export.csv")
    assert sent.document is not None
    assert sent.document.file_name == "export.csv"
    assert sent.document.file_size == len(data)
    downloaded = await (await sent.document.get_file()).download_as_bytearray()
    assert bytes(downloaded) == data


async def test_injected_429_raises_retry_after(
    sandbox: Sandbox,
    ptb_bot: telegram.Bot,
    retry_seconds: Callable[[RetryAfter], float],
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sandbox.faults.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await ptb_bot.send_message(alice.chat_id, "first")
    assert retry_seconds(caught.value) == 7
    second = await ptb_bot.send_message(alice.chat_id, "second")  # one failure only
    assert second.text == "second"
    assert sandbox.stats.too_many_requests == 1
    assert [m["text"] for m in alice.inbox] == ["second"]


async def test_blocked_user_raises_forbidden(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    await alice.block()
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await ptb_bot.send_message(alice.chat_id, "Still there?")
    with pytest.raises(Forbidden):
        await ptb_bot.send_chat_action(alice.chat_id, "typing")
    await alice.unblock()
    assert (await ptb_bot.send_message(alice.chat_id, "Welcome back")).text == "Welcome back"


@pytest.mark.parametrize("status", [500, 502])
async def test_server_errors_raise_network_error(
    sandbox: Sandbox, ptb_bot: telegram.Bot, status: int
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sandbox.faults.fail_next("sendMessage", status=status)
    with pytest.raises(NetworkError) as caught:
        await ptb_bot.send_message(alice.chat_id, "x")
    assert not isinstance(caught.value, BadRequest)
    assert sandbox.stats.errors_per_status[status] == 1


async def test_dropped_connection_raises_network_error(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sandbox.faults.fail_next("sendMessage", status=DISCONNECT)
    with pytest.raises(NetworkError):
        await ptb_bot.send_message(alice.chat_id, "x")
    assert alice.inbox == []


async def test_latency_beyond_the_read_timeout_raises_timed_out(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sandbox.faults.latency(0.5, "sendMessage")
    with pytest.raises(TimedOut):
        await ptb_bot.send_message(alice.chat_id, "slow", read_timeout=0.1)


async def test_unknown_chat_is_bad_request(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await ptb_bot.send_message(123456789, "Hello?")
    stranger = sandbox.user("Stranger")  # exists on Telegram, never wrote to the bot
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await ptb_bot.send_message(stranger.chat_id, "Hello?")


async def test_text_limits(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    assert len((await ptb_bot.send_message(alice.chat_id, "x" * 4096)).text or "") == 4096
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await ptb_bot.send_message(alice.chat_id, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await ptb_bot.send_message(alice.chat_id, "   ")


async def test_callback_data_over_64_bytes_is_refused(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await ptb_bot.send_message(alice.chat_id, "Pick", reply_markup=keyboard("é" * 33))
    ok = await ptb_bot.send_message(alice.chat_id, "Pick", reply_markup=keyboard("x" * 64))
    assert ok.reply_markup == keyboard("x" * 64)


async def test_answer_callback_query_once_only(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sent = await ptb_bot.send_message(alice.chat_id, "Pick", reply_markup=keyboard("7"))
    query = await alice.tap(sent.to_dict(), "7")
    assert await ptb_bot.answer_callback_query(query["id"], text="Saved") is True
    assert await alice.answer_to(query) == {"text": "Saved", "show_alert": False}
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await ptb_bot.answer_callback_query(query["id"])
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await ptb_bot.answer_callback_query("12345")


async def test_delete_message(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sent = await ptb_bot.send_message(alice.chat_id, "Oops")
    assert await ptb_bot.delete_message(alice.chat_id, sent.message_id) is True
    assert alice.inbox == []
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await ptb_bot.delete_message(alice.chat_id, sent.message_id)


async def test_commands_are_kept_per_scope_and_language(ptb_bot: telegram.Bot) -> None:
    english = [
        telegram.BotCommand("checkin", "Start a check-in"),
        telegram.BotCommand("pause", "Pause"),
    ]
    german = [telegram.BotCommand("checkin", "Check-in starten")]
    assert await ptb_bot.set_my_commands(english)
    assert await ptb_bot.set_my_commands(german, language_code="de")
    assert tuple(await ptb_bot.get_my_commands()) == tuple(english)
    assert tuple(await ptb_bot.get_my_commands(language_code="de")) == tuple(german)
    assert await ptb_bot.delete_my_commands()
    assert await ptb_bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await ptb_bot.set_my_commands([telegram.BotCommand("Bad-Name", "x")])


async def test_get_chat_and_chat_action(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user("Alice", username="alice")
    await alice.send("/start")
    info = await ptb_bot.get_chat(alice.chat_id)
    assert info.id == alice.chat_id and info.username == "alice" and info.type == "private"
    assert await ptb_bot.send_chat_action(alice.chat_id, "typing")
    assert alice.chat_action == "typing"


async def test_unregistered_token_is_unauthorized(sandbox: Sandbox) -> None:
    stranger = telegram.Bot("123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", base_url=sandbox.api_url)
    with pytest.raises(InvalidToken):
        await stranger.get_me()
    assert sandbox.calls[-1].status == 401


async def test_unknown_method_is_not_found(ptb_bot: telegram.Bot, sandbox: Sandbox) -> None:
    with pytest.raises(telegram.error.EndPointNotFound):
        await ptb_bot.do_api_request("sendHologram", api_kwargs={"chat_id": 1})
    assert sandbox.calls[-1].status == 404
