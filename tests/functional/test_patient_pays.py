"""The signed-in patient pays on their own page, against a real local Stripe-compatible server
(`localstripe`): their balance and what each line is for, a card set up in the provider's
fields (the test confirms it as the browser's fields would), paid and saved, settled only by
the provider's signed webhook, the saved card used again and removed, their plan read-only.
Another patient's card is 404; no session is 401, no CSRF token 403, more than the balance
422, an amount not an integer 400; every read and change is audited with the patient as the
actor. Synthetic data only; the test card is the provider's public one."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import stripe
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.schedule.runner import Schedule
from server.settings import SETTINGS
from tests.conftest import Hub
from tests.functional import test_payments
from tests.functional.patient_page_helpers import change, signed_in, verified_email
from tests.functional.test_patient_contacts import call, profile
from tests.functional.test_payments import (
    charged,
    new_card,
    schedule,  # noqa: F401 (fixture)
    settled,
    take_due,
    type_card,
)
from tests.functional.verification_helpers import staff
from tests.support.localstripe import PUBLISHABLE_KEY

# the payments tests' fixtures: the provider (a localstripe process), the hub's settings for it,
# the test's door to it (what the patient's browser does there) and its webhooks to the hub
provider = test_payments.provider
settings = test_payments.settings
sdk = test_payments.sdk
webhooks = test_payments.webhooks


@dataclasses.dataclass
class Signed:
    patient: uuid.UUID
    csrf: str
    tech: str
    alice: str


async def patient_signed_in(hub: Hub, *, pharmacy: bool = True) -> Signed:
    """A patient with a verified email, signed in on the test client (its cookie)."""
    if pharmacy:
        await hub.pharmacy()
    patient = await profile(hub)
    tech, alice = await staff(hub, "terry", role="technician"), await staff(hub, "alice")
    await verified_email(hub, tech, patient)
    return Signed(patient, await signed_in(hub), tech, alice)


async def me(
    hub: Hub, method: str, path: str, csrf: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    headers = kwargs.pop("headers", {})
    if csrf is not None:
        headers = {**change(csrf), **headers}
    response = await hub.client.request(method, f"/api/v1/me{path}", headers=headers, **kwargs)
    return response.status, await response.json()


def settings_origin(hub: Hub) -> str:
    """The provider's origin (localstripe serves its Stripe.js and its API on one)."""
    url = hub.client.app[SETTINGS].stripe_js_url
    return url.split("/js.stripe.com/")[0]


async def my_card(hub: Hub, sdk: stripe.StripeClient, csrf: str) -> str:
    status, setup = await me(hub, "POST", "/cards", csrf)
    assert status == 200, setup
    assert setup["publishable_key"] == PUBLISHABLE_KEY
    assert setup["js_url"].endswith("/js.stripe.com/v3/")
    await asyncio.to_thread(type_card, sdk, setup["client_secret"])
    return str(setup["card_id"])


async def test_the_patient_sees_what_they_owe_pays_it_and_saves_the_card(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None
) -> None:
    who = await patient_signed_in(hub)
    page = await hub.client.get("/me/1234567")
    policy = page.headers["Content-Security-Policy"]
    origin = settings_origin(hub)
    assert f"script-src 'self' {origin};" in policy
    assert f"frame-src {origin};" in policy
    await charged(hub, who.alice, who.patient, 1234)
    status, owed = await me(hub, "GET", "/balance")
    assert status == 200, owed
    assert owed["balance"] == {"usd": 1234}
    (line,) = owed["items"]
    assert (line["kind"], line["description"], line["signed"]) == ("charge", "Consult fee", 1234)
    assert "reason" not in line  # the staff's reason is theirs

    card = await my_card(hub, sdk, who.csrf)
    key = {"Idempotency-Key": "patient-pays-0001"}
    body = {"amount": 1000, "card_id": card, "save": True}
    status, asked = await me(hub, "POST", "/payments", who.csrf, json=body, headers=key)
    assert status == 200, asked
    status, again = await me(hub, "POST", "/payments", who.csrf, json=body, headers=key)
    assert (status, again["payment_id"]) == (200, asked["payment_id"])  # asked once
    await settled(hub, asked["payment_id"])
    status, owed = await me(hub, "GET", "/balance")
    assert owed["balance"] == {"usd": 234}
    newest = owed["items"][0]
    assert (newest["kind"], newest["signed"], newest["description"]) == (
        "payment",
        -1000,
        "Payment, thank you",
    )
    status, cards = await me(hub, "GET", "/cards")
    assert status == 200
    assert [(c["id"], c["brand"], c["last4"]) for c in cards["items"]] == [(card, "visa", "4242")]
    assert cards["items"][0]["exp_year"] == 2030

    # the saved card pays the rest later, without being typed again
    body = {"amount": 234, "card_id": card}
    status, asked = await me(hub, "POST", "/payments", who.csrf, json=body)
    assert status == 200, asked
    await settled(hub, asked["payment_id"])
    assert (await me(hub, "GET", "/balance"))[1]["balance"] == {}  # nothing owed
    status, cards = await me(hub, "DELETE", f"/cards/{card}", who.csrf)
    assert (status, cards["items"]) == (200, [])
    status, problem = await me(hub, "DELETE", f"/cards/{card}", who.csrf)
    assert status == 404, problem

    async with hub.db.sessions() as session:
        rows = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.outcome).where(
                    AuditEvent.actor == f"patient:{who.patient}"
                )
            )
        ).all()
    seen = set(rows)
    for action in (
        "payment.statement.read",
        "payment.card.setup",
        "payment.ask",
        "payment.cards.read",
        "payment.card.remove",
    ):
        assert (action, "success") in seen, action
    assert ("payment.card.remove", "not_found") in seen


