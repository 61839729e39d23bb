"""The HTTP side of fill images: the vault on the app, reading an upload, and the answers. The
upload comes as a raw
body (``Content-Type: image/jpeg``, ``image/png`` or ``image/webp``, what a script's ``fetch``
of a camera blob sends) or as a ``multipart/form-data`` form with one part named ``image``
(what a plain ``<input type="file">`` form sends), bounded as every body is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, hdrs, web

from ..errors import (
    BadRequest,
    PayloadTooLarge,
    Problem,
    RequestTimeout,
    Unprocessable,
    UnsupportedMediaType,
)
from ..http import CHUNK, read_body
from ..settings import SETTINGS
from .images import JPEG, PNG, WEBP, ImageRefused, ImageVault, image_vault

IMAGE_TYPES = (JPEG, PNG, WEBP)
FORM = "multipart/form-data"
#: what a form may add to the image (boundaries, part headers) before it is too large at once
FORM_OVERHEAD = 16 * 1024
_SEND_AS = "Send the image as image/jpeg, image/png or image/webp, or in a multipart form."

#: the hub's fill image vault (``app.cleanup_ctx.append(vault_ctx)`` puts it there)
IMAGE_VAULT: web.AppKey[ImageVault] = web.AppKey("image_vault")


async def vault_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the vault at start-up (its key may have to be made: a file write, in a thread)."""
    app[IMAGE_VAULT] = await asyncio.to_thread(image_vault, app[SETTINGS])
    yield


async def read_upload(request: web.Request, limit: int) -> tuple[bytes, str | None]:
    """The uploaded image's bytes and the type the client declared for them (which
    :func:`~server.dispensing.images.prepare` does not trust): 413 past ``limit`` bytes
    (reading stops there), 415 for another content type, 408 when the body is slow, 400 for
    an empty image or a form without exactly one ``image`` part."""
    declared: str | None = request.content_type
    if declared in IMAGE_TYPES:
        data = await read_body(request, limit)
    elif declared == FORM:
        data, declared = await _read_form(request, limit)
    else:
        raise UnsupportedMediaType(_SEND_AS)
    if not data:
        raise BadRequest("The image is empty.")
    return data, declared


async def _read_form(request: web.Request, limit: int) -> tuple[bytes, str | None]:
    length = request.content_length
    if length is not None and length > limit + FORM_OVERHEAD:
        raise PayloadTooLarge(f"The image may be at most {limit} bytes.")
    try:
        async with asyncio.timeout(request.app[SETTINGS].body_timeout):
            return await _image_part(request, limit)
    except TimeoutError:
        raise RequestTimeout("The body did not arrive in time.") from None
    except ValueError:  # aiohttp's account of a malformed form (no boundary, bad headers)
        raise BadRequest("The body is not a valid multipart form.") from None


async def _image_part(request: web.Request, limit: int) -> tuple[bytes, str | None]:
    reader = await request.multipart()
    found: tuple[bytes, str | None] | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "image" or found is not None:
            raise BadRequest("Send one form part, named image, and nothing else.")
        declared = part.headers.get(hdrs.CONTENT_TYPE)
        found = await _read_part(part, limit), declared
    if found is None:
        raise BadRequest("The form has no part named image.")
    return found


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    if part.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower() != "identity":
        raise UnsupportedMediaType("Send the image part unencoded.")
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The image may be at most {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def refusal_problem(refused: ImageRefused) -> Problem:
    """The answer for an image :func:`~server.dispensing.images.prepare` would not keep: 413
    too large, 415 not a JPEG, PNG or WebP, 422 (with the code) undecodable or too many pixels."""
    if refused.code == "too_large":
        return PayloadTooLarge(refused.detail)
    if refused.code == "unsupported_type":
        return UnsupportedMediaType(refused.detail)
    return Unprocessable(refused.code, refused.detail)


def image_response(data: bytes, media_type: str) -> web.Response:
    """A stored image for its pharmacy's staff: typed by what it is, never sniffed as anything
    else, shown inline, and nothing in it allowed to run or load."""
    return web.Response(
        body=data,
        content_type=media_type,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            hdrs.CACHE_CONTROL: "private, no-store",
        },
    )
