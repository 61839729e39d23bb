"""Fetching CRLs over HTTP from a real local server: the bytes, or why not."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eprescribe.epcs import CrlUnavailable
from server.prescriptions import receipt
from server.prescriptions.receipt import HttpCrlFetcher

CRL = b"0\x82synthetic crl bytes"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/moved.crl", "/to-ftp.crl"):
            self.send_response(302)
            target = "/ok.crl" if self.path == "/moved.crl" else "ftp://127.0.0.1/ok.crl"
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/ok.crl":
            body = CRL
        elif self.path == "/big.crl":
            body = b"x" * 2048
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetches_the_bytes(base: str) -> None:
    assert HttpCrlFetcher(5).fetch(f"{base}/ok.crl") == CRL
    assert HttpCrlFetcher(5).fetch(f"{base}/moved.crl") == CRL  # redirects within http(s)


def test_says_why_not(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fetcher = HttpCrlFetcher(5)
    with pytest.raises(CrlUnavailable, match="HTTP 404"):
        fetcher.fetch(f"{base}/missing.crl")
    with pytest.raises(CrlUnavailable, match="redirected away from http"):
        fetcher.fetch(f"{base}/to-ftp.crl")
    with pytest.raises(CrlUnavailable, match="only http and https"):
        fetcher.fetch("ldap://directory.test.invalid/cn=crl")
    with pytest.raises(CrlUnavailable, match="unreachable"):
        fetcher.fetch("http://127.0.0.1:9/none.crl")
    monkeypatch.setattr(receipt, "CRL_MAX_BYTES", 1024)
    with pytest.raises(CrlUnavailable, match="larger"):
        fetcher.fetch(f"{base}/big.crl")
