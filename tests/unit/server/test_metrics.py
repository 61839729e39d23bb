"""The metrics of several processes read together, and the directory's housekeeping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from server.metrics import StillWriting, reset, sweep_dead, writers
from server.settings import Settings, SettingsError

CHILD = """
import sys
from pathlib import Path
from server import metrics
from server.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]))
metrics.prepare_process(settings)
observer = metrics.observer(settings)
observer.intake("NewRx", "accepted", "000", 0.01)
observer.seated("patient", 1)
if sys.argv[2:] == ["killed"]:
    import os

    os._exit(0)  # as SIGKILL would end it: no atexit, nothing marked
"""


def _run_child(data_dir: Path, *how: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-c", CHILD, str(data_dir), *how]
    subprocess.run(command, env=env, check=True, timeout=60)


def _collected(directory: Path) -> str:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    return generate_latest(registry).decode()


def test_processes_are_counted_together_and_the_gone_lose_their_live_gauges(
    tmp_path: Path,
) -> None:
    _run_child(tmp_path)
    _run_child(tmp_path)
    directory = tmp_path / "metrics"
    assert len(writers(directory)) == 2
    text = _collected(directory)
    assert (
        'telepharm_intake_messages_total{code="000",outcome="accepted",transaction="NewRx"} 2.0'
        in text
    )
    # each child marked itself dead at exit: its sockets no longer count
    assert 'telepharm_consult_sockets{role="patient"} 1.0' not in text


def test_a_killed_process_loses_its_live_gauges_at_the_next_sweep(tmp_path: Path) -> None:
    _run_child(tmp_path, "killed")
    directory = tmp_path / "metrics"
    (pid,) = writers(directory)
    live = directory / f"gauge_livesum_{pid}.db"
    counter = directory / f"counter_{pid}.db"
    assert live.exists()
    assert 'telepharm_consult_sockets{role="patient"} 1.0' in _collected(directory)
    sweep_dead(directory)
    assert not live.exists()
    assert counter.exists()  # a counter stays: a restart never makes it go back


def test_reset_refuses_while_a_writer_lives(tmp_path: Path) -> None:
    living = tmp_path / f"counter_{os.getppid()}.db"  # the test runner's parent lives
    gone = tmp_path / "counter_999999999.db"
    living.write_bytes(b"")
    gone.write_bytes(b"")
    with pytest.raises(StillWriting):
        reset(tmp_path)
    assert reset(tmp_path, quiet=True) == 0
    assert living.exists()
    assert gone.exists()
    living.unlink()
    assert reset(tmp_path) == 1
    assert not gone.exists()


def test_metrics_settings() -> None:
    env = {"TELEPHARM_METRICS_PORT": "9464", "TELEPHARM_TRACING": "otlp"}
    settings = Settings.from_env(env)
    assert (settings.metrics_port, settings.metrics_host, settings.tracing) == (
        9464,
        "127.0.0.1",
        "otlp",
    )
    assert settings.metrics_path == Path("var/metrics")
    assert not Settings.from_env({"TELEPHARM_METRICS": "0"}).metrics
    with pytest.raises(SettingsError, match="TELEPHARM_METRICS_TOKEN"):
        Settings(metrics_token="short")
    with pytest.raises(SettingsError, match="off loopback needs"):
        Settings(metrics_host="0.0.0.0", metrics_port=9464)  # noqa: S104
    Settings(metrics_host="0.0.0.0", metrics_port=9464, metrics_token="t" * 32)  # noqa: S104
    with pytest.raises(SettingsError, match="TELEPHARM_TRACING"):
        Settings(tracing="jaeger")
    with pytest.raises(SettingsError, match="TELEPHARM_OTLP_ENDPOINT"):
        Settings(otlp_endpoint="collector:4318")