async def test_refusals_are_clear_and_another_patients_card_is_404(
    hub: Hub, sdk: stripe.StripeClient
) -> None:
    # signed out: 401 on every route
    await hub.pharmacy()
    for method, path in [
        ("GET", "/balance"),
        ("GET", "/cards"),
        ("POST", "/cards"),
        ("DELETE", f"/cards/{uuid.uuid4()}"),
        ("POST", "/payments"),
        ("GET", "/plans"),
    ]:
        status, problem = await me(hub, method, path)
        assert status == 401, (method, path, problem)

    who = await patient_signed_in(hub, pharmacy=False)
    await charged(hub, who.alice, who.patient, 500)
    other = await profile(hub)
    await charged(hub, who.alice, other, 800)
    theirs = await new_card(hub, sdk, who.tech, other)
    card = await my_card(hub, sdk, who.csrf)

    # a change without the CSRF token (or from elsewhere) is 403
    status, _ = await me(hub, "POST", "/cards")
    assert status == 403
    body = {"amount": 100, "card_id": card}
    status, _ = await me(hub, "POST", "/payments", json=body)
    assert status == 403
    status, _ = await me(hub, "DELETE", f"/cards/{card}")
    assert status == 403
    status, _ = await me(
        hub, "POST", "/payments", who.csrf, json=body, headers={"Origin": "http://elsewhere.test"}
    )
    assert status == 403

    # another patient's card: 404, paying with it or removing it
    status, problem = await me(
        hub, "POST", "/payments", who.csrf, json={"amount": 100, "card_id": theirs}
    )
    assert status == 404, problem
    status, problem = await me(hub, "DELETE", f"/cards/{theirs}", who.csrf)
    assert status == 404, problem
    status, problem = await me(hub, "DELETE", "/cards/not-a-card", who.csrf)
    assert status == 404, problem

    # more than the balance (500), not an integer, a bad key
    status, problem = await me(
        hub, "POST", "/payments", who.csrf, json={"amount": 501, "card_id": card}
    )
    assert (status, problem["code"], problem["balance"]) == (422, "amount_over_balance", 500)
    for amount in (12.5, "500", None, 0):
        status, problem = await me(
            hub, "POST", "/payments", who.csrf, json={"amount": amount, "card_id": card}
        )
        assert status == 400, (amount, problem)
    status, problem = await me(
        hub,
        "POST",
        "/payments",
        who.csrf,
        json={"amount": 100, "card_id": card},
        headers={"Idempotency-Key": "no"},
    )
    assert status == 400, problem

    # a card the bank declines charging: the provider's words
    status, setup = await me(hub, "POST", "/cards", who.csrf)
    assert status == 200, setup
    await asyncio.to_thread(type_card, sdk, setup["client_secret"], "4000000000000341")
    status, problem = await me(
        hub, "POST", "/payments", who.csrf, json={"amount": 100, "card_id": setup["card_id"]}
    )
    assert (status, problem["code"]) == (422, "card_declined"), problem
    assert problem["detail"] == "Your card was declined."

    # nothing was paid; the other patient owes what they owed
    status, owed = await me(hub, "GET", "/balance")
    assert owed["balance"] == {"usd": 500}
    _, book = await call(hub, "GET", f"/api/v1/patients/{other}/ledger", who.tech)
    assert book["balance"] == {"usd": 800}
    async with hub.db.sessions() as session:
        found = await session.execute(
            select(AuditEvent.action, AuditEvent.outcome, AuditEvent.detail).where(
                AuditEvent.actor == f"patient:{who.patient}", AuditEvent.outcome != "success"
            )
        )
        rows = {(a, o, str((d or {}).get("refused"))) for a, o, d in found.all()}
    assert ("payment.ask", "not_found", "None") in rows
    assert ("payment.card.remove", "not_found", "None") in rows
    assert ("payment.ask", "refused", "amount_over_balance") in rows


async def test_the_patient_reads_their_plan(
    hub: Hub,
    sdk: stripe.StripeClient,
    webhooks: None,
    schedule: Schedule,  # noqa: F811
) -> None:
    who = await patient_signed_in(hub)
    await charged(hub, who.alice, who.patient, 3000)
    status, plans = await me(hub, "GET", "/plans")
    assert (status, plans["items"]) == (200, [])
    card = await my_card(hub, sdk, who.csrf)
    status, asked = await me(
        hub, "POST", "/payments", who.csrf, json={"amount": 1000, "card_id": card, "save": True}
    )
    assert status == 200, asked
    await settled(hub, asked["payment_id"])
    status, plan = await call(
        hub,
        "POST",
        f"/api/v1/patients/{who.patient}/plans",
        who.tech,
        {"card_id": card, "count": 2},
    )
    assert status == 200, plan
    assert await take_due(schedule) == 1
    for _ in range(75):
        status, plans = await me(hub, "GET", "/plans")
        if plans["items"][0]["instalments"][0]["status"] == "paid":
            break
        await asyncio.sleep(0.2)
    (shown,) = plans["items"]
    assert (shown["status"], shown["total"], shown["paid"]) == ("active", 2000, 1000)
    assert [(i["number"], i["amount"], i["status"]) for i in shown["instalments"]] == [
        (1, 1000, "paid"),
        (2, 1000, "pending"),
    ]
    assert (await me(hub, "GET", "/balance"))[1]["balance"] == {"usd": 1000}
    async with hub.db.sessions() as session:
        actors = set(
            await session.scalars(
                select(AuditEvent.actor).where(AuditEvent.action == "payment.plans.read")
            )
        )
    assert actors == {f"patient:{who.patient}"}
