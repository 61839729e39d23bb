"""Structured (JSON lines) logging. Access logs carry no query strings and no bodies, so no
patient data reaches them; application code logs IDs, never names or dates of birth."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .typedefs import CLIENT_ID


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class AccessLogger(AbstractAccessLogger):
    """One JSON line per request: method, path (no query), status, duration, caller."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {
            "method": request.method,
            "path": request.rel_url.path[:200],
            "status": response.status,
            "ms": round(time * 1000, 2),
            "remote": request.remote,
            "client": request.get(CLIENT_ID),
        }
        self.logger.info("http", extra={"fields": fields})

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
