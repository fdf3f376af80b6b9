"""A JSON control API under `/sandbox/`, so a standalone sandbox can be driven with curl.

    POST /sandbox/users            {"first_name": "Alice"}            -> the user
    POST /sandbox/users/<id>/send  {"text": "/start abc"}             -> the message
    POST /sandbox/users/<id>/tap   {"message_id": 3, "data": "7"}     -> the callback query
    POST /sandbox/users/<id>/block | /unblock
    GET  /sandbox/users/<id>/inbox                                    -> the bot's messages
    GET  /sandbox/calls?limit=50   GET /sandbox/stats   GET /sandbox
    POST /sandbox/faults           {"fail_next": {"method": "sendMessage", "status": 429}}
                                   {"latency": {"seconds": 1}} {"duplicate_updates": true}
                                   {"rate_limits": {"per_chat": 1}} {"clear": true}

Errors come back as {"error": "..."} with status 400 or 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from devtools.sandbox.actions import ActionError
from devtools.sandbox.control import Sandbox, SandboxUser

_Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data, ensure_ascii=False), content_type="application/json"
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text='{"error": "the body must be a JSON object"}') from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "the body must be a JSON object"}')
    return data


def add_control_routes(app: web.Application, sandbox: Sandbox) -> None:
    """Mount the control routes on the sandbox's aiohttp application (before start())."""

    def user_of(request: web.Request) -> SandboxUser:
        try:
            return sandbox.users[int(request.match_info["user_id"])]
        except (KeyError, ValueError) as exc:
            raise web.HTTPNotFound(text='{"error": "no such user"}') from exc

    def guarded(route: _Route) -> _Route:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                return await route(request)
            except (ActionError, KeyError, TypeError, ValueError, RuntimeError) as exc:
                return _json({"error": str(exc)}, 400)

        return wrapper

    async def overview(request: web.Request) -> web.StreamResponse:
        return _json(
            {
                "api_url": sandbox.api_url,
                "file_url": sandbox.file_url,
                "bots": [{"id": b.id, "username": b.username} for b in sandbox.bots],
                "users": [u.json for u in sandbox.users.values()],
            }
        )

    async def create_user(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        user = sandbox.user(
            str(body.get("first_name", "Alice")),
            body.get("last_name"),
            body.get("username"),
            body.get("language_code", "en"),
        )
        return _json(user.json, 201)

    async def send(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        return _json(await user_of(request).send(str(body["text"]), reply_to=body.get("reply_to")))

    async def tap(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        query = await user_of(request).tap(
            int(body["message_id"]),
            body.get("data"),
            button_text=body.get("button_text"),
            forge=bool(body.get("forge", False)),
        )
        return _json(query)

    async def block(request: web.Request) -> web.StreamResponse:
        await user_of(request).block()
        return _json({"blocked": True})

    async def unblock(request: web.Request) -> web.StreamResponse:
        await user_of(request).unblock()
        return _json({"blocked": False})

    async def inbox(request: web.Request) -> web.StreamResponse:
        return _json(user_of(request).inbox)

    async def calls(request: web.Request) -> web.StreamResponse:
        limit = int(request.query.get("limit", "50"))
        recent = sandbox.calls[-limit:] if limit > 0 else []
        return _json(
            [{"method": c.method, "status": c.status, "description": c.description} for c in recent]
        )

    async def stats(request: web.Request) -> web.StreamResponse:
        s = sandbox.stats
        return _json(
            {
                "messages_sent": s.messages_sent,
                "messages_per_chat": {str(k): v for k, v in s.messages_per_chat.items()},
                "too_many_requests": s.too_many_requests,
                "errors": s.errors,
                "errors_per_status": {str(k): v for k, v in s.errors_per_status.items()},
                "webhook_deliveries": s.webhook_deliveries,
                "webhook_failures": s.webhook_failures,
            }
        )

    async def faults(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        switch = sandbox.faults
        if body.get("clear"):
            switch.clear()
        if "fail_next" in body:
            switch.fail_next(**body["fail_next"])
        if "latency" in body:
            switch.latency(float(body["latency"]["seconds"]), body["latency"].get("method"))
        if "duplicate_updates" in body:
            switch.duplicate_updates(bool(body["duplicate_updates"]))
        if "rate_limits" in body:
            limits = body["rate_limits"]
            if limits is None:
                switch.no_rate_limits()
            else:
                switch.rate_limits(**limits)
        return _json({"pending_failures": switch.pending_failures})

    routes: list[tuple[str, str, _Route]] = [
        ("GET", "/sandbox", overview),
        ("POST", "/sandbox/users", create_user),
        ("POST", "/sandbox/users/{user_id}/send", send),
        ("POST", "/sandbox/users/{user_id}/tap", tap),
        ("POST", "/sandbox/users/{user_id}/block", block),
        ("POST", "/sandbox/users/{user_id}/unblock", unblock),
        ("GET", "/sandbox/users/{user_id}/inbox", inbox),
        ("GET", "/sandbox/calls", calls),
        ("GET", "/sandbox/stats", stats),
        ("POST", "/sandbox/faults", faults),
    ]
    for method, path, route in routes:
        app.router.add_route(method, path, guarded(route))
