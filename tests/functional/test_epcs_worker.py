"""EPCS on receipt with a real `telepharm worker` process: a revoked practitioner certificate,
its CRL served by a local HTTP server, trusted roots from ``TELEPHARM_EPCS_TRUST_ROOTS``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.app import create_app
from server.db import Database
from server.prescriptions.archive import ControlledArchive
from server.prescriptions.models import Finding, Prescription
from server.settings import Settings
from tests.conftest import Hub
from tests.functional.epcs_helpers import Pki, serve_pki
from tests.functional.intake_helpers import post_script
from tests.support.pki import sign_message
from tests.support.processes import launch, stop, telepharm_env
from tests.support.script_samples import newrx_xml

pytestmark = pytest.mark.slow


@pytest.fixture
async def pki(aiohttp_server: object, tmp_path: Path) -> Pki:
    return await serve_pki(aiohttp_server, tmp_path)


async def _reviewed(db: Database, seconds: float = 45) -> Prescription:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with db.sessions() as session:
            rx = (await session.scalars(select(Prescription))).one()
        if rx.state == "awaiting_review":
            return rx
        await asyncio.sleep(0.2)
    raise AssertionError(f"still {rx.state} after {seconds} s")


async def test_a_worker_process_finds_a_revoked_certificate(
    aiohttp_client: Callable[..., TestClient],
    queue_settings: Settings,
    db: Database,
    pki: Pki,
) -> None:
    hub = Hub(await aiohttp_client(create_app(queue_settings)), db)
    await hub.pharmacy()
    key, cert = pki.intermediate.issue("Dr Revoked Prescriber")
    pki.intermediate.revoked.append(cert.serial_number)
    pki.crls["/intermediate.crl"] = pki.intermediate.crl_der()
    body = sign_message(
        newrx_xml(controlled=True, message_id=uuid.uuid4().hex[:20]),
        key,
        cert,
        chain=(pki.intermediate.cert,),
    )
    env = telepharm_env(queue_settings) | {"TELEPHARM_EPCS_TRUST_ROOTS": str(pki.roots)}
    worker = launch(env, "worker", "--concurrency", "1")
    try:
        reply = await (await post_script(hub, body, await hub.sender_token())).read()
        assert b"<Status>" in reply  # accepted: a bad signature is a finding, not a rejection
        rx = await _reviewed(db)
    finally:
        stop([worker])
    async with db.sessions() as session:
        findings = {
            f.code: f
            for f in await session.scalars(select(Finding).where(Finding.prescription_id == rx.id))
        }
        archive = (await session.scalars(select(ControlledArchive))).one()
    assert findings["EPCS_SIGNATURE_INVALID"].evidence["failure"] == "revoked"
    assert "/intermediate.crl" in pki.requests
    assert archive.verified_on_receipt is False
    assert archive.record["practitioner_signature"] == "failed"
    assert (queue_settings.data_dir / "keys" / "archive-signing.pem").exists()
