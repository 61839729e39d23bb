"""The archive of controlled-substance records as received (21 CFR 1311.205(b)(5), 1311.210):
its table, the hub's archive signing key, and checking the archive (``telepharm audit verify``).

Each row names a prescription and the message it came in (whose original bytes and SHA-256
``inbound_messages`` keeps), holds the record the hub signed (:class:`ArchiveRecord`: the
message's hash, its schedule, what came of the practitioner's signature and whether it is
"verified on receipt"), the signature and the key that made it. Rows are written once, by
:mod:`.receipt`, never changed.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, select
from sqlalchemy.orm import Mapped, mapped_column

from eprescribe.epcs import ArchiveKey, ArchiveRecord, ArchiveSignatureError

from ..auth.keys import create_once
from ..db import Database
from ..db.models import Base, BigId, utcnow
from ..settings import Settings, SettingsError
from .models import InboundMessage

log = logging.getLogger(__name__)


class ControlledArchive(Base):
    """A controlled-substance record (or one that came with a practitioner's signature) as
    the hub signed and archived it on receipt."""

    __tablename__ = "epcs_archives"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prescription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prescriptions.id"), unique=True)
    inbound_message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inbound_messages.id"))
    #: the signed record (ArchiveRecord.to_json)
    record: Mapped[dict[str, Any]]
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    verified_on_receipt: Mapped[bool]
    #: what verifying the practitioner's signature found (Verification.to_json), if one came
    verification: Mapped[dict[str, Any] | None]
    archived_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def load_archive_key(settings: Settings) -> ArchiveKey:
    """The hub's archive signing key; the default one is made on first use (as the token
    signing key is), a configured one must exist."""
    path = settings.archive_key_path
    if not settings.archive_key_file and not path.exists():
        create_once(path, ArchiveKey.generate().private_pem())
    try:
        earlier = _earlier_keys(settings.archive_earlier_keys)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"TELEPHARM_ARCHIVE_EARLIER_KEYS: {exc}") from exc
    try:
        return ArchiveKey.from_pem(path.read_bytes(), earlier)
    except (OSError, ValueError, TypeError) as exc:
        raise SettingsError(f"TELEPHARM_ARCHIVE_KEY {path}: {exc}") from exc


def _earlier_keys(where: str) -> bytes:
    if not where:
        return b""
    path = Path(where)
    files = sorted(path.glob("*.pem")) if path.is_dir() else [path]
    return b"\n".join(file.read_bytes() for file in files)


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    records: int
    problems: tuple[str, ...] = ()

    @property
    def intact(self) -> bool:
        return not self.problems


_PAGE = 500


def check_row(key: ArchiveKey, row: ControlledArchive, raw: bytes | None) -> str | None:
    """What is wrong with one archived record, or None."""
    try:
        record = ArchiveRecord.from_json(dict(row.record))
    except TypeError:
        return "its record is not one the hub writes"
    if raw is None:
        return "the original message is gone"
    if (
        record.prescription_id != str(row.prescription_id)
        or record.inbound_message_id != str(row.inbound_message_id)
        or record.verified_on_receipt != row.verified_on_receipt
    ):
        return "its columns disagree with the signed record"
    try:
        key.check(record, row.signature, row.key_id, raw)
    except ArchiveSignatureError as exc:
        return str(exc)
    return None


async def verify_archive(db: Database, settings: Settings) -> ArchiveReport:
    """Check every archived record's signature against the hub's key and the original bytes
    (the key is not made here: without it, every record is a problem)."""
    path = settings.archive_key_path
    key = load_archive_key(settings) if path.exists() else None
    count, problems = 0, []
    after = 0
    async with db.sessions() as session:
        while True:
            page = (
                await session.execute(
                    select(ControlledArchive, InboundMessage.raw)
                    .outerjoin(
                        InboundMessage, InboundMessage.id == ControlledArchive.inbound_message_id
                    )
                    .where(ControlledArchive.id > after)
                    .order_by(ControlledArchive.id)
                    .limit(_PAGE)
                )
            ).all()
            for row, raw in page:
                count += 1
                problem = check_row(key, row, raw) if key else f"the archive key {path} is missing"
                if problem is not None:
                    problems.append(f"archive of prescription {row.prescription_id}: {problem}")
            if len(page) < _PAGE:
                break
            after = page[-1][0].id
    return ArchiveReport(count, tuple(problems))
