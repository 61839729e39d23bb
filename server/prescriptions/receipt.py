"""EPCS on receipt (21 CFR 1311.210): before a prescription's checks run, verify the
practitioner's signature that came with it and sign and archive the controlled-substance
record, once.

For the prescriptions of a chunk that are controlled (or came with signature parts) and have
no archive row yet: read their original bytes (a short read), verify with no transaction open
(a CRL may be fetched over the network), sign each record with the hub's archive key and
insert the rows with their audit entries in one short transaction (a row another run inserted
first wins). Prescriptions archived before (checked again later) reuse what was found then:
"verified on receipt" is what was true on receipt. The checks get the verification in their
context (``CheckContext.epcs``) and turn a failure into ``EPCS_SIGNATURE_INVALID``.
"""

from __future__ import annotations

import dataclasses
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from eprescribe.checks import CheckContext
from eprescribe.epcs import (
    ArchiveKey,
    ArchiveRecord,
    CrlCache,
    CrlUnavailable,
    TrustStore,
    Verification,
    Verifier,
    load_crls,
)
from eprescribe.ncpdp import DigitalSignature

from .. import audit
from ..db.models import utcnow
from ..settings import Settings, SettingsError
from .archive import ControlledArchive, load_archive_key
from .models import InboundMessage, Prescription

