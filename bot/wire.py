"""The bot's HTTP requests to the Bot API: PTB's `HTTPXRequest` settings, on aiohttp.

A Bot API call through `HTTPXRequest` costs some 0.7 ms of CPU on the HTTP side alone: the httpx
client merges and parses the URL, runs its auth, redirect and cookie handling, rebuilds the
headers and converts the request for httpcore, whose pool then checks every idle connection
through anyio (a dictionary of socket attributes and a `getpeername` call each) on every
request. A tap costs two calls, so that was as much as the rest of its handling. aiohttp (already
a dependency, its HTTP parser compiled) does the same call for about a tenth of it.

Same settings as `HTTPXRequest`: pool size, connect/read/pool timeouts, idle connections kept
5 s, proxies and CA certificates as httpx finds them (the environment, else certifi), redirects
not followed. Calls with files (photos) keep the httpx
path for its multipart encoding. Errors become PTB's as `HTTPXRequest` makes them: timeouts
`TimedOut`, any other failure of the transport `NetworkError`. (aiohttp has no write timeout:
a request body of a few kilobytes goes to the socket's buffer at once.)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
from aiohttp.helpers import get_env_proxy_for_url
from telegram._utils.defaultvalue import DefaultValue  # as HTTPXRequest itself tells them apart
from telegram.error import NetworkError, TimedOut
from telegram.request import HTTPXRequest, RequestData
from yarl import URL

KEEPALIVE_SECONDS = 5.0
"""How long an idle connection is kept: httpx's default, which `HTTPXRequest` keeps."""
FORM = "application/x-www-form-urlencoded"


class BotApiRequest(HTTPXRequest):
    """`HTTPXRequest` with the same settings; calls without files go through aiohttp."""

    __slots__ = ("_pool_size", "_proxies", "_session", "_timeouts")

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        super().__init__(
            connection_pool_size=connection_pool_size,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        self._pool_size = connection_pool_size
        self._timeouts = (connect_timeout, read_timeout, pool_timeout)
        self._session: aiohttp.ClientSession | None = None  # made on the event loop
        self._proxies: dict[str, tuple[URL | None, aiohttp.BasicAuth | None]] = {}

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._pool_size,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=httpx.create_ssl_context(),  # httpx's: SSL_CERT_FILE or SSL_CERT_DIR, else certifi
        )
        return aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT})

    def _proxy(self, url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
        """The proxy the environment names for the URL's origin (HTTP(S)_PROXY, NO_PROXY), as
        httpx honours them; looked up once per origin. (aiohttp's own `trust_env` would look on
        every request, in a thread.)"""
        origin = url[: url.find("/", url.find("//") + 2)]
        known = self._proxies.get(origin)
        if known is None:
            try:
                known = get_env_proxy_for_url(URL(origin))
            except LookupError:
                known = (None, None)
            self._proxies[origin] = known
        return known

    async def initialize(self) -> None:
        await super().initialize()
        if self._session is None or self._session.closed:
            self._session = self._new_session()

    async def shutdown(self) -> None:
        await super().shutdown()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _timeout(self, connect: Any, read: Any, pool: Any) -> aiohttp.ClientTimeout:
        default_connect, default_read, default_pool = self._timeouts
        connect = default_connect if isinstance(connect, DefaultValue) else connect
        read = default_read if isinstance(read, DefaultValue) else read
        pool = default_pool if isinstance(pool, DefaultValue) else pool
        # aiohttp's `connect` is the wait for a pooled connection and the connecting together.
        waited = None if connect is None or pool is None else connect + pool
        return aiohttp.ClientTimeout(
            total=None, connect=waited, sock_connect=connect, sock_read=read
        )

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        write_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: Any = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if request_data is not None and request_data.contains_files:
            timeouts = (read_timeout, write_timeout, connect_timeout, pool_timeout)
            return await super().do_request(url, method, request_data, *timeouts)
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This BotApiRequest is not initialized!")
        body = urlencode(request_data.json_parameters) if request_data else ""
        proxy, proxy_auth = self._proxy(url)
        try:
            async with session.request(
                method,
                url,
                data=body.encode(),
                headers={"Content-Type": FORM},
                proxy=proxy,
                proxy_auth=proxy_auth,
                allow_redirects=False,  # as httpx: a redirect is the answer, not followed
                timeout=self._timeout(connect_timeout, read_timeout, pool_timeout),
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's timeouts are TimeoutErrors (and ClientErrors)
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
