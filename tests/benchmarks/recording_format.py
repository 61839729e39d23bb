"""The recording file format's cost (issue 13): the old chunked AES-GCM against Tink's
AES-GCM-HKDF streaming, written as the muxer writes and read back.

`python -m tests.benchmarks.recording_format` (no services; about half a minute). Each variant
runs in a fresh process: BENCH_MB (50) MB of random bytes, written in the muxer's small pieces
(BENCH_WRITE bytes, 4096 by default) into a file under a temporary directory, then read back
piece by piece, BENCH_REPEAT (5) times. It reports the medians of wall and CPU seconds for each
direction and the process's peak resident memory growth over that (which counts the C++
allocations tracemalloc cannot see), so a streaming writer shows a growth near its one segment,
not the file's size; and the resident memory that importing Tink's streaming AEAD adds.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from signaling.recording_format import LEGACY_HEADER, EncryptedWriter, identity
from signaling.recording_store import EncryptedRecordingStore
from tests.support.legacy_recording import LegacyWriter

MEGABYTES = int(os.environ.get("BENCH_MB", "50"))
WRITE = int(os.environ.get("BENCH_WRITE", "4096"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
KEY = bytes(range(32))
CONSULT = "bench"
NAME = "patient-1.webm.enc"


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def timed(step: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def open_writer(
    variant: str, root: Path, store: EncryptedRecordingStore
) -> LegacyWriter | EncryptedWriter:
    if variant == "v2":
        return store.open_writer(CONSULT, "patient")
    (root / CONSULT).mkdir()
    return LegacyWriter(root / CONSULT / NAME, KEY, identity(CONSULT, "patient", 1, LEGACY_HEADER))


def measure(variant: str) -> dict[str, object]:
    """In this process: write then read one file in ``variant`` ("v1" or "v2")."""
    root = Path(tempfile.mkdtemp(prefix="bench-recfmt-"))
    store = EncryptedRecordingStore(root, KEY)
    piece = os.urandom(WRITE)
    pieces = MEGABYTES * 1024 * 1024 // WRITE
    before = peak_kib()

    def write() -> None:
        writer = open_writer(variant, root, store)
        for _ in range(pieces):
            writer.write(piece)
        writer.close()

    def read() -> None:
        if sum(len(p) for p in store.open_reader(CONSULT, NAME)) != pieces * WRITE:
            raise AssertionError("the file did not read back whole")

    write_wall, write_cpu = timed(write)
    write_peak = peak_kib() - before
    read_wall, read_cpu = timed(read)
    size = (root / CONSULT / NAME).stat().st_size
    (root / CONSULT / NAME).unlink()
    return {
        "file_overhead_bytes": size - pieces * WRITE,
        "write_s": round(write_wall, 3),
        "write_cpu_s": round(write_cpu, 3),
        "write_mb_per_s": round(MEGABYTES / write_wall),
        "write_peak_rss_growth_kib": write_peak,
        "read_s": round(read_wall, 3),
        "read_cpu_s": round(read_cpu, 3),
        "peak_rss_growth_kib": peak_kib() - before,
    }


def main() -> None:
    if len(sys.argv) == 2:
        print(json.dumps(measure(sys.argv[1])))
        return
    results: dict[str, object] = {}
    for variant in ("v1", "v2"):
        run = [sys.executable, "-m", "tests.benchmarks.recording_format", variant]
        runs = [json.loads(subprocess.check_output(run)) for _ in range(REPEAT)]
        results[variant] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    results["tink_import_rss_kib"] = int(subprocess.check_output([sys.executable, "-c", IMPORT]))
    print(json.dumps(results, indent=2))


IMPORT = """
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
import cryptography.hazmat.primitives.ciphers.aead  # what the old format used
before = rss()
import tink.streaming_aead
print(rss() - before)
"""


if __name__ == "__main__":
    main()
