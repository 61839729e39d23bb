"""The fault proxy itself, against a local echo server: what each fault looks like to the two
sides. The scenarios' verdicts are only as good as these."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from .proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    closed: threading.Event

    def handle(self) -> None:
        try:
            while data := self.request.recv(1024):
                self.request.sendall(data)
        except ConnectionResetError:
            pass  # a reset is as good an end as a clean close here
        finally:
            _Echo.closed.set()


@pytest.fixture
def echo() -> Iterator[int]:
    _Echo.closed = threading.Event()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), 2)
    sock.settimeout(2)
    return sock


def _echoes(sock: socket.socket) -> bool:
    sock.sendall(b"ping")
    return sock.recv(16) == b"ping"


def test_cut_resets_open_connections_and_refuses_new_ones(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy, _connect(proxy.port) as open_one:
        assert _echoes(open_one)
        proxy.cut()
        with pytest.raises((ConnectionResetError, BrokenPipeError)):  # not a clean end
            _echoes(open_one)
        with pytest.raises(ConnectionRefusedError):
            _connect(proxy.port)
        proxy.restore()
        with _connect(proxy.port) as new_one:
            assert _echoes(new_one)


def test_stall_holds_every_byte_until_restore(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy, _connect(proxy.port) as open_one:
        assert _echoes(open_one)
        proxy.stall()
        open_one.sendall(b"held")
        with _connect(proxy.port) as new_one:  # accepted, but nothing moves
            new_one.sendall(b"also")
            open_one.settimeout(0.3)
            with pytest.raises(TimeoutError):
                open_one.recv(16)
            proxy.restore()
            open_one.settimeout(2)
            assert open_one.recv(16) == b"held"
            assert new_one.recv(16) == b"also"


def test_a_client_that_dies_is_seen_by_the_server_at_once(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        client = _connect(proxy.port)
        assert _echoes(client)
        client.sendall(b"unread answer")  # its unread echo makes the kernel's close a reset
        time.sleep(0.1)
        client.close()
        assert _Echo.closed.wait(2), "the server still holds a dead client's connection"


def test_flap_leaves_the_proxy_forwarding(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        proxy.flap(times=3, period=0.1)
        with _connect(proxy.port) as sock:
            assert _echoes(sock)
