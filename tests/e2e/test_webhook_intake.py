"""The webhook receiver and what third-party libraries may log: the secret is checked before a
body is read, a body over the cap is refused without being read whole, an update PTB cannot read
is dropped without its content reaching any log, and no library record carries update content."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import aiohttp
import pytest

from app.clock import ManualClock
from app.logs import setup_logging
from bot.service import webhook_secret
from bot.webhook import MAX_BODY, SECRET_HEADER
from devtools.sandbox import DEFAULT_TOKEN
from flows.i18n import t
from tests.conftest import TEST_KEY
from tests.e2e.harness import World

CONTENT = "my therapist Dana never listens"  # what a client wrote: must reach no log


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The bot's own log set-up writing to a buffer; the test run's logging restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    buffer = io.StringIO()
    setup_logging("INFO", "plain", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, was in levels.items():
            logging.getLogger(name).setLevel(was)


@pytest.fixture
async def webhook_world(sqlite_url: str, clock: ManualClock) -> AsyncIterator[World]:
    world = await World.start(sqlite_url, clock, TEST_KEY, webhook=True)
    try:
        yield world
    finally:
        await world.stop()


def test_library_records_keep_their_wording_and_lose_their_content(captured: io.StringIO) -> None:
    update = {"update_id": 5, "message": {"text": CONTENT, "from": {"first_name": "Alice"}}}
    ptb = logging.getLogger("telegram.ext._utils.webhookhandler")
    try:
        raise ValueError(f"cannot parse {CONTENT}")
    except ValueError as exc:
        ptb.critical(
            "Received data was *not* processed! Received data was: %r", update, exc_info=exc
        )
    logging.getLogger("httpx").warning("HTTP Request: %s %s %d", "POST", CONTENT, 502)
    logging.getLogger("uvicorn.error").error("%(detail)s", {"detail": CONTENT})
    logging.getLogger("bot.intake").info("update %s handled", 5)
    text = captured.getvalue()
    assert CONTENT not in text and "Alice" not in text
    assert "CRITICAL telegram.ext._utils.webhookhandler: Received data was *not* processed" in text
    assert "[ValueError at test_webhook_intake.py:" in text and "Traceback" not in text
    assert "HTTP Request: <str> <str> 502" in text
    assert "update 5 handled" in text


async def test_an_update_ptb_cannot_read_is_dropped_without_its_content_in_any_log(
    webhook_world: World, captured: io.StringIO
) -> None:
    world = webhook_world
    url = world.sandbox.default_bot.webhook_url
    assert url
    unreadable = {"update_id": 77, "message": {"text": CONTENT, "date": "not a date", "chat": 5}}
    good = {SECRET_HEADER: webhook_secret(DEFAULT_TOKEN)}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=unreadable, headers=good) as response:
            assert response.status == 200, "dropped: it would fail the same way every time"
        async with http.post(url, data=b"{not json " + CONTENT.encode(), headers=good) as response:
            assert response.status == 400
    stranger = world.sandbox.user("Sam")
    await stranger.send("hello")  # and the next update is handled as usual
    assert (await stranger.next_message())["text"] == t("en", "chat.stranger")
    text = captured.getvalue()
    assert "update 77 could not be read" in text
    assert CONTENT not in text and "not a date" not in text


async def raw_post(url: str, headers: dict[str, str], body: bytes) -> int:
    """POST with the given headers and only `body` sent (whatever Content-Length says); the
    status line of the answer, read without sending anything more."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.hostname}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    return int(status.split()[1])


async def test_the_secret_and_the_size_are_checked_before_the_body_is_read(
    webhook_world: World,
) -> None:
    url = webhook_world.sandbox.default_bot.webhook_url
    assert url
    huge = str(90 * 2**20)
    sample = json.dumps({"update_id": 1}).encode()
    # 90 MiB announced, a few bytes sent: the answers come without the rest.
    assert await raw_post(url, {"Content-Length": huge}, sample) == 403
    wrong = {"Content-Length": huge, SECRET_HEADER: "wrong"}
    assert await raw_post(url, wrong, sample) == 403
    secret = webhook_secret(DEFAULT_TOKEN)
    assert await raw_post(url, {"Content-Length": huge, SECRET_HEADER: secret}, sample) == 413
    # Undeclared (chunked) and over the cap: refused once the cap is passed.
    chunk = b"x" * (MAX_BODY // 4)
    chunked = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(5))
    headers = {"Transfer-Encoding": "chunked", SECRET_HEADER: secret}
    assert await raw_post(url, headers, chunked) == 413


async def test_a_refused_body_is_not_read_on_after_the_answer(webhook_world: World) -> None:
    """After the 403 (or 413) the connection is closed: the server does not drain the rest of
    a body announced as 90 MiB to keep the connection alive."""
    url = webhook_world.sandbox.default_bot.webhook_url
    assert url
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    for headers in ("", f"{SECRET_HEADER}: {webhook_secret(DEFAULT_TOKEN)}\r\n"):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(
            f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {90 * 2**20}\r\n"
            f"{headers}\r\n".encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.split()[1] in (b"403", b"413")
        sent = 0
        with pytest.raises(ConnectionError):
            for _ in range(1000):  # up to 64 MiB, if the server kept reading
                writer.write(b"x" * 65536)
                await writer.drain()
                sent += 65536
        assert sent < 8 * 2**20, f"{sent} bytes read after the refusal"
        writer.close()
