"""Photos and documents: multipart uploads or resent file ids, and getFile for downloads."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from typing import Any

from devtools.sandbox.errors import bad_request
from devtools.sandbox.files import (
    MAX_DOWNLOAD_BYTES,
    MAX_PHOTO_BYTES,
    StoredFile,
    document_json,
    image_size,
    photo_sizes_json,
)
from devtools.sandbox.methods.common import (
    MAX_CAPTION,
    MethodContext,
    formatted,
    writable_conversation,
)
from devtools.sandbox.methods.messages import post_asked
from devtools.sandbox.params import Params, Upload
from devtools.sandbox.wire import caption_content
from devtools.sandbox.world import Conversation

_MAX_PHOTO_SIDES = 10_000
_MAX_PHOTO_RATIO = 20


def _existing(ctx: MethodContext, reference: str, kind: str) -> StoredFile:
    if reference.startswith(("http://", "https://")):
        raise bad_request("failed to get HTTP URL content")
    stored = ctx.world.files.get(reference.strip())
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if not stored.file_path.startswith(f"{kind}/"):
        raise bad_request("type of file mismatch")
    return stored


def _caption(p: Params) -> dict[str, Any]:
    body = formatted(p, p.string("caption") or "", entities_field="caption_entities")
    if len(body.text) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return caption_content(body.text, body.entities)


def _photo_from_upload(ctx: MethodContext, upload: Upload) -> StoredFile:
    if not upload.data:
        raise bad_request("file must be non-empty")
    if len(upload.data) > MAX_PHOTO_BYTES:
        raise bad_request("PHOTO_SAVE_FILE_INVALID")
    size = image_size(upload.data)
    if size is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    width, height = size
    if width + height > _MAX_PHOTO_SIDES or max(size) / min(size) > _MAX_PHOTO_RATIO:
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    extension = "png" if upload.data.startswith(b"\x89PNG") else "jpg"
    return ctx.world.files.add(
        upload.data, kind="photos", extension=extension, mime_type=f"image/{extension}"
    )


def _document_from_upload(ctx: MethodContext, upload: Upload) -> StoredFile:
    if not upload.data:
        raise bad_request("file must be non-empty")
    file_name = upload.filename or "document"
    mime_type = (
        upload.content_type
        if upload.content_type and upload.content_type != "application/octet-stream"
        else mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    )
    extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
    return ctx.world.files.add(
        upload.data,
        kind="documents",
        extension=extension,
        mime_type=mime_type,
        file_name=file_name,
    )


def _sent_file(
    ctx: MethodContext,
    p: Params,
    field: str,
    kind: str,
    from_upload: Callable[[MethodContext, Upload], StoredFile],
) -> tuple[Conversation, StoredFile]:
    """The chat a file is sent to, and the file: uploaded with the call, or sent before."""
    conversation = writable_conversation(ctx, p.chat_id())
    source = p.file(field)
    if source is None:
        raise bad_request(f"there is no {field} in the request")
    if isinstance(source, Upload):
        return conversation, from_upload(ctx, source)
    return conversation, _existing(ctx, source, kind)


async def send_photo(ctx: MethodContext, p: Params) -> dict[str, Any]:
    conversation, stored = _sent_file(ctx, p, "photo", "photos", _photo_from_upload)
    size = image_size(stored.data) or (1, 1)
    content: dict[str, Any] = {"photo": photo_sizes_json(ctx.world.files, stored, size)}
    content.update(_caption(p))
    if p.boolean("has_spoiler"):
        content["has_media_spoiler"] = True
    return post_asked(ctx, p, conversation, content)


async def send_document(ctx: MethodContext, p: Params) -> dict[str, Any]:
    conversation, stored = _sent_file(ctx, p, "document", "documents", _document_from_upload)
    content: dict[str, Any] = {"document": document_json(stored)}
    content.update(_caption(p))
    return post_asked(ctx, p, conversation, content)


async def get_file(ctx: MethodContext, p: Params) -> dict[str, Any]:
    file_id = p.string("file_id", required=True, empty_error="file_id is empty") or ""
    stored = ctx.world.files.get(file_id.strip())
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.size > MAX_DOWNLOAD_BYTES:
        raise bad_request("file is too big")
    return stored.file_json()
