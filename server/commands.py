"""What every feature's ``telepharm`` sub-commands share: the parser that reports a bad
command line in one line, the error shown as one line, and running work on the database.

A feature adds its sub-commands in a ``register_cli(commands)`` function, listed in
:mod:`server.cli`; its handlers take ``(args, settings)`` and import what they need when run,
so that ``telepharm --help`` and every other command start fast.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn

from .db import Database

if TYPE_CHECKING:
    from .settings import Settings

#: the sub-commands of ``telepharm`` (or of one of its command groups) a feature adds to
Commands = argparse._SubParsersAction  # argparse names no public type for it


class CliError(Exception):
    """Shown to the operator as one line, exit status 1."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"telepharm: {message} (see telepharm --help)\n")


def group(commands: Commands, name: str, help: str) -> Commands:
    """A command with sub-commands of its own (``telepharm user add``)."""
    parser = commands.add_parser(name, help=help)
    return parser.add_subparsers(dest="action", required=True, parser_class=Parser)


def with_database(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())
