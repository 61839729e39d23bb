"""``telepharm``: the operator's command line (DESIGN.md "CLI contract").

Each feature adds its own sub-commands (its ``register_cli``); this module lists the features
and turns every failure into one line and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from . import admin, audit, backup, demo, drugs, serve, users
from .auth import cli as auth_cli
from .commands import CliError, Commands, Parser
from .db import cli as db_cli
from .inventory import cli as inventory_cli
from .metrics import cli as metrics_cli
from .outbox import cli as outbox_cli
from .prescriptions.archive import verify_archive
from .settings import Settings, SettingsError
from .worker import beat_cli as beat
from .worker import cli as worker_cli

#: the features that add sub-commands, in the order ``telepharm --help`` lists them
FEATURES: tuple[Callable[[Commands], None], ...] = (
    serve.register_cli,
    worker_cli.register_cli,
    beat.register_cli,  # the scheduled notices' timetable
    db_cli.register_cli,
    demo.register_cli,
    admin.register_cli,  # pharmacy, client
    outbox_cli.register_cli,
    drugs.register_cli,
    inventory_cli.register_cli,  # stock recall, stock receive
    users.register_cli,
    auth_cli.register_cli,  # keys
    metrics_cli.register_cli,  # reset
    backup.register_cli,  # backup, restore, retention
    # the chain, then the EPCS archive's signatures
    functools.partial(audit.register_cli, record_checks=[("EPCS archive", verify_archive)]),
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="telepharm", description="Telepharmacy e-prescription hub")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for register in FEATURES:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        from .logs import configure

        configure(settings.log_level)
        args.run(args, settings)
    except (admin.AdminError, SettingsError, CliError) as exc:
        sys.exit(f"telepharm: {exc}")
    except SQLAlchemyError as exc:
        sys.exit(f"telepharm: database error ({type(exc).__name__}); is the schema migrated?")
    except OSError as exc:
        sys.exit(f"telepharm: {exc.strerror or exc}")


if __name__ == "__main__":
    main()
