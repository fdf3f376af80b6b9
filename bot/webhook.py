"""The webhook receiver: an ASGI app (Starlette) served by uvicorn in the bot's own event loop.

Telegram POSTs each update to `/telegram` with the secret header. The answer is 200 only once
the update settled (`Intake.settle`) and 503 while the database cannot take it, so Telegram
delivers it again. The secret is checked before anything else is read, and a body over
`MAX_BODY` (declared or actual) is refused without being read whole: updates are a few KiB.
Nothing of a body is ever logged, only its size.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from bot.intake import STOP_GRACE_SECONDS, Intake
from flows.parsing import is_number

log = logging.getLogger(__name__)

PATH = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20
"""Bytes: Telegram's updates are small (a message is at most 4,096 characters); 1 MiB is ample."""


def refuse(status: int) -> Response:
    """A refusal that also ends the connection, so the server does not go on reading a body
    nobody will look at (to keep the connection alive it would drain it to the end)."""
    return Response(status_code=status, headers={"Connection": "close"})


def webhook_app(intake: Intake, secret: str) -> Starlette:
    """The app with the webhook route; the practice console may add its own routes to it."""
    expected = secret.encode()

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return refuse(403)
        declared = request.headers.get("content-length")
        if declared is not None and (not is_number(declared) or int(declared) > MAX_BODY):
            log.warning("webhook: a body of %s bytes declared: refused", declared[:20])
            return refuse(413)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    log.warning("webhook: a body over %d bytes: refused", MAX_BODY)
                    return refuse(413)
        except ClientDisconnect:
            return Response(status_code=400)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            log.warning("webhook: a body of %d bytes that is not an update: refused", len(body))
            return Response(status_code=400)
        settled = await intake.settle_raw(data)
        return Response(status_code=200 if settled else 503)

    return Starlette(routes=[Route(PATH, receive, methods=["POST"])])


class WebServer:
    """uvicorn inside the running loop. Signals stay with `rapport run` (uvicorn's own `serve`
    would take SIGTERM over), so this drives uvicorn's start-up and shutdown steps itself."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:  # or any ASGI app
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=int(STOP_GRACE_SECONDS),
        )
        config.load()
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)
        self._ticks: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._server.startup()
        self._ticks = asyncio.create_task(self._server.main_loop(), name="webhook-server")

    async def stop(self) -> None:
        """Stop accepting, let the requests underway be answered, close."""
        if self._ticks is None:
            return
        self._server.should_exit = True
        await self._ticks
        self._ticks = None
        await self._server.shutdown()
