"""The notification triggers on the real app: a fill reaching ``ready``, a prescriber's
CancelRx approved, a pharmacist asking the prescriber (delayed, and cancelled when the
prescriber answers first) each write the patient's notification in the change's unit of work,
to the verified email of their profile, in their time zone's waking hours, naming no drug; a
patient who chose no channel gets nothing. One is delivered to a real SMTP server (aiosmtpd)
with its one-click unsubscribe headers. Synthetic data only."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from eprescribe.notifications import EventKind, send_at
from server.db.models import utcnow
from server.dispensing.models import Fill
from server.notifications.models import Notification
from server.notifications.sending import Sender
from server.patients.unsubscribe import UNSUBSCRIBE_KEY, token_for
from server.prescriptions.models import Prescription
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import ISSUER, Hub
from tests.functional.consult_helpers import patient as consult_patient
from tests.functional.fill_helpers import LISINOPRIL_A, gs1, ok, start, step
from tests.functional.intake_helpers import post_script
from tests.functional.test_fills import (  # noqa: F401 (fixtures)
    Team,
    approved,
    checker,
    prescriber,
    products,
    rx_state,
    team,
    to_ready,
)
from tests.functional.test_notifications_outbox import Mailbox, mailbox  # noqa: F401 (fixture)
from tests.functional.test_patient_contacts import call, verified
from tests.functional.test_prescriber_answers import answer, clarified, code_of, scene
from tests.functional.verification_helpers import bearer, staff
from tests.support.script_samples import cancelrx_xml

NEW_YORK = ZoneInfo("America/New_York")
EMAIL = "pat.synthetic@example.net"
PREFERENCES = {"time_zone": NEW_YORK.key, "preferred_channel": "email", "language": "en"}
#: the drug of every prescription here: never in what a patient is sent
DRUG_WORDS = ("lisinopril", "10 mg", "tablet")


async def patient_of(hub: Hub, rx_id: uuid.UUID) -> uuid.UUID:
    async with hub.db.sessions() as session:
        found = await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == rx_id)
        )
    assert found is not None  # the checks linked the patient's profile
    return found


async def reachable(hub: Hub, token: str, patient: uuid.UUID) -> uuid.UUID:
    """The profile's preferences (email, New York) and a verified email, set as the console
    sets them; the contact point's ID."""
    url = f"/api/v1/patients/{patient}/preferences"
    status, body = await call(hub, "PUT", url, token, PREFERENCES)
    assert status == 200, body
    return uuid.UUID(await verified(hub, token, patient, "email", EMAIL))


async def notices(hub: Hub, kind: EventKind) -> list[Notification]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(
                select(Notification)
                .where(Notification.kind == kind.value)
                .order_by(Notification.created_at)
            )
        )


def minimum_necessary(row: Notification) -> None:
    """To the verified email, due in the patient's waking hours, no drug named."""
    assert (row.channel, row.recipient, row.language) == ("email", EMAIL, "en")
    text = f"{row.subject}\n{row.body}\n{row.html or ''}".lower()
    assert not [word for word in DRUG_WORDS if word in text]
    assert f"{ISSUER}/unsubscribe/" in row.body  # the preferences link


