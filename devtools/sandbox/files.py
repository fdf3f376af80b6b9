"""Stored files and their JSON: PhotoSize arrays, Document, Voice, Sticker, File.

Uploads are kept in memory under Telegram-looking file ids, so a bot can resend a file by id and
fetch it back through getFile and `/file/bot<token>/<file_path>`. Photo sizes are not resampled:
every size of a photo downloads as the original bytes.
"""

from __future__ import annotations

import secrets
import struct
import zlib
from dataclasses import dataclass
from typing import Any

# Bot API download limit for getFile.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

_ID_PREFIX = {"photos": "AgACAgIAAxkBAA", "documents": "BQACAgIAAxkBAA", "voice": "AwACAgIAAxkBAA",
              "stickers": "CAACAgIAAxkBAA"}  # fmt: skip
_PHOTO_BOXES = (90, 320, 800, 1280)
_PHOTO_MAX_SIDE = 2560


@dataclass
class StoredFile:
    """One stored file; `file_path` is what getFile reports and the download route serves."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    mime_type: str | None = None
    file_name: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def file_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.file_path,
        }


class FileStore:
    """Every file any chat has seen, by file_id and by file_path."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._count = 0

    def add(
        self,
        data: bytes,
        *,
        kind: str,
        extension: str,
        mime_type: str | None = None,
        file_name: str | None = None,
    ) -> StoredFile:
        self._count += 1
        stored = StoredFile(
            file_id=_ID_PREFIX.get(kind, "BQACAgIAAxkBAA") + secrets.token_urlsafe(42),
            file_unique_id="AQAD" + secrets.token_urlsafe(9),
            data=data,
            file_path=f"{kind}/file_{self._count}.{extension}",
            mime_type=mime_type,
            file_name=file_name,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def alias(self, original: StoredFile) -> StoredFile:
        """Another file id for the same bytes (a smaller PhotoSize of the same photo)."""
        alias = StoredFile(
            file_id=original.file_id[:14] + secrets.token_urlsafe(42),
            file_unique_id="AQAD" + secrets.token_urlsafe(9),
            data=original.data,
            file_path=original.file_path,
            mime_type=original.mime_type,
        )
        self._by_id[alias.file_id] = alias
        return alias

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        return self._by_path.get(file_path)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG, GIF or WebP image; None when it is not one."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return (width, height) if width and height else None
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return (width, height) if width and height else None
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return (width, height) if width and height else None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return (width & 0x3FFF, height & 0x3FFF) if width and height else None
    return None


def photo_sizes_json(store: FileStore, original: StoredFile, size: tuple[int, int]) -> list[Any]:
    """The PhotoSize array Telegram returns: thumbnails up to the (capped) original size."""
    width, height = size
    longest = max(width, height)
    sizes: list[dict[str, Any]] = []
    boxes = [box for box in _PHOTO_BOXES if box < longest] + [min(longest, _PHOTO_MAX_SIDE)]
    for index, box in enumerate(boxes):
        scale = box / longest
        last = index == len(boxes) - 1
        stored = original if last else store.alias(original)
        sizes.append(
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": original.size if last else max(1, int(original.size * scale * scale)),
                "width": max(1, round(width * scale)),
                "height": max(1, round(height * scale)),
            }
        )
    return sizes


def document_json(stored: StoredFile) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if stored.file_name:
        data["file_name"] = stored.file_name
    if stored.mime_type:
        data["mime_type"] = stored.mime_type
    data.update(
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
    )
    return data


def voice_json(stored: StoredFile, duration: int) -> dict[str, Any]:
    return {
        "duration": duration,
        "mime_type": stored.mime_type or "audio/ogg",
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
    }


def sticker_json(stored: StoredFile, emoji: str, set_name: str) -> dict[str, Any]:
    return {
        "width": 512,
        "height": 512,
        "emoji": emoji,
        "set_name": set_name,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
    }


def blank_png(width: int = 640, height: int = 480) -> bytes:
    """A valid grey PNG of the given size, small on the wire: a stand-in for a user's photo."""
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
