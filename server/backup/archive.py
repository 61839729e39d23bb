"""One backup file: the database, and the data dir's keys, recordings and images.

The file is an uncompressed tar (recordings and images are encrypted, the PostgreSQL dump
already compressed): each member's bytes, then ``manifest.json`` last, with the format's
version, the hub's, the database's backend and migration head, and each member's size and
SHA-256. It is written beside its final name with mode 0600 (it holds the keys), made durable,
then renamed into place: a backup is whole or absent.

The database is copied consistently while the hub runs: SQLite by its online backup API (one
step, under a read transaction), PostgreSQL by ``pg_dump`` (custom format, one snapshot).
Data dir files are copied after it, as they are then. Not in it: the database's own files in
the data dir, the embedded broker's queue and the scheduler's state (rebuilt: the sweeps queue
again what never ran), and whatever lives outside the data dir (``TELEPHARM_*`` settings and
the files they name, e.g. ``TELEPHARM_ARCHIVE_KEY`` elsewhere): the manifest lists those.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy.engine import URL, make_url

from ..commands import CliError
from ..settings import SOFTWARE_VERSION, Settings

FORMAT = "telepharm-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA = "data"
#: files of the data dir a backup leaves out: the embedded broker's queue and the scheduler's
#: state (the database file itself is left out by its path)
TRANSIENT = ("broker.sqlite3", "celerybeat-schedule")
_CHUNK = 1024 * 1024


@dataclass
class Manifest:
    backend: str  # "sqlite" or "postgresql"
    migration_head: str
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_included: list[str] = field(default_factory=list)
    created_at: str = ""
    software_version: str = SOFTWARE_VERSION

    @property
    def database_member(self) -> str:
        return "database.sqlite3" if self.backend == "sqlite" else "database.pgdump"

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "software_version": self.software_version,
            "database": {"backend": self.backend, "migration_head": self.migration_head},
            "members": self.members,
            "not_included": self.not_included,
        }
        return json.dumps(document, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            document = json.loads(raw)
            if document.get("format") != FORMAT:
                raise CliError("not a telepharm backup (its manifest names another format)")
            if document.get("format_version") != FORMAT_VERSION:
                raise CliError(
                    f"backup format {document.get('format_version')} is not one this hub "
                    f"reads (it reads {FORMAT_VERSION})"
                )
            database = document["database"]
            manifest = cls(
                backend=str(database["backend"]),
                migration_head=str(database["migration_head"]),
                members={str(k): dict(v) for k, v in document["members"].items()},
                not_included=[str(x) for x in document.get("not_included", [])],
                created_at=str(document.get("created_at", "")),
                software_version=str(document.get("software_version", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CliError("not a telepharm backup (its manifest does not read)") from None
        if manifest.backend not in ("sqlite", "postgresql"):
            raise CliError(f"not a telepharm backup (unknown database {manifest.backend!r})")
        return manifest


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    manifest: Manifest
    size: int


@dataclass(frozen=True)
class RestoreSummary:
    manifest: Manifest
    files: int
    upgraded_to: str | None  # the migration head the schema was brought to, if older


# -- the database's side ------------------------------------------------------------------


def backend(settings: Settings) -> str:
    name = make_url(settings.database_url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise CliError(f"backups handle SQLite and PostgreSQL databases, not {name}")
    return name


def sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        raise CliError("the SQLite database is in memory: there is nothing to back up")
    return Path(database)


def libpq_env(url: URL) -> dict[str, str]:
    """The environment that points ``pg_dump``/``pg_restore``/``psql`` at ``url`` (the password
    never on a command line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value is not None:
            env[name] = str(value)
    ssl = url.query.get("sslmode") or url.query.get("ssl")
    if isinstance(ssl, str):
        env["PGSSLMODE"] = {"true": "require", "false": "disable"}.get(ssl, ssl)
    return env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    except FileNotFoundError:
        raise CliError(f"{command[0]} is not installed (PostgreSQL's client tools)") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise CliError(f"{what} failed: {lines[-1] if lines else f'exit {done.returncode}'}")


def _sqlite_head(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        row = None
    finally:
        connection.close()
    if row is None:
        raise CliError("the database has no schema: run telepharm migrate first")
    return str(row[0])


def _copy_sqlite(source: Path, target: Path) -> str:
    """A consistent copy of the live SQLite database ``source`` (its online backup API, all
    pages in one step under one read transaction); the copy's migration head."""
    if not source.exists():
        raise CliError(f"no database at {source}: run telepharm migrate first")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.execute("PRAGMA busy_timeout=15000")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise CliError("the database copy does not pass SQLite's check")
    finally:
        dst.close()
        src.close()
    return _sqlite_head(target)


def _postgres_head(env: dict[str, str]) -> str:
    done = subprocess.run(
        ["psql", "-XAtq", "-c", "SELECT version_num FROM alembic_version"],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise CliError("the database has no schema: run telepharm migrate first")
    return done.stdout.strip()


# -- files ----------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def data_files(settings: Settings, leave_out: tuple[Path, ...]) -> Iterator[tuple[Path, str]]:
    """The data dir's regular files a backup holds, and their names in it (POSIX, relative),
    without ``leave_out`` and the transient ones (with their SQLite companions)."""
    root = settings.data_dir
    if not root.is_dir():
        return
    skipped = {p.resolve() for p in leave_out}
    skipped |= {(root / name).resolve() for name in TRANSIENT}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        resolved = path.resolve()
        base = resolved.with_name(resolved.name.removesuffix("-wal").removesuffix("-shm"))
        base = base.with_name(base.name.removesuffix("-journal"))
        name = path.relative_to(root)
        if resolved in skipped or base in skipped or _scratch_name(name):
            continue
        yield path, name.as_posix()


def _scratch_name(name: Path) -> bool:
    """A backup's or restore's own scratch file or directory (one may be in the data dir)."""
    return any(part.startswith(".telepharm-") for part in name.parts)


def outside(settings: Settings) -> list[str]:
    """What the hub uses that lives outside the data dir, so a backup does not hold it."""
    found = ["the TELEPHARM_* settings (environment) and TLS, TURN, SMTP, SMS, Stripe secrets"]
    for name, value in (
        ("TELEPHARM_ARCHIVE_KEY", settings.archive_key_file),
        ("TELEPHARM_ARCHIVE_EARLIER_KEYS", settings.archive_earlier_keys),
        ("TELEPHARM_EPCS_TRUST_ROOTS", settings.epcs_trust_roots),
        ("TELEPHARM_EPCS_CRLS", settings.epcs_crls),
        ("TELEPHARM_EXPIRY_RULES", settings.expiry_rules_file),
    ):
        if value and not _inside(Path(value), settings.data_dir):
            found.append(f"{name} ({value})")
    return found


@contextlib.contextmanager
def _private_file(final: Path) -> Iterator[IO[bytes]]:
    """A new file beside ``final``, mode 0600, renamed onto it once written and synced (or
    removed if the block fails)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".telepharm-{final.name}.", dir=final.parent)
    temporary = Path(name)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class _Hashing:
    """Reads from ``stream`` and hashes what it gave (what goes into the archive)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.digest = stream, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        return data


def _add(tar: tarfile.TarFile, path: Path, name: str) -> dict[str, Any]:
    info = tar.gettarinfo(str(path), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode &= 0o700  # the data dir is private; so is what comes back from it
    with path.open("rb") as stream:
        hashing = _Hashing(stream)
        tar.addfile(info, hashing)
    return {"sha256": hashing.digest.hexdigest(), "size": info.size}


# -- backup ---------------------------------------------------------------------------------


def backup(settings: Settings, target: Path) -> BackupSummary:
    kind = backend(settings)
    leave_out: tuple[Path, ...] = (target,)
    with tempfile.TemporaryDirectory(prefix=".telepharm-backup-", dir=_scratch(target)) as work:
        if kind == "sqlite":
            database = sqlite_path(settings)
            leave_out += (database,)
            dump = Path(work) / "database.sqlite3"
            head = _copy_sqlite(database, dump)
        else:
            env = libpq_env(make_url(settings.database_url))
            head = _postgres_head(env)
            dump = Path(work) / "database.pgdump"
            _run(
                ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}"],
                env,
                "pg_dump",
            )
        manifest = Manifest(
            backend=kind,
            migration_head=head,
            not_included=outside(settings),
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        with (
            _private_file(target) as stream,
            tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            manifest.members[manifest.database_member] = _add(tar, dump, manifest.database_member)
            for path, name in data_files(settings, leave_out):
                member = f"{DATA}/{name}"
                manifest.members[member] = _add(tar, path, member)
            raw = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(raw), 0o600
            info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
            tar.addfile(info, _Bytes(raw))
    return BackupSummary(target, manifest, target.stat().st_size)


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.at + size
        chunk, self.at = self.data[self.at : end], min(end, len(self.data))
        return chunk


def _scratch(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent


# -- restore --------------------------------------------------------------------------------


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (
        not path.is_absolute()
        and ".." not in path.parts
        and path.parts[:1] == (DATA,)
        and len(path.parts) > 1
    )


def read_manifest(source: Path) -> tuple[tarfile.TarFile, Manifest]:
    """The backup at ``source``, opened, and its manifest, its members checked against it."""
    if not source.is_file():
        raise CliError(f"no such backup file: {source}")
    try:
        tar = tarfile.open(source, mode="r:")  # noqa: SIM115 (closed by the caller)
        members = {m.name: m for m in tar.getmembers()}
    except (tarfile.TarError, EOFError, OSError):
        raise CliError(f"{source} is not a telepharm backup (the archive does not read)") from None
    if MANIFEST not in members:
        tar.close()
        raise CliError(f"{source} is not a telepharm backup (it has no manifest)")
    stream = tar.extractfile(members[MANIFEST])
    try:
        manifest = Manifest.from_json(stream.read() if stream else b"")
    except CliError:
        tar.close()
        raise
    expected = set(manifest.members) | {MANIFEST}
    bad = [
        name
        for name, member in members.items()
        if name not in expected
        or not member.isfile()
        or (name not in (MANIFEST, manifest.database_member) and not _safe_name(name))
    ]
    missing = sorted(expected - set(members))
    if bad or missing or manifest.database_member not in members:
        tar.close()
        what = f"unexpected member {bad[0]}" if bad else f"missing {(missing or ['database'])[0]}"
        raise CliError(f"{source} does not match its manifest ({what})")
    return tar, manifest


def _extract_checked(tar: tarfile.TarFile, manifest: Manifest, name: str, to: Path) -> None:
    """Member ``name`` to the file ``to`` (0600), refused if its bytes are not the manifest's."""
    expected = manifest.members[name]
    source = tar.extractfile(name)
    if source is None:
        raise CliError(f"the backup's {name} is not a file")
    digest = hashlib.sha256()
    size = 0
    descriptor = os.open(to, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        try:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        except (tarfile.TarError, OSError, EOFError):
            raise CliError(f"the backup's {name} does not read (the file is damaged)") from None
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != expected.get("sha256") or size != expected.get("size"):
        raise CliError(f"checksum mismatch for {name}: the backup file is damaged or altered")


def code_heads(settings: Settings) -> tuple[str, Any]:
    """This hub's migration head and its Alembic script directory."""
    from alembic.script import ScriptDirectory

    from ..db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config(settings.database_url))
    return str(script.get_current_head()), script


def check_head(settings: Settings, manifest: Manifest) -> str | None:
    """Refuse a backup made at a migration this hub does not know (a newer hub's); the
    current head if the backup's schema is older (the restore upgrades it), else None."""
    from alembic.util import CommandError

    head, script = code_heads(settings)
    try:
        known = script.get_revision(manifest.migration_head) is not None
    except CommandError:
        known = False
    if not known:
        raise CliError(
            f"the backup is at migration {manifest.migration_head}, which this hub does not "
            f"know (its head is {head}): restore it with the hub version that made it "
            f"({manifest.software_version or 'unknown'}) or a newer one"
        )
    return None if manifest.migration_head == head else head


def restore(settings: Settings, source: Path, *, overwrite: bool) -> RestoreSummary:
    tar, manifest = read_manifest(source)
    with tar:
        kind = backend(settings)
        if manifest.backend != kind:
            raise CliError(
                f"the backup holds a {manifest.backend} database but TELEPHARM_DATABASE_URL "
                f"is {kind}"
            )
        upgrade_to = check_head(settings, manifest)
        files = [name for name in manifest.members if name != manifest.database_member]
        targets = {
            name: settings.data_dir / PurePosixPath(name).relative_to(DATA) for name in files
        }
        if not overwrite:
            _refuse_non_empty(settings, kind, list(targets.values()))
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(
            prefix=".telepharm-restore-", dir=settings.data_dir
        ) as work:
            staged = Path(work)
            # every byte checked before anything is changed
            database = staged / manifest.database_member
            _extract_checked(tar, manifest, manifest.database_member, database)
            for index, name in enumerate(files):
                _extract_checked(tar, manifest, name, staged / f"file-{index}")
            if kind == "sqlite":
                _restore_sqlite(database, sqlite_path(settings))
            else:
                _restore_postgres(settings, database, overwrite=overwrite)
            for index, name in enumerate(files):
                target = targets[name]
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                member = tar.getmember(name)
                os.chmod(staged / f"file-{index}", member.mode & 0o700 or 0o600)
                os.replace(staged / f"file-{index}", target)
    if upgrade_to is not None:
        from ..db.migrate import upgrade

        upgrade(settings.database_url)
    return RestoreSummary(manifest, len(files), upgrade_to)


def _refuse_non_empty(settings: Settings, kind: str, targets: list[Path]) -> None:
    if kind == "sqlite":
        path = sqlite_path(settings)
        if path.exists() and _sqlite_has_tables(path):
            raise CliError(
                f"the database {path} is not empty: restore into a new one, or pass --overwrite "
                "to replace it"
            )
    else:
        env = libpq_env(make_url(settings.database_url))
        done = subprocess.run(
            [  # noqa: S607
                "psql",
                "-XAtq",
                "-c",
                "SELECT count(*) FROM pg_catalog.pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise CliError(f"cannot reach the database: {lines[-1] if lines else 'psql failed'}")
        if done.stdout.strip() != "0":
            raise CliError(
                f"the database {env.get('PGDATABASE', '')} is not empty: restore into a new "
                "one, or pass --overwrite to replace it"
            )
    present = [path for path in targets if path.exists()]
    if present:
        raise CliError(
            f"the data dir already has {present[0]} (and {len(present) - 1} more of the "
            "backup's files): restore into a new one, or pass --overwrite to replace them"
        )


def _sqlite_has_tables(path: Path) -> bool:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return bool(connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    except sqlite3.DatabaseError:
        return True  # not a database: not ours to replace without --overwrite
    finally:
        connection.close()


def _restore_sqlite(copy: Path, target: Path) -> None:
    """The checked copy into place: renamed over the target (after the old one's WAL files,
    which would otherwise be replayed onto it)."""
    connection = sqlite3.connect(copy)
    try:
        if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise CliError("the backup's database does not pass SQLite's check")
    except sqlite3.DatabaseError:
        raise CliError("the backup's database is not a SQLite database") from None
    finally:
        connection.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", "-journal"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    if copy.stat().st_dev == target.parent.stat().st_dev:
        os.replace(copy, target)
    else:
        shutil.copyfile(copy, target)


def _restore_postgres(settings: Settings, dump: Path, *, overwrite: bool) -> None:
    env = libpq_env(make_url(settings.database_url))
    if overwrite:
        # emptying and restoring in one transaction: a restore that fails leaves the database
        # as it was, never empty
        script = dump.with_name(dump.name + ".sql")
        _run(
            ["pg_restore", "--no-owner", "--no-privileges", "--file", str(script), str(dump)],
            env,
            "pg_restore",
        )
        _run(
            [
                "psql",
                "-Xq",
                "--single-transaction",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
                "-f",
                str(script),
            ],
            env,
            "restoring over the database",
        )
        return
    _run(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={env.get('PGDATABASE', '')}",
            str(dump),
        ],
        env,
        "pg_restore",
    )
