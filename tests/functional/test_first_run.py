"""What a newcomer sees from `make run` (`migrate`, `demo`, `serve`): the demo's instructions
and the hub's own start line, then only the lines their own requests cause, while the embedded
worker checks the sample NewRx (no library's INFO lines, no Celery banner or warning about
root)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.functional.intake_helpers import sample_newrx
from tests.support.processes import free_port, launch, run_cli, stop, wait_port
from tests.support.tokens import client_token

pytestmark = pytest.mark.slow


def _clients(demo_output: str) -> dict[str, dict[str, str]]:
    """The demo clients as printed: ``label: {"client_id": ..., "client_secret": ...}``."""
    found = {}
    for line in demo_output.splitlines():
        brace = line.find('{"client_id"')
        if brace > 0:
            found[line[:brace].strip()] = json.loads(line[brace:])
    return found


def _call(url: str, token: str, body: bytes | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/xml"
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return bytes(response.read())


async def _checked(base: str, token: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listed = json.loads(await asyncio.to_thread(_call, f"{base}/api/v1/prescriptions", token))
        if [rx["state"] for rx in listed["items"]] == ["awaiting_review"]:
            return
        await asyncio.sleep(0.3)
    raise AssertionError("the embedded worker did not check the sample NewRx")


async def test_make_run_says_only_what_a_newcomer_needs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env["TELEPHARM_DATA_DIR"] = str(tmp_path / "var")
    env["TELEPHARM_ISSUER"] = base
    env["TELEPHARM_DEMO_EHR"] = "1"  # as make run sets it
    for step in ("migrate", "demo"):
        result = run_cli(env, step)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", f"{step} logged: {result.stderr[:500]}"
    clients = _clients(result.stdout)
    assert f"Demo EHR (the prescriber's side): {base}/demo/ehr\n" in result.stdout
    log = tmp_path / "serve.log"
    hub = launch(env, "serve", "--port", str(port), log=log)
    try:
        wait_port(port)
        ehr = clients["EHR client (script:send):"]
        system = clients["Pharmacy system client (rx:read):"]
        send = client_token(base, ehr["client_id"], ehr["client_secret"], "script:send")
        assert b"<Status>" in _call(f"{base}/ncpdp/script", send, sample_newrx())
        read = client_token(base, system["client_id"], system["client_secret"], "rx:read")
        await _checked(base, read)
        page = await asyncio.to_thread(_call, f"{base}/demo/ehr", read)  # (a token it ignores)
        assert b"Demo EHR: the prescriber's side" in page
        hub.send_signal(signal.SIGINT)  # as ^C in the terminal of `make run`
    finally:
        stop([hub])
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), "\n".join(lines[:20])  # no banner
    records = [json.loads(line) for line in lines]
    assert records[0]["message"].startswith(f"serving on {base}")
    # then only what the requests above caused: their access lines and the check
    assert {r["logger"] for r in records[1:]} <= {"aiohttp.access", "server.worker.checking"}
