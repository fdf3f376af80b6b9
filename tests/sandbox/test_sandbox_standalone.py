"""The sandbox on its own: serve_forever, its command line and the JSON control API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from app.clock import SystemClock
from devtools.sandbox import DEFAULT_TOKEN, Sandbox, serve_forever
from devtools.sandbox.standalone import main


@pytest.fixture
async def standalone() -> AsyncIterator[tuple[Sandbox, aiohttp.ClientSession]]:
    ready: asyncio.Future[Sandbox] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_forever("127.0.0.1", 0, on_ready=ready.set_result))
    sandbox = await asyncio.wait_for(ready, timeout=5)
    async with aiohttp.ClientSession(base_url=sandbox.base_url) as session:
        yield sandbox, session
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert sandbox.world.closing


async def test_control_api_drives_a_conversation(
    standalone: tuple[Sandbox, aiohttp.ClientSession],
) -> None:
    sandbox, http = standalone
    async with http.post("/sandbox/users", json={"first_name": "Dana"}) as reply:
        assert reply.status == 201
        user_id = (await reply.json())["id"]
    async with http.post(f"/sandbox/users/{user_id}/send", json={"text": "/start x"}) as reply:
        assert (await reply.json())["entities"][0]["type"] == "bot_command"
    keyboard = '{"inline_keyboard": [[{"text": "ok", "callback_data": "ok"}]]}'
    async with http.post(
        f"/bot{DEFAULT_TOKEN}/sendMessage",
        data={"chat_id": str(user_id), "text": "Tap", "reply_markup": keyboard},
    ) as reply:
        message_id = (await reply.json())["result"]["message_id"]
    async with http.post(
        f"/sandbox/users/{user_id}/tap", json={"message_id": message_id, "data": "nope"}
    ) as reply:
        assert reply.status == 400 and "no button" in (await reply.json())["error"]
    async with http.post(
        f"/sandbox/users/{user_id}/tap", json={"message_id": message_id, "data": "ok"}
    ) as reply:
        assert (await reply.json())["data"] == "ok"
    async with http.get(f"/sandbox/users/{user_id}/inbox") as reply:
        assert [m["text"] for m in await reply.json()] == ["Tap"]
    async with http.post(f"/sandbox/users/{user_id}/block") as reply:
        assert (await reply.json()) == {"blocked": True}
    async with http.get("/sandbox/users/999/inbox") as reply:
        assert reply.status == 404
    async with http.get("/sandbox/stats") as reply:
        assert (await reply.json())["messages_sent"] == 1
    async with http.get("/sandbox/calls?limit=1") as reply:
        assert await reply.json() == [{"method": "sendMessage", "status": 200, "description": None}]
    assert sandbox.default_bot.pending_update_count == 3


async def test_control_api_sets_faults(standalone: tuple[Sandbox, aiohttp.ClientSession]) -> None:
    sandbox, http = standalone
    body = {"fail_next": {"method": "getMe", "status": 502, "times": 2}, "duplicate_updates": True}
    async with http.post("/sandbox/faults", json=body) as reply:
        assert (await reply.json()) == {"pending_failures": 2}
    assert sandbox.faults.duplicate
    async with http.post(f"/bot{DEFAULT_TOKEN}/getMe") as reply:
        assert reply.status == 502
    async with http.post("/sandbox/faults", json={"clear": True}) as reply:
        assert (await reply.json()) == {"pending_failures": 0}
    async with http.post("/sandbox/faults", json={"fail_next": {"bogus": 1}}) as reply:
        assert reply.status == 400


def test_options_reach_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[Any, ...]] = []

    async def serve_forever(host: str, port: int, **options: Any) -> None:
        served.append((host, port, options["tokens"], options["username"], options["clock"]))

    monkeypatch.setattr("devtools.sandbox.standalone.serve_forever", serve_forever)
    for argv in ([], ["--port", "9000", "--token", "1:" + "a" * 35, "--token", "2:b"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0
    assert served[0][:4] == ("127.0.0.1", 8081, (DEFAULT_TOKEN,), "rapport_demo_bot")
    assert isinstance(served[0][4], SystemClock)
    assert served[1][1:3] == (9000, ["1:" + "a" * 35, "2:b"])


def test_main_rejects_a_bad_clock(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["--clock", "sometimes"])
    assert refused.value.code == 2
    assert "--clock" in capsys.readouterr().err
