"""A consult's fee paid in its waiting room against a real local Stripe-compatible server
(`localstripe`) and its signed webhooks: the pharmacy's policy (billed after, may be paid while
waiting, must be paid before admission), the waiting patient's card set up in the provider's
fields (the test confirms it as the browser's fields would) with their consult's resume token,
the admission refused until the webhook settled the fee while the waiting room keeps working,
the fee charged once when the consult ends, and a consult called off before it took place
reversing its charge with the payment left to refund. Synthetic data only."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import pytest
import stripe
from sqlalchemy import func, select, update

from server.audit.models import AuditEvent
from server.auth.models import User
from server.patients.models import PatientProfile
from server.payments.consult_fees import ConsultFees
from server.payments.consult_http import CONSULT_FEES
from server.payments.models import LedgerEntry, PaymentIntent
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional import test_payments as paying
from tests.functional.consult_helpers import (
    Consult,
    Side,
    patient_joins,
    pharmacist_joins,
    scheduled,
)
from tests.functional.test_patient_contacts import call
from tests.functional.test_payments import settled, type_card
from tests.functional.verification_helpers import staff

# the payments' tests' provider (a localstripe process), settings, SDK and webhooks
provider, settings, sdk, webhooks = paying.provider, paying.settings, paying.sdk, paying.webhooks
FEE = 2500


async def fee_policy(hub: Hub, policy: str, price: int | None = FEE) -> None:
    admin = await staff(hub, f"ada{uuid.uuid4().hex[:6]}", role="pharmacy_admin")
    status, body = await call(
        hub, "PUT", "/api/v1/payments/settings", admin, {"consult_fee": policy}
    )
    assert (status, body) == (200, {"consult_fee": policy}), body
    status, body = await call(
        hub, "PUT", "/api/v1/payments/prices/consult", admin, {"amount": price}
    )
    assert status == 200, body


async def waiting(hub: Hub, pharmacist: str = "alice") -> tuple[Consult, Side, Side, str]:
    consult = await scheduled(hub, pharmacist)
    pharmacist = await pharmacist_joins(hub.client, consult)
    patient = await patient_joins(hub.client, consult)
    (joined,) = [m for m in patient.inbox if m["type"] == "joined"]
    return consult, pharmacist, patient, joined["resume"]


async def patient_fee(
    hub: Hub, resume: str, path: str = "", headers: dict[str, str] | None = None, **body: Any
) -> tuple[int, dict[str, Any]]:
    response = await hub.client.post(
        f"/api/v1/consult-fee{path}", json={"resume": resume, **body}, headers=headers
    )
    return response.status, await response.json()


async def pays(hub: Hub, sdk: stripe.StripeClient, resume: str) -> dict[str, Any]:
    status, setup = await patient_fee(hub, resume, "/cards")
    assert status == 200, setup
    await asyncio.to_thread(type_card, sdk, setup["client_secret"])
    key = {"Idempotency-Key": f"fee-{uuid.uuid4().hex[:12]}"}
    status, asked = await patient_fee(
        hub, resume, "/payments", headers=key, card_id=setup["card_id"]
    )
    assert status == 200, asked
    assert asked["amount"] == FEE
    return asked


async def ledger_of(hub: Hub) -> list[tuple[str, int, str]]:
    async with hub.db.sessions() as session:
        rows = await session.scalars(select(LedgerEntry).order_by(LedgerEntry.at))
        return [(r.kind, r.amount, r.cause_type) for r in rows]


async def test_the_fee_is_paid_in_the_waiting_room_before_admission_and_charged_once(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None
) -> None:
    await hub.pharmacy()
    await fee_policy(hub, "before_admission")
    consult, pharmacist, patient, resume = await waiting(hub)

    status, fee = await patient_fee(hub, resume)
    assert (status, fee["status"], fee["amount"], fee["policy"]) == (
        200,
        "unpaid",
        FEE,
        "before_admission",
    )
    token = consult.pharmacist_token
    status, seen = await call(hub, "GET", f"/api/v1/consults/{consult.id}/fee", token)
    assert (status, seen["status"]) == (200, "unpaid")

    await pharmacist.send(type="admit")  # not before the fee is paid
    refused = await pharmacist.expect("error")
    assert refused["code"] == "fee_unpaid"

    asked = await pays(hub, sdk, resume)
    await patient.send(type="ping")  # the waiting room goes on meanwhile
    await patient.expect("pong")
    await settled(hub, asked["payment_id"])
    status, fee = await patient_fee(hub, resume)
    assert fee["status"] == "paid"
    status, seen = await call(hub, "GET", f"/api/v1/consults/{consult.id}/fee", token)
    assert (seen["status"], seen["refund_due"]) == ("paid", False)
    status, again = await patient_fee(hub, resume, "/cards")
    assert (status, again["code"]) == (409, "fee_paid")

    await pharmacist.send(type="admit")
    await pharmacist.expect("admitted")
    await patient.expect("admitted")
    await pharmacist.send(type="end", notes="Synthetic counselling.", counselling="accepted")
    await pharmacist.expect("ended")
    # one charge (written with the payment), one payment: the end charges nothing more
    assert sorted(await ledger_of(hub)) == [("charge", FEE, "consult"), ("payment", FEE, "intent")]

    async with hub.db.sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.actor.startswith("patient:"))
            )
        )
    assert {"payment.consult_fee.read", "payment.card.setup", "payment.ask"} <= set(actions)


async def test_a_consult_called_off_reverses_its_fee_and_the_payment_is_to_refund(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None
) -> None:
    await hub.pharmacy()
    await fee_policy(hub, "waiting_room")
    consult, _, _, resume = await waiting(hub)
    asked = await pays(hub, sdk, resume)
    await settled(hub, asked["payment_id"])
    status, cancelled = await call(
        hub, "POST", f"/api/v1/consults/{consult.id}/cancel", consult.pharmacist_token
    )
    assert status == 200, cancelled
    assert sorted(await ledger_of(hub)) == [
        ("adjustment", -FEE, "consult_reversal"),
        ("charge", FEE, "consult"),
        ("payment", FEE, "intent"),
    ]
    status, seen = await call(
        hub, "GET", f"/api/v1/consults/{consult.id}/fee", consult.pharmacist_token
    )
    assert (seen["status"], seen["refund_due"]) == ("paid", True)
    assert seen["payment_entry_id"] is not None
    status, over = await patient_fee(hub, resume, "/cards")
    assert (status, over["code"]) == (409, "consult_over")
    # the refund follows the refund rules: staff with the permission make it
    url = f"/api/v1/payments/{seen['payment_entry_id']}/refunds"
    back = {"amount": FEE, "reason": "consult cancelled before it started"}
    status, problem = await call(hub, "POST", url, consult.pharmacist_token, back)
    assert (status, problem["code"]) == (403, "refund_not_allowed")
    async with hub.db.transaction() as session:
        await session.execute(update(User).where(User.username == "alice").values(refunds=True))
    status, refund = await call(hub, "POST", url, consult.pharmacist_token, back)
    assert status == 200, refund
    status, seen = await call(
        hub, "GET", f"/api/v1/consults/{consult.id}/fee", consult.pharmacist_token
    )
    assert (seen["status"], seen["refund_due"]) == ("paid", False)


async def test_a_payment_racing_the_consults_cancellation_charges_nothing(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pharmacist cancels between the waiting room's read of the fee and the payment's
    row: the payment sees the consult over (its row locked), nothing is charged or asked."""
    await hub.pharmacy()
    await fee_policy(hub, "waiting_room")
    consult, _, _, resume = await waiting(hub)
    status, setup = await patient_fee(hub, resume, "/cards")
    assert status == 200, setup
    await asyncio.to_thread(type_card, sdk, setup["client_secret"])
    read = ConsultFees._payable

    async def read_then_cancelled(self: ConsultFees, seated: Any, action: str) -> Any:
        fee = await read(self, seated, action)
        if action == "payment.ask":
            status, _ = await call(
                hub, "POST", f"/api/v1/consults/{consult.id}/cancel", consult.pharmacist_token
            )
            assert status == 200
        return fee

    monkeypatch.setattr(ConsultFees, "_payable", read_then_cancelled)
    key = {"Idempotency-Key": f"fee-{uuid.uuid4().hex[:12]}"}
    status, refused = await patient_fee(
        hub, resume, "/payments", headers=key, card_id=setup["card_id"]
    )
    assert (status, refused["code"]) == (409, "consult_over")
    assert await ledger_of(hub) == []
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PaymentIntent)) == 0