async def test_a_ready_fill_tells_the_patient_and_the_email_goes_with_one_click_unsubscribe(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
    settings: Settings,
    mailbox: tuple[Mailbox, int],  # noqa: F811
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    patient = await patient_of(hub, rx_id)
    contact = await reachable(hub, team.tom, patient)
    fill_id = uuid.UUID(await to_ready(hub, team, rx_id))

    (row,) = await notices(hub, EventKind.READY_FOR_PICKUP)
    async with hub.db.sessions() as session:
        ready_at = await session.scalar(select(Fill.ready_at).where(Fill.id == fill_id))
    assert ready_at is not None
    assert (row.state, row.patient_id, row.subject_id, row.contact_id) == (
        "pending",
        patient,
        fill_id,
        contact,
    )
    assert row.next_attempt_at == send_at(row.created_at, NEW_YORK)
    assert row.subject == "Your prescription is ready"
    pickup_by = (ready_at + dt.timedelta(days=settings.return_to_stock_days)).astimezone(NEW_YORK)
    assert f"Please pick it up by {pickup_by:%B} {pickup_by.day}." in row.body
    minimum_necessary(row)

    # sent: due now (as if the quiet hours were over), through the worker's sender
    async with hub.db.transaction() as session:
        await session.execute(
            update(Notification).where(Notification.id == row.id).values(next_attempt_at=utcnow())
        )
    handler, port = mailbox
    public = "https://hub.example.org"
    sending = dataclasses.replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_timeout=5.0,
        mail_from="Main St Pharmacy <notify@pharmacy.example.org>",
        issuer=public,  # one-click unsubscribe links must be https (RFC 8058)
    )
    sender = Sender.from_settings(sending)
    try:
        assert await asyncio.to_thread(sender.send_many, [row.id]) == []
    finally:
        await asyncio.to_thread(sender.close)
    # the sender took what else was due too: the contact point's verification code
    messages = {
        m["Subject"]: m
        for m in (
            email.message_from_bytes(e.content, policy=email.policy.default)
            for e in handler.received
        )
    }
    assert set(messages) == {"Your sign-in code", "Your prescription is ready"}
    message = messages["Your prescription is ready"]
    token = token_for(hub.client.app[UNSUBSCRIBE_KEY], contact)
    assert message["List-Unsubscribe"] == f"<{public}/unsubscribe/{token}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # a code the patient asked for is no subscription: no unsubscribe headers
    assert messages["Your sign-in code"]["List-Unsubscribe"] is None
    (sent,) = await notices(hub, EventKind.READY_FOR_PICKUP)
    assert sent.state == "sent"


async def test_a_patient_who_chose_no_channel_is_sent_nothing(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    patient = await patient_of(hub, rx_id)
    contact = await verified(hub, team.tom, patient, "email", EMAIL)  # but no channel chosen
    assert contact
    await to_ready(hub, team, rx_id)
    assert await notices(hub, EventKind.READY_FOR_PICKUP) == []

    # the email chosen, then the kind switched off there: nothing either
    rx_id, _ = await approved(hub, checker, team)
    url = f"/api/v1/patients/{patient}"
    assert (await call(hub, "PUT", f"{url}/preferences", team.tom, PREFERENCES))[0] == 200
    switch = {"switches": [{"kind": "ready_for_pickup", "channel": "email", "allowed": False}]}
    assert (await call(hub, "PUT", f"{url}/consent", team.tom, switch))[0] == 200
    await to_ready(hub, team, rx_id)
    assert await notices(hub, EventKind.READY_FOR_PICKUP) == []


async def test_a_prescribers_cancellation_tells_the_patient(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
) -> None:
    rx_id, message_id = await approved(hub, checker, team)
    patient = await patient_of(hub, rx_id)
    await reachable(hub, team.tom, patient)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    await ok(step(hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A)}))
    body = cancelrx_xml(
        message_id=f"CANCEL-{uuid.uuid4().hex[:12]}",
        order_number=f"ORD-{message_id}"[:35],
        drug_description="lisinopril 10 MG Oral Tablet",
        ndc=LISINOPRIL_A,
        written_date=dt.datetime.now(dt.UTC).date().isoformat(),
    )
    reply = await (await post_script(hub, body, team.prescriber_token)).read()
    assert b"<Status>" in reply
    assert await rx_state(hub, rx_id) == "cancelled"
    (row,) = await notices(hub, EventKind.CANCELLED_BY_PRESCRIBER)
    assert (row.state, row.patient_id, row.subject_id) == ("pending", patient, rx_id)
    assert row.next_attempt_at == send_at(row.created_at, NEW_YORK)
    assert row.subject == "A prescription was cancelled"
    assert "Your prescriber cancelled one of your prescriptions" in row.body
    minimum_necessary(row)
    # the fill it ended tells nobody it is ready
    assert await notices(hub, EventKind.READY_FOR_PICKUP) == []


