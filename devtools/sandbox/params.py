"""Bot API request parameters from query strings, JSON, urlencoded and multipart bodies.

Telegram accepts every parameter in any of these encodings. In form and multipart bodies each value
is a string: numbers and booleans arrive as text and nested objects (reply_markup, entities,
allowed_updates) as JSON text, which is how PTB sends them. Typed accessors here convert as
Telegram does and refuse bad values with 400 replies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import FileField

from devtools.sandbox.errors import ApiError, bad_request

_MISSING = object()


@dataclass(frozen=True)
class Upload:
    """A file sent in a multipart body."""

    field: str
    filename: str
    content_type: str
    data: bytes


class Params:
    """One request's parameters with Telegram-like typed access."""

    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload] | None = None) -> None:
        self.values = values
        self.uploads = uploads or {}

    def has(self, name: str) -> bool:
        return name in self.values or name in self.uploads

    def raw(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def summary(self) -> dict[str, Any]:
        """The parameters as a plain dict for the call log; uploads shown by name and size."""
        result = dict(self.values)
        for name, upload in self.uploads.items():
            result[name] = {"upload": upload.filename, "size": len(upload.data)}
        return result

    def string(
        self, name: str, *, required: bool = False, empty_error: str | None = None
    ) -> str | None:
        value = self.values.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise bad_request(empty_error or f"{name} is empty")
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise bad_request(f'field "{name}" must be of type String')
        return value

    def integer(
        self, name: str, *, required: bool = False, empty_error: str | None = None
    ) -> int | None:
        value = self.values.get(name, _MISSING)
        if value is _MISSING or value is None or value == "":
            if required:
                raise bad_request(empty_error or f"{name} is empty")
            return None
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Integer')
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f'field "{name}" must be of type Integer')

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Number')
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise bad_request(f'field "{name}" must be of type Number')

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
            return value.strip().lower() in ("true", "1")
        raise bad_request(f'field "{name}" must be of type Boolean')

    def nested(self, name: str, error: str) -> Any:
        """A nested object: typed in JSON bodies, JSON text in forms. `error` if unparsable."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise bad_request(error) from exc
        return value

    def chat_id(self, name: str = "chat_id") -> int | str:
        """An integer chat id or an `@username`; anything else is a chat Telegram cannot find."""
        value = self.values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, bool):
            raise bad_request("chat not found")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("@") and len(text) > 1:
                return text
            try:
                return int(text)
            except ValueError:
                pass
        raise bad_request("chat not found")

    def file(self, name: str) -> Upload | str | None:
        """An uploaded file (directly or via `attach://`), or a file_id/URL string."""
        if name in self.uploads:
            return self.uploads[name]
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise bad_request(f'field "{name}" must be of type String')
        if value.startswith("attach://"):
            attached = self.uploads.get(value[len("attach://") :])
            if attached is None:
                raise bad_request(f"file to attach not found: {value}")
            return attached
        return value


async def read_params(request: web.Request) -> Params:
    """Decode a request's query string and body into Params."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method not in ("POST", "PUT") or not request.can_read_body:
        return Params(values, uploads)
    content_type = request.content_type
    if content_type == "application/json":
        body = await request.read()
        if body.strip():
            try:
                decoded = json.loads(body)
            except ValueError as exc:
                raise bad_request("can't parse JSON encoded request parameters") from exc
            if not isinstance(decoded, dict):
                raise bad_request("JSON object expected as request body")
            values.update(decoded)
        return Params(values, uploads)
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge as exc:
            raise ApiError(413, "Request Entity Too Large") from exc
        except (ValueError, HttpProcessingError) as exc:
            raise bad_request("can't parse request body") from exc
        for key, item in form.items():
            if isinstance(item, FileField):
                uploads[key] = Upload(key, item.filename, item.content_type or "", item.file.read())
            else:
                values[key] = (
                    item if isinstance(item, str) else bytes(item).decode("utf-8", "replace")
                )
        return Params(values, uploads)
    return Params(values, uploads)
