"""Metrics of a real `telepharm serve` and its embedded worker, read together (multiprocess
mode), and a request's ID in the worker's lines."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from server.metrics import writers
from tests.functional.intake_helpers import sample_newrx
from tests.functional.test_metrics import value
from tests.support.processes import free_port, launch, run_cli, stop, wait_port
from tests.support.tokens import client_token

pytestmark = pytest.mark.slow


def _get(url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> bytes:
    request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
        return bytes(response.read())


def _checked(metrics_url: str, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = _get(metrics_url).decode()
        if value(text, "telepharm_check_latency_seconds_count") >= 1:
            return text
        time.sleep(0.5)
    raise AssertionError("the worker's check never showed in the hub's metrics")


def test_hub_and_worker_are_counted_together_and_the_request_id_reaches_the_worker(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    port, metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env.update(TELEPHARM_DATA_DIR=str(tmp_path / "var"), TELEPHARM_ISSUER=base)
    for step in ("migrate", "demo"):
        result = run_cli(env, step)
        assert result.returncode == 0, result.stderr
    clients = {
        line.split(" (")[0]: json.loads(line[line.find("{") :])
        for line in result.stdout.splitlines()
        if '{"client_id"' in line
    }
    ehr = clients["EHR client"]
    # a file of an earlier deployment, by a process long gone: the embedded mode starts afresh
    directory = tmp_path / "var" / "metrics"
    directory.mkdir(parents=True)
    (directory / "counter_999999999.db").write_bytes(b"")
    log = tmp_path / "serve.log"
    hub = launch(env, "serve", "--port", str(port), "--metrics-port", str(metrics_port), log=log)
    try:
        wait_port(port)
        wait_port(metrics_port)
        assert 999999999 not in writers(directory)
        send = client_token(base, ehr["client_id"], ehr["client_secret"], "script:send")
        headers = {
            "Authorization": f"Bearer {send}",
            "Content-Type": "application/xml",
            "X-Request-ID": "e2e-request-0001",
        }
        assert b"<Status>" in _get(f"{base}/ncpdp/script", headers, sample_newrx())
        with pytest.raises(urllib.error.HTTPError) as not_here:
            _get(f"{base}/metrics")
        assert not_here.value.code == 404
        not_here.value.close()
        text = _checked(f"http://127.0.0.1:{metrics_port}/metrics")
        accepted = {"transaction": "NewRx", "outcome": "accepted", "code": "000"}
        assert value(text, "telepharm_intake_messages_total", **accepted) == 1  # the hub's
        assert value(text, "telepharm_check_task_seconds_count") >= 1  # the worker's
        assert value(text, "telepharm_db_pool_size", role="hub") >= 1
        assert len(writers(directory)) >= 2  # two processes wrote there
    finally:
        stop([hub])
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    checked = [r for r in records if r["message"].startswith("checked prescription")]
    assert [r.get("request_id") for r in checked] == ["e2e-request-0001"]
    access = [r for r in records if r.get("path") == "/ncpdp/script"]
    assert [r["request_id"] for r in access] == ["e2e-request-0001"]
