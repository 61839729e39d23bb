"""``telepharm user add | reset-mfa | disable`` as operators use them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import sqlalchemy as sa

from server.auth.credentials import SecretBox

PASSWORD = "a very long and private passphrase"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env = {**clean, "TELEPHARM_DATA_DIR": str(tmp_path / "var"), "TELEPHARM_LOG_LEVEL": "WARNING"}
    for args in (
        ["migrate"],
        ["pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "P"],
    ):
        assert run(env, *args).returncode == 0
    return env


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def add(env: dict[str, str], username: str = "Alice", role: str = "pharmacist", **kw: str) -> str:
    result = run(
        env,
        "user",
        "add",
        "--pharmacy",
        kw.get("pharmacy", "1234567"),
        "--username",
        username,
        "--role",
        role,
        "--password-stdin",
        stdin=kw.get("password", PASSWORD) + "\n",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def seed_of(output: str) -> str:
    uri = next(line for line in output.splitlines() if line.startswith("otpauth://"))
    return parse_qs(urlparse(uri).query)["secret"][0]


def users(tmp_path: Path) -> list[sa.Row[tuple[str, str, str, str | None, str | None]]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'hub.sqlite3'}")
    with engine.connect() as conn:
        rows = list(
            conn.execute(
                sa.text(
                    "SELECT username, role, password_hash, totp_secret, disabled_at, id FROM users"
                )
            )
        )
    engine.dispose()
    return rows


def test_add_user_prints_a_working_enrolment(env: dict[str, str], tmp_path: Path) -> None:
    output = add(env)
    assert "user alice added (pharmacist at 1234567)" in output
    seed = seed_of(output)
    assert "█" in output or "▀" in output  # the QR code, drawn on the terminal
    ((username, role, password_hash, sealed, disabled, user_id),) = users(tmp_path)
    assert (username, role, disabled) == ("alice", "pharmacist", None)
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash
    assert sealed is not None
    assert seed not in sealed
    box = SecretBox.load(tmp_path / "var" / "keys")
    assert box.open(sealed, f"totp:{uuid.UUID(user_id)}") == seed
    assert pyotp.TOTP(seed).now()  # a valid base32 seed


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--role", "owner"], PASSWORD, "invalid choice: 'owner'"),
        (["--username", "a"], PASSWORD, "--username must be 3 to 64 characters"),
        (["--username", "bob smith"], PASSWORD, "--username must be 3 to 64 characters"),
        ([], "short", "at least 12 characters"),
        (["--pharmacy", "7654321"], PASSWORD, "no pharmacy with NCPDPID 7654321"),
    ],
)
def test_bad_arguments_get_one_line(
    env: dict[str, str], args: list[str], stdin: str, message: str
) -> None:
    base = {"--pharmacy": "1234567", "--username": "carol", "--role": "technician"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    flat = [part for pair in base.items() for part in pair]
    result = run(env, "user", "add", *flat, "--password-stdin", stdin=stdin + "\n")
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # argparse adds its usage line


def test_username_taken_and_no_terminal(env: dict[str, str]) -> None:
    add(env)
    again = run(
        env,
        *[
            "user",
            "add",
            "--pharmacy",
            "1234567",
            "--username",
            "ALICE",
            "--role",
            "technician",
            "--password-stdin",
        ],
        stdin=PASSWORD + "\n",
    )
    assert again.returncode == 1
    assert again.stderr.strip() == "telepharm: the username alice is taken"
    prompt = run(
        env, *["user", "add", "--pharmacy", "1234567", "--username", "dave", "--role", "pharmacist"]
    )
    assert prompt.returncode == 1
    assert "use --password-stdin" in prompt.stderr


def test_reset_mfa_and_disable(env: dict[str, str], tmp_path: Path) -> None:
    old_seed = seed_of(add(env))
    reset = run(env, "user", "reset-mfa", "--username", "alice")
    assert reset.returncode == 0, reset.stderr
    new_seed = seed_of(reset.stdout)
    assert new_seed != old_seed
    disabled = run(env, "user", "disable", "--username", "alice")
    assert disabled.returncode == 0, disabled.stderr
    assert users(tmp_path)[0][4] is not None
    twice = run(env, "user", "disable", "--username", "alice")
    assert twice.stderr.strip() == "telepharm: alice is already disabled"
    nobody = run(env, "user", "reset-mfa", "--username", "nobody")
    assert nobody.stderr.strip() == "telepharm: no user nobody"
    exported = run(env, "audit", "export", "--since", "2000-01-01")
    actions = [line for line in exported.stdout.splitlines() if '"user.' in line]
    assert len(actions) == 3
    assert PASSWORD not in exported.stdout
    assert old_seed not in exported.stdout
    assert new_seed not in exported.stdout
    assert run(env, "audit", "verify").returncode == 0
