"""Helpers for the patient page's tests: a synthetic patient linked to a prescription, with a
verified email, signing in with the code the notification outbox was given."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from server.notifications.models import Notification
from server.patient_page.codes import CODES
from server.prescriptions.models import Prescription
from server.worker.checking import Checker
from tests.conftest import ISSUER, PHARMACY, Hub
from tests.functional.verification_helpers import bearer, receive

EMAIL = "pat.synthetic@example.net"
ORIGIN = {"Origin": ISSUER}


@dataclass
class Patient:
    patient_id: uuid.UUID
    rx_id: uuid.UUID
    contact_id: str


async def linked(
    hub: Hub, checker: Checker, last: str = "SYNTHETIC", **message: Any
) -> tuple[uuid.UUID, uuid.UUID]:
    """A prescription received and checked (its patient linked to a profile): both IDs."""
    rx_id = await receive(hub, patient_last=last, patient_first="PAT", **message)
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    async with hub.db.sessions() as session:
        patient_id = await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == rx_id)
        )
    assert patient_id is not None
    return rx_id, patient_id


async def set_state(hub: Hub, rx_id: uuid.UUID, state: str, dispensed: int = 0) -> None:
    """The prescription put in ``state`` directly (the fill flow is test_fills' business)."""
    async with hub.db.transaction() as session:
        await session.execute(
            update(Prescription)
            .where(Prescription.id == rx_id)
            .values(state=state, fills_dispensed=dispensed)
        )


async def last_code(hub: Hub, address: str) -> str | None:
    """The code in the newest sign-in code to ``address`` in the outbox (None: none)."""
    async with hub.db.sessions() as session:
        row = await session.scalar(
            select(Notification)
            .where(Notification.recipient == address, Notification.kind == "sign_in_code")
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(1)
        )
    if row is None:
        return None
    found = re.search(r"\b(\d{6})\b", row.body)
    assert found is not None
    return found.group(1)


async def codes_sent(hub: Hub, address: str) -> int:
    async with hub.db.sessions() as session:
        rows = await session.scalars(
            select(Notification.id).where(
                Notification.recipient == address, Notification.kind == "sign_in_code"
            )
        )
        return len(list(rows))


async def verified_email(hub: Hub, tech: str, patient_id: uuid.UUID, email: str = EMAIL) -> str:
    """The email added to the profile and verified as the console does; its contact ID."""
    url = f"/api/v1/patients/{patient_id}/contacts"
    response = await hub.client.post(
        url, json={"kind": "email", "value": email}, headers=bearer(tech)
    )
    assert response.status == 200, await response.text()
    contact = await response.json()
    code = await last_code(hub, email)
    response = await hub.client.post(
        f"{url}/{contact['id']}/verify", json={"code": code}, headers=bearer(tech)
    )
    assert response.status == 200, await response.text()
    return str(contact["id"])


async def ask_code(
    hub: Hub, address: str = EMAIL, pharmacy: str = PHARMACY["ncpdpid"]
) -> tuple[int, dict[str, Any]]:
    """Ask for a code; once answered, wait for it to be written (it is sent after the
    answer)."""
    response = await hub.client.post(
        "/api/v1/me/sign-in/code", json={"pharmacy": pharmacy, "address": address}, headers=ORIGIN
    )
    await hub.client.app[CODES].drain()
    return response.status, await response.json()


async def sign_in(
    hub: Hub, code: str | None, address: str = EMAIL, pharmacy: str = PHARMACY["ncpdpid"]
) -> tuple[int, dict[str, Any]]:
    body = {"pharmacy": pharmacy, "address": address, "code": code or "000000"}
    response = await hub.client.post("/api/v1/me/sign-in", json=body, headers=ORIGIN)
    return response.status, await response.json()


async def signed_in(hub: Hub, address: str = EMAIL) -> str:
    """Ask for a code, sign in with it: the session's CSRF token (the cookie is the client's)."""
    status, _ = await ask_code(hub, address)
    assert status == 200
    status, body = await sign_in(hub, await last_code(hub, address), address)
    assert status == 200, body
    return str(body["csrf"])


def change(csrf: str) -> dict[str, str]:
    return {**ORIGIN, "X-CSRF-Token": csrf}
