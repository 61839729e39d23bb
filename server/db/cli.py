"""``telepharm migrate``: bring the database schema up to date."""

from __future__ import annotations

import argparse

from ..commands import Commands
from ..settings import Settings


def register_cli(commands: Commands) -> None:
    commands.add_parser("migrate", help="upgrade the database schema").set_defaults(run=cmd_migrate)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from .migrate import upgrade

    upgrade(settings.database_url)
    print("database schema is up to date")