async def test_sessions_that_are_not_one_are_audited_as_a_summary(hub: Hub) -> None:
    """Anyone may post a made-up session: counted by address, not a row a post."""
    await hub.pharmacy()
    for path in ("", "/cards") * 15:
        status, problem = await patient_fee(hub, secrets.token_urlsafe(32), path)
        assert (status, problem["code"]) == (404, "resume_invalid")
    refused = AuditEvent.action.like("payment.%")
    async with hub.db.sessions() as session:
        assert (
            await session.scalar(select(func.count()).select_from(AuditEvent).where(refused)) == 0
        )
    await hub.client.app[CONSULT_FEES].close()  # as the hub stopping writes the window
    async with hub.db.sessions() as session:
        rows = (await session.scalars(select(AuditEvent).where(refused))).all()
    assert [(r.action, r.detail["count"]) for r in rows] == [("payment.consult_fee.refused", 30)]


async def test_a_fee_billed_after_or_payable_later_never_holds_the_patient_back(hub: Hub) -> None:
    await hub.pharmacy()
    await fee_policy(hub, "after")
    _, pharmacist, patient, resume = await waiting(hub)
    status, fee = await patient_fee(hub, resume)
    assert (fee["policy"], fee["status"]) == ("after", "unpaid")
    status, refused = await patient_fee(hub, resume, "/cards")
    assert (status, refused["code"]) == (409, "fee_billed_after")
    await pharmacist.send(type="admit")
    await patient.expect("admitted")

    await fee_policy(hub, "waiting_room")  # may pay later: admitted unpaid
    _, pharmacist, patient, _ = await waiting(hub, "bob")
    await pharmacist.send(type="admit")
    await patient.expect("admitted")
    await pharmacist.send(type="end", notes="Synthetic counselling.", counselling="accepted")
    await pharmacist.expect("ended")
    assert ("charge", FEE, "consult") in await ledger_of(hub)  # billed when it ended

    await fee_policy(hub, "before_admission", None)  # no price: no fee to wait for
    _, pharmacist, patient, resume = await waiting(hub, "carol")
    status, fee = await patient_fee(hub, resume)
    assert fee["status"] == "none"
    status, refused = await patient_fee(hub, resume, "/cards")
    assert (status, refused["code"]) == (409, "no_fee")
    await pharmacist.send(type="admit")
    await patient.expect("admitted")


