"""OpenAPI 3.1 description of ``/api/v1``, generated from the routes and their handlers.

Each handler declares its contract with :func:`operation` next to its code (summary, scope,
parameters, body and response types); :func:`document` walks the router, so a route
without a declaration, or a declaration without a route, cannot go unnoticed (a test checks
that every ``/api/v1`` route is described).

Request and response bodies are msgspec types, declared once: the same class validates what
arrives (:func:`server.http.read_json_as`), encodes what leaves (:func:`server.http.respond`)
and is described here (its JSON Schema, generated when the document is built). They are the
API's own types, not the storage rows: a handler builds the response type from what it read,
so a column added to a table reaches the API only when a type names it. A request type
derives from :class:`Body` (unknown members refused, so a misspelt field is a 400, not
ignored); timestamps are :data:`Timestamp` (the ISO 8601 text the hub has always sent).
For example::

    class Rename(Body, frozen=True):  # frozen again, for mypy's sake
        name: Annotated[str, msgspec.Meta(max_length=80, description="the new name")]

    class Renamed(msgspec.Struct, frozen=True, kw_only=True):
        id: uuid.UUID
        name: str
        renamed_at: Timestamp

    @operation(Operation(operation_id="renameThing", summary="Rename a thing", scope="things",
                         parameters=[path("id", "the thing")], body=Rename, response=Renamed))
    async def rename(request: web.Request) -> web.Response:
        change = await read_json_as(request, Rename, 4096)  # 415, 413 or 400 naming the field
        ...
        return respond(Renamed(id=row.id, name=row.name, renamed_at=row.at.isoformat()))

The top-level schema of a body or response is written into its operation; the types they
nest are shared under ``components/schemas`` by class name (so two API types may not share a
name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web

from .auth.clients import SCOPES, USER_SCOPES
from .settings import SETTINGS, Settings

PREFIX = "/api/v1"
F = TypeVar("F", bound=Callable[..., Any])

#: the scopes a signed-in user's token may carry for this API (the hub's own list, so an
#: operation's scope cannot be missing here; openid is for sign-in, not the API)
_API_SCOPES = {name: text for name, text in USER_SCOPES.items() if name != "openid"}
PROBLEM = {"$ref": "#/components/schemas/Problem"}
_ERRORS = {
    "400": "The request is malformed (a parameter or the body)",
    "401": "No valid access token, or the sign-in has ended",
    "403": "The token's scope or the user's role does not allow this",
    "404": "No such resource in the caller's pharmacy",
    "409": "The resource's state does not allow this now",
    "413": "The body is too large",
    "415": "The body is not JSON",
    "422": "The rules refuse this (the problem's code and codes say why)",
    "429": "Too many attempts: wait Retry-After seconds",
    "503": "A service the hub depends on (the payment provider) is not set up or did not answer",
}


#: a point in time in a response, as the ISO 8601 text of ``datetime.isoformat()`` (kept as
#: text: msgspec would write UTC as ``Z``, where the API has always written ``+00:00``)
Timestamp = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]


class Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request body: what a client sends, unknown members refused (400)."""


@dataclass(frozen=True, slots=True)
class Operation:
    operation_id: str
    summary: str
    #: the OAuth scope it needs; None for the one public operation (the invite is its credential)
    scope: str | None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    #: the request body: a msgspec type (a :class:`Body`, possibly ``Annotated`` with a
    #: ``msgspec.Meta`` for what the type cannot say, e.g. ``minProperties``)
    body: object = None
    #: the 200 response's body: a msgspec type (usually a ``msgspec.Struct``)
    response: object = None
    errors: tuple[str, ...] = ("400", "401", "403")
    description: str = ""
    #: OpenAPI links from the 200 response: name -> (operationId, {parameter: expression})
    links: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    #: the 200 response's media type; other than JSON it is described as bytes (a PDF)
    media_type: str = "application/json"


def operation(op: Operation) -> Callable[[F], F]:
    def attach(handler: F) -> F:
        handler.__openapi__ = op  # type: ignore[attr-defined]
        return handler

    return attach


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
        "description": description,
    }


