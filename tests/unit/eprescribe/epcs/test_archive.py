"""The hub's archive signature: ECDSA P-256 over the record's canonical JSON."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from eprescribe.epcs import ArchiveKey, ArchiveRecord, ArchiveSignatureError

RAW = b"<Message>synthetic</Message>"
RECORD = ArchiveRecord(
    prescription_id="00000000-0000-0000-0000-000000000001",
    inbound_message_id="00000000-0000-0000-0000-000000000002",
    message_id="MSG-1",
    sender="D:SENDER",
    sha256=hashlib.sha256(RAW).hexdigest(),
    received_at="2026-01-01T00:00:00+00:00",
    schedule="C48675",
    practitioner_signature="verified",
    verification="verified",
    verified_on_receipt=True,
    archived_at="2026-01-01T00:00:01+00:00",
)


def test_a_signed_record_checks_and_survives_a_round_trip_through_pem_and_json() -> None:
    key = ArchiveKey.generate()
    signature = key.sign(RECORD)
    again = ArchiveKey.from_pem(key.private_pem())
    assert again.id == key.id
    again.check(ArchiveRecord.from_json(RECORD.to_json()), signature, key.id, RAW)


def test_any_change_is_found() -> None:
    key = ArchiveKey.generate()
    signature = key.sign(RECORD)
    altered = dataclasses.replace(RECORD, verified_on_receipt=False)
    with pytest.raises(ArchiveSignatureError, match="record or its signature was altered"):
        key.check(altered, signature, key.id, RAW)
    with pytest.raises(ArchiveSignatureError, match="original message bytes were altered"):
        key.check(RECORD, signature, key.id, RAW + b" ")
    with pytest.raises(ArchiveSignatureError, match="which the hub lacks"):
        ArchiveKey.generate().check(RECORD, signature, key.id, RAW)


def test_only_p256_keys() -> None:
    with pytest.raises(ValueError, match="P-256"):
        ArchiveKey(ec.generate_private_key(ec.SECP384R1()))


def test_earlier_keys_still_check_what_they_signed() -> None:
    old, new = ArchiveKey.generate(), ArchiveKey.generate()
    signature = old.sign(RECORD)
    old_file = old.private_pem()  # the old key file itself, or its public half

    loaded = serialization.load_pem_private_key(old.private_pem(), password=None)
    public_pem = loaded.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for earlier in (old_file, public_pem, public_pem + b"\n" + ArchiveKey.generate().private_pem()):
        rotated = ArchiveKey.from_pem(new.private_pem(), earlier)
        assert rotated.id == new.id  # the new key signs
        rotated.check(RECORD, signature, old.id, RAW)
    with pytest.raises(ArchiveSignatureError, match="which the hub lacks"):
        ArchiveKey.from_pem(new.private_pem()).check(RECORD, signature, old.id, RAW)
