"""Fill image uploads (issue 16): 20 concurrent technicians uploading 1-3 MB photos.

`python -m tests.benchmarks.uploads` (PostgreSQL and Redis on 127.0.0.1, as intake.py; a
minute or two). It makes BENCH_PHOTOS (12) photo-like JPEGs of 1-3 MB once (12 MP and 8 MP
frames of gradients, shapes and sensor noise, some with an EXIF orientation), then, in one
run, the same load against:
1. **bare**: a bare aiohttp handler in its own process that reads the body with the same
   bound (8 MiB) and answers 201: the floor;
2. **target**, by BENCH_TARGET:
   - ``hub`` (the default): the hub's endpoint, ``POST /api/v1/fills/{id}/images?kind=``, on a
     hub process of its own (``fill_hub.py``: a fresh database, BENCH_UPLOADERS fills in
     ``filling``, a technician signed in); upload n goes to fill n mod the fills, its kind
     stock bottle, counted, vial label in turn (a fill's later photos are retakes);
   - ``pieces``: this module's own minimal app in its own process, the hub's pieces and
     nothing else: ``read_upload`` → ``prepare_in_thread`` → ``ImageVault.put`` → 201 (no
     database, no audit; no services needed);
   - or any endpoint given by BENCH_TARGET_URL (``{n}`` in it is replaced by the upload's
     number), with BENCH_TARGET_TOKEN as a bearer token and BENCH_TARGET_PID the process whose
     memory is sampled (none: memory is not reported).

The load: BENCH_UPLOADERS (20) technicians, each uploading one photo after another for
BENCH_SECONDS (30), waiting a random 0.5-1.5 x BENCH_THINK (1.0 s) between them (and 0-1 x
before the first, so that they do not all start at the same instant); each body is
sent at BENCH_UPLINK_MBIT (20) Mbit/s per technician, a remote site's uplink (0: as fast as
loopback goes, the hub's work alone against reading the bytes). BENCH_UPLOAD_AS ``raw``
(``Content-Type: image/jpeg``, the default) or ``form`` (multipart, one ``image`` part).
Latency is from the request's start to its answer. The target process's RSS (psutil if it is
installed, else ``VmRSS``) is read before the load (after a warm-up of a few uploads), every
50 ms during it, and BENCH_SETTLE (5) seconds after it.

Target: upload p95 within 2x the bare handler's in the same run; RSS growth under 200 MB
during the run and back afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.benchmarks.intake import cpu_seconds
from tests.support.processes import free_port, wait_port

LIMIT = 8 * 1024 * 1024
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
UPLOADERS = int(os.environ.get("BENCH_UPLOADERS", "20"))
THINK = float(os.environ.get("BENCH_THINK", "1.0"))
UPLINK_MBIT = float(os.environ.get("BENCH_UPLINK_MBIT", "20"))
PHOTOS = int(os.environ.get("BENCH_PHOTOS", "12"))
SETTLE = float(os.environ.get("BENCH_SETTLE", "5"))
UPLOAD_AS = os.environ.get("BENCH_UPLOAD_AS", "raw")
TARGET_URL = os.environ.get("BENCH_TARGET_URL", "")
TARGET_TOKEN = os.environ.get("BENCH_TARGET_TOKEN", "")
TARGET_PID = int(os.environ.get("BENCH_TARGET_PID", "0"))
TARGET = os.environ.get("BENCH_TARGET", "hub")
#: the kinds of product photo the hub target cycles through
KINDS = ("stock_bottle", "counted", "vial_label")
CHUNK = 64 * 1024
BOUNDARY = "fill-image-bench-boundary"


# --- the photos ---------------------------------------------------------------------------------


def make_photos(folder: Path, count: int = PHOTOS) -> list[bytes]:
    """Photo-like JPEGs of 1-3 MB (made once, kept in ``folder``): smooth light, a few
    objects, and the sensor noise that makes a phone's photo cost what it does to encode."""
    from PIL import Image, ImageDraw, ImageFilter

    folder.mkdir(parents=True, exist_ok=True)
    photos = []
    for n in range(count):
        path = folder / f"photo-{n}.jpg"
        if not path.exists():
            rng = random.Random(n)
            size = (4000, 3000) if n % 2 == 0 else (3264, 2448)
            light = Image.linear_gradient("L").rotate(rng.uniform(0, 360)).resize(size)
            image = Image.merge("RGB", [light, light.point(lambda v: v * 0.9), light])
            draw = ImageDraw.Draw(image)
            for _ in range(12):
                x, y = rng.randrange(size[0]), rng.randrange(size[1])
                r = rng.randrange(100, 700)
                colour = tuple(rng.randrange(256) for _ in range(3))
                draw.ellipse((x - r, y - r, x + r, y + r // 2), fill=colour)
            image = image.filter(ImageFilter.GaussianBlur(3))
            noise = Image.effect_noise(size, rng.uniform(18, 30)).convert("RGB")
            image = Image.blend(image, noise, rng.uniform(0.10, 0.16))
            exif = Image.Exif()
            exif[0x0112] = 6 if n % 3 == 0 else 1
            exif[0x010F] = "BenchPhone"
            _save_within(image, path, exif)
        photos.append(path.read_bytes())
    return photos


def _save_within(image: Any, path: Path, exif: Any, low: int = 1_000_000) -> None:
    """JPEG at the highest quality from 92 down that stays within 3 MB (and above ``low``)."""
    for quality in range(92, 50, -4):
        image.save(path, "JPEG", quality=quality, exif=exif)
        size = path.stat().st_size
        if size <= 3_000_000:
            if size < low:
                raise RuntimeError(f"photo {path.name} came out at {size} bytes")
            return
    raise RuntimeError(f"photo {path.name} stays above 3 MB")


# --- the servers --------------------------------------------------------------------------------


async def bare_upload(request: web.Request) -> web.Response:
    """Read the body within the same bound, answer 201: an upload's floor."""
    length = request.content_length
    if length is not None and length > LIMIT:
        raise web.HTTPRequestEntityTooLarge(max_size=LIMIT, actual_size=length)
    size = 0
    chunks = []
    async for chunk in request.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > LIMIT:
            raise web.HTTPRequestEntityTooLarge(max_size=LIMIT, actual_size=size)
        chunks.append(chunk)
    body = b"".join(chunks)
    return web.json_response({"size": len(body)}, status=201)


def vault_app(data_dir: Path) -> web.Application:
    """The hub's pieces and nothing else: ``read_upload`` → ``prepare_in_thread`` →
    ``ImageVault.put``; no database, no audit (the fill flow adds those)."""
    from server.dispensing.images import (
        ImageLimits,
        ImageRefused,
        image_vault,
        prepare_in_thread,
    )
    from server.dispensing.uploads import read_upload, refusal_problem
    from server.errors import error_middleware
    from server.settings import SETTINGS, Settings

    settings = Settings(data_dir=data_dir)
    (data_dir / "keys").mkdir(parents=True, exist_ok=True)
    vault = image_vault(settings)
    limits = ImageLimits.of(settings)
    pharmacy = uuid.uuid4()

    async def upload(request: web.Request) -> web.Response:
        data, declared = await read_upload(request, limits.max_bytes)
        try:
            prepared = await prepare_in_thread(data, declared, limits)
        except ImageRefused as refused:
            raise refusal_problem(refused) from None
        del data
        image_id = uuid.uuid4()
        await vault.put(pharmacy, uuid.uuid4(), image_id, prepared)
        return web.json_response({"id": str(image_id), "sha256": prepared.sha256}, status=201)

    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = settings
    app.router.add_post("/upload", upload)
    return app


def serve(kind: str, port: int, data_dir: str | None = None) -> None:
    from tests.benchmarks.baseline_server import serve as run

    app = web.Application()
    if kind == "bare":
        app.router.add_post("/upload", bare_upload)
    else:
        app = vault_app(Path(data_dir or tempfile.mkdtemp(prefix="bench-images-")))
    run(app, port)


@contextmanager
def server(kind: str, work: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    args = [sys.executable, "-m", "tests.benchmarks.uploads", kind, str(port), str(work / kind)]
    with (work / f"{kind}.log").open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}/upload", proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


# --- the load -----------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    try:
        import psutil

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        pass
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    rss: list[float] = field(default_factory=list)
    bytes_sent: int = 0


def body_of(photo: bytes) -> tuple[bytes, str]:
    if UPLOAD_AS == "raw":
        return photo, "image/jpeg"
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + photo + f"\r\n--{BOUNDARY}--\r\n".encode(), (
        f"multipart/form-data; boundary={BOUNDARY}"
    )


async def paced(body: bytes, mbit: float) -> AsyncIterator[bytes]:
    """The body at ``mbit`` Mbit/s (0: at once), as a technician's uplink sends it."""
    started = time.perf_counter()
    for at in range(0, len(body), CHUNK):
        if mbit:
            due = started + at * 8 / (mbit * 1e6)
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        yield body[at : at + CHUNK]


async def load(
    url_for: Callable[[int], str],
    photos: list[bytes],
    pid: int,
    token: str = "",
    seconds: float = SECONDS,
    uploaders: int = UPLOADERS,
) -> Phase:
    phase = Phase()
    counter = iter(range(1 << 30))
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=uploaders)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def technician(seed: int) -> None:
            rng = random.Random(seed)
            # technicians do not start together: each begins somewhere in the first pause
            await asyncio.sleep(THINK * rng.uniform(0, 1))
            while time.perf_counter() < stop:
                n = next(counter)
                body, content_type = body_of(photos[n % len(photos)])
                headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                started = time.perf_counter()
                async with session.post(
                    url_for(n), data=paced(body, UPLINK_MBIT), headers=headers
                ) as response:
                    await response.read()
                phase.latencies.append(time.perf_counter() - started)
                phase.statuses[response.status] = phase.statuses.get(response.status, 0) + 1
                phase.bytes_sent += len(body)
                await asyncio.sleep(THINK * rng.uniform(0.5, 1.5))

        async def sample() -> None:
            while True:
                phase.rss.append(rss_mb(pid))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample()) if pid else None
        await asyncio.gather(*(technician(seed) for seed in range(uploaders)))
        if sampler:
            sampler.cancel()
    return phase


