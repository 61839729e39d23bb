"""``deploy/rehearse``: the production topology of deploy/ started on this machine from the
shipped files, driven through nginx over TLS, then stopped (deploy/README.md#the-rehearsal).

Exit 0 and ``rehearsal: ok`` when it all holds; 1 and ``rehearsal: FAIL: ...`` naming the file
or the step otherwise. Whatever it started is stopped, its database dropped and its Redis DBs
emptied, pass or fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .shipped import DEPLOY, ShippedFileError
from .steps import Edge, consult, contract, edge_promises, operators, schedule
from .topology import RehearsalError, Topology


def main() -> int:
    parser = argparse.ArgumentParser(prog="deploy/rehearse", description=__doc__)
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "TELEPHARM_REHEARSAL_DATABASE", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL's maintenance database, where the rehearsal creates (and drops) its own",
    )
    parser.add_argument(
        "--broker",
        default=os.environ.get("TELEPHARM_REHEARSAL_BROKER", "redis://127.0.0.1:6379/12"),
        help="a Redis DB for the broker, emptied before and after",
    )
    parser.add_argument(
        "--bus",
        default=os.environ.get("TELEPHARM_REHEARSAL_BUS", "redis://127.0.0.1:6379/13"),
        help="a Redis DB for the consult bus, emptied before and after",
    )
    parser.add_argument(
        "--deploy", type=Path, default=DEPLOY, help="the deployment files (default: deploy/)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir and its logs")
    args = parser.parse_args()
    for tool in ("nginx", "turnserver", "openssl"):
        if shutil.which(tool) is None:
            print(f"rehearsal: FAIL: {tool} is not installed (apt-get install {tool})")
            return 1
    # stopped from outside (a CI timeout): still stop what it started, drop what it made
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("rehearsal: FAIL: stopped (SIGTERM)"))
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="telepharm-rehearsal-"))
    top = Topology(work, args.database, args.broker, args.bus, deploy=args.deploy.resolve())
    failed = True

    def step(title: str, do: Callable[[], Any]) -> Any:
        at = time.monotonic()
        print(f"rehearsal: {title} ...", flush=True)
        done = do()
        print(f"rehearsal:   done in {time.monotonic() - at:.1f} s", flush=True)
        return done

    try:
        step("rendering the shipped files (deploy/) for this machine", top.install)
        step("a new database, migrated; the Redis DBs emptied", lambda: _services(top))
        step(
            "coturn, hub processes, workers, beat and nginx from their units",
            top.start_all,
        )
        edge = Edge(top)
        step("nginx: HTTPS only, HSTS, the 1 MiB body limit, /metrics not public",
             lambda: edge_promises(edge))  # fmt: skip
        ops = step(
            "the operator's CLI: a pharmacy, two clients, a pharmacist", lambda: operators(edge)
        )
        rx = step(
            "the contract: tokens, NewRx, the check by a worker, the API's read-back",
            lambda: contract(edge, ops),
        )
        scheduled = step(
            "the pharmacist signs in and schedules a consult",
            lambda: schedule(edge, ops, rx.patient_id),
        )
        seen = step(
            "the consult: two sides on two hub processes, media relayed by coturn",
            lambda: asyncio.run(consult(edge, scheduled)),
        )
        top.alive()  # nothing died on the way
        print(
            f"rehearsal: prescription {rx.id} checked ({rx.state}); consult sides on hub "
            f"processes {seen['hubs'][0]} and {seen['hubs'][1]} (patient socket try "
            f"{seen['tries']}), video frames received {seen['frames']}, "
            f"coturn relaying on ports {seen['relays']}"
        )
        failed = False
    except (ShippedFileError, RehearsalError) as exc:
        print(f"rehearsal: FAIL: {exc}")
    except Exception:
        traceback.print_exc()
        print("rehearsal: FAIL: an unexpected error (above)")
    finally:
        print("rehearsal: stopping everything it started", flush=True)
        try:
            top.stop_all()
        finally:
            _clean(top)
        if failed:
            for log in top.logs():
                tail = log.read_text(errors="replace").strip().splitlines()[-15:]
                print(f"---- {log.name} (last lines)\n" + "\n".join(tail))
        if failed or args.keep:
            print(f"rehearsal: logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    took = time.monotonic() - began
    if failed:
        print(f"rehearsal: FAIL after {took:.0f} s")
        return 1
    print(f"rehearsal: ok in {took:.0f} s")
    return 0


def _services(top: Topology) -> None:
    top.flush_redis()
    top.create_database()
    top.cli("migrate")


def _clean(top: Topology) -> None:
    for undo in (top.drop_database, top.flush_redis):
        try:
            undo()
        except Exception as exc:  # report, and go on cleaning
            print(f"rehearsal: clean-up: {type(exc).__name__}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
