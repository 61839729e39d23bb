"""Helpers for consult tests: a patient and a scheduled consult, and one side's signaling
socket speaking the protocol of docs/signaling.md."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from eprescribe.ncpdp import Patient
from eprescribe.ncpdp.types import Address, DateValue, Name
from server.admin.models import Pharmacy
from server.patients.models import PatientProfile
from tests.conftest import ISSUER, Hub
from tests.functional.verification_helpers import bearer, staff

CONSENT = "telehealth-consent-v1"


async def the_pharmacy(hub: Hub) -> None:
    async with hub.db.sessions() as session:
        pharmacies = await session.scalar(select(func.count()).select_from(Pharmacy))
    if not pharmacies:
        await hub.pharmacy()


async def patient(hub: Hub) -> str:
    """A synthetic patient profile of the test pharmacy."""
    await the_pharmacy(hub)
    async with hub.db.transaction() as session:
        pharmacy = await session.scalar(select(Pharmacy.id).where(Pharmacy.ncpdpid == "1234567"))
        assert pharmacy is not None
        profile = PatientProfile(
            pharmacy_id=pharmacy,
            last_name_key="TESTPATIENT",
            first_name_key="ALEX",
            date_of_birth=dt.date(1970, 1, 2),
            gender="F",
            postal_code="00000",
            demographics=Patient(
                kind="human",
                name=Name(last="synthetic", first="Alex"),
                gender="F",
                date_of_birth=DateValue(dt.date(1970, 1, 2)),
                address=Address("1 Test Street", "Testville", "CA", "00000", "US"),
            ),
        )
        session.add(profile)
    return str(profile.id)


@dataclass
class Consult:
    id: str
    invite: str
    pharmacist_token: str


async def scheduled(hub: Hub, username: str = "alice") -> Consult:
    """A pharmacist (``username``), a patient and a consult between them."""
    await the_pharmacy(hub)
    token = await staff(hub, username)
    created = await hub.client.post(
        "/api/v1/consults", json={"patient_id": await patient(hub)}, headers=bearer(token)
    )
    assert created.status == 200, await created.text()
    body = await created.json()
    return Consult(body["id"], body["invite_url"].rsplit("/", 1)[1], token)


@dataclass
class Side:
    """One participant's socket; ``inbox`` keeps what arrived, in order."""

    ws: aiohttp.ClientWebSocketResponse
    inbox: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def expect(self, kind: str, wait: float = 5.0) -> dict[str, Any]:
        """The next message of type ``kind`` (others before it stay in ``inbox``)."""
        async with asyncio.timeout(wait):
            while True:
                frame = await self.ws.receive()
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"socket closed waiting for {kind}: {frame}")
                message = json.loads(frame.data)
                self.inbox.append(message)
                if message["type"] == kind:
                    return message

    async def closed(self, wait: float = 5.0) -> int | None:
        """Read until the hub closes the socket; its close code."""
        async with asyncio.timeout(wait):
            while True:
                frame = await self.ws.receive()
                if frame.type is aiohttp.WSMsgType.TEXT:
                    self.inbox.append(json.loads(frame.data))
                    continue
                return self.ws.close_code

    def types(self) -> list[str]:
        return [m["type"] for m in self.inbox]


async def connect(client: TestClient, origin: str = ISSUER, **join: Any) -> Side:
    ws = await client.ws_connect("/ws/consult", headers={"Origin": origin})
    side = Side(ws)
    await side.send(type="join", **join)
    return side


async def pharmacist_joins(client: TestClient, consult: Consult) -> Side:
    side = await connect(client, access_token=consult.pharmacist_token, consult_id=consult.id)
    await side.expect("joined")
    return side


async def patient_joins(client: TestClient, consult: Consult) -> Side:
    side = await connect(client, invite=consult.invite, consent_version=CONSENT)
    await side.expect("waiting")
    return side


def new_id() -> str:
    return str(uuid.uuid4())
