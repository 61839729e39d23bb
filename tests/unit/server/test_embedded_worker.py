"""The embedded worker's own watch on its hub, for where the parent-death signal is missed
(the end-to-end case, with the signal, is in tests/functional/test_embedded_worker.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.support.processes import running

#: a process that only watches its parent, as the embedded worker's thread does
WATCHER = "import sys; from server.worker.embedded import _watch; _watch(int(sys.argv[1]))"
#: its parent: starts it, says its pid, waits to be killed
PARENT = (
    "import os, subprocess, sys, time;"
    f"child = subprocess.Popen([sys.executable, '-c', {WATCHER!r}, str(os.getpid())]);"
    "print(child.pid, flush=True); time.sleep(60)"
)


def test_a_worker_whose_hub_is_gone_stops_without_the_signal() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    watcher = int(parent.stdout.readline())
    try:
        time.sleep(0.5)
        assert running(watcher)  # its parent is there: it stays
        parent.kill()
        parent.wait(5)
        deadline = time.monotonic() + 5
        while running(watcher):
            assert time.monotonic() < deadline, "the watcher outlived its parent"
            time.sleep(0.1)
    finally:
        if running(watcher):
            os.kill(watcher, signal.SIGKILL)
        parent.stdout.close()
