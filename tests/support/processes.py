"""Hub processes for tests that need a real `telepharm serve` beside the one in the test."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port}")


@contextmanager
def serving(env: dict[str, str], port: int, log: Path, *args: str) -> Iterator[None]:
    """`telepharm serve` on 127.0.0.1:``port`` with ``env`` until the block ends."""
    with log.open("wb") as out:
        hub = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_port(port)
            yield
        finally:
            hub.terminate()
            hub.wait(15)
