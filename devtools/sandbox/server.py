"""The HTTP face of the sandbox: `/bot<token>/<method>` and `/file/bot<token>/<path>`.

Every request is answered in Telegram's envelope with the HTTP status equal to `error_code`.
Faults apply in Telegram's order of experience, once the request has been read whole: a hold
first (the request waits, parked, until released), then latency, then an injected failure, then
flood control, then the method itself. The access log is off because request paths carry bot tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from devtools.sandbox import methods
from devtools.sandbox.errors import ApiError, not_found, server_error, unauthorized
from devtools.sandbox.faults import DisconnectFault
from devtools.sandbox.files import MAX_UPLOAD_BYTES
from devtools.sandbox.journal import ApiCall
from devtools.sandbox.params import Params, read_params
from devtools.sandbox.world import TOKEN_PATTERN, SandboxBot, World

log = logging.getLogger(__name__)


def _reply(body: dict[str, Any], status: int) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
    )


def _chat_key(params: Params) -> int | str | None:
    raw = params.raw("chat_id")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            return raw.strip()
    return None


class BotApiServer:
    """Routes Bot API requests to the method handlers against one World."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._api)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._download)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        requested = request.match_info["method"]
        bot = self.world.bots.get(token)
        found = methods.lookup(requested)
        name = found[0] if found else requested
        if bot is None:
            error = unauthorized() if TOKEN_PATTERN.match(token) else not_found()
            return self._answer(request, name, None, Params({}), error)
        if found is None:
            return self._answer(request, name, bot, Params({}), not_found())
        params = Params({})
        try:
            # Read first, then hold or delay: like Telegram, a request that was fully sent is
            # processed even if its sender is gone by the time the answer is ready.
            params = await read_params(request)
            parked = self.world.faults.take_hold(name, _chat_key(params))
            if parked is not None:
                await parked.wait()
            delay = self.world.faults.delay_for(name)
            if delay > 0:
                await asyncio.sleep(delay)
            result = await self._call(bot, name, found[1], params)
        except ApiError as exc:
            return self._answer(request, name, bot, params, exc)
        except DisconnectFault:
            self._log(name, bot, params, 0, "connection dropped", None, abandoned=False)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        except Exception:
            log.exception("unexpected failure in sandbox method %s", name)
            return self._answer(request, name, bot, params, server_error(500))
        return self._answer(request, name, bot, params, None, result)

    async def _call(
        self, bot: SandboxBot, name: str, handler: methods.Handler, params: Params
    ) -> Any:
        faults = self.world.faults
        chat_key = _chat_key(params)
        failure = faults.take_failure(name, chat_key)
        if failure is not None:
            raise failure
        chat = self.world.chats.get(chat_key) if isinstance(chat_key, int) else None
        is_group = chat is not None and chat.type in ("group", "supergroup")
        limited = faults.check_rate(bot.id, name, chat_key, is_group)
        if limited is not None:
            raise limited
        return await handler(methods.MethodContext(self.world, bot), params)

    def _answer(
        self,
        request: web.Request,
        name: str,
        bot: SandboxBot | None,
        params: Params,
        error: ApiError | None,
        result: Any = None,
    ) -> web.Response:
        gone = request.transport is None or request.transport.is_closing()
        if error is not None:
            self._log(name, bot, params, error.code, error.description, None, abandoned=gone)
            return _reply(error.envelope(), error.code)
        body: dict[str, Any] = {"ok": True}
        if isinstance(result, methods.Described):
            body["result"] = result.result
            body["description"] = result.description
        else:
            body["result"] = result
        self._log(name, bot, params, 200, body.get("description"), body["result"], abandoned=gone)
        return _reply(body, 200)

    def _log(
        self,
        name: str,
        bot: SandboxBot | None,
        params: Params,
        status: int,
        description: str | None,
        result: Any,
        *,
        abandoned: bool,
    ) -> None:
        self.world.record(
            ApiCall(
                method=name,
                params=params.summary(),
                status=status,
                bot_username=bot.username if bot else None,
                description=description,
                result=result,
                date=self.world.now(),
                abandoned=abandoned,
            )
        )

    async def _download(self, request: web.Request) -> web.StreamResponse:
        bot = self.world.bots.get(request.match_info["token"])
        if bot is None:
            return _reply(unauthorized().envelope(), 401)
        stored = self.world.files.by_path(request.match_info["path"])
        if stored is None:
            return _reply(not_found().envelope(), 404)
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )
