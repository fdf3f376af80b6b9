"""The wire protocol itself, over raw HTTP: encodings, envelope, getUpdates semantics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from devtools.sandbox import DEFAULT_TOKEN, Sandbox


class Api:
    """A bare Bot API client: returns (HTTP status, decoded body)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def json(self, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
        async with self.session.post(f"{self.base}/{method}", json=params) as reply:
            return reply.status, await reply.json()

    async def form(self, method: str, **params: str) -> tuple[int, dict[str, Any]]:
        async with self.session.post(f"{self.base}/{method}", data=params) as reply:
            return reply.status, await reply.json()

    async def multipart(self, method: str, **params: str) -> tuple[int, dict[str, Any]]:
        form = aiohttp.FormData()
        for key, value in params.items():
            form.add_field(key, value)
        form.add_field("unused_file", b"abc", filename="x.bin")  # forces multipart
        async with self.session.post(f"{self.base}/{method}", data=form) as reply:
            return reply.status, await reply.json()

    async def get(self, method: str, **params: str) -> tuple[int, dict[str, Any]]:
        async with self.session.get(f"{self.base}/{method}", params=params) as reply:
            return reply.status, await reply.json()


@pytest.fixture
async def api(sandbox: Sandbox) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"{sandbox.api_url}{DEFAULT_TOKEN}")


async def test_envelope_and_status_codes(sandbox: Sandbox, api: Api) -> None:
    status, body = await api.json("getMe")
    assert status == 200 and body["ok"] is True and body["result"]["is_bot"] is True
    status, body = await api.json("sendHologram")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    status, body = await api.json("sendMessage", chat_id=1, text="x")
    assert (status, body["error_code"]) == (400, 400)
    assert body["description"] == "Bad Request: chat not found"
    async with api.session.post(f"{sandbox.api_url}123:{'A' * 35}/getMe") as reply:
        assert reply.status == 401 and (await reply.json())["description"] == "Unauthorized"
    async with api.session.post(f"{sandbox.api_url}not-a-token/getMe") as reply:
        assert reply.status == 404


async def test_method_names_are_case_insensitive(sandbox: Sandbox, api: Api) -> None:
    for name in ("getme", "GETME", "GetMe"):
        status, _ = await api.json(name)
        assert status == 200
    assert [call.method for call in sandbox.calls] == ["getMe"] * 3


async def test_every_encoding_is_understood(sandbox: Sandbox, api: Api) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    markup = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}
    status, body = await api.json(
        "sendMessage", chat_id=alice.chat_id, text="a", reply_markup=markup
    )
    assert status == 200 and body["result"]["reply_markup"] == markup
    status, body = await api.json(
        "sendMessage", chat_id=str(alice.chat_id), text="b", reply_markup=json.dumps(markup)
    )
    assert status == 200 and body["result"]["reply_markup"] == markup
    status, body = await api.form(
        "sendMessage", chat_id=str(alice.chat_id), text="c", reply_markup=json.dumps(markup)
    )
    assert status == 200 and body["result"]["reply_markup"] == markup
    status, body = await api.multipart(
        "sendMessage", chat_id=str(alice.chat_id), text="<b>d</b>", parse_mode="HTML"
    )
    assert status == 200 and body["result"]["entities"][0]["type"] == "bold"
    status, body = await api.get("sendMessage", chat_id=str(alice.chat_id), text="e")
    assert status == 200
    assert [m["text"] for m in alice.inbox] == ["a", "b", "c", "d", "e"]


async def test_bad_nested_json_is_a_bad_request(sandbox: Sandbox, api: Api) -> None:
    alice = sandbox.user()
    await alice.send("/start")
    status, body = await api.form(
        "sendMessage", chat_id=str(alice.chat_id), text="x", reply_markup="{not json"
    )
    assert status == 400
    assert body["description"] == "Bad Request: can't parse reply keyboard markup JSON object"
    status, body = await api.json(
        "sendMessage",
        chat_id=alice.chat_id,
        text="x",
        reply_markup={"inline_keyboard": [[{"text": "plain"}]]},
    )
    assert status == 400 and "Text buttons are unallowed" in body["description"]


