"""Prometheus metrics (docs/operations.md): what the hub's processes count, and how the counts
of all the processes of one machine are read together.

Features report to an :class:`Observer` (``app[OBSERVER]`` in the hub, :func:`observer` in a
worker); the pure packages (``eprescribe``, ``signaling``) get one injected through their own
ports (``signaling.ports.RoomsObserver``) and never import this module. With metrics off
(``TELEPHARM_METRICS=0``) the observer does nothing.

Multiprocess mode: ``telepharm serve`` and ``telepharm worker`` call :func:`prepare_process`
before anything is counted, so each process writes its values to files of its own in the
metrics directory (``TELEPHARM_METRICS_DIR``, default ``<data dir>/metrics``) and a scrape
of any hub process reads them all. Counters of processes that ended stay (a restart does not
make a counter go back); the live gauges (sockets, connections in use) of a process that is
gone are dropped at the next scrape. The directory is emptied only when a deployment starts
afresh: by ``telepharm serve`` in the embedded mode (it is the whole deployment then), or
by ``telepharm metrics reset`` (before the units start), which refuses while a process that
wrote there still lives.
"""

from __future__ import annotations

import atexit
import functools
import os
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import Engine, event

from ..settings import Settings

#: the environment variable prometheus-client reads its multiprocess directory from
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: the prescriptions' check latency buckets (seconds): tens of milliseconds to minutes
CHECK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
#: the intake's answer latency buckets (seconds)
INTAKE_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
#: the transactions the intake labels by name; any other is counted as "other"
TRANSACTIONS = frozenset(
    {
        "NewRx",
        "CancelRx",
        "RxRenewalResponse",
        "RxChangeResponse",
        "RxFillIndicatorChange",
        "Status",
        "Error",
        "Verify",
        "unknown",  # not parsed far enough to tell
    }
)


#: the intake's answer kinds whose series are kept at hand (its labels are bounded anyway)
MAX_KEPT_SERIES = 256


class Observer:
    """What features report; this base does nothing (metrics off)."""

    def intake(self, transaction: str, outcome: str, code: str, seconds: float) -> None:
        """A SCRIPT message answered: ``outcome`` accepted, rejected (``code``: the Error's
        DescriptionCode), failed (602) or unanswered."""

    def checks(self, latencies: list[float], parked: int, seconds: float) -> None:
        """A check task ran for ``seconds``: each prescription it checked took ``latencies``
        from receipt to findings; ``parked`` could not be checked."""

    def signin(self, who: str, outcome: str) -> None:
        """A sign-in attempt of ``who`` (staff, patient) failed or was throttled."""

    def oauth_failure(self, endpoint: str) -> None:
        """A failed OAuth request (token, revocation, introspection)."""

    def signaling_message(self, kind: str, accepted: bool) -> None:
        """A consult socket's message (signaling.ports.RoomsObserver)."""

    def seated(self, role: str, change: int) -> None:
        """A consult socket took (+1) or let go (-1) of its seat."""

    def engine(self, engine: Engine, role: str) -> None:
        """A database engine of this process: its pool is watched."""


#: the observer with metrics off
UNOBSERVED = Observer()


