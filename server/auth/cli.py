"""``telepharm keys``: the token signing keys."""

from __future__ import annotations

import argparse

from ..commands import Commands, group
from ..settings import Settings


def register_cli(commands: Commands) -> None:
    keys = group(commands, "keys", help="token signing keys")
    keys.add_parser(
        "rotate", help="sign with a new key; tokens of the previous keys stay valid"
    ).set_defaults(run=cmd_keys_rotate)


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
    from .keys import rotate

    new, kept = rotate(settings.keys_dir)
    print(
        f"new signing key {new}; still accepted: {', '.join(kept) or 'none'}. "
        "Restart the hub processes to sign with it."
    )
