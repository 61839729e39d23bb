"""One fault under a steady NewRx load, and the promises checked once it is over:

1. every acknowledged NewRx (Status 000) is stored exactly once, as one message and one
   prescription;
2. every message whose answer was unclear (no answer, a 5xx, Error 601/602), resent body for
   body after recovery, ends acknowledged: the sender never has to guess;
3. every stored prescription is checked exactly once (it leaves received/checking with exactly
   one ``checks done`` transition) within ``CHECK_BOUND`` seconds after the fault ends;
4. the intake acknowledges new messages again within ``RECOVERY`` seconds;
5. the hub says it is ready (``/readyz`` 200) once the fault is over;
6. no process of the scenario is left running once it is stopped;
7. ``telepharm audit verify`` exits 0.

Every broken promise is collected, so one run reports all of them.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from server.admin import ClientCredentials
from tests.support.processes import command_line
from tests.support.tokens import client_token

from .cluster import Cluster, Records, wait_for
from .load import Load, steady_load

RATE = 25.0
#: acknowledgements before the fault (and some checks done): the load is flowing
STEADY = 50
#: seconds for the intake to acknowledge new messages again once the fault is over
RECOVERY = 30.0
#: seconds of steady load once the intake is back
AFTER = 2.0
#: seconds after the fault ends by which every stored prescription must have been checked
CHECK_BOUND = 60.0
#: seconds a stopped scenario's processes get to be gone
EXIT_GRACE = 10.0


@dataclass
class Run:
    name: str
    cluster: Cluster
    load: Load
    problems: list[str] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)

    def check(self, held: bool, problem: str) -> None:
        if not held:
            self.problems.append(problem)

    def verdict(self) -> None:
        print(f"\n{self.name}: {self.figures}")
        assert not self.problems, f"{self.name}: " + "; ".join(self.problems)


Fault = Callable[[Run], None]


def under_load(
    name: str, cluster: Cluster, credentials: ClientCredentials, fault: Fault, rate: float = RATE
) -> Run:
    """Run ``fault`` (it returns when the fault is over) under a steady load, then check."""
    token = client_token(
        cluster.base, credentials.client_id, credentials.client_secret, "script:send"
    )
    records = Records(cluster.database_url)
    with steady_load(cluster.base, token, rate) as load:
        run = Run(name, cluster, load)
        flowing = wait_for(
            lambda: load.acknowledged_since(0) >= STEADY and records.unchecked() < len(load.sent),
            60,
        )
        records.close()
        run.check(flowing, "before the fault, messages were not acknowledged and checked")
        started = time.monotonic()
        fault(run)
        ended = time.monotonic()
        run.figures["fault_s"] = round(ended - started, 1)
        back = wait_for(lambda: load.acknowledged_since(ended) > 0, RECOVERY, every=0.1)
        run.check(back, f"no new message acknowledged within {RECOVERY:.0f} s after the fault")
        run.figures["intake_back_s"] = round(time.monotonic() - ended, 1) if back else None
        time.sleep(AFTER)  # steady load after the recovery, not only during the fault
    load.resend_unclear()
    _check_outcomes(run, load, ended)
    return run


def _check_outcomes(run: Run, load: Load, ended: float) -> None:
    records = Records(run.cluster.database_url)
    try:
        _check_checks(run, records, ended)
        _check_acknowledgements(run, load, records.stored())
    finally:
        records.close()
    run.check(_ready(run.cluster.base), "/readyz is not 200 once the fault is over")
    run.cluster.stop()
    _check_processes(run)
    verified = run.cluster.cli("audit", "verify")
    run.check(verified.returncode == 0, f"audit verify failed: {verified.stderr.strip()}")


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=10) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:  # urllib's HTTPError for a 503 is one
        return False


def _check_checks(run: Run, records: Records, ended: float) -> None:
    left = CHECK_BOUND - (time.monotonic() - ended)
    drained = wait_for(lambda: records.unchecked() == 0, max(left, 0), every=0.5)
    run.figures["checked_within_s"] = round(time.monotonic() - ended, 1) if drained else None
    checks = records.checks()
    run.figures["prescriptions"] = len(checks)
    still = Counter(state for _, state, _ in checks if state in ("received", "checking"))
    run.check(not still, f"not all checked {CHECK_BOUND:.0f} s after the fault: {dict(still)} left")
    twice = [m for m, state, done in checks if done > 1]
    run.check(not twice, f"{len(twice)} prescriptions checked more than once")
    lost = [m for m, state, done in checks if done == 0 and state not in ("received", "checking")]
    run.check(not lost, f"{len(lost)} prescriptions left the checks without being checked")


def _check_acknowledgements(run: Run, load: Load, stored: dict[str, tuple[int, int]]) -> None:
    sent = load.sent
    acknowledged = [m for m, s in sent.items() if s.acknowledged]
    run.figures.update(sent=len(sent), first_answers=load.answers(), stored=len(stored))
    not_once = [m for m in acknowledged if stored.get(m) != (1, 1)]
    run.check(
        not not_once,
        f"{len(not_once)} of {len(acknowledged)} acknowledged messages not stored exactly once",
    )
    run.check(not set(stored) - set(sent), "messages stored that were never sent")
    unresolved = Counter(" > ".join(s.answers) for s in sent.values() if not s.acknowledged)
    run.check(
        not unresolved,
        f"{sum(unresolved.values())} messages never acknowledged, even resent"
        f" (answers: {dict(unresolved.most_common(4))})",
    )
    errors = sum(1 for s in sent.values() for a in s.answers if a == "http 500")
    run.check(not errors, f"{errors} answers were HTTP 500")


def _check_processes(run: Run) -> None:
    gone = wait_for(lambda: not run.cluster.leftovers(), EXIT_GRACE)
    left = [command_line(pid) for pid in run.cluster.leftovers()]
    run.check(gone, f"processes left running after the scenario stopped: {left}")
