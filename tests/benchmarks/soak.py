"""Soak (issue 19): the production shape under a steady load for SOAK_SECONDS (600), with a hub
process and a worker each killed once, and the promises checked at the end.

`python -m tests.benchmarks.soak` (PostgreSQL and Redis on 127.0.0.1, like the other
benchmarks). On a fresh database it starts two `telepharm serve --no-worker --reuse-port`
processes on one port with the Redis bus, two `telepharm worker` processes, signs a pharmacist
in, then at once:
- sends NewRx open loop at SOAK_RATE (200) a second for SOAK_PATIENTS (50,000) patients, the
  drugs in turn from the bundled reference's tablets that are not controlled (a patient's
  two or three scripts of the run name different drugs, as a pharmacy's intake does; with
  SOAK_PATIENTS=5000 and SOAK_DRUGS=1, the earlier runs' load: the sample's one drug, two
  dozen times for each patient, none verified); tests/faults/load.py remembers every message
  and every answer and resends the unclear ones at the end as a prescriber's system would;
- holds SOAK_CONSULTS (100) consults open, both sides pinging and the patient sending stats as
  the browsers do; a side whose socket drops (its hub killed) joins again, as the web client does;
- at 30 % of the run kills one hub process (SIGKILL) and starts it again after SOAK_RESTART (2)
  seconds, as systemd's Restart= would; at 60 % does the same to one worker;
- samples every process's memory (RSS of the process and its children: Celery's pool) every
  10 s.
At the end: every acknowledged NewRx stored exactly once, every stored prescription checked
exactly once, no unclear answer left after the resends, no HTTP 500, every dropped consult
back in its consult; and for each process, its memory over the run: the median of the last minute
over the median of the minute after its warm-up (SOAK_WARM_UP, 60 s after it started), with
the least-squares slope in MB per minute over the same span. Memory "does not grow" when that
ratio stays under SOAK_GROWTH (1.10). Prints one JSON object; exits 1 when a promise broke.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.benchmarks.consults import Client, Socket, add_patients, prepare_consult_hub
from tests.benchmarks.intake import BIN, DATABASE, PG, token_for
from tests.faults.cluster import Records, wait_for
from tests.faults.load import Load
from tests.support.processes import descendants, free_port, wait_port
from tests.support.script_samples import oral_tablets
from tests.support.signin import sign_in

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
RATE = float(os.environ.get("SOAK_RATE", "200"))
CONSULTS = int(os.environ.get("SOAK_CONSULTS", "100"))
#: the messages are for this many patients (a pharmacy's week, not one patient's 120,000)
PATIENTS = int(os.environ.get("SOAK_PATIENTS", "50000"))
#: how many different drugs the messages name (1: the sample's own)
DRUGS = int(os.environ.get("SOAK_DRUGS", "0")) or None
RESTART = float(os.environ.get("SOAK_RESTART", "2"))
WARM_UP = float(os.environ.get("SOAK_WARM_UP", "60"))
GROWTH = float(os.environ.get("SOAK_GROWTH", "1.10"))
SAMPLE_EVERY = 10.0
#: seconds after the load stops by which every stored prescription must have been checked
DRAIN = 180.0
BUS = os.environ.get("SOAK_REDIS", "redis://127.0.0.1:6379/13")
PASSWORD = "a long and private passphrase for load"
SCOPE = "openid consults"


def say(what: str) -> None:
    """Progress on stderr (the result is the JSON on stdout)."""
    print(f"{time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def drugs() -> list[str]:
    """The descriptions the load names: the bundled reference's tablets that are not
    controlled (:data:`DRUGS` of them when set; one: the sample's own, none named)."""
    return [] if DRUGS == 1 else oral_tablets(controlled=False)[:DRUGS]


def tree_rss_kb(pid: int) -> int:
    """RSS of ``pid`` and every process below it (a worker's pool), in KB."""
    total = 0
    for each in (pid, *descendants(pid)):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


@dataclass
class Role:
    """One long-lived process of the topology (restarted under the same name when killed)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    #: (seconds since the run began, RSS KB) since the current process started
    samples: list[tuple[float, int]] = field(default_factory=list)
    #: the samples of processes that were killed, kept for the report
    earlier: list[list[tuple[float, int]]] = field(default_factory=list)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "telepharm"), *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started_at = time.monotonic()

    def kill(self) -> None:
        """SIGKILL to the process and everything below it (a worker's pool), as systemd's
        default KillMode does to a unit whose main process died."""
        assert self.process is not None
        below = descendants(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self.earlier.append(self.samples)
        self.samples = []

    def sample(self, at: float) -> None:
        if self.process is not None and self.process.poll() is None:
            self.samples.append((at, tree_rss_kb(self.process.pid)))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def growth(self, t0: float) -> dict[str, Any]:
        """Memory of the current process from the end of its warm-up to the end of the run."""
        warm = self.started_at - t0 + WARM_UP
        kept = [(t, kb) for t, kb in self.samples if t >= warm]
        if len(kept) < 12:
            return {"samples": len(kept), "verdict": "too short to judge"}
        first = statistics.median(kb for t, kb in kept if t < kept[0][0] + 60)
        last = statistics.median(kb for t, kb in kept if t > kept[-1][0] - 60)
        times = [t / 60 for t, _ in kept]
        sizes = [kb / 1024 for _, kb in kept]
        slope = statistics.linear_regression(times, sizes).slope
        return {
            "after_warm_up_mb": round(first / 1024, 1),
            "at_end_mb": round(last / 1024, 1),
            "end_over_warm": round(last / first, 3),
            "slope_mb_per_min": round(slope, 3),
            "grows": last / first > GROWTH,
        }


class Consults:
    """Consults held open through the run; a dropped pair joins again."""

    def __init__(
        self, client: Client, consults: list[tuple[str, str]], sign_in: Callable[[], str]
    ) -> None:
        self.client = client
        self.consults = consults
        self.sign_in = sign_in
        self.pairs: dict[int, tuple[Socket, Socket]] = {}
        self.dropped = 0
        self.resumed = 0
        self.failed: Counter[str] = Counter()

    async def open_all(self) -> None:
        for index, (consult_id, invite) in enumerate(self.consults):
            pharmacist, patient, _ = await self.client.open_call(consult_id, invite)
            self.pairs[index] = (pharmacist, patient)

    async def keep(self, stop: asyncio.Event) -> None:
        """Pings every 10 s from both sides and stats from the patient every 5 s, spread over
        the consults; a side whose socket dropped comes back."""
        stats = {"type": "stats", "bitrate_kbps": 700.0, "fps": 30.0, "packet_loss": 0.1}
        tick = 0
        while not stop.is_set():
            tick += 1
            for index, (pharmacist, patient) in list(self.pairs.items()):
                if pharmacist.ws.closed or patient.ws.closed:
                    await self._rejoin(index)
                    continue
                try:
                    if (index + tick) % 50 == 0:
                        await patient.send(**stats, rtt_ms=20.0)
                    if (index + tick) % 100 == 0:
                        await pharmacist.send(type="ping")
                        await patient.send(type="ping")
                except (ConnectionError, aiohttp.ClientError):
                    await self._rejoin(index)
            await asyncio.sleep(0.1)

    async def _rejoin(self, index: int) -> None:
        """Each dropped side comes back as the web client does: with the ``resume`` token of
        its last ``joined``; a pharmacist whose resume is refused (the seat of a killed process
        is not known to have dropped) joins again with the sign-in."""
        pair = list(self.pairs[index])
        consult_id = self.consults[index][0]
        for position, side in enumerate(pair):
            if not side.ws.closed:
                continue
            self.dropped += 1
            for _ in range(10):  # the killed hub's sockets land on the other, or on it restarted
                try:
                    pair[position] = await self._join(side, resume=side.resume)
                except ConnectionError as refused:
                    self.failed[str(refused)] += 1
                    if position == 0 and "resume_expired" in str(refused):
                        try:
                            pair[position] = await self._signed_in(side, consult_id)
                        except (ConnectionError, TimeoutError) as again:
                            self.failed[f"with the sign-in: {again or 'timeout'}"] += 1
                        else:
                            self.resumed += 1
                            break
                    await asyncio.sleep(1)
                    continue
                except (TimeoutError, aiohttp.ClientError) as exc:
                    self.failed[type(exc).__name__] += 1
                    await asyncio.sleep(1)
                    continue
                self.resumed += 1
                break
            else:
                for each in pair:
                    await each.ws.close()
                del self.pairs[index]
                return
        self.pairs[index] = (pair[0], pair[1])

    async def _signed_in(self, dropped: Socket, consult_id: str) -> Socket:
        """A pharmacist joins with the sign-in; one whose access token has expired (they last
        5 minutes) signs in again first, as the console renews its own."""
        try:
            return await self._join(dropped, access_token=self.client.token, consult_id=consult_id)
        except ConnectionError as refused:
            if "unauthorized" not in str(refused):
                raise
        self.client.token = await asyncio.to_thread(self.sign_in)
        return await self._join(dropped, access_token=self.client.token, consult_id=consult_id)

    async def _join(self, dropped: Socket, **fields: str) -> Socket:
        side = await self.client.socket()
        if "peer_joined" in dropped.on:  # a pharmacist admits a patient back in the waiting room

            async def admit(message: dict[str, Any]) -> None:
                if message["role"] == "patient":
                    with contextlib.suppress(aiohttp.ClientError):
                        await side.send(type="admit")

            side.on["peer_joined"] = admit
        joined, refused = side.expect("joined"), side.expect("error")
        await side.send(type="join", **fields)
        done, _ = await asyncio.wait({joined, refused}, timeout=10, return_when="FIRST_COMPLETED")
        if joined not in done:
            await side.ws.close()
            code = refused.result().get("code") if refused in done else "timeout"
            raise ConnectionError(f"join refused: {code}")
        return side

    async def close(self) -> None:
        for pharmacist, patient in self.pairs.values():
            await pharmacist.ws.close()
            await patient.ws.close()


async def hold_consults(
    base: str, signs_in: Callable[[], str], stop: threading.Event, opened: threading.Event
) -> dict[str, Any]:
    patients = await add_patients(CONSULTS)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        client = Client(session, base, await asyncio.to_thread(signs_in))
        consults = [await client.schedule(p) for p in patients]
        held = Consults(client, consults, signs_in)
        await held.open_all()
        opened.set()
        stopping = asyncio.Event()
        keeper = asyncio.create_task(held.keep(stopping))
        await asyncio.to_thread(stop.wait)
        stopping.set()
        await keeper
        figures = {
            "consults": CONSULTS,
            "open_at_end": len(held.pairs),
            "dropped": held.dropped,
            "resumed": held.resumed,
            "refused_joins": dict(held.failed),
        }
        await held.close()
    return figures


def acknowledgements(load: Load, stored: dict[str, tuple[int, int]]) -> dict[str, Any]:
    sent = load.sent
    acknowledged = [m for m, s in sent.items() if s.acknowledged]
    return {
        "sent": len(sent),
        "acknowledged": len(acknowledged),
        "first_answers": load.answers(),
        "stored": len(stored),
        "acknowledged_not_stored_once": sum(1 for m in acknowledged if stored.get(m) != (1, 1)),
        "stored_never_sent": len(set(stored) - set(sent)),
        "never_acknowledged": sum(1 for s in sent.values() if not s.acknowledged),
        "http_500": sum(1 for s in sent.values() for a in s.answers if a == "http 500"),
        "latency_p99_ms": load.latency_ms(99),
    }


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    subprocess.run(["redis-cli", "-n", BUS.rsplit("/", 1)[1], "flushdb"], check=True)
    env, console_id, seed = prepare_consult_hub(
        work,
        base,
        TELEPHARM_REDIS_URL=BUS,
        TELEPHARM_SWEEP_INTERVAL="5",
        TELEPHARM_STUCK_AFTER="30",
    )
    credentials = json.loads(
        subprocess.run(
            [str(BIN / "telepharm"), "client", "add", "--name", "soak", "--scope", "script:send"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    hub_args = ["serve", "--port", str(port), "--no-worker", "--reuse-port"]
    roles = [
        Role("hub-1", hub_args, env, work / "hub-1.log"),
        Role("hub-2", hub_args, env, work / "hub-2.log"),
        Role("worker-1", ["worker"], env, work / "worker-1.log"),
        Role("worker-2", ["worker"], env, work / "worker-2.log"),
    ]
    results: dict[str, Any] = {"seconds": SECONDS, "rate": RATE}
    problems: list[str] = []
    try:
        for role in roles:
            role.start()
        wait_port(port, 180)  # a loaded machine starts slowly
        time.sleep(2)  # the second hub binds beside the first

        def pharmacist() -> str:
            return sign_in(base, console_id, seed, SCOPE, "bench", PASSWORD)

        stop_consults, opened = threading.Event(), threading.Event()
        consult_figures: dict[str, Any] = {}

        def hold() -> None:
            try:
                consult_figures.update(
                    asyncio.run(hold_consults(base, pharmacist, stop_consults, opened))
                )
            except Exception as exc:  # the report says it; the run goes on without consults
                consult_figures["error"] = repr(exc)
                opened.set()

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        opened.wait(120)
        say(f"consults open: {consult_figures or CONSULTS}")

        # the sender takes a new token when its own expires, as a prescriber's system does
        load = Load(
            base, lambda: token_for(base, credentials), RATE, patients=PATIENTS, drugs=drugs()
        )
        t0 = time.monotonic()
        load.start()
        kills = {0.3 * SECONDS: roles[0], 0.6 * SECONDS: roles[2]}
        next_sample = t0
        while (now := time.monotonic()) < t0 + SECONDS:
            for at, role in list(kills.items()):
                if now - t0 >= at:
                    del kills[at]
                    role.kill()
                    say(f"killed {role.name}")
                    time.sleep(RESTART)
                    role.start()
            if now >= next_sample:
                for role in roles:
                    role.sample(now - t0)
                next_sample += SAMPLE_EVERY
            time.sleep(0.2)
        load.stop()
        say("load stopped")
        stop_consults.set()
        holder.join(60)
        say("consults closed; resending the unclear")
        load.resend_unclear()
        say("waiting for the checks")

        records = Records(PG + DATABASE)
        try:
            stopped = time.monotonic()
            drained = wait_for(lambda: records.unchecked() == 0, DRAIN, every=1)
            drain_s = round(time.monotonic() - stopped, 1)
            checks = records.checks()
            results["intake"] = acknowledgements(load, records.stored())
        finally:
            records.close()
        results["checks"] = {
            "drained_within_s": drain_s if drained else None,
            "prescriptions": len(checks),
            "checked_more_than_once": sum(1 for _, _, done in checks if done > 1),
            "left_unchecked": sum(1 for _, state, _ in checks if state in ("received", "checking")),
        }
        results["consults"] = consult_figures
        results["memory"] = {role.name: role.growth(t0) for role in roles}
    finally:
        for role in reversed(roles):
            role.stop()

    intake, checked = results["intake"], results["checks"]
    for name, count in (
        ("acknowledged messages not stored exactly once", intake["acknowledged_not_stored_once"]),
        ("messages stored that were never sent", intake["stored_never_sent"]),
        ("messages never acknowledged, even resent", intake["never_acknowledged"]),
        ("HTTP 500 answers", intake["http_500"]),
        ("prescriptions checked more than once", checked["checked_more_than_once"]),
        ("prescriptions left unchecked", checked["left_unchecked"]),
    ):
        if count:
            problems.append(f"{count} {name}")
    consults = results["consults"]
    if consults.get("open_at_end") != CONSULTS:
        problems.append(f"consults open at the end: {consults.get('open_at_end')} of {CONSULTS}")
    problems += [f"{name}'s memory grew" for name, m in results["memory"].items() if m.get("grows")]
    results["problems"] = problems
    print(json.dumps(results, indent=2))
    if problems:
        print(f"logs kept in {work}", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