async def test_offsets_confirm_and_limit_batches(sandbox: Sandbox, api: Api) -> None:
    alice = sandbox.user()
    for text in ("one", "two", "three"):
        await alice.send(text)
    _, body = await api.json("getUpdates", limit=2)
    first, second = body["result"]
    assert second["update_id"] == first["update_id"] + 1
    assert [u["message"]["text"] for u in body["result"]] == ["one", "two"]
    _, body = await api.json("getUpdates", offset=second["update_id"] + 1)
    assert [u["message"]["text"] for u in body["result"]] == ["three"]
    _, body = await api.json("getUpdates")
    assert [u["message"]["text"] for u in body["result"]] == ["three"]  # not yet confirmed
    _, body = await api.json("getUpdates", offset=body["result"][0]["update_id"] + 1)
    assert body["result"] == []


async def test_negative_offset_keeps_the_latest(sandbox: Sandbox, api: Api) -> None:
    alice = sandbox.user()
    for text in ("one", "two", "three"):
        await alice.send(text)
    _, body = await api.json("getUpdates", offset=-1)
    assert [u["message"]["text"] for u in body["result"]] == ["three"]
    assert sandbox.default_bot.pending_update_count == 1


async def test_long_poll_returns_as_soon_as_an_update_arrives(sandbox: Sandbox, api: Api) -> None:
    bot = sandbox.default_bot
    poll = asyncio.create_task(api.json("getUpdates", timeout=30))
    await sandbox.wait_until(lambda: bot.poll_generation == 1)
    assert not poll.done()
    alice = sandbox.user()
    await alice.send("hello")
    status, body = await asyncio.wait_for(poll, timeout=5)
    assert status == 200 and body["result"][0]["message"]["text"] == "hello"


async def test_a_newer_poll_terminates_the_older(sandbox: Sandbox, api: Api) -> None:
    bot = sandbox.default_bot
    older = asyncio.create_task(api.json("getUpdates", timeout=30))
    await sandbox.wait_until(lambda: bot.poll_generation == 1)
    status, _ = await api.json("getUpdates", timeout=0)
    assert status == 200
    status, body = await asyncio.wait_for(older, timeout=5)
    assert status == 409
    assert body["description"].startswith("Conflict: terminated by other getUpdates request")


async def test_allowed_updates_persist_between_calls(sandbox: Sandbox, api: Api) -> None:
    alice = sandbox.user()
    _, body = await api.json("getUpdates", allowed_updates=["callback_query"])
    await alice.send("ignored")
    _, body = await api.json("getUpdates")
    assert body["result"] == []
    _, body = await api.form("getUpdates", allowed_updates="[]")  # back to the defaults
    await alice.send("seen")
    _, body = await api.json("getUpdates")
    assert [u["message"]["text"] for u in body["result"]] == ["seen"]


async def test_dates_follow_the_injected_clock(sandbox: Sandbox, api: Api) -> None:
    alice = sandbox.user()
    message = await alice.send("/start")
    assert message["date"] == int(sandbox.clock.now().timestamp())
    _, body = await api.json("sendMessage", chat_id=alice.chat_id, text="x")
    assert body["result"]["date"] == message["date"]


async def test_set_webhook_refuses_bad_input(sandbox: Sandbox, api: Api) -> None:
    status, body = await api.json("setWebhook", url="ftp://example.org/hook")
    assert status == 400 and "HTTPS URL must be provided" in body["description"]
    status, body = await api.json(
        "setWebhook", url="https://example.org/hook", secret_token="has space"
    )
    assert status == 400 and "secret token" in body["description"]
    status, body = await api.json("deleteWebhook")
    assert body == {"ok": True, "result": True, "description": "Webhook is already deleted"}


async def test_file_download_route(sandbox: Sandbox, api: Api) -> None:
    alice = sandbox.user()
    message = await alice.send_document(
        b"hello file", file_name="hello.txt", mime_type="text/plain"
    )
    _, body = await api.json("getFile", file_id=message["document"]["file_id"])
    path = body["result"]["file_path"]
    async with api.session.get(f"{sandbox.file_url}{DEFAULT_TOKEN}/{path}") as reply:
        assert reply.status == 200 and await reply.read() == b"hello file"
    async with api.session.get(f"{sandbox.file_url}{DEFAULT_TOKEN}/documents/none.txt") as reply:
        assert reply.status == 404
    status, body = await api.json("getFile", file_id="nonsense")
    assert status == 400 and body["description"] == "Bad Request: invalid file_id"
