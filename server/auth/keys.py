"""Token signing keys, kept in the data dir (ES256, P-256).

``keys/signing.jwks`` holds private JWKs, newest first: the first signs, all verify and are
published at ``/oauth/jwks``. ``telepharm keys rotate`` prepends a new key and keeps the
previous ones (three in all), so tokens signed before a rotation stay valid until they expire;
hub processes pick the new key up when restarted. Processes sharing a data dir race safely to
create the first key (link(2) is atomic).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, Key, KeySet

ALGORITHM = "ES256"
FILENAME = "signing.jwks"


class KeyFileError(RuntimeError):
    """The key file exists but cannot be used."""


@dataclass(frozen=True, slots=True)
class SigningKeys:
    active: KeySet  # exactly one key: the one that signs
    verification: KeySet  # every key still accepted

    def public_jwks(self) -> dict[str, Any]:
        return dict(self.verification.as_dict(private=False))


def new_key() -> ECKey:
    return ECKey.generate_key(
        "P-256", parameters={"alg": ALGORITHM, "use": "sig"}, private=True, auto_kid=True
    )


def create_once(path: Path, data: bytes) -> None:
    """Write ``path`` (mode 0600) unless it exists; of racing processes, the first one wins."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.link(tmp, path)  # fails if another process won the race: we then use its key
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def load_signing_keys(keys_dir: Path) -> SigningKeys:
    path = keys_dir / FILENAME
    if not path.exists():
        create_once(path, json.dumps({"keys": [new_key().as_dict(private=True)]}).encode())
    try:
        keys: list[Key] = [ECKey.import_key(k) for k in json.loads(path.read_text())["keys"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"unusable signing key file {path}: {exc}") from exc
    if not keys or any(not k.is_private or not k.kid for k in keys):
        raise KeyFileError(f"{path} must hold private EC keys with a kid")
    return SigningKeys(active=KeySet(keys[:1]), verification=KeySet(keys))


#: keys kept after a rotation: the signing one and the two before it
KEEP = 3


def rotate(keys_dir: Path, keep: int = KEEP) -> tuple[str, list[str]]:
    """Prepend a new signing key; returns its kid and the kids of the keys still kept."""
    path = keys_dir / FILENAME
    current = load_signing_keys(keys_dir)
    key = new_key()
    kept = [key.as_dict(private=True)] + [
        k.as_dict(private=True) for k in current.verification.keys[: keep - 1]
    ]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.write(fd, json.dumps({"keys": kept}).encode())
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return str(key.kid), [str(k["kid"]) for k in kept[1:]]
