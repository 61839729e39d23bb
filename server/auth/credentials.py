"""User credentials: argon2id passwords and TOTP second factors.

Passwords: argon2id with argon2-cffi's defaults (RFC 9106 low-memory: t=3, m=64 MiB, p=4,
about 130 ms), hashed and checked in a small pool of its own (half the CPUs, at least one), so
a burst of sign-ins queues there instead of taking every core from the rest of the hub; at
least 12 and at most 128 characters, no composition rules (ASVS 6.2). A lookup for an unknown
user still checks a dummy hash, so response time does not tell whether the account exists.

TOTP (RFC 6238, pyotp): 160-bit seeds, encrypted at rest with AES-256-GCM under a key kept in
the data dir (``keys/secrets.key``); a code is accepted within one step of now and only if its
time step is later than the last accepted one, so a code cannot be replayed (ASVS 6.5.1).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyotp
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyotp.exceptions import OTPVerificationError

from .keys import create_once

PASSWORD_MIN = 12
PASSWORD_MAX = 128
ISSUER_NAME = "Telepharmacy Hub"
SECRET_KEY_FILE = "secrets.key"  # noqa: S105  (a file name)

_HASHER = PasswordHasher()
#: argon2 runs here, never in the default executor: each hash already uses several threads
_ARGON2 = ThreadPoolExecutor(max(1, (os.cpu_count() or 1) // 2), thread_name_prefix="argon2")
_DUMMY = _HASHER.hash("not a password of anyone: timing equaliser")


class PasswordPolicyError(ValueError):
    """The password does not meet the policy; the message says why."""


def check_policy(password: str, username: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise PasswordPolicyError(f"the password must have at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise PasswordPolicyError(f"the password must have at most {PASSWORD_MAX} characters")
    if username.lower() in password.lower():
        raise PasswordPolicyError("the password must not contain the username")


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_ARGON2, _HASHER.hash, password)


async def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no stored hash, the same work and False."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_ARGON2, _matches, stored_hash, password)


def _matches(stored_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def load_key(path: Path) -> bytes:
    """A 256-bit key kept in the data dir, made on first use (by whichever process is first)."""
    if not path.exists():
        create_once(path, os.urandom(32))
    key = path.read_bytes()
    if len(key) != 32:
        raise ValueError(f"{path} must hold 32 bytes")
    return key


class SecretBox:
    """AES-256-GCM for secrets at rest (TOTP seeds), keyed from the data dir."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, keys_dir: Path) -> SecretBox:
        return cls(load_key(keys_dir / SECRET_KEY_FILE))

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str, context: str) -> str:
        raw = base64.urlsafe_b64decode(token)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()


def totp_context(user_id: object) -> str:
    """Associated data binding a sealed seed to its user (a seed copied to another row fails)."""
    return f"totp:{user_id}"


def new_totp_seed() -> str:
    return pyotp.random_base32(32)  # 32 base32 characters: 160 bits


def enrolment_uri(seed: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (shown as a QR code)."""
    return pyotp.TOTP(seed).provisioning_uri(name=username, issuer_name=ISSUER_NAME)


def accept_totp(
    seed: str, code: str, last_step: int | None, now: float | None = None
) -> int | None:
    """The time step of ``code`` if it is valid now and newer than ``last_step``, else None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not (code.isascii() and code.isdigit()):
        return None
    try:
        step = pyotp.TOTP(seed).verify_and_get_timecode(
            code, for_time=time.time() if now is None else now, valid_window=1
        )
    except OTPVerificationError:
        return None
    if last_step is not None and step <= last_step:
        return None  # replayed (or older than one already used)
    return step


#: the key that encrypts the stored TOTP seeds
SECRETS: web.AppKey[SecretBox] = web.AppKey("secrets")
