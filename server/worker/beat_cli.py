"""``telepharm beat``: the Celery beat of the hub's app, the one process that publishes the
schedule's task (:mod:`.beat`: the scheduled notices, the payment plans' instalments) for the
workers every ``TELEPHARM_SCHEDULE_INTERVAL`` seconds. One is enough; a second (or a hub's own
loop beside it) is harmless: the task runs under the schedule's lease."""

from __future__ import annotations

import argparse

from ..commands import Commands
from ..settings import Settings


def register_cli(commands: Commands) -> None:
    beat = commands.add_parser(
        "beat", help="run the Celery beat: publishes the scheduled notices for the workers"
    )
    beat.set_defaults(run=cmd_beat)


def cmd_beat(args: argparse.Namespace, settings: Settings) -> None:
    from . import create_celery

    celery = create_celery(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    celery.start(
        [
            "--quiet",
            "beat",
            "--loglevel",
            settings.log_level,
            "--schedule",
            str(settings.data_dir / "celerybeat-schedule"),
        ]
    )
