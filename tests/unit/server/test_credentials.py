"""Passwords, sealed secrets and TOTP codes."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pyotp
import pytest
from cryptography.exceptions import InvalidTag

from server.auth.credentials import (
    PasswordPolicyError,
    SecretBox,
    accept_totp,
    check_policy,
    enrolment_uri,
    hash_password,
    new_totp_seed,
    password_matches,
)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short pass", "at least 12"),
        ("x" * 129, "at most 128"),
        ("my name is alice.smith!", "username"),
    ],
)
def test_password_policy(password: str, why: str) -> None:
    with pytest.raises(PasswordPolicyError, match=why):
        check_policy(password, "alice.smith")


def test_long_passphrases_with_any_characters_are_fine() -> None:
    check_policy("correct horse battery staple ✓ " * 4, "alice")


async def test_argon2id_hash_and_check() -> None:
    stored = await hash_password("a long enough passphrase")
    assert stored.startswith("$argon2id$")
    assert await password_matches(stored, "a long enough passphrase")
    assert not await password_matches(stored, "a long enough passphrasE")
    assert not await password_matches("not a hash", "anything at all")


async def test_password_checks_queue_in_a_bounded_pool_of_their_own() -> None:
    hashed = await hash_password("a long enough password")
    checks = (password_matches(hashed, f"guess number {n}") for n in range(6))
    assert not any(await asyncio.gather(*checks))
    argon2 = [t for t in threading.enumerate() if t.name.startswith("argon2")]
    assert 1 <= len(argon2) <= max(1, (os.cpu_count() or 1) // 2)  # not one thread per check


async def test_unknown_user_costs_the_same_and_fails() -> None:
    started = time.perf_counter()
    assert not await password_matches(None, "not a password of anyone: timing equaliser")
    assert time.perf_counter() - started > 0.02  # a real argon2 check ran


def test_secret_box_round_trip_and_binding(tmp_path: Path) -> None:
    box = SecretBox.load(tmp_path)
    assert (tmp_path / "secrets.key").stat().st_mode & 0o777 == 0o600
    sealed = box.seal("JBSWY3DPEHPK3PXP", "totp:user-1")
    assert "JBSWY3DP" not in sealed
    assert SecretBox.load(tmp_path).open(sealed, "totp:user-1") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(InvalidTag):
        box.open(sealed, "totp:user-2")  # copied onto another account


def test_totp_accepts_once_within_one_step() -> None:
    seed = new_totp_seed()
    assert len(seed) == 32
    totp = pyotp.TOTP(seed)
    now = 1_800_000_000.0
    step = accept_totp(seed, totp.at(now), None, now)
    assert step == totp.timecode(now)
    assert accept_totp(seed, totp.at(now), step, now) is None  # replay
    assert accept_totp(seed, totp.at(now - 30), None, now) == step - 1  # clock skew: one step
    assert accept_totp(seed, totp.at(now - 90), None, now) is None  # too old
    assert accept_totp(seed, totp.at(now + 30), step, now) == step + 1
    assert accept_totp(seed, "12345", None, now) is None
    assert accept_totp(seed, "abcdef", None, now) is None
    assert accept_totp(seed, "²²²²²²", None, now) is None
    assert accept_totp(seed, "\u0661\u0662\u0663\u0664\u0665\u0666", None, now) is None


def test_enrolment_uri() -> None:
    seed = new_totp_seed()
    uri = enrolment_uri(seed, "alice")
    assert uri.startswith(f"otpauth://totp/Telepharmacy%20Hub:alice?secret={seed}")
