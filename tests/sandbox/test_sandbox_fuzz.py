"""Random parameters never crash the server: bad input gets a 4xx reply with a description."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.sandbox import DEFAULT_TOKEN, Sandbox
from devtools.sandbox.methods import METHOD_NAMES

PARAM_NAMES = [
    "chat_id", "text", "parse_mode", "entities", "reply_markup", "reply_parameters",
    "reply_to_message_id", "message_id", "caption", "caption_entities", "photo", "document",
    "callback_query_id", "show_alert", "offset", "limit", "allowed_updates", "commands", "scope",
    "language_code", "action", "file_id", "secret_token", "drop_pending_updates",
    "max_connections", "name", "description", "short_description", "menu_button",
    "inline_message_id", "allow_sending_without_reply", "has_spoiler", "cache_time", "url",
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "text",
                    "type",
                    "offset",
                    "length",
                    "inline_keyboard",
                    "callback_data",
                    "message_id",
                    "command",
                    "url",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=8,
)
SAFE_URLS = st.sampled_from(["", "ftp://x", "not a url", "http://127.0.0.1:9/hook"])
KNOWN_PHRASES = ("Bad Request: ", "Forbidden: ", "Conflict: ", "Not Found", "Unauthorized")


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def as_form(params: dict[str, Any]) -> dict[str, str]:
    return {
        k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items() if v is not None
    }


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from([*METHOD_NAMES, "sendHologram"]),
    params=st.dictionaries(st.sampled_from(PARAM_NAMES), JSON_VALUES, max_size=6),
    use_known_chat=st.booleans(),
    url=SAFE_URLS,
    encoding=st.sampled_from(["json", "form"]),
)
async def test_random_params_never_cause_a_server_error(
    sandbox: Sandbox,
    client: aiohttp.ClientSession,
    method: str,
    params: dict[str, Any],
    use_known_chat: bool,
    url: str,
    encoding: str,
) -> None:
    if not sandbox.users:
        user = sandbox.user()
        await user.send("/start")
    if use_known_chat:
        params["chat_id"] = next(iter(sandbox.users))
    if method.lower() == "getupdates":
        params["timeout"] = 0
    params["url"] = url
    endpoint = f"{sandbox.api_url}{DEFAULT_TOKEN}/{method}"
    body: dict[str, Any] = {"json": params} if encoding == "json" else {"data": as_form(params)}
    async with client.post(endpoint, **body) as reply:
        status = reply.status
        envelope = await reply.json()
    assert status != 500, envelope
    assert envelope["ok"] is (status == 200)
    if status != 200:
        assert envelope["error_code"] == status
        assert envelope["description"].startswith(KNOWN_PHRASES), envelope


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2]"),
        ("application/x-www-form-urlencoded", b"%%%=\xff\xfe"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\ngarbage"),
    ],
)
async def test_garbage_bodies_get_bad_request(
    sandbox: Sandbox, client: aiohttp.ClientSession, content_type: str, payload: bytes
) -> None:
    endpoint = f"{sandbox.api_url}{DEFAULT_TOKEN}/sendMessage"
    async with client.post(endpoint, data=payload, headers={"Content-Type": content_type}) as reply:
        assert reply.status == 400
        assert (await reply.json())["description"].startswith("Bad Request: ")
