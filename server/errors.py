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
    #: end the connection after the answer (the rest of the request is not worth reading)
    close = False

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


class RequestTimeout(Problem):
    status, code, title, close = 408, "request_timeout", "Request not received in time", True


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
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem_for(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The problem document for a failure (an HTTP exception below 400 is raised again)."""
    if isinstance(exc, Problem):
        return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.headers, exc.extra)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        code = _HTTP_CODES.get(exc.status, f"http_{exc.status}")
        headers = {
            k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")
        }
        return problem_response(exc.status, code, exc.reason, exc.reason, headers)
    # Parameters are hidden by the engine and nothing of the request is logged here.
    log.error("unhandled error on %s %s", request.method, request.rel_url.path, exc_info=exc)
    return problem_response(500, "internal", "Internal error", "The hub could not do this.")


#: handlers that answer their own failures with :func:`problem_for`: long-lived ones (the
#: WebSockets), which the middleware would otherwise hold a frame for, for each open socket
_OWN_ERRORS: set[Handler] = set()


def own_errors(handler: Handler) -> Handler:
    """Mark ``handler`` as mapping its own failures to problem documents."""
    _OWN_ERRORS.add(handler)
    return handler


@web.middleware
def error_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Map every failure to a problem document; never let a traceback reach the client.

    Not a coroutine itself: for a handler marked :func:`own_errors` it hands aiohttp the
    handler's own awaitable, so no frame of this middleware stays with the request."""
    if request.match_info.handler in _OWN_ERRORS:
        return handler(request)
    return _problems(request, handler)


async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        if problem.close:
            return await _closing(request, problem_for(request, problem))
        return problem_for(request, problem)
    except Exception as exc:
        return problem_for(request, exc)


async def _closing(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Send ``response``, then end the connection at once: aiohttp would otherwise go on
    reading (for up to its lingering time) the rest of a body not worth waiting for."""
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response
