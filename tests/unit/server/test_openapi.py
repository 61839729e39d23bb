"""Typed operations: one msgspec type validates a body, encodes a response and is described."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.errors import error_middleware
from server.http import read_json_as, respond
from server.openapi import Body, Operation, Timestamp, document, operation, path
from server.settings import SETTINGS, Settings


class Rename(Body, frozen=True):
    name: Annotated[str, msgspec.Meta(max_length=8, description="the new name")]


class Step(msgspec.Struct, frozen=True, kw_only=True):
    at: Timestamp


class Renamed(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    history: list[Step]


THING = uuid.UUID(int=7)


@operation(
    Operation(
        operation_id="renameThing",
        summary="Rename a thing",
        scope="things",
        parameters=[path("id", "the thing")],
        body=Annotated[Rename, msgspec.Meta(extra_json_schema={"minProperties": 1})],
        response=Renamed,
    )
)
async def rename(request: web.Request) -> web.Response:
    change = await read_json_as(request, Rename, 64)
    return respond(
        Renamed(id=THING, name=change.name, history=[Step(at="2026-12-01T00:00:00+00:00")])
    )


@pytest.fixture
def app(tmp_path: Path) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = Settings(data_dir=tmp_path, issuer="http://127.0.0.1:8080")
    app.router.add_post("/api/v1/things/{id}/rename", rename)
    return app


def test_the_types_are_described_inline_and_what_they_nest_is_shared(app: web.Application) -> None:
    spec = document(app)
    op = spec["paths"]["/api/v1/things/{id}/rename"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False
    assert body["minProperties"] == 1
    assert body["properties"]["name"] == {
        "type": "string",
        "maxLength": 8,
        "description": "the new name",
    }
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["required"] == ["id", "name", "history"]
    assert answer["properties"]["history"]["items"] == {"$ref": "#/components/schemas/Step"}
    schemas = spec["components"]["schemas"]
    assert set(schemas) == {"Step", "Problem"}  # the inline ones are not repeated
    assert schemas["Step"]["properties"]["at"] == {"type": "string", "format": "date-time"}


async def test_a_typed_body_is_read_and_the_response_encoded(
    aiohttp_client: Callable[..., Any], app: web.Application
) -> None:
    client: TestClient = await aiohttp_client(app)
    response = await client.post(f"/api/v1/things/{THING}/rename", json={"name": "new"})
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {
        "id": str(THING),
        "name": "new",
        "history": [{"at": "2026-12-01T00:00:00+00:00"}],
    }


@pytest.mark.parametrize(
    ("body", "headers", "status", "named"),
    [
        (b'{"name": "new", "colour": "red"}', {}, 400, "colour"),
        (b'{"name": 5}', {}, 400, "$.name"),
        (b'{"name": "far too long"}', {}, 400, "$.name"),
        (b"", {}, 400, "name"),  # an empty body is {}
        (b"[]", {}, 400, "object"),
        (b'{"name": ', {}, 400, "not valid JSON"),
        (b'{"name": "new"}', {"Content-Type": "text/plain"}, 415, "application/json"),
        (b'{"name": "' + b"x" * 64 + b'"}', {}, 413, "64 bytes"),
    ],
)
async def test_a_bad_body_is_a_problem_naming_what_is_wrong(
    aiohttp_client: Callable[..., Any],
    app: web.Application,
    body: bytes,
    headers: dict[str, str],
    status: int,
    named: str,
) -> None:
    client: TestClient = await aiohttp_client(app)
    response = await client.post(
        f"/api/v1/things/{THING}/rename",
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )
    assert response.status == status
    problem = await response.json(content_type="application/problem+json")
    assert named in problem["detail"]
