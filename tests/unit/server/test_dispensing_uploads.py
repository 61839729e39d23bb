"""Reading a fill image from a request: raw bodies, forms, and the bounds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.dispensing.images import ImageRefused, ImageVault
from server.dispensing.uploads import (
    IMAGE_VAULT,
    image_response,
    read_upload,
    refusal_problem,
    vault_ctx,
)
from server.errors import error_middleware
from server.settings import SETTINGS, Settings

LIMIT = 1000
JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"x" * 200


async def upload(request: web.Request) -> web.Response:
    data, declared = await read_upload(request, LIMIT)
    return web.json_response({"size": len(data), "declared": declared, "head": data[:4].hex()})


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], tmp_path: Path
) -> TestClient:
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = Settings(data_dir=tmp_path)
    app.cleanup_ctx.append(vault_ctx)
    app.router.add_post("/upload", upload)
    return await aiohttp_client(app)


async def test_the_app_gets_a_vault_with_its_own_key(client: TestClient, tmp_path: Path) -> None:
    assert isinstance(client.app[IMAGE_VAULT], ImageVault)
    assert len((tmp_path / "keys" / "fill-images.key").read_bytes()) == 32


async def test_a_raw_image_body_is_read_with_its_declared_type(client: TestClient) -> None:
    response = await client.post("/upload", data=JPEG_BYTES, headers={"Content-Type": "image/png"})
    assert response.status == 200
    assert await response.json() == {"size": 204, "declared": "image/png", "head": "ffd8ffe0"}


async def test_a_form_with_one_image_part_is_read(client: TestClient) -> None:
    form = aiohttp.FormData()
    form.add_field("image", JPEG_BYTES, filename="bottle.jpg", content_type="image/jpeg")
    response = await client.post("/upload", data=form)
    assert response.status == 200
    assert await response.json() == {"size": 204, "declared": "image/jpeg", "head": "ffd8ffe0"}


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(data), 100):
        yield data[at : at + 100]


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "chunked"])
async def test_a_raw_body_past_the_limit_is_413(client: TestClient, sized: bool) -> None:
    body = JPEG_BYTES + b"x" * LIMIT
    data = body if sized else chunks(body)
    response = await client.post("/upload", data=data, headers={"Content-Type": "image/jpeg"})
    assert response.status == 413
    assert (await response.json())["code"] == "payload_too_large"


BOUNDARY = "b0undary"
FORM_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def form_body(fields: list[tuple[str, bytes]]) -> bytes:
    """A multipart form as a browser sends it, each field a JPEG file."""
    return (
        b"".join(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="x.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n".encode()
            + value
            + b"\r\n"
            for name, value in fields
        )
        + f"--{BOUNDARY}--\r\n".encode()
    )


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "chunked"])
async def test_a_form_past_the_limit_is_413(client: TestClient, sized: bool) -> None:
    body = form_body([("image", JPEG_BYTES + b"x" * LIMIT)])
    data = body if sized else chunks(body)
    response = await client.post("/upload", data=data, headers=FORM_HEADERS)
    assert response.status == 413
    assert (await response.json())["code"] == "payload_too_large"


async def test_a_form_just_under_the_limit_is_read(client: TestClient) -> None:
    form = aiohttp.FormData()
    image = JPEG_BYTES + b"x" * (LIMIT - len(JPEG_BYTES))
    form.add_field("image", image, filename="vial.jpg", content_type="image/jpeg")
    response = await client.post("/upload", data=form)
    assert response.status == 200
    assert (await response.json())["size"] == LIMIT


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/pdf", "image/gif", "image/svg+xml", ""]
)
async def test_another_content_type_is_415(client: TestClient, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/upload", data=JPEG_BYTES, headers=headers)
    assert response.status == 415
    assert (await response.json())["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "fields",
    [
        [("photo", JPEG_BYTES)],
        [("image", JPEG_BYTES), ("image", JPEG_BYTES)],
        [("image", JPEG_BYTES), ("note", b"hello")],
        [],
    ],
    ids=["wrong-name", "two-images", "extra-field", "no-parts"],
)
async def test_a_form_needs_exactly_one_image_part(
    client: TestClient, fields: list[tuple[str, bytes]]
) -> None:
    response = await client.post("/upload", data=form_body(fields), headers=FORM_HEADERS)
    assert response.status == 400
    assert (await response.json())["code"] == "bad_request"


async def test_an_empty_image_is_400(client: TestClient) -> None:
    response = await client.post("/upload", data=b"", headers={"Content-Type": "image/jpeg"})
    assert response.status == 400


@pytest.mark.parametrize(
    ("code", "status"),
    [("too_large", 413), ("unsupported_type", 415), ("undecodable", 422), ("too_many_pixels", 422)],
)
def test_each_refusal_has_its_answer(code: str, status: int) -> None:
    problem = refusal_problem(ImageRefused(code, "why"))
    assert problem.status == status
    assert problem.detail == "why"
    if status == 422:
        assert problem.code == code


def test_an_image_is_served_as_what_it_is_and_nothing_more() -> None:
    response = image_response(JPEG_BYTES, "image/jpeg")
    assert response.content_type == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "private, no-store"
