"""Reading a JWT's header and claims without verifying it (to assert what the hub issued)."""

from __future__ import annotations

import base64
import json


def decode_unverified(token: str) -> tuple[dict[str, object], dict[str, object]]:
    def part(segment: str) -> dict[str, object]:
        return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))

    header, payload, _ = token.split(".")
    return part(header), part(payload)
