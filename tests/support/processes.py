"""Hub and worker processes for tests that need a real `telepharm serve` or `telepharm worker`
beside the app in the test, and what tests look at in /proc to see which processes live."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from server.settings import Settings


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


def telepharm_env(settings: Settings) -> dict[str, str]:
    """The environment of a `telepharm` process on ``settings``' database, data dir, broker
    and issuer (so the tokens of the app in the test are good there too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env.update(
        TELEPHARM_DATABASE_URL=settings.database_url,
        TELEPHARM_DATA_DIR=str(settings.data_dir),
        TELEPHARM_BROKER_URL=settings.broker,
        TELEPHARM_ISSUER=settings.issuer,
        TELEPHARM_LOG_LEVEL="WARNING",
    )
    return env


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """`telepharm worker` (one check at a time) on ``settings``."""
    return subprocess.Popen(
        [sys.executable, "-m", "server", "worker", "--concurrency", "1"],
        env=telepharm_env(settings),
    )


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _stat(int(entry.name))[1:2] == [str(pid)]:
            found.append(int(entry.name))
    return [child for child in found if running(child)]


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that runs (a zombie, dead but not reaped, does not)."""
    state = _stat(pid)[:1]
    return bool(state) and state != ["Z"]


def _stat(pid: int) -> list[str]:
    """State and parent of ``pid`` from /proc (empty when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()[:2]  # after "pid (command)"


@contextmanager
def serving(
    env: dict[str, str], port: int, log: Path, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
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
            yield hub
        finally:
            hub.terminate()
            hub.wait(15)
