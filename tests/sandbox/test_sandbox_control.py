"""The control API: people, groups, channels, waits, and the JSON of what they produce."""

from __future__ import annotations

import pytest
import telegram

from devtools.sandbox import ActionError, Sandbox


def parse(update: dict[str, object], ptb_bot: telegram.Bot) -> telegram.Update:
    return telegram.Update.de_json(update, ptb_bot)


async def pending(sandbox: Sandbox) -> list[dict[str, object]]:
    return sandbox.default_bot.updates.peek(100)


async def test_every_user_action_is_valid_update_json(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user("Alice", username="alice_w", language_code="de")
    start = await alice.send("/start tok_1")
    await alice.send_sticker("😊")
    await alice.send_photo(caption="look")
    await alice.send_voice(duration=9)
    await alice.send_document(file_name="a.pdf")
    await alice.edit(start, "/start tok_2")
    await alice.block()
    raw = await pending(sandbox)
    updates = [parse(u, ptb_bot) for u in raw]
    first = updates[0].message
    assert first is not None and first.from_user is not None
    assert first.from_user.language_code == "de"
    assert first.entities[0].type == "bot_command" and first.entities[0].length == 6
    assert updates[1].message is not None and updates[1].message.sticker is not None
    assert updates[1].message.sticker.emoji == "😊"
    assert updates[2].message is not None and updates[2].message.caption == "look"
    assert updates[3].message is not None and updates[3].message.voice is not None
    assert raw[3]["message"]["voice"]["duration"] == 9  # type: ignore[index]
    assert updates[4].message is not None and updates[4].message.document is not None
    edited = updates[5].edited_message
    assert (
        edited is not None
        and edited.text == "/start tok_2"
        and edited.message_id == start["message_id"]
    )
    change = updates[6].my_chat_member
    assert change is not None and change.new_chat_member.status == "kicked"
    ids = [u.update_id for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_callback_query_carries_the_bot_message(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    markup = telegram.InlineKeyboardMarkup(
        [[telegram.InlineKeyboardButton("Agree", callback_data="c:1")]]
    )
    sent = await ptb_bot.send_message(alice.chat_id, "Consent?", reply_markup=markup)
    await alice.tap(sent.message_id, button_text="Agree")
    update = parse((await pending(sandbox))[-1], ptb_bot)
    query = update.callback_query
    assert query is not None and query.data == "c:1"
    assert query.from_user.id == alice.id
    assert query.message is not None and query.message.message_id == sent.message_id
    assert query.chat_instance


async def test_tap_refuses_buttons_the_message_does_not_show(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    sent = await ptb_bot.send_message(alice.chat_id, "No buttons")
    with pytest.raises(ActionError, match="no button with data"):
        await alice.tap(sent.message_id, "forged")
    forged = await alice.tap(sent.message_id, "forged", forge=True)
    assert forged["data"] == "forged"


async def test_next_message_timeout_says_what_arrived(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user("Alice")
    await alice.send("/start")
    await ptb_bot.send_message(alice.chat_id, "Welcome to Rapport")
    assert (await alice.next_message(timeout=1))["text"] == "Welcome to Rapport"
    with pytest.raises(TimeoutError) as caught:
        await alice.next_message(timeout=0.05)
    assert "Welcome to Rapport" in str(caught.value)
    assert "sendMessage→200" in str(caught.value)


async def test_next_message_predicate_skips_others(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    for text in ("one", "two", "three"):
        await ptb_bot.send_message(alice.chat_id, text)
    found = await alice.next_message(predicate=lambda m: m["text"].startswith("t"))
    assert found["text"] == "two"
    assert (await alice.next_message())["text"] == "three"


async def test_wait_until_timeout_names_the_condition(sandbox: Sandbox) -> None:
    with pytest.raises(TimeoutError, match="the answer did not hold within"):
        await sandbox.wait_until(lambda: False, timeout=0.05, what="the answer")


async def test_group_privacy_mode_filters_chatter(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice, bob = sandbox.user("Alice"), sandbox.user("Bob")
    group = sandbox.group("Team", [alice, bob])
    assert [next(k for k in u if k != "update_id") for u in await pending(sandbox)] == [
        "my_chat_member",
        "message",
    ]
    sandbox.default_bot.updates.clear()
    await group.send(alice, "just chatting")
    await group.send(bob, "/checkin@other_bot")
    assert await pending(sandbox) == []
    await group.send(alice, "hey @rapport_demo_bot")
    await group.send(bob, "/checkin")
    reply = await ptb_bot.send_message(group.id, "Hi all")
    await group.send(alice, "thanks", reply_to=reply.message_id)
    texts = [u["message"]["text"] for u in await pending(sandbox)]  # type: ignore[index]
    assert texts == ["hey @rapport_demo_bot", "/checkin", "thanks"]
    assert len(group.messages) == 7  # service message + 5 from people + 1 from the bot


async def test_user_seen_only_in_a_group_cannot_be_messaged_first(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user("Alice")
    sandbox.group("Team", [alice])
    with pytest.raises(telegram.error.Forbidden, match="can't initiate conversation"):
        await ptb_bot.send_message(alice.chat_id, "Hi")


async def test_removed_bot_cannot_post_in_the_group(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    alice = sandbox.user("Alice")
    group = sandbox.group("Team", [alice])
    await group.remove_bot(by=alice)
    with pytest.raises(telegram.error.Forbidden, match="kicked from the group chat"):
        await ptb_bot.send_message(group.id, "Hi")


async def test_deactivated_account_is_forbidden(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    await alice.deactivate()
    with pytest.raises(telegram.error.Forbidden, match="user is deactivated"):
        await ptb_bot.send_message(alice.chat_id, "Hi")


async def test_channel_post_has_a_sender_chat_and_no_sender(
    sandbox: Sandbox, ptb_bot: telegram.Bot
) -> None:
    post = await sandbox.channel_post("Practice news")
    update = parse((await pending(sandbox))[-1], ptb_bot)
    assert update.channel_post is not None
    assert update.channel_post.chat.type == "channel"
    assert update.channel_post.from_user is None
    assert update.channel_post.sender_chat is not None
    assert post["chat"]["id"] < -1_000_000_000_000


async def test_blocked_user_cannot_write_until_unblocking(sandbox: Sandbox) -> None:
    alice = sandbox.user()
    await alice.block()
    assert alice.blocked
    with pytest.raises(ActionError, match="unblock"):
        await alice.send("hi")
    await alice.unblock()
    assert (await alice.send("hi"))["text"] == "hi"


async def test_reply_keyboard_is_kept_for_the_user(sandbox: Sandbox, ptb_bot: telegram.Bot) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    keyboard = telegram.ReplyKeyboardMarkup([["Yes", "No"]], one_time_keyboard=True)
    sent = await ptb_bot.send_message(alice.chat_id, "Continue?", reply_markup=keyboard)
    assert sent.reply_markup is None  # only inline keyboards are echoed in messages
    assert alice.reply_keyboard is not None
    assert alice.reply_keyboard["keyboard"] == [[{"text": "Yes"}, {"text": "No"}]]
    await ptb_bot.send_message(alice.chat_id, "OK", reply_markup=telegram.ReplyKeyboardRemove())
    assert alice.reply_keyboard is None


async def test_users_can_talk_to_a_second_bot(sandbox: Sandbox) -> None:
    other = sandbox.add_bot("8000000002:" + "B" * 35, username="other_bot")
    alice = sandbox.user()
    await alice.with_bot(other).send("/start")
    assert other.pending_update_count == 1
    assert sandbox.default_bot.pending_update_count == 0
    with pytest.raises(ValueError, match="already registered"):
        sandbox.add_bot("8000000002:" + "B" * 35)
    with pytest.raises(ValueError, match="token looks like"):
        sandbox.add_bot("not-a-token")
