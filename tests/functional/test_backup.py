"""`telepharm backup` and `telepharm restore` as an operator runs them: a hub with data is
backed up, restored into a fresh database and data dir, its audit chain verifies and the
restored hub serves the contract's steps (embedded SQLite and PostgreSQL); bad files and
occupied targets are refused in one line, changing nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from server.backup.archive import libpq_env
from tests.conftest import BACKENDS, PG_URL
from tests.functional.intake_helpers import sample_newrx
from tests.support.processes import free_port, run_cli, serving
from tests.support.tokens import client_token

pytestmark = pytest.mark.slow

#: the code's migration head (what a backup of a migrated hub records)
HEAD = sorted(
    p.name[:4] for p in (Path(__file__).parents[2] / "server/db/migrations/versions").glob("0*.py")
)[-1]
PHARMACY = ["pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "Main"]


def _env(data_dir: Path, database_url: str = "", port: int = 8080) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env.update(
        TELEPHARM_DATA_DIR=str(data_dir),
        TELEPHARM_LOG_LEVEL="WARNING",
        TELEPHARM_ISSUER=f"http://127.0.0.1:{port}",
    )
    if database_url:
        env["TELEPHARM_DATABASE_URL"] = database_url
    return env


def ok(env: dict[str, str], *args: str) -> str:
    result = run_cli(env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(env: dict[str, str], *args: str) -> str:
    result = run_cli(env, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("telepharm: ")
    return lines[0]


def _call(url: str, token: str, body: bytes | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/xml"
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return bytes(response.read())


def _listed(base: str, token: str, count: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = json.loads(_call(f"{base}/api/v1/prescriptions", token))["items"]
        if len(items) == count and all(rx["state"] == "awaiting_review" for rx in items):
            return list(items)
        time.sleep(0.3)
    raise AssertionError("the prescriptions were not checked")


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """The source hub's database URL and an empty one to restore into ("" for SQLite: the
    data dir's own file)."""
    if request.param == "sqlite":
        yield "", ""
        return
    base = make_url(PG_URL)
    names = [f"{base.database}_bk_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    admin = libpq_env(base)
    for name in names:
        subprocess.run(["psql", "-Xqc", f'CREATE DATABASE "{name}"'], env=admin, check=True)
    try:
        urls = [base.set(database=name).render_as_string(hide_password=False) for name in names]
        yield urls[0], urls[1]
    finally:
        for name in names:
            subprocess.run(
                ["psql", "-Xqc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                env=admin,
                check=False,
            )


def test_a_restored_hub_verifies_and_serves(tmp_path: Path, databases: tuple[str, str]) -> None:
    source_url, target_url = databases
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    source = _env(tmp_path / "source", source_url, port)
    ok(source, "migrate")
    ok(source, *PHARMACY)
    sender = json.loads(ok(source, "client", "add", "--name", "EHR", "--scope", "script:send"))
    reader = json.loads(
        ok(source, "client", "add", "--name", "PMS", "--scope", "rx:read", "--pharmacy", "1234567")
    )
    with serving(source, port, tmp_path / "source.log"):
        send = client_token(base, sender["client_id"], sender["client_secret"], "script:send")
        assert b"<Status>" in _call(f"{base}/ncpdp/script", send, sample_newrx())
        read = client_token(base, reader["client_id"], reader["client_secret"], "rx:read")
        (before,) = _listed(base, read, 1)
    assert (tmp_path / "source" / "keys" / "signing.jwks").exists()  # made by serve

    backup = tmp_path / "backups" / "hub.tar"
    said = ok(source, "backup", str(backup))
    assert f"to {backup}" in said
    assert backup.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in backup.parent.iterdir()] == ["hub.tar"]  # nothing half-written
    with tarfile.open(backup) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert "data/keys/signing.jwks" in names
    assert "data/keys/secrets.key" in names
    assert not any("broker.sqlite3" in n or n.endswith("hub.sqlite3") for n in names)
    assert manifest["database"]["migration_head"] == HEAD

    target = _env(tmp_path / "restored", target_url, port)
    said = ok(target, "restore", str(backup))
    assert "1 pharmacies, 2 clients, 1 prescriptions" in said
    assert "keys: " in said
    assert (tmp_path / "restored" / "keys" / "signing.jwks").stat().st_mode & 0o777 == 0o600
    assert "audit chain intact" in ok(target, "audit", "verify")
    # a second restore onto the restored state is refused: nothing is overwritten unasked
    assert "is not empty" in refused(target, "restore", str(backup))

    with serving(target, port, tmp_path / "restored.log"):
        send = client_token(base, sender["client_id"], sender["client_secret"], "script:send")
        assert b"<Status>" in _call(f"{base}/ncpdp/script", send, sample_newrx())
        read = client_token(base, reader["client_id"], reader["client_secret"], "rx:read")
        old = json.loads(_call(f"{base}/api/v1/prescriptions/{before['id']}", read))
        assert old["message_id"] == before["message_id"]
        assert len(_listed(base, read, 2)) == 2
    assert "audit chain intact" in ok(target, "audit", "verify")


@pytest.fixture
def made(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A small embedded hub and a backup of it."""
    source = _env(tmp_path / "source")
    ok(source, "migrate")
    ok(source, *PHARMACY)
    ok(source, "keys", "rotate")
    backup = tmp_path / "hub.tar"
    ok(source, "backup", str(backup))
    return source, backup


def _rewritten(backup: Path, to: Path, change: dict[str, bytes]) -> Path:
    """A copy of ``backup`` with the members in ``change`` given other bytes."""
    with tarfile.open(backup) as old, tarfile.open(to, "w") as new:
        for member in old.getmembers():
            data = change.get(member.name) or old.extractfile(member).read()  # type: ignore[union-attr]
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return to


def test_bad_backup_files_are_refused(tmp_path: Path, made: tuple[dict[str, str], Path]) -> None:
    _, backup = made
    target = _env(tmp_path / "target")
    assert refused(target, "restore", str(tmp_path / "nope.tar")) == (
        f"telepharm: no such backup file: {tmp_path / 'nope.tar'}"
    )
    corrupt = tmp_path / "corrupt.tar"
    corrupt.write_bytes(os.urandom(4096))
    assert "is not a telepharm backup" in refused(target, "restore", str(corrupt))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(backup.read_bytes()[:20000])
    assert "telepharm backup" in refused(target, "restore", str(cut))

    with tarfile.open(backup) as tar:
        key = tar.extractfile("data/keys/signing.jwks").read()  # type: ignore[union-attr]
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    altered = _rewritten(
        backup, tmp_path / "altered.tar", {"data/keys/signing.jwks": bytes(b ^ 1 for b in key)}
    )
    assert refused(target, "restore", str(altered)) == (
        "telepharm: checksum mismatch for data/keys/signing.jwks: the backup file is damaged "
        "or altered"
    )
    manifest["database"]["migration_head"] = "9999"
    newer = _rewritten(
        backup, tmp_path / "newer.tar", {"manifest.json": json.dumps(manifest).encode()}
    )
    assert f"migration 9999, which this hub does not know (its head is {HEAD})" in refused(
        target, "restore", str(newer)
    )
    # nothing was written by the refusals
    assert not (tmp_path / "target").exists() or not any((tmp_path / "target").rglob("*"))


def test_an_occupied_target_is_refused_unless_overwritten(
    tmp_path: Path, made: tuple[dict[str, str], Path]
) -> None:
    source, backup = made
    assert "is not empty" in refused(source, "restore", str(backup))
    fresh = _env(tmp_path / "fresh")
    (tmp_path / "fresh" / "keys").mkdir(parents=True)
    (tmp_path / "fresh" / "keys" / "signing.jwks").write_bytes(b"x" * 32)
    assert "the data dir already has" in refused(fresh, "restore", str(backup))
    said = ok(source, "restore", "--overwrite", str(backup))
    assert "1 pharmacies" in said
    assert "audit chain intact" in ok(source, "audit", "verify")


def test_an_overwrite_that_fails_leaves_the_postgresql_database_as_it_was(
    tmp_path: Path, databases: tuple[str, str]
) -> None:
    """The emptying and the restore are one transaction: overwritten, the data is the
    backup's; a restore that fails midway leaves the database whole, never empty."""
    source_url, _ = databases
    if not source_url:
        pytest.skip("PostgreSQL's restore (SQLite's is a rename)")
    source = _env(tmp_path / "source", source_url)
    ok(source, "migrate")
    ok(source, *PHARMACY)
    backup = tmp_path / "hub.tar"
    ok(source, "backup", str(backup))
    two = ["pharmacy", "add", "--ncpdpid", "7654321", "--npi", "1000000012", "--name", "Two"]
    ok(source, *two)
    admin = libpq_env(make_url(source_url))

    def psql(sql: str) -> str:
        done = subprocess.run(
            ["psql", "-XtAqc", sql], env=admin, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    ok(source, "restore", "--overwrite", str(backup))
    assert psql("SELECT count(*) FROM pharmacies") == "1"  # the backup's; the later one gone
    ok(source, *two)
    # the database refuses to make tables (an event trigger outside the public schema): the
    # restore fails after its emptying
    psql(
        "CREATE SCHEMA guard; CREATE FUNCTION guard.refuse() RETURNS event_trigger"
        " LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'no tables today'; END$$;"
        " CREATE EVENT TRIGGER no_tables ON ddl_command_start WHEN TAG IN ('CREATE TABLE')"
        " EXECUTE FUNCTION guard.refuse()"
    )
    assert "restoring over the database failed" in refused(
        source, "restore", "--overwrite", str(backup)
    )
    psql("DROP EVENT TRIGGER no_tables")
    assert psql("SELECT count(*) FROM pharmacies") == "2"  # untouched


def test_backup_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    env = _env(tmp_path / "var")
    assert "run telepharm migrate first" in refused(env, "backup", str(tmp_path / "b.tar"))
    ok(env, "migrate")
    assert "is a directory" in refused(env, "backup", str(tmp_path))


def test_a_backup_written_into_the_data_dir_leaves_itself_out(tmp_path: Path) -> None:
    env = _env(tmp_path / "var")
    ok(env, "migrate")
    ok(env, "backup", str(tmp_path / "var" / "first.tar"))
    ok(env, "backup", str(tmp_path / "var" / "backups" / "second.tar"))
    with tarfile.open(tmp_path / "var" / "backups" / "second.tar") as tar:
        names = tar.getnames()
    assert "data/first.tar" in names  # an earlier backup is a file of the data dir like others
    assert not any("second.tar" in n or ".telepharm-" in n for n in names)


def test_a_backup_of_an_older_schema_is_upgraded_on_restore(tmp_path: Path) -> None:
    from server.db.migrate import downgrade

    env = _env(tmp_path / "old")
    ok(env, "migrate")
    ok(env, *PHARMACY)
    downgrade(f"sqlite+aiosqlite:///{tmp_path / 'old' / 'hub.sqlite3'}", "0037")
    ok(env, "backup", str(tmp_path / "old.tar"))
    target = _env(tmp_path / "new")
    said = ok(target, "restore", str(tmp_path / "old.tar"))
    assert f"at migration 0037, upgraded to {HEAD}: 1 pharmacies" in said
    assert "audit chain intact" in ok(target, "audit", "verify")
