"""Hub and worker processes for tests that need a real `telepharm serve` or `telepharm worker`
beside the app in the test, and what tests look at in /proc to see which processes live."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from server.settings import Settings

TELEPHARM = [sys.executable, "-m", "server"]


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


def launch(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`telepharm ARGS` with ``env``, its output to ``log`` (else to the test's own)."""
    if log is None:
        return subprocess.Popen([*TELEPHARM, *args], env=env)
    with log.open("wb") as out:
        return subprocess.Popen([*TELEPHARM, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`telepharm ARGS` with ``env``, to its end; its output captured."""
    return subprocess.run(
        [*TELEPHARM, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """`telepharm worker` (one check at a time) on ``settings``."""
    return launch(telepharm_env(settings), "worker", "--concurrency", "1")


def stop(processes: Iterable[subprocess.Popen[bytes]], grace: float = 30) -> None:
    """Stop what still runs the way an operator would (SIGTERM, the newest first); kill what
    has not exited after ``grace`` seconds (a worker's warm shutdown waits for the task in
    hand, which may wait out SQLite's busy timeout: what the test examined is done)."""
    started = list(processes)
    for process in reversed(started):
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def serving(
    env: dict[str, str], port: int, log: Path, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`telepharm serve` on 127.0.0.1:``port`` with ``env`` until the block ends."""
    hub = launch(env, "serve", "--port", str(port), *args, log=log)
    try:
        wait_port(port)
        yield hub
    finally:
        hub.terminate()
        hub.wait(15)


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    return [child for child, parent in _parents().items() if parent == pid and running(child)]


def descendants(pid: int) -> list[int]:
    """The processes below ``pid``, children first."""
    parents = _parents()
    found, frontier = [], [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found.extend(below)
        frontier = below
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that runs (a zombie, dead but not reaped, does not)."""
    state = _stat(pid)[:1]
    return bool(state) and state != ["Z"]


def tagged(entry: bytes) -> list[int]:
    """The processes whose environment holds ``entry`` (``NAME=value``)."""
    found = []
    for pid in _pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()  # empty for a zombie
        except OSError:
            continue
        if entry in environ.split(b"\0"):
            found.append(pid)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _parents() -> dict[int, int]:
    """Each process's parent, from /proc."""
    return {pid: int(stat[1]) for pid in _pids() if len(stat := _stat(pid)) == 2}


def _stat(pid: int) -> list[str]:
    """State and parent of ``pid`` from /proc (empty when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()[:2]  # after "pid (command)"