async def test_asking_the_prescriber_notifies_after_the_delay_unless_answered_first(
    hub: Hub,
    checker: Checker,  # noqa: F811
    settings: Settings,
) -> None:
    s = await scene(hub, checker)
    patient = await patient_of(hub, s.rx_id)
    terry = await staff(hub, "terry", role="technician")
    await reachable(hub, terry, patient)
    request = await clarified(s)

    (row,) = await notices(hub, EventKind.NEEDS_PRESCRIBER)
    delay = dt.timedelta(seconds=settings.needs_prescriber_delay)
    assert delay == dt.timedelta(hours=1)  # the default
    assert (row.state, row.subject_id) == ("pending", s.rx_id)
    assert row.next_attempt_at == send_at(row.created_at + delay, NEW_YORK)
    assert row.subject == "Your prescription is waiting for your prescriber"
    minimum_necessary(row)

    denied = "<Denied><ReasonCode>AF</ReasonCode><DenialReason>Keep it</DenialReason></Denied>"
    reply = await s.post(answer("RxChangeResponse", request, denied, with_medication=False))
    assert code_of(reply) == "000", reply
    (row,) = await notices(hub, EventKind.NEEDS_PRESCRIBER)
    assert row.state == "cancelled"  # never sent: the answer came first
    assert row.attempts == 0


async def test_a_scheduled_consult_sends_the_patient_its_invite_link(hub: Hub) -> None:
    patient = uuid.UUID(await consult_patient(hub))
    alice = await staff(hub, "alice")
    terry = await staff(hub, "terry", role="technician")
    await reachable(hub, terry, patient)
    created = await hub.client.post(
        "/api/v1/consults", json={"patient_id": str(patient)}, headers=bearer(alice)
    )
    assert created.status == 200, await created.text()
    consult = await created.json()

    (row,) = await notices(hub, EventKind.CONSULT_SCHEDULED)
    assert (row.state, row.patient_id, row.subject_id) == (
        "pending",
        patient,
        uuid.UUID(consult["id"]),
    )
    assert row.next_attempt_at == send_at(row.created_at, NEW_YORK)
    assert row.subject == "Your consultation with a pharmacist"
    assert row.body.startswith("Hello Alex,")  # the first name, from the profile
    assert f"Join it from this link: {consult['invite_url']}\n" in row.body
    minimum_necessary(row)


async def test_a_cancellation_while_the_prescriber_is_asked_cancels_the_pending_notice(
    hub: Hub,
    checker: Checker,  # noqa: F811
) -> None:
    s = await scene(hub, checker)
    patient = await patient_of(hub, s.rx_id)
    await reachable(hub, await staff(hub, "terry", role="technician"), patient)
    await clarified(s)
    (waiting,) = await notices(hub, EventKind.NEEDS_PRESCRIBER)
    assert waiting.state == "pending"

    reply = await s.post(
        cancelrx_xml(
            message_id=f"CANCEL-{uuid.uuid4().hex[:12]}",
            order_number=f"ORD-{s.message_id}"[:35],
            drug_description="lisinopril 10 MG Oral Tablet",
            written_date=dt.datetime.now(dt.UTC).date().isoformat(),
        )
    )
    assert b"<Status>" in reply
    (waiting,) = await notices(hub, EventKind.NEEDS_PRESCRIBER)
    assert waiting.state == "cancelled"
    (cancelled,) = await notices(hub, EventKind.CANCELLED_BY_PRESCRIBER)
    assert (cancelled.state, cancelled.subject_id) == ("pending", s.rx_id)
