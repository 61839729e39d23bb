"""HTTP requests the hub makes to other systems from a worker (a prescriber system's endpoint,
an SMS provider): blocking, pooled, never retried nor redirected on their own.

What every caller gets, so that none has to remember it:

- connections kept open between requests, up to ``maxsize`` a host, for up to
  :data:`HOSTS` hosts;
- the proxy the environment names (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), as
  ``urllib`` honours them: a site whose traffic out goes through a proxy needs nothing else;
- no retry of its own (a failed attempt is the caller's outbox's to try again, with its
  backoff) and no redirect followed (a POST would come back as a GET without its body: a 3xx
  is an answer like any other);
- the answer's body as sent: never decompressed (an answer's size is bounded by the bytes
  read; a small compressed body must not become a large one in memory);
- ``timeout`` to connect, and again between bytes of the answer.

Made once per process (after a fork: a pool's sockets must not be shared between processes).
"""

from __future__ import annotations

import threading
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import urllib3

#: hosts whose connections are kept at once (beyond that the least recently used pool goes)
HOSTS = 100


class Outgoing:
    """A pool of connections to other systems (see the module's docstring)."""

    def __init__(self, timeout: float, maxsize: int) -> None:
        self._options: dict[str, Any] = {
            "num_pools": HOSTS,
            "maxsize": maxsize,
            "retries": False,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        }
        self._direct = urllib3.PoolManager(**self._options)
        self._proxies = urllib.request.getproxies()
        self._via: dict[str, urllib3.ProxyManager] = {}
        self._lock = threading.Lock()

    def post(
        self, url: str, body: bytes | str, headers: dict[str, str]
    ) -> urllib3.BaseHTTPResponse:
        """POST ``body`` to ``url``; the response unread (``read`` it within a bound, then
        ``release_conn`` it, or ``close`` it when the rest is left unread)."""
        return self._manager(url).request(
            "POST",
            url,
            body=body,
            headers=headers,
            redirect=False,
            preload_content=False,
            decode_content=False,
        )

    def clear(self) -> None:
        """Close every connection kept open."""
        self._direct.clear()
        with self._lock:
            for manager in self._via.values():
                manager.clear()

    def _manager(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme)
        if not proxy or urllib.request.proxy_bypass(parts.netloc):
            return self._direct
        with self._lock:
            manager = self._via.get(proxy)
            if manager is None:
                manager = self._via[proxy] = urllib3.ProxyManager(proxy, **self._options)
            return manager
