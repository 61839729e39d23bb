"""Structured (JSON lines) logging. Access logs carry no query strings and no bodies, so no
patient data reaches them; application code logs IDs, never names or dates of birth.

Every line logged while a request is handled carries its ``request_id``: the caller's
``X-Request-ID`` when it is sane (:data:`REQUEST_ID_FORM`), else one minted here; the response
answers it in the same header, and the Celery tasks the request enqueues carry it to the
worker's lines (server.worker.observed)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import IO, Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .background import BACKGROUND
from .settings import Settings

#: the patient's consult page; the rest of its path is the invite token
INVITE_PAGE = "/consult/"
#: the header a request's ID comes in and goes back in
REQUEST_ID_HEADER = "X-Request-ID"
#: an ID the hub takes from a caller (a proxy's, an EHR's): short, and nothing a log reader or
#: a header could trip on; anything else is replaced by one of the hub's own
REQUEST_ID_FORM = re.compile(r"[A-Za-z0-9._:@-]{8,64}")
#: the ID of the request (or, in a worker, of the requests behind the task) being handled
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def sane_request_id(given: str | None) -> str | None:
    return given if given and REQUEST_ID_FORM.fullmatch(given) else None


@web.middleware
async def request_ids(request: web.Request, handler: Any) -> web.StreamResponse:
    """The request's ID, taken or minted, for its log lines and its response (first of the
    middlewares: error responses carry it too)."""
    request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or secrets.token_hex(16)
    request[REQUEST_KEY] = request_id
    token = REQUEST_ID.set(request_id)
    try:
        return await handler(request)
    finally:
        REQUEST_ID.reset(token)


async def _answer_request_id(request: web.BaseRequest, response: web.StreamResponse) -> None:
    request_id = request.get(REQUEST_KEY)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class BufferedStreamHandler(logging.StreamHandler):
    """Writes lines in blocks rather than one system call per line.

    A block goes out when it reaches ``capacity`` bytes, when ``interval`` seconds have passed,
    at once for warnings and errors, on :meth:`flush` (called every second by the running hub)
    and at exit.
    """

    def __init__(self, stream: IO[str], capacity: int = 64 * 1024, interval: float = 1.0):
        super().__init__(stream)
        self._lines: list[str] = []
        self._size = 0
        self._capacity = capacity
        self._interval = interval
        self._last = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        self._size += len(line) + 1
        urgent = record.levelno >= logging.WARNING
        if urgent or self._size >= self._capacity or time.monotonic() - self._last > self._interval:
            self.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            if self._lines:
                self.stream.write("\n".join(self._lines) + "\n")
                self._lines.clear()
                self._size = 0
            self.stream.flush()
            self._last = time.monotonic()
        finally:
            self.release()


_CHATTY = ("alembic", "celery", "kombu")


def configure(level: str, stream: IO[str] | None = None) -> None:
    handler = BufferedStreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # libraries' progress chatter (alembic's plugins and contexts, Celery's connections and
    # readiness) says nothing an operator acts on: their warnings and errors still show
    quiet = logging.DEBUG if logging.getLevelName(level) == logging.DEBUG else logging.WARNING
    for name in _CHATTY:
        logging.getLogger(name).setLevel(quiet)


def setup(app: web.Application, settings: Settings) -> None:
    """Buffered log lines are flushed by a background loop; responses answer the request ID."""
    app.cleanup_ctx.append(flush_periodically)
    app.on_response_prepare.append(_answer_request_id)


async def flush_periodically(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: push buffered log lines out at least once a second."""
    async with app[BACKGROUND].every("log_flush", 1.0, _flush_all):
        yield
    _flush_all()


def _flush_all() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def _loggable(path: str) -> str:
    """The path as logged: an invite link's token is a credential, so it is left out."""
    if path.startswith(INVITE_PAGE):
        return INVITE_PAGE + "{invite}"
    return path[:200]


class AccessLogger(AbstractAccessLogger):
    """One JSON line per request: method, path (no query), status, duration, caller."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {
            "method": request.method,
            "path": _loggable(request.rel_url.path),
            "status": response.status,
            "ms": round(time * 1000, 2),
            "remote": request.remote,
            "client": request.get(CLIENT_ID),
            "request_id": request.get(REQUEST_KEY),
        }
        # makeRecord and handle, as Logger.info does, minus its search of the stack for the
        # caller (the JSON lines carry no source location): a sixth of this line's cost
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):
            logger.handle(
                logger.makeRecord(
                    logger.name, logging.INFO, "", 0, "http", (), None, extra={"fields": fields}
                )
            )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


#: the request's ID (the access log is written after the handler, outside its context)
REQUEST_KEY: web.RequestKey[str] = web.RequestKey("request_id", str)
#: the authenticated OAuth client of a request, for the access log
CLIENT_ID: web.RequestKey[str] = web.RequestKey("client_id", str)
