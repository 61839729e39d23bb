"""Operator actions on user accounts (``telepharm user ...``): add, reset MFA, disable.

Authenticator enrolment happens out of band: the operator hands the new user the
``otpauth://`` URI (or its QR code) printed here, and the first sign-in needs a code from it.
The sign-in pages never show a seed, so knowing a password is never enough to enrol a device,
not even right after an MFA reset. Disabling an account or resetting its MFA ends its browser
sessions and revokes its tokens at once.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from . import audit
from .admin import OPERATOR, AdminError, find_pharmacy, write_private_json
from .auth.credentials import (
    PasswordPolicyError,
    SecretBox,
    check_policy,
    enrolment_uri,
    hash_password,
    new_totp_seed,
    totp_context,
)
from .auth.models import User
from .auth.store import end_sign_ins
from .commands import CliError, Commands, group, with_database
from .db import Database
from .db.models import utcnow
from .settings import Settings

#: a staff account's role (the choices of the CLI and of the staff API)
Role = Literal["pharmacist", "technician", "pharmacy_admin"]
ROLES: tuple[str, ...] = get_args(Role)
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A user's new authenticator seed, as the operator hands it over."""

    username: str
    uri: str


def normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise AdminError(
            "--username must be 3 to 64 characters: letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


async def add_user(
    db: Database, box: SecretBox, *, pharmacy: str, username: str, role: str, password: str
) -> Enrolment:
    name = normalise_username(username)
    if role not in ROLES:
        raise AdminError(f"--role must be one of: {', '.join(ROLES)}")
    try:
        check_policy(password, name)
    except PasswordPolicyError as exc:
        raise AdminError(str(exc)) from exc
    home = await find_pharmacy(db, pharmacy)
    seed = new_totp_seed()
    user = User(
        pharmacy_id=home.id,
        username=name,
        role=role,
        password_hash=await hash_password(password),
        controlled_substances=False,
    )
    try:
        async with db.transaction() as session:
            session.add(user)
            await session.flush()
            user.totp_secret = box.seal(seed, totp_context(user.id))
            await audit.add(
                session,
                OPERATOR,
                audit.Event(
                    "user.create",
                    "user",
                    str(user.id),
                    pharmacy_id=home.id,
                    detail={"username": name, "role": role},
                ),
            )
    except IntegrityError as exc:
        raise AdminError(f"the username {name} is taken") from exc
    return Enrolment(name, enrolment_uri(seed, name))


async def reset_mfa(db: Database, box: SecretBox, username: str) -> Enrolment:
    """A new seed; the old authenticator stops working at once."""
    name = normalise_username(username)
    seed = new_totp_seed()
    async with db.transaction() as session:
        user = await _user(session, name)
        user.totp_secret = box.seal(seed, totp_context(user.id))
        user.totp_confirmed_at = None
        user.totp_last_step = None
        await end_sign_ins(session, user.id, "mfa_reset")
        await audit.add(
            session,
            OPERATOR,
            audit.Event("user.mfa_reset", "user", str(user.id), pharmacy_id=user.pharmacy_id),
        )
    return Enrolment(name, enrolment_uri(seed, name))


async def disable_user(db: Database, username: str) -> None:
    name = normalise_username(username)
    async with db.transaction() as session:
        user = await _user(session, name)
        if user.disabled_at is not None:
            raise AdminError(f"{name} is already disabled")
        user.disabled_at = utcnow()
        await end_sign_ins(session, user.id, "disabled")
        await audit.add(
            session,
            OPERATOR,
            audit.Event("user.disable", "user", str(user.id), pharmacy_id=user.pharmacy_id),
        )


async def _user(session: AsyncSession, name: str) -> User:
    user = await session.scalar(select(User).where(User.username == name).with_for_update())
    if user is None:
        raise AdminError(f"no user {name}")
    return user


DEMO_USERNAME = "demo.pharmacist"


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    enrolment_uri: str


async def ensure_demo_pharmacist(
    db: Database, box: SecretBox, pharmacy: str, data_dir: Path
) -> DemoLogin:
    """The demo pharmacy's pharmacist (allowed controlled substances), created once; its
    password is kept in ``<data dir>/demo-users.json`` (mode 0600) so the demo can show it
    again. Real accounts' passwords are never stored."""
    path = data_dir / "demo-users.json"
    password = _saved_password(path)
    async with db.sessions() as session:
        user = await session.scalar(select(User).where(User.username == DEMO_USERNAME))
    if user is None or not password:
        if user is not None:  # the password file is gone: start the account afresh
            raise AdminError(f"{path} is missing; disable {DEMO_USERNAME} or restore the file")
        password = secrets.token_urlsafe(18)
        await add_user(
            db, box, pharmacy=pharmacy, username=DEMO_USERNAME, role="pharmacist", password=password
        )
        async with db.transaction() as session:
            user = await _user(session, DEMO_USERNAME)
            user.controlled_substances = True
        write_private_json(path, {DEMO_USERNAME: password})
    assert user is not None
    assert user.totp_secret is not None
    seed = box.open(user.totp_secret, totp_context(user.id))
    return DemoLogin(DEMO_USERNAME, password, enrolment_uri(seed, DEMO_USERNAME))


def _saved_password(path: Path) -> str:
    try:
        return str(json.loads(path.read_text())[DEMO_USERNAME])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def register_cli(commands: Commands) -> None:
    user = group(commands, "user", help="manage pharmacy staff accounts")
    user_add = user.add_parser("add", help="create an account (prints its MFA enrolment)")
    user_add.add_argument("--pharmacy", metavar="NCPDPID", required=True)
    user_add.add_argument("--username", required=True)
    user_add.add_argument("--role", required=True, choices=ROLES)
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user_add.set_defaults(run=cmd_user_add)
    reset = user.add_parser("reset-mfa", help="issue a new authenticator seed")
    reset.add_argument("--username", required=True)
    reset.set_defaults(run=cmd_user_reset_mfa)
    disable = user.add_parser("disable", help="stop an account from signing in")
    disable.add_argument("--username", required=True)
    disable.set_defaults(run=cmd_user_disable)


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> None:
    password = _read_password(args)
    enrolment = with_database(
        settings,
        lambda db: add_user(
            db,
            SecretBox.load(settings.keys_dir),
            pharmacy=args.pharmacy,
            username=args.username,
            role=args.role,
            password=password,
        ),
    )
    print(f"user {enrolment.username} added ({args.role} at {args.pharmacy})")
    _print_enrolment(enrolment)


def cmd_user_reset_mfa(args: argparse.Namespace, settings: Settings) -> None:
    enrolment = with_database(
        settings, lambda db: reset_mfa(db, SecretBox.load(settings.keys_dir), args.username)
    )
    print(f"MFA of {enrolment.username} reset: the old authenticator no longer works")
    _print_enrolment(enrolment)


def cmd_user_disable(args: argparse.Namespace, settings: Settings) -> None:
    with_database(settings, lambda db: disable_user(db, args.username))
    print(f"user {args.username.strip().lower()} disabled")


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for the password; use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise CliError("the passwords differ")
    return first


def _print_enrolment(enrolment: Enrolment) -> None:
    import segno

    print(
        f"Authenticator for {enrolment.username}: scan the QR code or enter the URI in the app;"
        " the first sign-in needs a code from it. Hand it over privately; it is not shown again."
    )
    segno.make(enrolment.uri, error="m").terminal(compact=True)
    print(enrolment.uri)