def document(app: web.Application) -> dict[str, Any]:
    described: list[tuple[str, str, Operation]] = []
    for route in app.router.routes():
        resource = route.resource
        op: Operation | None = getattr(route.handler, "__openapi__", None)
        if resource is None or op is None or not resource.canonical.startswith(PREFIX):
            continue
        if route.method == "HEAD":  # aiohttp's implicit twin of each GET
            continue
        described.append((resource.canonical, route.method.lower(), op))
    schemas = _Schemas([op for _, _, op in described])
    paths: dict[str, dict[str, Any]] = {}
    for canonical, method, op in described:
        paths.setdefault(canonical, {})[method] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Telepharmacy hub API",
            "version": "1",
            "description": (
                "Prescriptions and their verification, staff, and video consults with "
                "patients. Every call but the invite check needs a bearer access token "
                "(RFC 9068) from the hub's /oauth/token; callers see only their own pharmacy. "
                "Errors are application/problem+json (RFC 9457) with a stable code."
            ),
        },
        "servers": [{"url": app[SETTINGS].issuer}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": "/oauth/authorize",
                            "tokenUrl": "/oauth/token",
                            "refreshUrl": "/oauth/token",
                            "scopes": _API_SCOPES,
                        },
                        "clientCredentials": {
                            "tokenUrl": "/oauth/token",
                            "scopes": {
                                name: text for name, text in SCOPES.items() if name in _API_SCOPES
                            },
                        },
                    },
                }
            },
            "schemas": {
                **schemas.shared(),
                "Problem": {
                    "type": "object",
                    "required": ["type", "code", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "code": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "codes": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }


_REF = "#/components/schemas/"


class _Schemas:
    """The JSON Schemas of the operations' types, generated together (msgspec names each
    struct once): a body's or response's own schema inline, the types they nest shared."""

    def __init__(self, operations: list[Operation]) -> None:
        types = {id(t): t for op in operations for t in (op.body, op.response) if t is not None}
        found, self._components = msgspec.json.schema_components(
            types.values(), ref_template=_REF + "{name}"
        )
        self._inline = {
            key: self._inlined(schema) for key, schema in zip(types, found, strict=True)
        }

    def _inlined(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if ref is None:
            return schema
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        return {**self._components[ref.removeprefix(_REF)], **rest}

    def of(self, declared: object) -> dict[str, Any] | None:
        """The schema of a declared body or response."""
        if declared is None:
            return None
        return self._inline[id(declared)]

    def shared(self) -> dict[str, Any]:
        """The components that the inline schemas refer to, and those they refer to."""
        needed: set[str] = set()
        todo = list(_refs(list(self._inline.values())))
        while todo:
            name = todo.pop()
            if name not in needed:
                needed.add(name)
                todo.extend(_refs(self._components[name]))
        return {name: self._components[name] for name in sorted(needed)}


def _refs(schema: object) -> Iterator[str]:
    """The component names ``schema`` refers to, wherever they are nested."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            yield ref.removeprefix(_REF)
        schema = list(schema.values())
    if isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


def _operation(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {
                op.media_type: {"schema": schemas.of(op.response) or {"type": "object"}}
                if op.media_type == "application/json"
                else {"schema": {"type": "string", "format": "binary"}}
            },
        }
    }
    if op.links:
        responses["200"]["links"] = {
            name: {"operationId": target, "parameters": parameters}
            for name, (target, parameters) in op.links.items()
        }
    for status in op.errors:
        responses[status] = {
            "description": _ERRORS[status],
            "content": {"application/problem+json": {"schema": PROBLEM}},
        }
    result: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [{"oauth2": [op.scope]}] if op.scope else [],
        "parameters": op.parameters,
        "responses": responses,
    }
    if op.description:
        result["description"] = op.description
    if op.body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.of(op.body)}},
        }
    return result


async def openapi(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``"""
    return web.json_response(document(request.app))


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get(f"{PREFIX}/openapi.json", openapi)
