"""Errors the HTTP layer turns into ``application/problem+json`` (RFC 9457), in one place."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://telepharm.invalid/problems/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(Exception):
    """An API error with a stable ``code``; subclasses fix status and code."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})
        #: extension members of the problem document (RFC 9457 §3.2), e.g. finding codes
        self.extra = dict(extra or {})


class BadRequest(Problem):
    pass


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, code, title = 404, "not_found", "Not found"


class Conflict(Problem):
    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(Problem):
    """Well-formed, but the domain refuses it (e.g. approval with hard stops); ``code`` varies."""

    status, code, title = 422, "unprocessable", "Cannot do this"

    def __init__(self, code: str, detail: str, *, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail, extra=extra)
        self.code = code


class PayloadTooLarge(Problem):
    status, code, title = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(Problem):
    status, code, title = 415, "unsupported_media_type", "Unsupported content type"


class ServiceUnavailable(Problem):
    status, code, title = 503, "unavailable", "Service unavailable"


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        **(extra or {}),
        "type": PROBLEM_TYPE + code,
        "code": code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/problem+json",
        headers=headers,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to a problem document; never let a traceback reach the client."""
    try:
        return await handler(request)
    except Problem as exc:
        return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.headers, exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, f"http_{exc.status}")
        headers = {
            k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")
        }
        return problem_response(exc.status, code, exc.reason, exc.reason, headers)
    except Exception:
        # Parameters are hidden by the engine and nothing of the request is logged here.
        log.exception("unhandled error on %s %s", request.method, request.rel_url.path)
        return problem_response(500, "internal", "Internal error", "The hub could not do this.")
