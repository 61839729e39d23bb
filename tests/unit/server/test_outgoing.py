"""Requests to other systems honour the environment's proxy, send the answer back as sent, and
follow no redirect."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from server.outgoing import Outgoing


class Recorder(BaseHTTPRequestHandler):
    """Answers every POST with a gzipped body (whatever was asked) and notes the request
    line: a proxy sees the absolute URL."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.seen.append(self.requestline)
        body = gzip.compress(b"<Status/>" * 1000)
        self.send_response(302 if self.path.endswith("/moved") else 200)
        self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_environments_proxy_carries_the_request(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", server)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    outgoing = Outgoing(timeout=5.0, maxsize=1)
    try:
        response = outgoing.post("http://ehr.invalid/script", b"<Message/>", {})
        response.read()
        response.release_conn()
    finally:
        outgoing.clear()
    assert response.status == 200
    assert Recorder.seen == ["POST http://ehr.invalid/script HTTP/1.1"]


def test_no_proxy_goes_direct(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    outgoing = Outgoing(timeout=5.0, maxsize=1)
    try:
        response = outgoing.post(f"{server}/script", b"<Message/>", {})
        response.read()
        response.release_conn()
    finally:
        outgoing.clear()
    assert response.status == 200
    assert Recorder.seen == ["POST /script HTTP/1.1"]


def test_an_answer_is_read_as_sent_and_a_redirect_is_an_answer(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    outgoing = Outgoing(timeout=5.0, maxsize=1)
    try:
        response = outgoing.post(f"{server}/script", b"<Message/>", {})
        compressed = response.read(100_000)
        response.release_conn()
        moved = outgoing.post(f"{server}/moved", b"<Message/>", {})
        moved.read()
        moved.release_conn()
    finally:
        outgoing.clear()
    # the bytes on the wire, never inflated (9,000 bytes of XML in a few dozen)
    assert compressed[:2] == b"\x1f\x8b"
    assert len(compressed) < 200
    assert moved.status == 302
    assert len(Recorder.seen) == 2
