"""A payment plan's instalment the bank refuses tells the patient (``payment_failed``), against
a real local Stripe-compatible server (`localstripe`) and a real SMTP server (aiosmtpd): once
an attempt, however often the refusal is reported (the provider's answer, then its signed
webhook), again at the next attempt; in the patient's waking hours, to their verified email,
with the amount and their page's link and neither card digits nor a drug; nothing once the
pharmacy switched the event off. Synthetic data only; the declining card is the provider's
public test card."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import stripe
from sqlalchemy import select, update

from eprescribe.notifications import EventKind, send_at
from server.admin.models import Pharmacy
from server.db.models import utcnow
from server.payments.models import PaymentCard, PaymentInstalment
from server.schedule.runner import Schedule
from server.settings import Settings
from tests.conftest import ISSUER, Hub
from tests.functional.test_notification_triggers import (
    EMAIL,
    NEW_YORK,
    minimum_necessary,
    notices,
    reachable,
)
from tests.functional.test_notifications_outbox import Mailbox, mailbox  # noqa: F401 (fixture)
from tests.functional.test_patient_contacts import call, profile
from tests.functional.test_payments import (  # noqa: F401 (fixtures)
    charged,
    deliver,
    provider,
    schedule,
    sdk,
    settings,
    take_due,
    type_card,
    webhooks,
)
from tests.functional.verification_helpers import staff
from tests.support.smtp import emailed

K = EventKind
#: the provider's test card that is saved but declined when charged
DECLINING = "4000000000000341"


async def declining_card(
    hub: Hub,
    client: stripe.StripeClient,
    token: str,
    patient: uuid.UUID,
) -> str:
    """A card the bank lets the patient save but refuses to charge, saved for a plan."""
    status, setup = await call(hub, "POST", f"/api/v1/patients/{patient}/cards", token)
    assert status == 200, setup
    await asyncio.to_thread(type_card, client, setup["client_secret"], DECLINING)
    confirmed = await asyncio.to_thread(
        lambda: client.v1.setup_intents.retrieve(setup["client_secret"].split("_secret_")[0])
    )
    async with hub.db.transaction() as session:
        await session.execute(
            update(PaymentCard)
            .where(PaymentCard.id == uuid.UUID(setup["card_id"]))
            .values(saved=True, payment_method=confirmed.payment_method)
        )
    return str(setup["card_id"])


async def test_a_refused_instalment_tells_the_patient_once_an_attempt(
    hub: Hub,
    sdk: stripe.StripeClient,  # noqa: F811
    schedule: Schedule,  # noqa: F811
    settings: Settings,  # noqa: F811
    mailbox: tuple[Mailbox, int],  # noqa: F811
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await reachable(hub, alice, patient)
    await charged(hub, alice, patient, 5000)
    card = await declining_card(hub, sdk, alice, patient)
    status, plan = await call(
        hub, "POST", f"/api/v1/patients/{patient}/plans", alice, {"card_id": card, "count": 2}
    )
    assert status == 200, plan

    assert await take_due(schedule) == 0  # refused at once
    (told,) = await notices(hub, K.PAYMENT_FAILED)
    minimum_necessary(told)
    async with hub.db.sessions() as session:
        first = await session.scalar(select(PaymentInstalment).where(PaymentInstalment.number == 1))
        ncpdpid = await session.scalar(select(Pharmacy.ncpdpid))
    assert first is not None
    assert (first.status, first.attempts) == ("failed", 1)
    assert (told.patient_id, told.subject_id) == (uuid.UUID(str(patient)), first.intent_id)
    assert told.subject == "We could not take your payment"
    assert "25.00 USD" in told.body
    assert f"{ISSUER}/me/{ncpdpid}" in told.body
    assert not [d for d in ("0341", "4000", DECLINING) if d in f"{told.subject}{told.body}"]
    assert told.next_attempt_at == send_at(told.created_at, NEW_YORK)  # the quiet hours

    # the provider's webhook reports the same refusal (signed, then again): nothing more
    payload = json.dumps(
        {
            "id": "evt_instalment_refused",
            "type": "payment_intent.payment_failed",
            "data": {
                "object": {
                    "id": "pi_instalment_refused",
                    "amount": 2500,
                    "currency": "usd",
                    "last_payment_error": {"message": "Your card was declined."},
                    "metadata": {"hub_payment": str(first.intent_id)},
                }
            },
        }
    ).encode()
    for _ in range(2):
        status, _answer = await deliver(hub, payload)
        assert status == 200
    assert len(await notices(hub, K.PAYMENT_FAILED)) == 1

    # the next attempt, refused too: told again
    later = utcnow() + dt.timedelta(days=1, minutes=1)
    assert await take_due(schedule, later) == 0
    assert len(await notices(hub, K.PAYMENT_FAILED)) == 2

    # the pharmacy switched the event off: the last attempt tells nobody
    status, body = await call(
        hub,
        "PUT",
        "/api/v1/notifications/settings",
        alice,
        {"switches": [{"kind": "payment_failed", "enabled": False}]},
    )
    assert (status, body["enabled"]["payment_failed"]) == (200, False), body
    assert await take_due(schedule, later + dt.timedelta(days=3, minutes=1)) == 0
    assert len(await notices(hub, K.PAYMENT_FAILED)) == 2
    async with hub.db.sessions() as session:
        stopped = await session.scalar(
            select(PaymentInstalment.status).where(PaymentInstalment.number == 1)
        )
    assert stopped == "stopped"

    # the first goes out by email, as it was written
    mail = await emailed(hub.db, settings, mailbox, told.id, "We could not take your payment")
    assert mail["To"] == EMAIL
    text = mail.get_body(("plain",)).get_content()
    assert "25.00 USD" in text
    assert f"{ISSUER}/me/{ncpdpid}" in text


async def test_a_patient_who_switched_it_off_is_not_told(
    hub: Hub,
    sdk: stripe.StripeClient,  # noqa: F811
    schedule: Schedule,  # noqa: F811
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await reachable(hub, alice, patient)
    switch = {"switches": [{"kind": "payment_failed", "channel": "email", "allowed": False}]}
    status, body = await call(hub, "PUT", f"/api/v1/patients/{patient}/consent", alice, switch)
    assert status == 200, body
    await charged(hub, alice, patient, 3000)
    card = await declining_card(hub, sdk, alice, patient)
    status, plan = await call(
        hub, "POST", f"/api/v1/patients/{patient}/plans", alice, {"card_id": card, "count": 2}
    )
    assert status == 200, plan
    assert await take_due(schedule) == 0
    assert await notices(hub, K.PAYMENT_FAILED) == []
    async with hub.db.sessions() as session:
        attempts = await session.scalar(
            select(PaymentInstalment.attempts).where(PaymentInstalment.number == 1)
        )
    assert attempts == 1
