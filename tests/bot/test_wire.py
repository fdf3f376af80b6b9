"""The bot's HTTP requests (`bot.wire`): what reaches the Bot API is what PTB's stock request
sends, and every way the wire can fail comes back as the error PTB's stock request raises, which
the outbox and the intake tell apart (retry, pause, give up)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl

import pytest
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from bot.wire import BotApiRequest

OK = b'{"ok":true,"result":true}'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/botTOKEN"
    finally:
        srv.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(srv.wait_closed(), 1)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    line, *rest = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in rest if h)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return line.encode(), headers, body


def answering(seen: list[tuple[bytes, dict[str, str], bytes]], reply: bytes = OK) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                seen.append(await read_request(reader))
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(reply), reply)
                )
                await writer.drain()
        writer.close()

    return handle


def params(**values: object) -> RequestData:
    return RequestData([RequestParameter.from_input(k, v) for k, v in values.items()])


async def test_the_same_call_reaches_the_bot_api_as_through_ptbs_own_request() -> None:
    data = {
        "chat_id": 42,
        "text": 'Wie war\'s? 7 & 8 = ✓ "quoted"\nnext line',
        "reply_markup": {"inline_keyboard": [[{"text": "7", "callback_data": "c:1:0:7"}]]},
        "parse_mode": None,
    }
    seen: list[tuple[bytes, dict[str, str], bytes]] = []
    async with server(answering(seen)) as base:
        for request in (HTTPXRequest(), BotApiRequest()):
            await request.initialize()
            try:
                assert await request.post(f"{base}/sendMessage", params(**data)) is True
            finally:
                await request.shutdown()
    (line_a, headers_a, body_a), (line_b, headers_b, body_b) = seen
    assert line_a == line_b == b"POST /botTOKEN/sendMessage HTTP/1.1"
    assert body_a == body_b
    assert ("text", data["text"]) in parse_qsl(body_b.decode(), strict_parsing=True)
    for name in ("content-type", "user-agent"):
        assert headers_a[name] == headers_b[name]


async def test_connections_are_kept_and_reused_between_calls() -> None:
    connections = 0
    seen: list[tuple[bytes, dict[str, str], bytes]] = []
    inner = answering(seen)

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await inner(reader, writer)

    async with server(counting) as base:
        request = BotApiRequest()
        await request.initialize()
        try:
            for n in range(5):
                await request.post(f"{base}/answerCallbackQuery", params(callback_query_id=str(n)))
        finally:
            await request.shutdown()
    assert len(seen) == 5 and connections == 1


async def test_a_bot_api_that_does_not_answer_in_time_is_a_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with server(silent) as base:
        request = BotApiRequest(read_timeout=0.2)
        await request.initialize()
        try:
            with pytest.raises(TimedOut):
                await request.post(f"{base}/sendMessage", params(chat_id=1, text="x"))
            with pytest.raises(TimedOut):  # a per-call read timeout wins over the default
                await BotApiRequest.post(
                    request, f"{base}/getUpdates", params(timeout=0), read_timeout=0.1
                )
        finally:
            await request.shutdown()


async def test_a_connection_dropped_mid_call_is_a_network_error_not_an_answer() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"ok":')
        await writer.drain()
        writer.close()

    async with server(hang_up) as base:
        request = BotApiRequest()
        await request.initialize()
        try:
            with pytest.raises(NetworkError) as caught:
                await request.post(f"{base}/sendMessage", params(chat_id=1, text="x"))
            assert not isinstance(caught.value, TimedOut)
        finally:
            await request.shutdown()


async def test_nobody_listening_is_a_network_error() -> None:
    async with server(answering([])) as base:
        pass  # closed: the port refuses connections now
    request = BotApiRequest(connect_timeout=1.0)
    await request.initialize()
    try:
        with pytest.raises(NetworkError):
            await request.post(f"{base}/getMe")
    finally:
        await request.shutdown()


async def test_a_proxy_named_by_the_environment_is_used_unless_the_host_is_exempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[bytes, dict[str, str], bytes]] = []
    async with server(answering(seen)) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.rsplit("/", 1)[0])
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        request = BotApiRequest()
        await request.initialize()
        try:
            await request.post("http://api.telegram.invalid/botTOKEN/getMe")
        finally:
            await request.shutdown()
        assert seen[0][0] == b"POST http://api.telegram.invalid/botTOKEN/getMe HTTP/1.1"
        monkeypatch.setenv("NO_PROXY", "api.telegram.invalid")
        request = BotApiRequest(connect_timeout=1.0)
        await request.initialize()
        try:
            with pytest.raises(NetworkError):  # straight to a host that does not exist
                await request.post("http://api.telegram.invalid/botTOKEN/getMe")
        finally:
            await request.shutdown()
        assert len(seen) == 1


async def test_a_call_with_a_file_still_goes_out_as_multipart() -> None:
    seen: list[tuple[bytes, dict[str, str], bytes]] = []
    async with server(answering(seen)) as base:
        request = BotApiRequest()
        await request.initialize()
        try:
            photo = InputFile(b"\x89PNG fake", filename="chart.png", attach=True)
            await request.post(f"{base}/sendPhoto", params(chat_id=1, photo=photo))
        finally:
            await request.shutdown()
    (_line, headers, body), *_ = seen
    assert headers["content-type"].startswith("multipart/form-data")
    assert b"\x89PNG fake" in body


async def test_a_request_used_before_it_is_initialised_says_so() -> None:
    request = BotApiRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/botTOKEN/getMe", "POST")


async def test_a_redirect_is_not_followed_as_ptbs_own_request_does_not() -> None:
    seen: list[bytes] = []

    async def redirecting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                seen.append((await read_request(reader))[0])
                writer.write(
                    b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"
                )
                await writer.drain()

    errors = []
    async with server(redirecting) as base:
        for request in (HTTPXRequest(), BotApiRequest()):
            await request.initialize()
            try:
                with pytest.raises(NetworkError) as caught:
                    await request.post(f"{base}/getMe")
                errors.append((type(caught.value), str(caught.value)))
            finally:
                await request.shutdown()
    assert seen == [b"POST /botTOKEN/getMe HTTP/1.1"] * 2
    assert errors[0] == errors[1]