async def measure(
    name: str, url_for: Callable[[int], str], photos: list[bytes], pid: int, token: str = ""
) -> dict[str, Any]:
    # warm-up: a few uploads, one after another, so lazy imports and pools exist before "before"
    await load(url_for, photos[:1], 0, token, seconds=0.1, uploaders=2)
    before = rss_mb(pid) if pid else None
    cpu = cpu_seconds(pid) if pid else 0.0
    wall = time.perf_counter()
    phase = await load(url_for, photos, pid, token)
    wall = time.perf_counter() - wall
    cpu = cpu_seconds(pid) - cpu if pid else 0.0
    await asyncio.sleep(SETTLE)
    after = rss_mb(pid) if pid else None
    q = statistics.quantiles(phase.latencies, n=100)
    result: dict[str, Any] = {
        "uploads": len(phase.latencies),
        "statuses": phase.statuses,
        "MB/s": round(phase.bytes_sent / wall / 1e6, 1),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "max_ms": round(max(phase.latencies) * 1000, 1),
    }
    if before is not None and after is not None:
        result.update(
            cpu_ms_per_upload=round(cpu * 1000 / max(1, len(phase.latencies)), 1),
            cpu_share=round(cpu / wall, 2),
            rss_before_mb=round(before, 1),
            rss_peak_mb=round(max(phase.rss), 1),
            rss_growth_mb=round(max(phase.rss) - before, 1),
            rss_after_mb=round(after, 1),
            rss_left_mb=round(after - before, 1),
        )
    print(name, json.dumps(result), flush=True)
    return result


