"""The fault proxy, against a local echo server: what each fault looks like to the two sides.
The fault tests' verdicts are only as good as these."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.faultproxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    closed: threading.Event

    def handle(self) -> None:
        try:
            # a reset is as good an end as a clean close here
            with contextlib.suppress(ConnectionResetError):
                while data := self.request.recv(1024):
                    self.request.sendall(data)
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


@pytest.fixture
def proxy(echo: int) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo) as proxy:
        yield proxy


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), 2)
    sock.settimeout(2)
    return sock


def _echoes(sock: socket.socket, data: bytes = b"ping") -> bool:
    sock.sendall(data)
    return sock.recv(16) == data


def _is_reset(sock: socket.socket) -> bool:
    try:
        _echoes(sock)
    except (ConnectionResetError, BrokenPipeError):  # RST, not an orderly close
        return True
    return False


def test_cut_resets_open_connections_and_refuses_new_ones(proxy: FaultProxy) -> None:
    with _connect(proxy.port) as open_one:
        assert _echoes(open_one)
        assert proxy.connections == 1
        proxy.cut()
        assert _is_reset(open_one)
        assert proxy.connections == 0
        with pytest.raises(ConnectionRefusedError):
            _connect(proxy.port)
        proxy.restore()
        with _connect(proxy.port) as new_one:
            assert _echoes(new_one)


@pytest.mark.parametrize("end", ["restore", "resume"])
def test_stall_holds_every_byte_until_it_ends(proxy: FaultProxy, end: str) -> None:
    with _connect(proxy.port) as open_one:
        assert _echoes(open_one)
        proxy.stall()
        open_one.sendall(b"held")
        with _connect(proxy.port) as new_one:  # accepted, but nothing moves
            new_one.sendall(b"also")
            open_one.settimeout(0.3)
            with pytest.raises(TimeoutError):
                open_one.recv(16)
            getattr(proxy, end)()
            open_one.settimeout(2)
            assert open_one.recv(16) == b"held"
            assert new_one.recv(16) == b"also"


def test_a_client_that_dies_is_seen_by_the_server_at_once(proxy: FaultProxy) -> None:
    client = _connect(proxy.port)
    assert _echoes(client)
    client.sendall(b"unread answer")  # its unread echo makes the kernel's close a reset
    time.sleep(0.1)
    client.close()
    assert _Echo.closed.wait(2), "the server still holds a dead client's connection"


def test_flap_leaves_the_proxy_forwarding(proxy: FaultProxy) -> None:
    proxy.flap(times=3, period=0.1)
    with _connect(proxy.port) as sock:
        assert _echoes(sock)


def test_a_dropped_answer_was_received_by_the_server(proxy: FaultProxy) -> None:
    with _connect(proxy.port) as sock:
        assert _echoes(sock)
        proxy.drop_next_answer()
        sock.sendall(b"lost")
        with pytest.raises(ConnectionResetError):
            sock.recv(16)
    assert _Echo.closed.wait(2)  # the server's side was reset too, after it had answered
    assert proxy.answers_dropped == 1
    with _connect(proxy.port) as sock:  # only the one answer
        assert _echoes(sock)


def test_cut_latest_resets_only_the_newest_of_its_kind(proxy: FaultProxy) -> None:
    with (
        _connect(proxy.port) as older,
        _connect(proxy.port) as newer,
        _connect(proxy.port) as other,
    ):
        assert _echoes(older, b"GET /ws/a")
        assert _echoes(newer, b"GET /ws/b")
        assert _echoes(other, b"GET /")
        proxy.cut_latest(b"GET /ws/")
        assert _is_reset(newer)
        assert _echoes(older)
        assert _echoes(other)