class PrometheusObserver(Observer):
    """The metrics of one process (in its own registry; files in multiprocess mode)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._intake = Counter(
            "telepharm_intake_messages",
            "SCRIPT messages answered by the intake, by transaction, outcome and code",
            ("transaction", "outcome", "code"),
            registry=registry,
        )
        self._intake_seconds = Histogram(
            "telepharm_intake_seconds",
            "Time from a SCRIPT message's body to its answer, by outcome",
            ("outcome",),
            buckets=INTAKE_BUCKETS,
            registry=registry,
        )
        self._check_latency = Histogram(
            "telepharm_check_latency_seconds",
            "Time from a prescription's receipt to its findings",
            buckets=CHECK_BUCKETS,
            registry=registry,
        )
        self._check_task = Histogram(
            "telepharm_check_task_seconds",
            "Time one check task (a chunk of prescriptions) ran in a worker",
            buckets=CHECK_BUCKETS,
            registry=registry,
        )
        self._parked = Counter(
            "telepharm_checks_parked",
            "Prescriptions whose checks could not run (sent to the queue with CHECKS_FAILED)",
            registry=registry,
        )
        self._signin = Counter(
            "telepharm_signin_failures",
            "Refused sign-ins, by who signs in and outcome (failure, throttled)",
            ("who", "outcome"),
            registry=registry,
        )
        self._oauth = Counter(
            "telepharm_oauth_failures",
            "Failed OAuth requests, by endpoint",
            ("endpoint",),
            registry=registry,
        )
        self._signaling = Counter(
            "telepharm_signaling_messages",
            "Messages from consult sockets, by type and result (done, refused)",
            ("type", "result"),
            registry=registry,
        )
        #: the protocol's message types (decoded messages only: a bounded set), by result
        self._signaling_children: dict[tuple[str, bool], Any] = {}
        self._seats = Gauge(
            "telepharm_consult_sockets",
            "Consult sockets holding their seat, by role",
            ("role",),
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._in_use = Gauge(
            "telepharm_db_connections_in_use",
            "Database connections checked out of the pools, by process role",
            ("role",),
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._pool_size = Gauge(
            "telepharm_db_pool_size",
            "Connections the pools keep open (overflow aside), by process role",
            ("role",),
            multiprocess_mode="livesum",
            registry=registry,
        )
        #: the series of each kind of answer, made once: a label lookup costs more than the count
        self._intake_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def intake(self, transaction: str, outcome: str, code: str, seconds: float) -> None:
        key = (transaction, outcome, code)
        series = self._intake_series.get(key)
        if series is None:
            named = transaction if transaction in TRANSACTIONS else "other"
            series = (
                self._intake.labels(named, outcome, code),
                self._intake_seconds.labels(outcome),
            )
            if len(self._intake_series) < MAX_KEPT_SERIES:  # unknown transactions: not kept
                self._intake_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def checks(self, latencies: list[float], parked: int, seconds: float) -> None:
        for latency in latencies:
            self._check_latency.observe(latency)
        if parked:
            self._parked.inc(parked)
        self._check_task.observe(seconds)

    def signin(self, who: str, outcome: str) -> None:
        self._signin.labels(who, outcome).inc()

    def oauth_failure(self, endpoint: str) -> None:
        self._oauth.labels(endpoint).inc()

    def signaling_message(self, kind: str, accepted: bool) -> None:
        # thousands a second with many consults open: the labelled child is looked up once
        child = self._signaling_children.get((kind, accepted))
        if child is None:
            child = self._signaling.labels(kind, "done" if accepted else "refused")
            self._signaling_children[kind, accepted] = child
        child.inc()

    def seated(self, role: str, change: int) -> None:
        self._seats.labels(role).inc(change)

    def engine(self, engine: Engine, role: str) -> None:
        in_use = self._in_use.labels(role)
        size = getattr(engine.pool, "size", None)
        if callable(size):
            pool_size, kept = self._pool_size.labels(role), size()
            pool_size.inc(kept)
            event.listen(engine, "engine_disposed", lambda *_: pool_size.dec(kept))
        event.listen(engine, "checkout", lambda *_: in_use.inc())
        event.listen(engine, "checkin", lambda *_: in_use.dec())


@functools.cache
def process_metrics() -> PrometheusObserver:
    """The metrics of this process, made at first use."""
    return PrometheusObserver()


def observer(settings: Settings) -> Observer:
    """This process's observer: one set of metrics a process, whatever reads them."""
    return process_metrics() if settings.metrics else UNOBSERVED


def prepare_process(settings: Settings, *, fresh: bool = False) -> None:
    """Multiprocess mode for this process (and the processes it starts), before anything is
    counted; ``fresh``: this process starts the whole deployment, so the values of an earlier
    one are removed first (unless a process that wrote them still lives)."""
    if not settings.metrics:
        return
    directory = settings.metrics_path.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if fresh:
        reset(directory, quiet=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # read the directory from now on
    atexit.register(_exiting, os.getpid())


def _exiting(pid: int) -> None:
    if os.getpid() == pid:  # not a forked child that inherited the hook
        mark_dead(pid)


def multiprocess_dir() -> Path | None:
    """The multiprocess directory of this process, if it runs in that mode."""
    path = os.environ.get(MULTIPROC_ENV)
    return Path(path) if path else None


def mark_dead(pid: int) -> None:
    """Drop the live gauges of process ``pid`` (its counters stay)."""
    directory = multiprocess_dir()
    if directory is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))


def writers(directory: Path) -> set[int]:
    """The processes whose files are in ``directory``."""
    pids = set()
    for path in directory.glob("*.db"):
        _, _, pid = path.stem.rpartition("_")
        if pid.isdigit():
            pids.add(int(pid))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it lives
        return True
    return True


def sweep_dead(directory: Path) -> None:
    """Mark dead every process with files here that no longer runs (killed ones too)."""
    from prometheus_client import multiprocess

    for pid in writers(directory):
        if pid != os.getpid() and not alive(pid):
            multiprocess.mark_process_dead(pid, str(directory))


class StillWriting(Exception):
    """A process that writes to the metrics directory still runs."""


def reset(directory: Path, *, quiet: bool = False) -> int:
    """Remove the values of an earlier deployment; refused (``StillWriting``, or nothing
    done when ``quiet``) while any process that wrote them lives. Returns the files removed."""
    living = sorted(pid for pid in writers(directory) if pid != os.getpid() and alive(pid))
    if living:
        if quiet:
            return 0
        raise StillWriting(f"process {living[0]} still writes to {directory}")
    removed = 0
    for path in directory.glob("*.db"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


#: the observer features report to
OBSERVER: web.AppKey[Observer] = web.AppKey("observer", Observer)