async def test_the_fee_is_refused_to_strangers(hub: Hub) -> None:
    await hub.pharmacy()
    await hub.pharmacy(**OTHER_PHARMACY)
    await fee_policy(hub, "before_admission")
    consult, _, _, _ = await waiting(hub)
    status, refused = await patient_fee(hub, "x" * 40)
    assert (status, refused["code"]) == (404, "resume_invalid")
    status, refused = await patient_fee(hub, "short")
    assert status == 400
    other = await staff(hub, "oscar", pharmacy=OTHER_PHARMACY["ncpdpid"])
    status, _ = await call(hub, "GET", f"/api/v1/consults/{consult.id}/fee", other)
    assert status == 404
    tech = await staff(hub, "terry", role="technician")
    status, body = await call(
        hub, "PUT", "/api/v1/payments/settings", tech, {"consult_fee": "after"}
    )
    assert status == 403, body
    status, body = await call(
        hub, "PUT", "/api/v1/payments/settings", tech, {"consult_fee": "sometimes"}
    )
    assert status in (400, 403), body


async def credit(hub: Hub, consult: Consult, amount: int) -> None:
    """A credit on the consult's patient's balance (a corrected charge, say)."""
    status, found = await call(
        hub, "GET", f"/api/v1/consults/{consult.id}", consult.pharmacist_token
    )
    assert status == 200, found
    patient = uuid.UUID(found["patient_id"])
    async with hub.db.transaction() as session:
        row = await session.get_one(PatientProfile, patient)
        session.add(
            LedgerEntry(
                pharmacy_id=row.pharmacy_id,
                patient_id=patient,
                kind="adjustment",
                amount=-amount,
                currency="usd",
                cause_type="manual",
                cause_id=str(uuid.uuid4()),
                description="Corrected",
                reason="synthetic credit",
                actor="test",
            )
        )


async def test_a_credit_lowers_the_fee_or_covers_it(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None
) -> None:
    await hub.pharmacy()
    await fee_policy(hub, "before_admission")
    consult, pharmacist, patient, resume = await waiting(hub)
    await credit(hub, consult, 1000)
    status, fee = await patient_fee(hub, resume)
    assert (fee["status"], fee["amount"], fee["due"]) == ("unpaid", FEE, FEE - 1000)
    status, setup = await patient_fee(hub, resume, "/cards")
    await asyncio.to_thread(type_card, sdk, setup["client_secret"])
    status, asked = await patient_fee(hub, resume, "/payments", card_id=setup["card_id"])
    assert (status, asked["amount"]) == (200, FEE - 1000), asked
    await settled(hub, asked["payment_id"])
    assert (await patient_fee(hub, resume))[1]["status"] == "paid"
    await pharmacist.send(type="admit")
    await patient.expect("admitted")

    covered, pharmacist, patient, resume = await waiting(hub, "bob")
    await credit(hub, covered, FEE)  # with the rest of the first credit: more than the fee
    status, fee = await patient_fee(hub, resume)
    assert (fee["status"], fee["due"]) == ("covered", None)
    status, refused = await patient_fee(hub, resume, "/cards")
    assert (status, refused["code"]) == (409, "fee_covered")
    await pharmacist.send(type="admit")  # nothing to pay: admitted
    await patient.expect("admitted")
