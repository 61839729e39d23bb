"""A real coturn on 127.0.0.1 with ``use-auth-secret``, as production runs it, for tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port


@dataclass(frozen=True)
class Turn:
    url: str
    secret: str
    log: Path


def available() -> bool:
    return shutil.which("turnserver") is not None


def _listening(log: Path, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.exists() and b"listener opened on" in log.read_bytes():
            return
        time.sleep(0.1)
    raise AssertionError(f"coturn did not start: {log.read_text(errors='replace')[-2000:]}")


@contextmanager
def coturn(workdir: Path, secret: str) -> Iterator[Turn]:
    """coturn relaying on loopback (no config file read: ``-n``), until the block ends."""
    port = free_port()
    log = workdir / "turn.log"
    args = [
        "turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
        f"--listening-port={port}", "--allow-loopback-peers", "--use-auth-secret",
        f"--static-auth-secret={secret}", "--realm=telepharm.test", "--no-tls", "--no-dtls",
        "--no-cli", "--fingerprint", "--min-port=49160", "--max-port=49300",
        "--log-file=stdout", "--simple-log", f"--pidfile={workdir / 'turn.pid'}",
        f"--userdb={workdir / 'turndb'}", "-v",
    ]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(["stdbuf", "-oL", *args], stdout=out, stderr=subprocess.STDOUT)
    try:
        _listening(log)
        yield Turn(f"turn:127.0.0.1:{port}?transport=udp", secret, log)
    finally:
        server.terminate()
        server.wait(15)  # coturn takes a moment to let go of its port
