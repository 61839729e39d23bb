"""``telepharm worker``: a Celery worker process for the prescription checks, the delivery
of outbound messages and the sending of patient notifications."""

from __future__ import annotations

import argparse
import warnings

from ..commands import Commands
from ..settings import Settings


def register_cli(commands: Commands) -> None:
    worker = commands.add_parser(
        "worker", help="run a Celery worker: prescription checks and outbound delivery"
    )
    worker.add_argument("--concurrency", type=int, default=2, help="parallel checks (default 2)")
    worker.add_argument(
        "--parent", type=int, metavar="PID", help="stop when process PID ends (telepharm serve)"
    )
    worker.set_defaults(run=cmd_worker)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    from ..notifications import QUEUE as NOTIFY_QUEUE
    from ..outbox import QUEUE as OUTBOUND_QUEUE
    from ..prescriptions.expiry import load_expiry_rules
    from . import QUEUE, create_celery
    from .embedded import die_with
    from .observed import watch_worker

    if args.parent is not None:
        die_with(args.parent)
        # the hub's own child on a developer's machine: the hub already runs as this user,
        # so Celery's warning about root tells the newcomer nothing they can act on
        warnings.filterwarnings("ignore", "You're running the worker with superuser")
    load_expiry_rules(settings.expiry_rules_file)  # a bad file stops here, with one line
    watch_worker(settings)
    celery = create_celery(settings)
    celery.worker_main(
        [
            "--quiet",  # no banner: the hub's own log lines say what runs
            "worker",
            "--queues",
            f"{QUEUE},{OUTBOUND_QUEUE},{NOTIFY_QUEUE}",
            "--concurrency",
            str(args.concurrency),
            "--loglevel",
            settings.log_level,
            "--without-gossip",
            "--without-mingle",
            "--pool",
            "solo" if args.concurrency == 1 else "prefork",
        ]
    )
