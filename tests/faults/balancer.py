"""A load balancer of the test's own in front of webhook replicas: the sandbox POSTs every update
to it, and it forwards the POST to one replica, passing the secret header in and the status code
back (so a 503 still makes the sandbox deliver again, like Telegram).

It sends each person's updates to the replicas in turn (A, B, A, ...): whatever the timing, two
consecutive updates of one client never reach the same process, the worst case a real balancer
(round-robin or random over all traffic) only sometimes produces.
"""

from __future__ import annotations

import json
import socket
from collections import Counter, defaultdict
from typing import Any

import aiohttp
from aiohttp import web

from bot.webhook import PATH, SECRET_HEADER

KINDS = ("message", "edited_message", "callback_query", "my_chat_member")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sender_of(body: bytes) -> int:
    """The Telegram user behind an update (0 if none can be read)."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return 0
    for kind in KINDS:
        part = data.get(kind) if isinstance(data, dict) else None
        if isinstance(part, dict) and isinstance(part.get("from"), dict):
            return int(part["from"].get("id") or 0)
    return 0


class Balancer:
    """Forwards `POST /telegram` to the replicas' receivers, each person's updates in turn."""

    def __init__(self, replica_ports: list[int]) -> None:
        self.targets = [f"http://127.0.0.1:{port}{PATH}" for port in replica_ports]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{PATH}"
        self.accepted: Counter[int] = Counter()
        """Per replica (its index), the updates it answered 2xx."""
        self.refused: Counter[int] = Counter()
        """Per replica, the POSTs it answered otherwise (or could not be reached for)."""
        self.routes: defaultdict[int, list[int]] = defaultdict(list)
        """Per user, the replica each of their POSTs went to, in order."""
        self._turn: Counter[int] = Counter()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(PATH, self._forward)
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    def pick(self, user_id: int) -> int:
        index = self._turn[user_id] % len(self.targets)
        self._turn[user_id] += 1
        self.routes[user_id].append(index)
        return index

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        body = await request.read()
        index = self.pick(sender_of(body))
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        if SECRET_HEADER in request.headers:
            headers[SECRET_HEADER] = request.headers[SECRET_HEADER]
        try:
            async with self._client.post(self.targets[index], data=body, headers=headers) as reply:
                await reply.read()
                status = reply.status
        except aiohttp.ClientError:
            status = 502
        (self.accepted if 200 <= status < 300 else self.refused)[index] += 1
        return web.Response(status=status)
