"""OpenAPI 3.1 description of ``/api/v1``, generated from the routes and their handlers.

Each handler declares its contract with :func:`operation` next to its code (summary, scope,
parameters, body and response schemas); :func:`document` walks the router, so a route
without a declaration, or a declaration without a route, cannot go unnoticed (a test checks
that every ``/api/v1`` route is described).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
}


@dataclass(frozen=True, slots=True)
class Operation:
    operation_id: str
    summary: str
    #: the OAuth scope it needs; None for the one public operation (the invite is its credential)
    scope: str | None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    errors: tuple[str, ...] = ("400", "401", "403")
    description: str = ""
    #: OpenAPI links from the 200 response: name -> (operationId, {parameter: expression})
    links: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)


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
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        resource = route.resource
        op: Operation | None = getattr(route.handler, "__openapi__", None)
        if resource is None or op is None or not resource.canonical.startswith(PREFIX):
            continue
        if route.method == "HEAD":  # aiohttp's implicit twin of each GET
            continue
        paths.setdefault(resource.canonical, {})[route.method.lower()] = _operation(op)
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
                }
            },
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": op.response or {"type": "object"}}},
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
            "content": {"application/json": {"schema": op.body}},
        }
    return result


async def openapi(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``"""
    return web.json_response(document(request.app))


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get(f"{PREFIX}/openapi.json", openapi)
