"""A profile's contact points, preferences and consent: a contact point verified with the code
the notification outbox was given for it, then chosen by ``recipient_for``; codes that die
after five wrong tries; another pharmacy's profile unseen (and the miss audited); preferences
refused with a clear reason; STOP by a signed inbound text and an email's unsubscribe link
honoured at once. Synthetic data only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from eprescribe.notifications import EventKind
from server.admin.models import Pharmacy
from server.audit.models import AuditEvent
from server.notifications import INBOUND_PATH
from server.notifications.models import Notification
from server.notifications.sms import signature
from server.patients.contacts import recipient_for
from server.patients.models import PatientContact, PatientProfile
from server.patients.unsubscribe import UNSUBSCRIBE_KEY, token_for
from server.settings import Settings
from tests.conftest import ISSUER, OTHER_PHARMACY, Hub
from tests.functional.verification_helpers import bearer, staff

AUTH_TOKEN = "synthetic-auth-token-0123456789"
PHONE = "+15555550123"
READY = EventKind.READY_FOR_PICKUP
PREFERENCES = {"time_zone": "America/New_York", "preferred_channel": "email", "language": "es"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        sms_account_sid="AC" + "0" * 32,
        sms_auth_token=AUTH_TOKEN,
        sms_from="+15555550100",
    )


async def profile(hub: Hub, ncpdpid: str = "1234567") -> uuid.UUID:
    """A synthetic patient's profile in the pharmacy ``ncpdpid`` (made with its staff)."""
    async with hub.db.transaction() as session:
        pharmacy_id = await session.scalar(select(Pharmacy.id).where(Pharmacy.ncpdpid == ncpdpid))
        assert pharmacy_id is not None
        row = PatientProfile(
            pharmacy_id=pharmacy_id,
            last_name_key="synthetic",
            first_name_key="pat",
            date_of_birth=dt.date(1980, 1, 1),
            gender="U",
            postal_code="00000",
            demographics={},
        )
        session.add(row)
    return row.id


