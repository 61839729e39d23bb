"""The payment provider's webhook signature (Stripe's scheme): the header
``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=...]``.

Verified over the raw bytes as received (a body parsed and written again is another body), in
constant time, against every ``v1`` the header carries (the provider sends two while a secret
is rolled), and only within ``tolerance`` seconds of now both ways, so a captured delivery
cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

#: the provider's own default: five minutes
TOLERANCE: Final = 300
#: a header longer than this is not one the provider sends
HEADER_MAX: Final = 2048


class SignatureRefused(ValueError):
    def __init__(self, code: str, words: str) -> None:
        super().__init__(words)
        self.code = code
        self.words = words


def sign(secret: str, payload: bytes, timestamp: int) -> str:
    """The header value the provider would send (for tests and the local provider's stand-in)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, payload)}"


def verify_signature(
    header: str | None,
    payload: bytes,
    secrets: Sequence[str],
    now: float,
    tolerance: int = TOLERANCE,
) -> int:
    """The signed timestamp when some ``v1`` matches one of ``secrets``; raises
    :class:`SignatureRefused` otherwise."""
    if not header or len(header) > HEADER_MAX:
        raise SignatureRefused("signature_missing", "The Stripe-Signature header is missing.")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureRefused(
            "signature_malformed", "The Stripe-Signature header has no timestamp or no v1."
        )
    if abs(now - timestamp) > tolerance:
        raise SignatureRefused(
            "signature_stale", f"The signature is more than {tolerance} s from now."
        )
    for secret in secrets:
        expected = _mac(secret, timestamp, payload)
        if any(hmac.compare_digest(expected, given) for given in signatures):
            return timestamp
    raise SignatureRefused("signature_invalid", "No signature matches the endpoint's secret.")


def _mac(secret: str, timestamp: int, payload: bytes) -> str:
    signed_payload = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed_payload, hashlib.sha256).hexdigest()