log = logging.getLogger(__name__)
ACTOR = audit.Actor("system", "epcs")
#: the largest CRL the hub fetches
CRL_MAX_BYTES: Final = 20 * 1024 * 1024
T = TypeVar("T")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only (urllib would follow one to ftp too)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not newurl.lower().startswith(("http://", "https://")):
            raise CrlUnavailable("redirected away from http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class HttpCrlFetcher:
    """Fetches CRLs over http(s) with a timeout and a size bound (the CrlFetcher port)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._opener = urllib.request.build_opener(_HttpOnlyRedirects())

    def fetch(self, url: str) -> bytes:
        if not url.lower().startswith(("http://", "https://")):
            raise CrlUnavailable("only http and https distribution points are fetched")
        request = urllib.request.Request(url, headers={"User-Agent": "telepharm-hub"})  # noqa: S310 (scheme checked above)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                data: bytes = response.read(CRL_MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise CrlUnavailable(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CrlUnavailable(f"unreachable ({type(exc).__name__})") from None
        if len(data) > CRL_MAX_BYTES:
            raise CrlUnavailable("the CRL is larger than the hub fetches")
        return data


def _has_parts(signature: DigitalSignature | None) -> bool:
    return signature is not None and bool(signature.signature_value or signature.x509_data)


def _practitioner(signature: DigitalSignature | None, found: Verification | None) -> str:
    if found is not None:
        return "verified" if found.verified else "failed"
    if signature is not None and signature.indicator:
        return "indicator"
    return "absent"


class Receipts:
    """Verifies and archives on receipt, for the checker (sync: it runs in the worker)."""

    def __init__(
        self, sessions: sessionmaker[Session], verifier: Verifier, key: ArchiveKey
    ) -> None:
        self._sessions = sessions
        self._verifier = verifier
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings, sessions: sessionmaker[Session]) -> Receipts:
        try:
            roots = (
                TrustStore.from_path(Path(settings.epcs_trust_roots))
                if settings.epcs_trust_roots
                else TrustStore()
            )
        except (OSError, ValueError) as exc:
            raise SettingsError(f"TELEPHARM_EPCS_TRUST_ROOTS: {exc}") from exc
        try:
            crls = load_crls(Path(settings.epcs_crls)) if settings.epcs_crls else ()
        except (OSError, CrlUnavailable) as exc:
            raise SettingsError(f"TELEPHARM_EPCS_CRLS: {exc}") from exc
        cache = CrlCache(HttpCrlFetcher(settings.crl_timeout))
        return cls(sessions, Verifier(roots, crls, cache), load_archive_key(settings))

    def attach(
        self, contexts: Mapping[uuid.UUID, tuple[CheckContext, T]]
    ) -> dict[uuid.UUID, tuple[CheckContext, T]]:
        """``contexts`` with what verifying each practitioner's signature found, archiving
        the records not archived yet. Call it with no transaction open."""
        wanted = sorted(
            rx_id
            for rx_id, (context, _) in contexts.items()
            if context.controlled or _has_parts(context.signature)
        )
        if not wanted:
            return dict(contexts)
        found = self._archived(wanted)
        missing = [rx_id for rx_id in wanted if rx_id not in found]
        if missing:
            rows = self._sign(missing, {rx_id: contexts[rx_id][0] for rx_id in missing})
            self._insert(rows)
            found |= self._archived(missing)
        return {
            rx_id: (dataclasses.replace(context, epcs=found.get(rx_id)), basis)
            if rx_id in found
            else (context, basis)
            for rx_id, (context, basis) in contexts.items()
        }

    def _archived(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Verification | None]:
        with self._sessions() as session:
            rows = session.execute(
                select(ControlledArchive.prescription_id, ControlledArchive.verification).where(
                    ControlledArchive.prescription_id.in_(ids)
                )
            ).all()
        return {
            rx_id: Verification.from_json(dict(found)) if found else None for rx_id, found in rows
        }

    def _sign(
        self, ids: list[uuid.UUID], contexts: Mapping[uuid.UUID, CheckContext]
    ) -> list[dict[str, Any]]:
        with self._sessions() as session:
            messages = session.execute(
                select(
                    Prescription.id,
                    Prescription.pharmacy_id,
                    InboundMessage.id,
                    InboundMessage.message_id,
                    InboundMessage.sender,
                    InboundMessage.sha256,
                    InboundMessage.raw,
                    InboundMessage.received_at,
                )
                .join(InboundMessage, InboundMessage.id == Prescription.inbound_message_id)
                .where(Prescription.id.in_(ids))
            ).all()
        # the session is closed: verifying may fetch CRLs over the network
        rows = []
        for rx_id, pharmacy_id, message_id, number, sender, sha256, raw, received in messages:
            context = contexts[rx_id]
            signature = context.signature
            found = (
                self._verifier.verify(raw, signature, received, utcnow())
                if signature is not None and _has_parts(signature)
                else None
            )
            now = utcnow()
            record = ArchiveRecord(
                prescription_id=str(rx_id),
                inbound_message_id=str(message_id),
                message_id=number,
                sender=sender,
                sha256=sha256,
                received_at=received.isoformat(),
                schedule=context.schedule,
                practitioner_signature=_practitioner(signature, found),  # type: ignore[arg-type]
                verification=found.outcome.value if found else None,
                verified_on_receipt=found is not None and found.verified,
                archived_at=now.isoformat(),
            )
            rows.append(
                {
                    "prescription_id": rx_id,
                    "inbound_message_id": message_id,
                    "record": record.to_json(),
                    "signature": self._key.sign(record),
                    "key_id": self._key.id,
                    "verified_on_receipt": record.verified_on_receipt,
                    "verification": found.to_json() if found else None,
                    "archived_at": now,
                    "_pharmacy_id": pharmacy_id,
                }
            )
            if found is not None and not found.verified:
                log.info("prescription %s: signature %s", rx_id, found.outcome.value)
        return rows

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self._sessions.begin() as session:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            inserted = session.execute(
                dialect.insert(ControlledArchive)
                .values([{k: v for k, v in row.items() if not k.startswith("_")} for row in rows])
                .on_conflict_do_nothing(index_elements=["prescription_id"])
                .returning(ControlledArchive.prescription_id)
            ).scalars()
            new = set(inserted)
            audit.append(
                session,
                [
                    audit.values(
                        ACTOR,
                        audit.Event(
                            "prescription.archive",
                            "prescription",
                            str(row["prescription_id"]),
                            pharmacy_id=row["_pharmacy_id"],
                            detail={
                                "verified_on_receipt": row["verified_on_receipt"],
                                "practitioner_signature": row["record"]["practitioner_signature"],
                                "key_id": row["key_id"],
                            },
                        ),
                    )
                    for row in rows
                    if row["prescription_id"] in new
                ],
            )