async def call(
    hub: Hub, method: str, url: str, token: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    response = await hub.client.request(method, url, json=body, headers=bearer(token))
    return response.status, await response.json()


async def add_contact(hub: Hub, token: str, patient: uuid.UUID, kind: str, value: str) -> Any:
    status, body = await call(
        hub, "POST", f"/api/v1/patients/{patient}/contacts", token, {"kind": kind, "value": value}
    )
    assert status == 200, body
    return body


async def code_sent(hub: Hub, address: str) -> str:
    """The code in the newest message to ``address`` in the notification outbox."""
    async with hub.db.sessions() as session:
        row = await session.scalar(
            select(Notification)
            .where(Notification.recipient == address)
            .order_by(Notification.created_at.desc())
            .limit(1)
        )
    assert row is not None
    assert row.kind == "sign_in_code"
    found = re.search(r"\b(\d{6})\b", row.body)
    assert found is not None
    return found.group(1)


async def verify(hub: Hub, token: str, patient: uuid.UUID, contact: str, code: str) -> Any:
    url = f"/api/v1/patients/{patient}/contacts/{contact}/verify"
    return await call(hub, "POST", url, token, {"code": code})


async def reach(hub: Hub, patient: uuid.UUID, kind: EventKind = READY) -> Any:
    async with hub.db.sessions() as session:
        return await recipient_for(session, patient, kind)


async def audited(hub: Hub, patient: uuid.UUID) -> list[tuple[str, str]]:
    async with hub.db.sessions() as session:
        found = await session.execute(
            select(AuditEvent.action, AuditEvent.outcome)
            .where(AuditEvent.resource_id == str(patient))
            .order_by(AuditEvent.seq)
        )
        return [(action, outcome) for action, outcome in found]


async def verified(hub: Hub, token: str, patient: uuid.UUID, kind: str, value: str) -> str:
    contact = await add_contact(hub, token, patient, kind, value)
    status, _ = await verify(
        hub, token, patient, contact["id"], await code_sent(hub, contact["value"])
    )
    assert status == 200
    return str(contact["id"])


async def test_a_contact_point_verified_with_its_code_is_where_notifications_go(hub: Hub) -> None:
    await hub.pharmacy()
    patient, tech = await profile(hub), await staff(hub, "terry", role="technician")
    url = f"/api/v1/patients/{patient}"
    status, body = await call(hub, "PUT", f"{url}/preferences", tech, PREFERENCES)
    assert status == 200, body
    assert await reach(hub, patient) is None  # no contact point yet

    contact = await add_contact(hub, tech, patient, "email", " Pat.Synthetic@Example.NET ")
    assert contact["value"] == "Pat.Synthetic@example.net"
    assert contact["verified_at"] is None
    async with hub.db.sessions() as session:
        (sent,) = await session.scalars(select(Notification))
    assert (sent.kind, sent.channel, sent.state, sent.patient_id) == (
        "sign_in_code",
        "email",
        "pending",
        patient,
    )
    assert sent.language == "es"
    assert await reach(hub, patient) is None  # not verified yet

    code = await code_sent(hub, "Pat.Synthetic@example.net")
    status, body = await verify(hub, tech, patient, contact["id"], code)
    assert status == 200
    assert body["verified_at"] is not None
    async with hub.db.sessions() as session:
        stored = await session.get_one(PatientContact, uuid.UUID(contact["id"]))
    assert stored.code_hash is None  # the code is single-use
    recipient = await reach(hub, patient)
    assert recipient is not None
    assert (recipient.address, recipient.zone.key, recipient.language) == (
        "Pat.Synthetic@example.net",
        "America/New_York",
        "es",
    )
    assert "Pat" not in repr(recipient)

    # the patient switches pick-up notices off by email: those go nowhere, the others still do
    switch = {"switches": [{"kind": READY.value, "channel": "email", "allowed": False}]}
    status, body = await call(hub, "PUT", f"{url}/consent", tech, switch)
    assert status == 200, body
    assert body["consent"][READY.value] == {"email": False, "sms": True}
    assert await reach(hub, patient) is None
    assert await reach(hub, patient, EventKind.REFILL_DUE) is not None
    status, body = await call(hub, "GET", f"{url}/preferences", tech)
    assert status == 200
    assert body["preferences"]["time_zone"] == "America/New_York"
    assert [c["value"] for c in body["contacts"]] == ["Pat.Synthetic@example.net"]
    assert "sign_in_code" not in body["consent"]
    bad = {"switches": [{"kind": "sign_in_code", "channel": "sms", "allowed": False}]}
    assert (await call(hub, "PUT", f"{url}/consent", tech, bad))[0] == 422

    # removed: nowhere to go
    status, body = await call(hub, "DELETE", f"{url}/contacts/{contact['id']}", tech)
    assert (status, body) == (200, {"contacts": []})
    assert await reach(hub, patient, EventKind.REFILL_DUE) is None
    assert await audited(hub, patient) == [
        ("patient.preferences.update", "success"),
        ("patient.contact.add", "success"),
        ("patient.contact.verify", "success"),
        ("patient.consent.update", "success"),
        ("patient.preferences.read", "success"),
        ("patient.contact.delete", "success"),
    ]


async def test_a_code_dies_after_five_wrong_tries(hub: Hub) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    contact = await add_contact(hub, alice, patient, "mobile", "(555) 555-0123")
    assert contact["value"] == PHONE
    code = await code_sent(hub, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    answers = [await verify(hub, alice, patient, contact["id"], wrong) for _ in range(5)]
    assert [(s, b["code"], b["remaining"]) for s, b in answers] == [
        (422, "code_wrong", 4),
        (422, "code_wrong", 3),
        (422, "code_wrong", 2),
        (422, "code_wrong", 1),
        (422, "code_dead", 0),
    ]
    status, body = await verify(hub, alice, patient, contact["id"], code)
    assert (status, body["code"]) == (422, "code_dead")
    # a new code, asked for by adding the number again: not within a minute of the last
    url = f"/api/v1/patients/{patient}/contacts"
    status, body = await call(hub, "POST", url, alice, {"kind": "mobile", "value": PHONE})
    assert (status, body["code"]) == (422, "code_too_soon")
    assert 0 < body["retry_after"] <= 61
    async with hub.db.transaction() as session:  # a minute passes
        row = await session.get_one(PatientContact, uuid.UUID(contact["id"]))
        assert row.code_expires_at is not None
        row.code_expires_at -= dt.timedelta(seconds=61)
    await add_contact(hub, alice, patient, "mobile", PHONE)
    status, body = await verify(hub, alice, patient, contact["id"], await code_sent(hub, PHONE))
    assert status == 200
    outcomes = [o for a, o in await audited(hub, patient) if a == "patient.contact.verify"]
    assert outcomes == ["refused"] * 6 + ["success"]
    adds = [o for a, o in await audited(hub, patient) if a == "patient.contact.add"]
    assert adds == ["success", "refused", "success"]


async def test_another_pharmacys_profile_is_not_found_and_the_miss_audited(hub: Hub) -> None:
    await hub.pharmacy()
    await hub.pharmacy(**OTHER_PHARMACY)
    patient, alice = await profile(hub), await staff(hub, "alice")
    contact = await add_contact(hub, alice, patient, "email", "pat@example.net")
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    url = f"/api/v1/patients/{patient}"
    for method, path, body in [
        ("GET", "/preferences", None),
        ("PUT", "/preferences", PREFERENCES),
        ("POST", "/contacts", {"kind": "email", "value": "eve@example.net"}),
        ("POST", f"/contacts/{contact['id']}/verify", {"code": "123456"}),
        ("DELETE", f"/contacts/{contact['id']}", None),
        (
            "PUT",
            "/consent",
            {"switches": [{"kind": READY.value, "channel": "sms", "allowed": False}]},
        ),
    ]:
        status, answer = await call(hub, method, url + path, mallory, body)
        assert (status, answer["detail"]) == (404, "No such patient."), path
    # one's own profile, someone else's contact point
    other = await profile(hub, OTHER_PHARMACY["ncpdpid"])
    status, _ = await call(
        hub, "DELETE", f"/api/v1/patients/{other}/contacts/{contact['id']}", mallory
    )
    assert status == 404
    assert await audited(hub, patient) == [
        ("patient.contact.add", "success"),
        ("patient.preferences.read", "not_found"),
        ("patient.preferences.update", "not_found"),
        ("patient.contact.add", "not_found"),
        ("patient.contact.verify", "not_found"),
        ("patient.contact.delete", "not_found"),
        ("patient.consent.update", "not_found"),
    ]
    async with hub.db.sessions() as session:
        kept = await session.get(PatientContact, uuid.UUID(contact["id"]))
    assert kept is not None


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "Unknown time zone 'Mars/Olympus_Mons'"),
        ({"time_zone": "../etc/passwd"}, "Unknown time zone"),
        ({"quiet_start": "25:00", "quiet_end": "08:00"}, "Quiet hours start must be HH:MM"),
        ({"quiet_start": "9pm", "quiet_end": "08:00"}, "Quiet hours start must be HH:MM"),
        ({"quiet_start": "21:00"}, "Give both quiet_start and quiet_end, or neither"),
        ({"quiet_start": "08:00", "quiet_end": "08:00"}, "start and end at different times"),
        ({"time_zone": None}, "A preferred channel needs the patient's time zone"),
    ],
)
async def test_preferences_that_cannot_be_kept_are_refused_saying_why(
    hub: Hub, change: dict[str, Any], says: str
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    url = f"/api/v1/patients/{patient}/preferences"
    status, body = await call(hub, "PUT", url, alice, {**PREFERENCES, **change})
    assert (status, body["code"]) == (422, "preferences_invalid")
    assert says in body["detail"]
    status, body = await call(hub, "GET", url, alice)
    assert body["preferences"]["preferred_channel"] == "none"  # nothing changed


async def inbound(hub: Hub, text: str, token: str = AUTH_TOKEN) -> Any:
    params = {"From": PHONE, "Body": text, "MessageSid": "SM" + "1" * 32}
    signed = signature(ISSUER + INBOUND_PATH, params, token)
    return await hub.client.post(INBOUND_PATH, data=params, headers={"X-Twilio-Signature": signed})


async def texts_to(hub: Hub, address: str) -> int:
    async with hub.db.sessions() as session:
        found = await session.scalars(
            select(Notification.id).where(Notification.recipient == address)
        )
        return len(list(found))


async def test_stop_by_text_opts_the_number_out_at_once_everywhere(hub: Hub) -> None:
    await hub.pharmacy()
    await hub.pharmacy(**OTHER_PHARMACY)
    patient, alice = await profile(hub), await staff(hub, "alice")
    elsewhere = await profile(hub, OTHER_PHARMACY["ncpdpid"])
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    sms = {**PREFERENCES, "preferred_channel": "sms"}
    for token, who in ((alice, patient), (mallory, elsewhere)):
        await call(hub, "PUT", f"/api/v1/patients/{who}/preferences", token, sms)
        await verified(hub, token, who, "mobile", PHONE)
    assert await reach(hub, patient) is not None

    forged = await inbound(hub, "STOP", token="not-the-auth-token")
    assert forged.status == 403
    assert await reach(hub, patient) is not None  # nothing changed

    answer = await inbound(hub, " stop ")
    assert answer.status == 200
    assert await answer.read() == b""
    assert await reach(hub, patient) is None
    assert await reach(hub, elsewhere) is None
    assert ("patient.contact.opt_out", "success") in await audited(hub, patient)
    assert ("patient.contact.opt_out", "success") in await audited(hub, elsewhere)
    # removed and added again, the number keeps its STOP
    _status, body = await call(hub, "GET", f"/api/v1/patients/{patient}/preferences", alice)
    (contact,) = body["contacts"]
    await call(hub, "DELETE", f"/api/v1/patients/{patient}/contacts/{contact['id']}", alice)
    codes = await texts_to(hub, PHONE)
    again = await add_contact(hub, alice, patient, "mobile", PHONE)
    assert again["opted_out_at"] is not None
    assert await texts_to(hub, PHONE) == codes  # and is sent no code

    assert (await inbound(hub, "please call me")).status == 200  # not a keyword: nothing
    assert await reach(hub, elsewhere) is None
    assert (await inbound(hub, "START")).status == 200
    assert await reach(hub, elsewhere) is not None


async def test_an_unsubscribe_link_opts_the_address_out_and_a_forged_one_is_not_found(
    hub: Hub,
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await call(hub, "PUT", f"/api/v1/patients/{patient}/preferences", alice, PREFERENCES)
    contact = await verified(hub, alice, patient, "email", "pat@example.net")
    assert await reach(hub, patient) is not None
    key = hub.client.app[UNSUBSCRIBE_KEY]
    link = f"/unsubscribe/{token_for(key, uuid.UUID(contact))}"

    page = await hub.client.get(link)
    assert page.status == 200
    text = await page.text()
    assert '<form method="post"' in text
    assert "pat@example.net" not in text
    assert await reach(hub, patient) is not None  # a GET changes nothing

    done = await hub.client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert done.status == 200
    assert await reach(hub, patient) is None
    assert ("patient.contact.opt_out", "success") in await audited(hub, patient)
    assert "unsubscribed" in await (await hub.client.get(link)).text()

    for forged in (
        token_for(b"k" * 32, uuid.UUID(contact)),
        token_for(key, uuid.uuid4()),
        "not-a-token",
        link.rsplit("/", 1)[1][:-2],
    ):
        assert (await hub.client.get(f"/unsubscribe/{forged}")).status == 404
        assert (await hub.client.post(f"/unsubscribe/{forged}")).status == 404
