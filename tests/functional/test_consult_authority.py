"""A pharmacist's authority on an open consult socket lasts as long as their sign-in: disabling
the account or ending the sign-in closes the socket within one check and refuses what it sends
meanwhile; a sign-in that stays valid keeps the socket across access-token expiry. And who may
read a consult's notes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server import users
from server.app import create_app
from server.audit.models import AuditEvent
from server.auth.models import User
from server.consults.models import ConsultRow
from server.db import Database
from server.payments.models import LedgerEntry
from server.settings import Settings
from tests.conftest import Hub
from tests.functional.consult_helpers import (
    Consult,
    Side,
    connect,
    patient,
    patient_joins,
    pharmacist_joins,
    scheduled,
)
from tests.functional.signin_helpers import console
from tests.functional.verification_helpers import bearer, staff

#: the socket's close code when its pharmacist's authority ended (docs/signaling.md)
CLOSE_UNAUTHORIZED = 4003
#: the re-check period of the hubs below (seconds)
RECHECK = 0.3


def _hub_with(**changes: object) -> Callable[..., Awaitable[Hub]]:
    async def make(
        aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, db: Database
    ) -> Hub:
        return Hub(await aiohttp_client(create_app(replace(settings, **changes))), db)

    return make


#: sockets re-checked every 0.3 s
checking_hub = pytest.fixture(_hub_with(consult_recheck=RECHECK))
#: sockets never re-checked during a test: only the messages' own checks act
unchecked_hub = pytest.fixture(_hub_with(consult_recheck=3600.0))
#: access tokens of two seconds, sockets re-checked every 0.3 s
short_token_hub = pytest.fixture(_hub_with(consult_recheck=RECHECK, access_token_ttl=2))


async def _waiting(hub: Hub) -> tuple[Consult, Side, Side]:
    consult = await scheduled(hub)
    pharmacist = await pharmacist_joins(hub.client, consult)
    waiting = await patient_joins(hub.client, consult)
    await pharmacist.expect("peer_joined")
    return consult, pharmacist, waiting


async def _consult_row(hub: Hub, consult_id: str) -> ConsultRow:
    async with hub.db.sessions() as session:
        row = await session.get(ConsultRow, uuid.UUID(consult_id))
    assert row is not None
    return row


async def _lost_authority(side: Side) -> None:
    """The hub says why, then closes the socket with its own code, within a few checks."""
    assert (await side.expect("error", wait=RECHECK * 10))["code"] == "unauthorized"
    assert await side.closed() == CLOSE_UNAUTHORIZED


async def test_a_disabled_pharmacist_is_closed_out_within_one_check(checking_hub: Hub) -> None:
    hub = checking_hub
    consult, pharmacist, waiting = await _waiting(hub)
    colleague = await pharmacist_joins(hub.client, await scheduled(hub, "bob"))
    await users.disable_user(hub.db, "alice")  # what `telepharm user disable alice` runs
    await _lost_authority(pharmacist)
    assert (await waiting.expect("peer_left"))["role"] == "pharmacist"
    assert (await _consult_row(hub, consult.id)).state == "waiting"
    await asyncio.sleep(2 * RECHECK)  # checked with alice's, a valid sign-in keeps its socket
    await colleague.send(type="ping")
    await colleague.expect("pong")
    assert "error" not in colleague.types()
    # the resume token of the closed socket does not bring the authority back
    resume = next(m for m in pharmacist.inbox if m["type"] == "joined")["resume"]
    back = await connect(hub.client, resume=resume)
    assert (await back.expect("error"))["code"] == "resume_expired"
    assert await back.closed() == 1008


@pytest.mark.parametrize(
    "message",
    [{"type": "admit"}, {"type": "end", "notes": "Counselled.", "counselling": "accepted"}],
)
async def test_what_a_disabled_pharmacist_sends_before_the_check_is_refused(
    unchecked_hub: Hub, message: dict[str, str]
) -> None:
    hub = unchecked_hub
    consult, pharmacist, waiting = await _waiting(hub)
    await users.disable_user(hub.db, "alice")
    await pharmacist.send(**message)
    await _lost_authority(pharmacist)
    row = await _consult_row(hub, consult.id)
    assert (row.state, row.notes) == ("waiting", None)
    assert "admitted" not in waiting.types()
    assert await hub.audit_outcomes(f"consult.{message['type']}") == ["refused"]


async def test_signing_out_closes_the_consult_socket(checking_hub: Hub) -> None:
    hub = checking_hub
    browser = await console(hub)  # a real sign-in: password, TOTP, code, tokens
    tokens = await browser.tokens()
    created = await hub.client.post(
        "/api/v1/consults",
        json={"patient_id": await patient(hub)},
        headers=bearer(tokens["access_token"]),
    )
    assert created.status == 200, await created.text()
    body = await created.json()
    consult = Consult(body["id"], body["invite_url"].rsplit("/", 1)[1], tokens["access_token"])
    pharmacist = await pharmacist_joins(hub.client, consult)
    waiting = await patient_joins(hub.client, consult)
    # the console's sign-out: its refresh token revoked, which ends the whole sign-in
    revoked = await hub.client.post(
        "/oauth/revoke",
        data={
            "client_id": browser.client_id,
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
        },
    )
    assert revoked.status == 200
    await _lost_authority(pharmacist)
    again = await connect(hub.client, access_token=tokens["access_token"], consult_id=consult.id)
    assert (await again.expect("error"))["code"] == "unauthorized"
    assert "admitted" not in waiting.types()


async def test_a_pharmacist_no_longer_of_the_pharmacy_is_closed_out(checking_hub: Hub) -> None:
    hub = checking_hub
    _, pharmacist, _ = await _waiting(hub)
    async with hub.db.transaction() as session:  # as a role change by an administrator would
        user = await session.scalar(select(User).where(User.username == "alice"))
        assert user is not None
        user.role = "technician"
    await _lost_authority(pharmacist)


async def test_a_valid_sign_in_keeps_the_socket_past_its_access_token(
    short_token_hub: Hub,
) -> None:
    hub = short_token_hub
    consult, pharmacist, waiting = await _waiting(hub)
    expired = await hub.client.get(
        f"/api/v1/consults/{consult.id}", headers=bearer(consult.pharmacist_token)
    )
    assert expired.status == 200
    await asyncio.sleep(2.0 + 3 * RECHECK)  # the token's lifetime, then some re-checks
    expired = await hub.client.get(
        f"/api/v1/consults/{consult.id}", headers=bearer(consult.pharmacist_token)
    )
    assert expired.status == 401  # the access token has expired; the sign-in has not
    assert "error" not in pharmacist.types()
    await pharmacist.send(type="admit")
    await waiting.expect("admitted")
    await pharmacist.expect("admitted")
    # a dropped socket comes back with its resume token, the access token expired or not
    resume = next(m for m in pharmacist.inbox if m["type"] == "joined")["resume"]
    await pharmacist.ws.close()
    back = await connect(hub.client, resume=resume)
    assert (await back.expect("joined"))["state"] == "admitted"
    await back.send(type="end", notes="Counselled on dosing.", counselling="accepted")
    await back.expect("ended")
    assert (await _consult_row(hub, consult.id)).notes == "Counselled on dosing."


async def test_pharmacists_of_the_pharmacy_read_a_colleagues_notes(hub: Hub) -> None:
    """Consult notes are part of the patient's record in the pharmacy: a colleague reads
    them (audited as theirs); another pharmacy never does (404, see test_consults_api)."""
    consult, pharmacist, _ = await _waiting(hub)
    await pharmacist.send(type="end", notes="Advised on interactions.", counselling="accepted")
    await pharmacist.expect("ended")
    colleague = await staff(hub, "bob")
    read = await hub.client.get(f"/api/v1/consults/{consult.id}", headers=bearer(colleague))
    assert read.status == 200
    assert (await read.json())["notes"] == "Advised on interactions."
    async with hub.db.sessions() as session:
        bob = await session.scalar(select(User.id).where(User.username == "bob"))
        reads = await session.scalars(
            select(AuditEvent.actor).where(
                AuditEvent.action == "consult.read", AuditEvent.resource_id == consult.id
            )
        )
        assert list(reads) == [f"user:{bob}"]


async def test_a_consult_that_ends_is_charged_the_pharmacys_consult_price_once(hub: Hub) -> None:
    consult, pharmacist, _ = await _waiting(hub)
    admin = await staff(hub, "ada", role="pharmacy_admin")
    priced = await hub.client.put(
        "/api/v1/payments/prices/consult", json={"amount": 3500}, headers=bearer(admin)
    )
    assert priced.status == 200
    await pharmacist.send(type="end", notes="Counselled.", counselling="accepted")
    await pharmacist.expect("ended")
    await pharmacist.send(type="end", notes="Counselled.", counselling="accepted")
    async with hub.db.sessions() as session:
        charged = (
            await session.execute(
                select(LedgerEntry.cause_id, LedgerEntry.amount).where(
                    LedgerEntry.cause_type == "consult"
                )
            )
        ).all()
    assert [tuple(row) for row in charged] == [(consult.id, 3500)]
