"""EPCS on receipt through the intake and the checks: practitioners' signatures built with
real keys and certificates (a test root, an intermediate, practitioner certificates), CRLs
served by a real local HTTP server, the hub's signed archive and ``audit verify``."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select, update

from eprescribe.epcs import ArchiveRecord
from server.prescriptions.archive import ControlledArchive, load_archive_key, verify_archive
from server.prescriptions.models import Finding, InboundMessage, Prescription
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.epcs_helpers import Pki, serve_pki
from tests.functional.intake_helpers import post_script
from tests.functional.verification_helpers import staff
from tests.support.pki import DAY, NOW, Authority, root, sign_message
from tests.support.processes import run_cli, telepharm_env
from tests.support.script_samples import newrx_xml


@pytest.fixture
async def pki(aiohttp_server: object, tmp_path: Path) -> Pki:
    return await serve_pki(aiohttp_server, tmp_path)


@pytest.fixture
def checker(settings: Settings, pki: Pki) -> Iterator[Checker]:
    checker = Checker.from_settings(dataclasses.replace(settings, epcs_trust_roots=str(pki.roots)))
    yield checker
    checker.close()


async def _receive(hub: Hub, body: bytes) -> uuid.UUID:
    await hub.pharmacy()
    reply = await (await post_script(hub, body, await hub.sender_token())).read()
    assert b"<Status>" in reply, reply
    async with hub.db.sessions() as session:
        return (await session.scalars(select(Prescription.id))).one()


async def _checked(hub: Hub, checker: Checker, body: bytes) -> uuid.UUID:
    rx_id = await _receive(hub, body)
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    return rx_id


async def _findings(hub: Hub, rx_id: uuid.UUID) -> dict[str, Finding]:
    async with hub.db.sessions() as session:
        rows = await session.scalars(select(Finding).where(Finding.prescription_id == rx_id))
        return {f.code: f for f in rows}


async def _archive(hub: Hub, rx_id: uuid.UUID) -> ControlledArchive:
    async with hub.db.sessions() as session:
        return (
            await session.scalars(
                select(ControlledArchive).where(ControlledArchive.prescription_id == rx_id)
            )
        ).one()


def _message(
    pki: Pki, *, issuer: Authority | None = None, key: object = None, **issue: object
) -> bytes:
    issuer = issuer or pki.intermediate
    leaf_key, cert = issuer.issue("Dr Synthetic Prescriber", **issue)  # type: ignore[arg-type]
    return sign_message(
        newrx_xml(controlled=True, message_id=uuid.uuid4().hex[:20]),
        key or leaf_key,  # type: ignore[arg-type]
        cert,
        chain=(issuer.cert,),
    )


async def test_a_valid_signature_is_verified_on_receipt_and_archived_signed(
    hub: Hub, checker: Checker, pki: Pki, settings: Settings
) -> None:
    rx_id = await _checked(hub, checker, _message(pki))
    findings = await _findings(hub, rx_id)
    assert "EPCS_SIGNATURE_INVALID" not in findings
    assert "EPCS_SIGNATURE_MISSING" not in findings
    archive = await _archive(hub, rx_id)
    assert archive.verified_on_receipt is True
    assert archive.verification is not None
    assert archive.verification["outcome"] == "verified"
    assert sorted(pki.requests) == ["/intermediate.crl", "/root.crl"]
    record = ArchiveRecord.from_json(dict(archive.record))
    async with hub.db.sessions() as session:
        raw = (await session.scalars(select(InboundMessage.raw))).one()
    key = load_archive_key(settings)
    key.check(record, archive.signature, archive.key_id, raw)  # raises if it does not hold
    assert (record.practitioner_signature, record.schedule) == ("verified", "C48675")

    token = await staff(hub, "pat", controlled=True)
    response = await hub.client.get(
        f"/api/v1/prescriptions/{rx_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200
    epcs = (await response.json())["epcs"]
    assert epcs["verified_on_receipt"] is True
    assert epcs["practitioner_signature"] == "verified"
    assert epcs["verification"] == "verified"
    assert "Dr Synthetic Prescriber" in epcs["certificate_subject"]
    assert epcs["archive_key_id"] == key.id
    assert epcs["message_sha256"] == record.sha256
    assert (await verify_archive(hub.db, settings)).intact
    cli = await asyncio.to_thread(run_cli, telepharm_env(settings), "audit", "verify")
    assert cli.returncode == 0, cli.stderr
    assert "EPCS archive intact: 1 records" in cli.stdout


@pytest.mark.parametrize(
    ("case", "failure", "words"),
    [
        ("tampered", "digest_mismatch", "altered after it was signed"),
        ("wrong_key", "bad_signature", "not made with the key"),
        ("untrusted", "untrusted_chain", "does not chain to a trusted root"),
        ("revoked", "revoked", "is revoked"),
        ("expired", "expired", "was not valid when the prescription arrived"),
        ("crl_down", "crl_unavailable", "revocation list could not be obtained"),
    ],
)
async def test_a_failed_signature_is_a_hard_stop_not_a_rejection(
    hub: Hub, checker: Checker, pki: Pki, case: str, failure: str, words: str
) -> None:
    if case == "tampered":
        leaf_key, cert = pki.intermediate.issue("Dr Synthetic Prescriber")
        body = sign_message(
            newrx_xml(controlled=True),
            leaf_key,
            cert,
            chain=(pki.intermediate.cert,),
            tamper=(b"<Value>60</Value>", b"<Value>90</Value>"),
        )
    elif case == "wrong_key":
        body = _message(pki, key=ec.generate_private_key(ec.SECP256R1()))
    elif case == "untrusted":
        body = _message(pki, issuer=root("Synthetic Stranger CA"))
    elif case == "revoked":
        leaf_key, cert = pki.intermediate.issue("Dr Revoked Prescriber")
        pki.intermediate.revoked.append(cert.serial_number)
        pki.crls["/intermediate.crl"] = pki.intermediate.crl_der()
        body = sign_message(
            newrx_xml(controlled=True), leaf_key, cert, chain=(pki.intermediate.cert,)
        )
    elif case == "expired":
        body = _message(pki, not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    else:
        pki.crls.pop("/intermediate.crl")
        body = _message(pki)
    rx_id = await _checked(hub, checker, body)  # stored and acknowledged with Status
    finding = (await _findings(hub, rx_id))["EPCS_SIGNATURE_INVALID"]
    assert finding.severity == "hard_stop"
    assert words in finding.message
    assert finding.evidence["failure"] == failure
    assert finding.evidence["schedule"] == "C-II"
    archive = await _archive(hub, rx_id)
    assert archive.verified_on_receipt is False
    assert archive.record["practitioner_signature"] == "failed"
    assert archive.record["verification"] == failure


@pytest.mark.parametrize("indicator", [True, False])
async def test_without_a_signature_the_record_is_archived_not_verified(
    hub: Hub, checker: Checker, pki: Pki, indicator: bool
) -> None:
    body = newrx_xml(controlled=True)
    if not indicator:
        body = body.replace(b"<DigitalSignatureIndicator>true", b"<DigitalSignatureIndicator>false")
    rx_id = await _checked(hub, checker, body)
    codes = set(await _findings(hub, rx_id))
    # the indicator says an intermediary signed it: no finding; nothing at all is a hard stop
    assert ("EPCS_SIGNATURE_MISSING" in codes) is not indicator
    assert "EPCS_SIGNATURE_INVALID" not in codes
    archive = await _archive(hub, rx_id)
    assert archive.verified_on_receipt is False
    assert archive.verification is None
    expected = "indicator" if indicator else "absent"
    assert archive.record["practitioner_signature"] == expected
    assert pki.requests == []  # nothing to verify, nothing fetched


async def test_a_non_controlled_prescription_without_signature_is_not_archived(
    hub: Hub, checker: Checker
) -> None:
    rx_id = await _checked(hub, checker, newrx_xml())
    async with hub.db.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(ControlledArchive))
    assert count == 0
    assert "EPCS_SIGNATURE_INVALID" not in await _findings(hub, rx_id)


@pytest.mark.parametrize("what", ["record", "raw", "signature"])
async def test_audit_verify_finds_a_tampered_archive(
    hub: Hub, checker: Checker, pki: Pki, settings: Settings, what: str
) -> None:
    rx_id = await _checked(hub, checker, _message(pki))
    assert (await verify_archive(hub.db, settings)).intact
    archive = await _archive(hub, rx_id)
    async with hub.db.transaction() as session:
        if what == "record":
            changed = {**archive.record, "schedule": "C48677"}
            await session.execute(
                update(ControlledArchive)
                .where(ControlledArchive.id == archive.id)
                .values(record=changed)
            )
        elif what == "raw":
            raw = (await session.scalars(select(InboundMessage.raw))).one()
            await session.execute(update(InboundMessage).values(raw=raw.replace(b"60", b"90", 1)))
        else:
            await session.execute(
                update(ControlledArchive)
                .where(ControlledArchive.id == archive.id)
                .values(signature=archive.signature[:-2] + b"\x00\x00")
            )
    report = await verify_archive(hub.db, settings)
    assert report.records == 1
    assert len(report.problems) == 1
    assert str(rx_id) in report.problems[0]
    expected = {
        "record": "the record or its signature was altered",
        "raw": "the original message bytes were altered",
        "signature": "the record or its signature was altered",
    }[what]
    assert expected in report.problems[0]
    if what == "raw":  # the operator's command says so and fails
        cli = await asyncio.to_thread(run_cli, telepharm_env(settings), "audit", "verify")
        assert cli.returncode == 1
        assert "audit chain intact" in cli.stdout
        assert f"EPCS archive: archive of prescription {rx_id}: {expected}" in cli.stderr
        assert "telepharm: EPCS archive TAMPERED: 1 of 1 records" in cli.stderr
