"""``telepharm backup FILE``, ``telepharm restore FILE`` and ``telepharm retention``
(docs/backups.md): the hub's state in one file and back, and records removed once their
legal retention is over."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from ..commands import CliError, Commands, with_database

if TYPE_CHECKING:
    from ..db import Database
    from ..settings import Settings


def register_cli(commands: Commands) -> None:
    made = commands.add_parser(
        "backup",
        help="write the database, keys, recordings and images to FILE (mode 0600)",
    )
    made.add_argument("file", type=Path, metavar="FILE")
    made.set_defaults(run=cmd_backup)
    back = commands.add_parser(
        "restore",
        help="restore a backup into an empty database and data dir (stop the hub first)",
    )
    back.add_argument("file", type=Path, metavar="FILE")
    back.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a database that is not empty and the data dir's files of the same names",
    )
    back.set_defaults(run=cmd_restore)
    retention = commands.add_parser(
        "retention",
        help="remove records older than their legal retention (docs/backups.md)",
    )
    retention.add_argument(
        "--dry-run", action="store_true", help="say what would be removed, remove nothing"
    )
    retention.add_argument(
        "--before",
        type=_date,
        metavar="DATE",
        help="remove only what is also older than DATE (ISO 8601; never shortens a retention)",
    )
    retention.set_defaults(run=cmd_retention)


def _date(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO 8601 date or time") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def cmd_backup(args: argparse.Namespace, settings: Settings) -> None:
    from .. import audit
    from ..admin import OPERATOR
    from .archive import backup

    target: Path = args.file
    if target.is_dir():
        raise CliError(f"{target} is a directory: name the backup file")
    done = backup(settings, target)
    manifest = done.manifest
    files = len(manifest.members) - 1
    event = audit.Event(
        "backup.create",
        "backup",
        detail={"migration_head": manifest.migration_head, "files": files, "bytes": done.size},
    )
    with_database(settings, lambda db: audit.record(db, OPERATOR, event))
    print(
        f"backed up the {manifest.backend} database (migration {manifest.migration_head}) and "
        f"{files} files of {settings.data_dir} to {target} ({done.size} bytes, mode 0600)"
    )
    for item in manifest.not_included:
        print(f"not included, keep it elsewhere: {item}")


def cmd_restore(args: argparse.Namespace, settings: Settings) -> None:
    from .archive import restore

    done = restore(settings, args.file, overwrite=args.overwrite)
    manifest = done.manifest
    counts = with_database(settings, _restored)
    groups: dict[str, int] = {}
    for name in manifest.members:
        parts = name.split("/")
        if parts[0] == "data":
            group = parts[1] if len(parts) > 2 else "top level"
            groups[group] = groups.get(group, 0) + 1
    files = ", ".join(f"{group}: {n}" for group, n in sorted(groups.items())) or "none"
    print(
        f"restored the {manifest.backend} database made {manifest.created_at} by hub "
        f"{manifest.software_version} at migration {manifest.migration_head}"
        + (f", upgraded to {done.upgraded_to}" if done.upgraded_to else "")
        + f": {counts}"
    )
    print(f"restored {done.files} files into {settings.data_dir} ({files})")
    for item in manifest.not_included:
        print(f"not in the backup, restore it yourself: {item}")


async def _restored(db: Database) -> str:
    from sqlalchemy import func, select

    from .. import audit
    from ..admin import OPERATOR
    from ..admin.models import Pharmacy
    from ..audit.models import AuditEvent
    from ..auth.models import OAuthClient
    from ..prescriptions.models import Prescription

    counts = []
    async with db.sessions() as session:
        for label, model in (
            ("pharmacies", Pharmacy),
            ("clients", OAuthClient),
            ("prescriptions", Prescription),
            ("audit entries", AuditEvent),
        ):
            n = await session.scalar(select(func.count()).select_from(model))
            counts.append(f"{n} {label}")
    await audit.record(db, OPERATOR, audit.Event("backup.restore", "backup"))
    return ", ".join(counts)


def cmd_retention(args: argparse.Namespace, settings: Settings) -> None:
    from .retention import run

    plan = with_database(
        settings, lambda db: run(db, settings, dry_run=args.dry_run, before=args.before)
    )
    verb = "would remove" if args.dry_run else "removed"
    for kind, at in plan.cutoffs.items():
        print(f"{kind}: records last changed before {at.isoformat(timespec='seconds')}")
    prescriptions = ", ".join(f"{n} {kind}" for kind, n in plan.prescriptions.items()) or "none"
    print(f"{verb} prescriptions: {prescriptions}")
    rows = ", ".join(f"{n} {name}" for name, n in sorted(plan.rows.items()))
    if rows:
        print(f"{verb} with them: {rows}")
    unlinked = ", ".join(f"{n} {link}" for link, n in sorted(plan.unlinked.items()) if n)
    if unlinked:
        print(f"{'would keep' if args.dry_run else 'kept'}, unlinked: {unlinked}")
    print(f"{verb} {plan.messages} messages as received, {plan.files} files")
    print(f"{verb} {plan.audit_entries} audit entries")
