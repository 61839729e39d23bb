"""The fault proxy the fault tests rely on does what it says: forwards, cuts, stalls, restores."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.support.faultproxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), 5)
    conn.settimeout(5)
    return conn


def test_forwards_then_cuts_then_restores(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        conn = _connect(proxy.port)
        conn.sendall(b"ping")
        assert conn.recv(10) == b"ping"
        proxy.cut()
        with pytest.raises(ConnectionResetError):  # RST, not an orderly close
            conn.recv(10)
        with pytest.raises(ConnectionRefusedError):
            _connect(proxy.port)
        proxy.restore()
        again = _connect(proxy.port)
        again.sendall(b"back")
        assert again.recv(10) == b"back"
        again.close()
        conn.close()


def test_a_stall_holds_the_bytes_until_restored(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        proxy.stall()
        conn = _connect(proxy.port)  # accepted, as by a host that has gone quiet
        conn.settimeout(0.5)
        conn.sendall(b"held")
        with pytest.raises(TimeoutError):
            conn.recv(10)
        proxy.restore()
        conn.settimeout(5)
        assert conn.recv(10) == b"held"
        conn.close()
