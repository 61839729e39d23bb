"""``telepharm metrics reset``: start a deployment's metrics afresh (docs/operations.md)."""

from __future__ import annotations

import argparse

from ..commands import CliError, Commands, group
from ..settings import Settings
from . import StillWriting, reset


def register_cli(commands: Commands) -> None:
    actions = group(commands, "metrics", help="the metrics directory of this machine")
    actions.add_parser(
        "reset", help="remove an earlier deployment's values (refused while a process writes)"
    ).set_defaults(run=cmd_reset)


def cmd_reset(args: argparse.Namespace, settings: Settings) -> None:
    directory = settings.metrics_path
    if not directory.is_dir():
        print(f"nothing to reset: {directory} does not exist")
        return
    try:
        removed = reset(directory)
    except StillWriting as busy:
        raise CliError(f"{busy}: stop the hub and workers first") from busy
    print(f"removed {removed} files from {directory}")
