"""``telepharm worker``: a Celery worker process for the prescription checks, the delivery
of outbound messages and the sending of patient notifications."""

from __future__ import annotations

import argparse
import warnings

from ..commands import CliError, Commands
from ..settings import Settings


def register_cli(commands: Commands) -> None:
    worker = commands.add_parser(
        "worker", help="run a Celery worker: prescription checks and outbound delivery"
    )
    worker.add_argument("--concurrency", type=int, default=2, help="parallel checks (default 2)")
    worker.add_argument(
        "--queues",
        metavar="QUEUE,...",
        help="the queues this worker takes work from, comma-separated (default: all of "
        "telepharm.checks, telepharm.outbound and telepharm.notifications)",
    )
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

    queues = _queues(args.queues, (QUEUE, OUTBOUND_QUEUE, NOTIFY_QUEUE))
    if args.concurrency < 1:
        raise CliError(f"--concurrency must be 1 or more, got {args.concurrency}")
    if args.parent is not None:
        die_with(args.parent)
        # the hub's own child on a developer's machine: the hub already runs as this user,
        # so Celery's warning about root tells the newcomer nothing they can act on
        warnings.filterwarnings("ignore", "You're running the worker with superuser")
    load_expiry_rules(settings.expiry_rules_file)  # a bad file stops here, with one line
    celery = create_celery(settings)
    celery.worker_main(
        [
            "--quiet",  # no banner: the hub's own log lines say what runs
            "worker",
            "--queues",
            ",".join(queues),
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


def _queues(given: str | None, known: tuple[str, ...]) -> tuple[str, ...]:
    """The queues of ``--queues`` (all of ``known`` without it); an unknown name is refused,
    since a worker on a queue nothing publishes to would idle while the real one fills."""
    if given is None:
        return known
    queues = tuple(dict.fromkeys(q.strip() for q in given.split(",") if q.strip()))
    unknown = [q for q in queues if q not in known]
    if unknown or not queues:
        raise CliError(f"--queues takes some of {', '.join(known)}, got {given!r}")
    return queues
