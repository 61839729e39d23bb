"""A consult's invite token kept sealed (AES-GCM under the data dir's secret key, bound to the
consult's ID), beside the hash the invite is checked with: so the patient, signed in to their
own page, can be given the link again without the hub storing it readable."""

from __future__ import annotations

import uuid

from ..auth.credentials import SecretBox
from ..settings import Settings


def seal_invite(settings: Settings, consult_id: str, token: str) -> str:
    return SecretBox.load(settings.keys_dir).seal(token, _context(consult_id))


def open_invite(settings: Settings, consult_id: uuid.UUID, sealed: str) -> str:
    """The consult's invite link, from its sealed token."""
    token = SecretBox.load(settings.keys_dir).open(sealed, _context(str(consult_id)))
    return f"{settings.issuer}/consult/{token}"


def _context(consult_id: str) -> str:
    return f"consult-invite:{consult_id}"
