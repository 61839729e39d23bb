"""The issue's "done when": a pharmacist added as the CLI does signs in with password and TOTP
through the authorization-code flow, sees only their pharmacy's queue, claims, approves with
override reasons, and every step is in a verified audit chain."""

from __future__ import annotations

import time

from joserfc import jwt
from sqlalchemy import select

from server import audit
from server.audit.models import AuditEvent
from server.auth.keys import load_signing_keys
from server.auth.models import User
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import ISSUER, OTHER_PHARMACY, Hub
from tests.functional.signin_helpers import console
from tests.functional.verification_helpers import bearer, receive, reviewable


async def test_sign_in_claim_approve_all_audited(hub: Hub, checker: Checker) -> None:
    app = await console(hub)
    ours = await reviewable(hub, checker, drug_description="TESTDRUG 10 MG ORAL TABLET")
    await hub.pharmacy(**OTHER_PHARMACY)
    theirs = await receive(hub, to=OTHER_PHARMACY["ncpdpid"])
    token = (await app.tokens())["access_token"]

    queue = await (await hub.client.get("/api/v1/prescriptions", headers=bearer(token))).json()
    assert [item["id"] for item in queue["items"]] == [str(ours)]
    other = await hub.client.get(f"/api/v1/prescriptions/{theirs}", headers=bearer(token))
    assert other.status == 404

    rx = await (await hub.client.get(f"/api/v1/prescriptions/{ours}", headers=bearer(token))).json()
    warnings = {f["code"] for f in rx["findings"] if f["severity"] == "warning"}
    assert warnings
    claim = await hub.client.post(f"/api/v1/prescriptions/{ours}/claim", headers=bearer(token))
    assert claim.status == 200
    approve = await hub.client.post(
        f"/api/v1/prescriptions/{ours}/approve",
        json={"overrides": dict.fromkeys(warnings, "Discussed with the prescriber.")},
        headers=bearer(token),
    )
    assert approve.status == 200, await approve.text()
    assert (await approve.json())["state"] == "approved"

    async with hub.db.sessions() as session:
        alice = (await session.scalars(select(User.id).where(User.username == "alice"))).one()
        steps = list(
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.actor == f"user:{alice}")
                .order_by(AuditEvent.seq)
            )
        )
    assert steps == [
        "login",
        "oauth.authorize",
        "prescription.list",
        "prescription.read",
        "prescription.read",
        "prescription.claim",
        "prescription.approve",
    ]
    report = await audit.verify(hub.db)
    assert report.intact, report.problem


async def test_a_user_token_from_no_sign_in_is_refused(hub: Hub, settings: Settings) -> None:
    """Signed with the hub's own key, but naming no sign-in (no family): 401."""
    app = await console(hub)
    await app.tokens()  # a real sign-in exists, so the user and the key are real
    async with hub.db.sessions() as session:
        user = (await session.scalars(select(User).where(User.username == "alice"))).one()
    key = load_signing_keys(settings.keys_dir).active.keys[0]
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "ES256", "typ": "at+jwt", "kid": key.kid},
        {
            "iss": ISSUER,
            "aud": ISSUER,
            "sub": str(user.id),
            "client_id": app.client_id,
            "iat": now,
            "exp": now + 300,
            "jti": "forged-1",
            "scope": "rx:read rx:verify",
            "pharmacy_id": str(user.pharmacy_id),
            "role": "pharmacist",
        },
        key,
    )
    response = await hub.client.get("/api/v1/prescriptions", headers=bearer(forged))
    assert response.status == 401