async def run(work: Path, hub: Any = None) -> dict[str, Any]:
    """``hub``: a :class:`~tests.benchmarks.fill_hub.FillHub` to load (BENCH_TARGET=hub)."""
    photos = make_photos(work / "photos")
    sizes = [len(p) / 1e6 for p in photos]
    results: dict[str, Any] = {
        "uploaders": UPLOADERS,
        "seconds": SECONDS,
        "think_s": THINK,
        "uplink_mbit": UPLINK_MBIT,
        "upload_as": UPLOAD_AS,
        "photo_mb": [round(min(sizes), 2), round(max(sizes), 2)],
    }
    with server("bare", work) as (url, pid):
        results["bare"] = await measure("bare", lambda n: url, photos, pid)
    if hub is not None:
        fills = hub.fills

        def url_for(n: int) -> str:
            kind = KINDS[(n // len(fills)) % len(KINDS)]
            return f"{hub.base}/api/v1/fills/{fills[n % len(fills)]}/images?kind={kind}"

        target = await measure("target", url_for, photos, hub.pid, hub.token)
    elif TARGET_URL:
        target = await measure(
            "target", lambda n: TARGET_URL.replace("{n}", str(n)), photos, TARGET_PID, TARGET_TOKEN
        )
    else:
        with server("vault", work) as (url, pid):
            target = await measure("target", lambda n: url, photos, pid)
    results["target"] = target
    results["p95_ratio"] = round(target["p95_ms"] / results["bare"]["p95_ms"], 2)
    return results


def _images_stored() -> int:
    from tests.benchmarks.intake import psql

    return int(psql("SELECT count(*) FROM fill_images")[0])


def main() -> None:
    if len(sys.argv) > 1:  # a server process of the benchmark
        serve(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-uploads-"))
    photos = Path(tempfile.gettempdir()) / "bench-upload-photos"
    try:
        (work / "photos").symlink_to(photos, target_is_directory=True)
        photos.mkdir(exist_ok=True)
        if TARGET == "hub" and not TARGET_URL:
            from tests.benchmarks.fill_hub import fill_hub

            with fill_hub(work, UPLOADERS, "filling") as hub:
                results = asyncio.run(run(work, hub))
                results["images_stored"] = _images_stored()
        else:
            results = asyncio.run(run(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    target, bare = results["target"], results["bare"]
    print(
        f"\nupload p95: target {target['p95_ms']} ms, bare {bare['p95_ms']} ms:"
        f" {results['p95_ratio']}x (target <= 2x)"
    )
    if "rss_growth_mb" in target:
        print(
            f"target RSS {target['rss_before_mb']} MB before, peak +{target['rss_growth_mb']} MB"
            f" (target < 200), {target['rss_left_mb']:+} MB {SETTLE:.0f} s after"
        )


if __name__ == "__main__":
    main()
