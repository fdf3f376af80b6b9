"""Data rights, encryption at rest, log hygiene and webhook mode, end to end."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.logs import setup_logging
from bot.service import webhook_secret
from cli.main import commands
from devtools.sandbox import DEFAULT_TOKEN
from flows.i18n import t
from storage.models import Client
from tests.conftest import TEST_KEY
from tests.e2e.harness import World, button_data, join_client, next_with_buttons

COMMENT = "my brother Konstantin keeps calling me at night"


async def answer_checkin(world: World, person, comment: str) -> None:  # type: ignore[no-untyped-def]
    """Open a check-in now and answer it with 7s and a comment."""
    async with world.rt.sessions() as s, s.begin():
        client = await s.get(Client, person.id)
        assert client is not None
        client.next_checkin_at = world.clock.now()
    await world.advance(minutes=1)
    question = await next_with_buttons(person.user)
    while True:
        data = button_data(question)
        if any(d.endswith(":s") for d in data) and not any(d.endswith(":7") for d in data):
            await world.drain()  # read: the comment question has reached the client
            await person.user.send(comment)
            break
        choice = next((d for d in data if d.endswith(":7")), None) or next(
            d for d in data if d.endswith(":n")
        )
        await person.user.tap(question, choice)
        question = await next_with_buttons(person.user)
    await person.user.next_message(predicate=lambda m: "Thank you" in m["text"])
    await world.drain()


def cli(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        commands,
        list(args),
        env={"RAPPORT_DATABASE_URL": db_url, "RAPPORT_ENCRYPTION_KEY": TEST_KEY},
    )
    return result.exit_code, result.output


def raw_database(url: str) -> bytes:
    path = Path(url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_comments_and_names_are_encrypted_at_rest(world: World, sqlite_url: str) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smithereens")
    await answer_checkin(world, alice, COMMENT)
    raw = raw_database(sqlite_url)
    assert b"Konstantin" not in raw
    assert b"Smithereens" not in raw and b"Dana Lee" not in raw
    # ...while the stored comment is really there, readable with the key:
    code, out = await asyncio.to_thread(cli, sqlite_url, "export", "--format", "json")
    assert code == 0, out
    record = json.loads(out)[0]
    assert record["name"] == "Alice Smithereens"
    comments = [a["text"] for c in record["checkins"] for a in c["answers"] if a["text"]]
    assert comments == [COMMENT]


async def test_mydata_export_audit_and_erasure(world: World, sqlite_url: str) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    bob = await join_client(world, dana, "Bob Brown")
    await answer_checkin(world, alice, COMMENT)

    alice.user.skip_to_end()
    await alice.user.send("/mydata")
    mydata = await alice.next_message()
    assert COMMENT in mydata["text"] and "felt heard and respected: 7/10" in mydata["text"]

    code, csv_out = await asyncio.to_thread(
        cli, sqlite_url, "export", "--client", str(alice.id), "--format", "csv"
    )
    assert code == 0 and COMMENT in csv_out and csv_out.count("\n") >= 8
    code, audit_out = await asyncio.to_thread(
        cli, sqlite_url, "audit", "--client", str(alice.id), "--json"
    )
    actions = [e["action"] for e in json.loads(audit_out)]
    assert {"mydata", "export"} <= set(actions)

    # The client deletes everything through the bot; the therapist is told.
    alice.user.skip_to_end()
    dana.user.skip_to_end()
    await alice.user.send("/delete")
    confirm = await next_with_buttons(alice.user)
    await alice.user.tap(confirm, button_text=t("en", "button.yes_delete"))
    goodbye = await alice.user.next_message(
        predicate=lambda m: m["text"] == t("en", "command.deleted")
    )
    assert goodbye
    told = await dana.next_message()
    assert told["text"] == t("en", "therapist.client_deleted", client="A.S.")
    await world.drain()
    async with world.rt.sessions() as s:
        for table in ("answer", "checkin"):  # Bob never answered, so these must be empty now
            assert await s.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table
        for table, column in (
            ("client", "id"),
            ("client_event", "client_id"),
            ("therapy_session", "client_id"),
            ("invite", "client_id"),
            ("outbox", "client_id"),
        ):
            query = text(f"SELECT count(*) FROM {table} WHERE {column} = :i")
            assert await s.scalar(query, {"i": alice.id}) == 0, table
    # A message from the erased account now gets the stranger's answer: nothing is known.
    await alice.user.send("hello?")
    assert (await alice.next_message())["text"] == t("en", "chat.stranger")

    # The practice erases the other client from the CLI.
    code, out = await asyncio.to_thread(cli, sqlite_url, "client", "erase", str(bob.id), "--yes")
    assert code == 0, out
    code, out = await asyncio.to_thread(cli, sqlite_url, "export", "--format", "json")
    assert json.loads(out) == []


async def test_logs_never_carry_text_names_or_tokens(world: World) -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", "plain", stream=stream)
    try:
        dana = await world.join_therapist("Dana Leeward")
        client_id, token = await world.invite_client(dana, "Alice Smithereens")
        alice_user = world.sandbox.user("Alice", language_code="en")
        from tests.e2e.harness import Person, onboard

        await onboard(world, alice_user, token)
        alice = Person(client_id, alice_user)
        await answer_checkin(world, alice, COMMENT)
        await alice.user.send("I want to kill myself")
        await dana.user.send("/clients")
        await dana.user.send("/digest A.S.")
        await world.drain()
    finally:
        logging.getLogger().handlers.clear()
    logs = stream.getvalue()
    assert " DEBUG app." in logs or " DEBUG bot." in logs  # DEBUG logging really ran
    for secret in (COMMENT, "Konstantin", "Smithereens", "Leeward", token, DEFAULT_TOKEN,
                   DEFAULT_TOKEN.split(":")[1], "kill myself"):  # fmt: skip
        assert secret not in logs, secret


async def test_a_failed_statement_does_not_quote_its_parameters(world: World) -> None:
    """Errors reach the logs (the update and heartbeat error handlers log them in full)."""
    with pytest.raises(DBAPIError) as failure:
        async with world.rt.sessions() as s, s.begin():
            await s.execute(
                text("SELECT * FROM client WHERE no_such_column = :words"),
                {"words": "I feel hopeless"},
            )
    assert "no_such_column" in str(failure.value)  # the statement is there, its values are not
    assert "hopeless" not in str(failure.value)


@pytest.fixture
async def webhook_world(sqlite_url: str, clock) -> World:  # type: ignore[no-untyped-def]
    w = await World.start(sqlite_url, clock, TEST_KEY, webhook=True)
    yield w  # type: ignore[misc]
    await w.stop()


async def test_webhook_mode_accepts_telegram_and_rejects_forgeries(webhook_world: World) -> None:
    world = webhook_world
    info = world.sandbox.default_bot
    assert info.webhook_url and info.webhook_url.endswith("/telegram")
    stranger = world.sandbox.user("Sam")
    await stranger.send("hello")
    assert (await stranger.next_message())["text"] == t("en", "chat.stranger")

    forged = {
        "update_id": 999_999,
        "message": {
            "message_id": 1, "date": 0, "chat": {"id": stranger.id, "type": "private"},
            "from": {"id": stranger.id, "is_bot": False, "first_name": "Sam"}, "text": "/help",
        },
    }  # fmt: skip
    async with aiohttp.ClientSession() as http:
        for update_id, headers in ((1, {}), (2, {"X-Telegram-Bot-Api-Secret-Token": "wrong"})):
            body = {**forged, "update_id": update_id}
            async with http.post(info.webhook_url, json=body, headers=headers) as response:
                assert response.status == 403
        good = {"X-Telegram-Bot-Api-Secret-Token": webhook_secret(DEFAULT_TOKEN)}
        async with http.post(info.webhook_url, json=forged, headers=good) as response:
            assert response.status == 200
    assert (await stranger.next_message())["text"] == t("en", "chat.stranger")
    async with world.rt.sessions() as s:
        query = text("SELECT update_id FROM processed_update WHERE update_id IN (1, 2, 999999)")
        seen = list(await s.scalars(query))
        assert seen == [999_999]  # only the request with the right secret reached the bot
