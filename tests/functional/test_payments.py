"""Payments against a real local Stripe-compatible server (`localstripe`, started by the tests)
through the official `stripe` SDK: a fill made ready is charged from the price list, a payment
is asked, confirmed as the browser's card fields would, and settled only by the provider's
signed webhook; refunds need the permission and never exceed the payment; every refusal is
clear and changes nothing. Synthetic data only; the test card is the provider's public one."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import stripe
from sqlalchemy import func, select, update

from eprescribe.payments import sign
from server.audit.models import AuditEvent
from server.auth.models import User
from server.db.models import utcnow
from server.payments import reconciling, refusals, store
from server.payments.models import (
    LedgerEntry,
    PaymentCard,
    PaymentEvent,
    PaymentInstalment,
    PaymentIntent,
)
from server.schedule.models import JobLease
from server.schedule.runner import PLANS_JOB, Schedule
from server.settings import Settings
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.test_patient_contacts import call, profile
from tests.functional.verification_helpers import bearer, staff
from tests.support.localstripe import PUBLISHABLE_KEY, SECRET_KEY, LocalStripe, local_stripe

WEBHOOK_SECRET = "whsec_synthetic_0123456789"
TEST_CARD = "4242424242424242"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    with local_stripe(tmp_path_factory.mktemp("localstripe")) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, provider: LocalStripe) -> Settings:
    return dataclasses.replace(
        settings,
        stripe_api_key=SECRET_KEY,
        stripe_publishable_key=PUBLISHABLE_KEY,
        stripe_api_base=provider.url,
        stripe_js_url=provider.js_url,
        stripe_webhook_secrets=(WEBHOOK_SECRET,),
    )


@pytest.fixture
def sdk(provider: LocalStripe) -> stripe.StripeClient:
    """The test's own door to the provider: what the patient's browser and the provider's
    dashboard do there."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": provider.url})


@pytest.fixture
def webhooks(hub: Hub, provider: LocalStripe) -> None:
    server = hub.client.server
    provider.send_webhooks_to(f"http://127.0.0.1:{server.port}/payments/webhook", WEBHOOK_SECRET)


@pytest.fixture
async def schedule(hub: Hub, settings: Settings) -> AsyncIterator[Schedule]:
    """The hub's schedule, as a hub process or a worker runs it (here without the leases,
    at the moments the test chooses)."""
    made = await asyncio.to_thread(Schedule.from_settings, settings)
    yield made
    await asyncio.to_thread(made.close)


async def take_due(schedule: Schedule, now: dt.datetime | None = None) -> int:
    """One run of the payment plans' job: how many instalments it asked for."""
    ran = await asyncio.to_thread(schedule.run, now or utcnow(), PLANS_JOB)
    return ran.counts[PLANS_JOB]


async def charged(hub: Hub, token: str, patient: uuid.UUID, amount: int) -> dict[str, Any]:
    status, body = await call(
        hub,
        "POST",
        f"/api/v1/patients/{patient}/charges",
        token,
        {"amount": amount, "description": "Consult fee", "reason": "not in the price list"},
    )
    assert status == 200, body
    return body


async def ledger(hub: Hub, token: str, patient: uuid.UUID) -> dict[str, Any]:
    status, body = await call(hub, "GET", f"/api/v1/patients/{patient}/ledger", token)
    assert status == 200, body
    return body


def type_card(sdk: stripe.StripeClient, client_secret: str, number: str = TEST_CARD) -> None:
    """What the provider's card fields do in the browser (Stripe.js ``confirmCardSetup``): the
    card typed there confirms the setup; the hub sees neither."""
    setup = client_secret.split("_secret_")[0]
    card = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    sdk.v1.setup_intents.confirm(
        setup,
        params={
            "client_secret": client_secret,
            "payment_method_data": {"type": "card", "card": card},
        },
    )


async def new_card(hub: Hub, sdk: stripe.StripeClient, token: str, patient: uuid.UUID) -> str:
    status, setup = await call(hub, "POST", f"/api/v1/patients/{patient}/cards", token)
    assert status == 200, setup
    assert setup["publishable_key"] == PUBLISHABLE_KEY
    await asyncio.to_thread(type_card, sdk, setup["client_secret"])
    return str(setup["card_id"])


async def pay(
    hub: Hub, token: str, patient: uuid.UUID, card: str, amount: int, **extra: Any
) -> dict[str, Any]:
    status, asked = await call(
        hub,
        "POST",
        f"/api/v1/patients/{patient}/payments",
        token,
        {"amount": amount, "card_id": card, **extra},
    )
    assert status == 200, asked
    return asked


async def settled(hub: Hub, payment_id: str, within: float = 15) -> PaymentIntent:
    """The payment once the provider's webhook put it on the ledger."""
    deadline = time.monotonic() + within
    while True:
        async with hub.db.sessions() as session:
            intent = await session.get(PaymentIntent, uuid.UUID(payment_id))
            assert intent is not None
            paid = await session.scalar(
                select(LedgerEntry).where(
                    LedgerEntry.kind == "payment", LedgerEntry.cause_id == intent.provider_id
                )
            )
        if paid is not None:
            return intent
        assert time.monotonic() < deadline, intent.status
        await asyncio.sleep(0.2)


async def test_a_charge_is_paid_and_settled_by_the_signed_webhook(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None
) -> None:
    await hub.pharmacy()
    patient, tech = await profile(hub), await staff(hub, "terry", role="technician")
    alice = await staff(hub, "alice")
    await charged(hub, alice, patient, 2500)
    assert (await ledger(hub, tech, patient))["balance"] == {"usd": 2500}

    card = await new_card(hub, sdk, tech, patient)
    asked = await pay(hub, tech, patient, card, 2000, save=True)
    assert asked["client_secret"] is None  # no bank check asked for this card
    # the provider's answer is not the ledger's: the balance waits for the signed webhook
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 1
    intent = await settled(hub, asked["payment_id"])
    assert intent.status == "succeeded"
    assert intent.charge_ref
    assert intent.charge_ref.startswith("ch_")
    book = await ledger(hub, tech, patient)
    assert book["balance"] == {"usd": 500}
    payment = book["items"][0]
    assert (payment["kind"], payment["amount"], payment["signed"]) == ("payment", 2000, -2000)
    assert payment["method"] == "counter"
    async with hub.db.sessions() as session:
        outcomes = dict(
            (await session.execute(select(PaymentEvent.type, PaymentEvent.outcome))).all()
        )
    assert outcomes["payment_intent.succeeded"] == "settled"
    assert outcomes["customer.created"] == "ignored"
    status, cards = await call(hub, "GET", f"/api/v1/patients/{patient}/cards", tech)
    assert status == 200
    assert [(c["brand"], c["last4"]) for c in cards["items"]] == [("visa", "4242")]


async def test_a_payment_the_provider_declines_later_shows_declined_with_its_reason(
    hub: Hub, sdk: stripe.StripeClient
) -> None:
    """The provider answered (processing, here: its own webhook is not sent), then declined
    the payment by a signed ``payment_intent.payment_failed``: the status the console polls
    says declined, in the provider's words; another patient's payment is 404."""
    await hub.pharmacy()
    patient, other = await profile(hub), await profile(hub)
    alice, tech = await staff(hub, "alice"), await staff(hub, "terry", role="technician")
    await charged(hub, alice, patient, 3000)
    asked = await pay(hub, tech, patient, await new_card(hub, sdk, tech, patient), 3000)
    url = f"/api/v1/patients/{patient}/payments/{asked['payment_id']}"
    status, seen = await call(hub, "GET", url, tech)
    assert (status, seen["status"], seen["amount"], seen["entry_id"]) == (
        200,
        "processing",
        3000,
        None,
    )
    obj = {
        "id": asked["provider_id"],
        "object": "payment_intent",
        "amount": 3000,
        "currency": "usd",
        "status": "requires_payment_method",
        "last_payment_error": {
            "code": "card_declined",
            "message": "Your card has insufficient funds.",
        },
    }
    failed = json.dumps(
        {
            "id": "evt_async_decline",
            "type": "payment_intent.payment_failed",
            "data": {"object": obj},
        }
    ).encode()
    assert (await deliver(hub, failed))[0] == 200
    status, seen = await call(hub, "GET", url, tech)
    assert (status, seen["status"], seen["reason"]) == (
        200,
        "declined",
        "Your card has insufficient funds.",
    )
    assert (await ledger(hub, tech, patient))["balance"] == {"usd": 3000}
    status, _ = await call(
        hub, "GET", f"/api/v1/patients/{other}/payments/{asked['payment_id']}", tech
    )
    assert status == 404
    status, _ = await call(hub, "GET", f"/api/v1/patients/{patient}/payments/nope", tech)
    assert status == 404
    async with hub.db.sessions() as session:
        reads = list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.action == "payment.status.read")
            )
        )
    assert reads == ["success", "success", "not_found"]


async def test_the_same_idempotency_key_asks_once(hub: Hub, sdk: stripe.StripeClient) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await charged(hub, alice, patient, 1000)
    card = await new_card(hub, sdk, alice, patient)
    url = f"/api/v1/patients/{patient}/payments"
    headers = {"Authorization": f"Bearer {alice}", "Idempotency-Key": "counter-0001-abc"}
    body = {"amount": 1000, "card_id": card}
    first = await hub.client.post(url, json=body, headers=headers)
    second = await hub.client.post(url, json=body, headers=headers)
    assert first.status == second.status == 200
    one, two = await first.json(), await second.json()
    assert one["payment_id"] == two["payment_id"]
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PaymentIntent)) == 1


async def test_the_console_may_load_the_providers_script_and_reach_its_api(
    hub: Hub, provider: LocalStripe
) -> None:
    """The card fields come from the provider's script and talk to its API: the console's
    policy allows those two origins (from the settings) and nothing else more."""
    response = await hub.client.get("/")
    assert response.status == 200
    policy = {
        name: values
        for name, *values in (
            part.split() for part in response.headers["Content-Security-Policy"].split(";")
        )
    }
    assert policy["script-src"] == ["'self'", provider.url]
    assert policy["connect-src"][0] == "'self'"
    assert policy["connect-src"][-1] == provider.url
    assert policy["frame-src"] == [provider.url]
    assert policy["default-src"] == ["'none'"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": 1001}, 422, "amount_over_balance"),
        ({"amount": 10.5}, 400, "bad_request"),
        ({"amount": "1000"}, 400, "bad_request"),
        ({"amount": -5}, 400, "bad_request"),
        ({"amount": 0}, 400, "bad_request"),
        ({"amount": 100, "currency": "xyz"}, 422, "currency_unknown"),
        ({"amount": 100, "card_number": TEST_CARD}, 400, "bad_request"),
    ],
)
async def test_payments_asked_wrongly_are_refused(
    hub: Hub, sdk: stripe.StripeClient, body: dict[str, Any], status: int, code: str
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await charged(hub, alice, patient, 1000)
    card = await new_card(hub, sdk, alice, patient)
    got, problem = await call(
        hub, "POST", f"/api/v1/patients/{patient}/payments", alice, {"card_id": card, **body}
    )
    assert (got, problem["code"]) == (status, code), problem
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PaymentIntent)) == 0


async def test_another_pharmacys_patient_is_not_found(hub: Hub) -> None:
    await hub.pharmacy()
    await hub.pharmacy(**OTHER_PHARMACY)
    theirs = await profile(hub, OTHER_PHARMACY["ncpdpid"])
    alice = await staff(hub, "alice")
    for method, path, body in [
        ("GET", "ledger", None),
        ("POST", "charges", {"amount": 100, "description": "x", "reason": "y"}),
        ("POST", "payments", {"amount": 100, "card_id": str(uuid.uuid4())}),
        ("POST", "cards", None),
        ("GET", "cards", None),
    ]:
        status, problem = await call(hub, method, f"/api/v1/patients/{theirs}/{path}", alice, body)
        assert (status, problem["code"]) == (404, "not_found"), path
    assert set(await hub.audit_outcomes("payment.statement.read")) == {"not_found"}
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def event(
    event_id: str, intent: str, amount: int, type_: str = "payment_intent.succeeded"
) -> bytes:
    obj = {
        "id": intent,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "currency": "usd",
        "status": "succeeded",
        "latest_charge": f"ch_{event_id}",
    }
    return json.dumps({"id": event_id, "type": type_, "data": {"object": obj}}).encode()


async def deliver(
    hub: Hub, payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None
) -> tuple[int, dict[str, Any]]:
    header = sign(secret, payload, int(time.time()) if at is None else at)
    response = await hub.client.post(
        "/payments/webhook",
        data=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    return response.status, await response.json()


async def asked_intent(
    hub: Hub, sdk: stripe.StripeClient, token: str, patient: uuid.UUID, amount: int
) -> str:
    card = await new_card(hub, sdk, token, patient)
    return str((await pay(hub, token, patient, card, amount))["provider_id"])


async def test_webhook_refusals_and_replays_change_nothing(
    hub: Hub, sdk: stripe.StripeClient
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await charged(hub, alice, patient, 3000)
    intent = await asked_intent(hub, sdk, alice, patient, 3000)

    bad = [
        (event("evt_bad", intent, 3000), "whsec_wrong", None, "signature_invalid"),
        (
            event("evt_old", intent, 3000),
            WEBHOOK_SECRET,
            int(time.time()) - 3600,
            "signature_stale",
        ),
    ]
    for payload, secret, at, code in bad:
        status, problem = await deliver(hub, payload, secret, at)
        assert (status, problem["code"]) == (400, code)
    response = await hub.client.post("/payments/webhook", data=event("evt_x", intent, 3000))
    assert (response.status, (await response.json())["code"]) == (400, "signature_missing")

    # another amount than asked: recorded, not settled
    status, answer = await deliver(hub, event("evt_short", intent, 2999))
    assert (status, answer["outcome"]) == (200, "mismatch")
    assert (await ledger(hub, alice, patient))["balance"] == {"usd": 3000}

    # an intent the hub never asked for: not the hub's money
    status, answer = await deliver(hub, event("evt_stray", "pi_unknown", 100))
    assert (status, answer["outcome"]) == (200, "unknown_payment")

    # not JSON, signed: 400
    status, problem = await deliver(hub, b"not json")
    assert status == 400
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PaymentEvent)) == 2


async def test_a_flood_of_unsigned_posts_is_audited_as_one_summary_a_window(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone may post to the webhook: each refused post is still 400, but the audit trail
    gets one row a source a window (with the count), not a row a post."""
    monkeypatch.setattr(refusals, "WINDOW", 1.0)

    async def refused_rows() -> list[AuditEvent]:
        async with hub.db.sessions() as session:
            return list(
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.outcome == "refused")
                    .where(AuditEvent.action.like("payment.webhook%"))
                )
            )

    before = len(await refused_rows())
    payload = event("evt_flood", "pi_flood", 100)
    answers = [await hub.client.post("/payments/webhook", data=payload) for _ in range(40)]
    answers += [
        await hub.client.post(
            "/payments/webhook", data=payload, headers={"Stripe-Signature": "t=1,v1=00"}
        )
        for _ in range(10)
    ]
    assert {a.status for a in answers} == {400}
    assert len(await refused_rows()) == before  # counted, not written one by one
    await asyncio.sleep(1.1)
    # the window has passed: the next refusal writes its summary
    status, _problem = await deliver(hub, payload, "whsec_wrong")
    assert status == 400
    (summary,) = (await refused_rows())[before:]
    assert summary.action == "payment.webhook.refused"
    assert summary.ip == "127.0.0.1"
    assert summary.detail["count"] == 50
    assert summary.detail["codes"] == {"signature_missing": 40, "signature_stale": 10}


async def test_an_event_delivered_twice_or_late_pays_once(
    hub: Hub, sdk: stripe.StripeClient
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await charged(hub, alice, patient, 1500)
    intent = await asked_intent(hub, sdk, alice, patient, 1500)
    payload = event("evt_ok", intent, 1500)
    answers = await asyncio.gather(*(deliver(hub, payload) for _ in range(3)))
    assert sorted(a["outcome"] for _, a in answers) == ["duplicate", "duplicate", "settled"]
    # a failure reported after the success (out of order) does not undo it
    status, answer = await deliver(
        hub, event("evt_late", intent, 1500, "payment_intent.payment_failed")
    )
    assert (status, answer["outcome"]) == (200, "duplicate")
    assert (await ledger(hub, alice, patient))["balance"] == {}
    async with hub.db.sessions() as session:
        payments = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment")
        )
    assert payments == 1


async def test_refunds_need_the_permission_and_stay_within_the_payment(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None
) -> None:
    await hub.pharmacy()
    await hub.pharmacy(**OTHER_PHARMACY)
    patient, alice = await profile(hub), await staff(hub, "alice")
    tech = await staff(hub, "terry", role="technician")
    other = await staff(hub, "olga", pharmacy=OTHER_PHARMACY["ncpdpid"])
    await charged(hub, alice, patient, 4000)
    asked = await pay(hub, alice, patient, await new_card(hub, sdk, alice, patient), 4000)
    await settled(hub, asked["payment_id"])
    payment = (await ledger(hub, alice, patient))["items"][0]
    url = f"/api/v1/payments/{payment['id']}/refunds"
    part = {"amount": 1500, "reason": "copay recalculated"}

    status, problem = await call(hub, "POST", url, tech, part)
    assert (status, problem["code"]) == (403, "refund_not_allowed")
    status, problem = await call(hub, "POST", url, alice, part)
    assert (status, problem["code"]) == (403, "refund_not_allowed")

    async with hub.db.transaction() as session:
        await session.execute(
            update(User).where(User.username.in_(["alice", "olga"])).values(refunds=True)
        )
    status, problem = await call(hub, "POST", url, other, part)
    assert (status, problem["code"]) == (404, "not_found")
    status, refund = await call(hub, "POST", url, alice, part)
    assert status == 200, refund
    assert (refund["kind"], refund["amount"], refund["refunds"]) == ("refund", 1500, payment["id"])
    status, problem = await call(hub, "POST", url, alice, {"amount": 2501, "reason": "too much"})
    assert (status, problem["code"]) == (422, "refund_over_payment")
    status, problem = await call(hub, "POST", url, alice, {"amount": 0, "reason": "nothing"})
    assert status == 400
    assert (await ledger(hub, alice, patient))["balance"] == {"usd": 1500}
    status, problem = await call(
        hub, "POST", f"/api/v1/payments/{refund['id']}/refunds", alice, part
    )
    assert (status, problem["code"]) == (422, "not_a_payment")
    provider_refunds = await asyncio.to_thread(
        lambda: sdk.v1.refunds.list(params={"payment_intent": asked["provider_id"]})
    )
    assert [r.amount for r in provider_refunds.data] == [1500]


def refund_event(event_id: str, refund: str, status: str, type_: str, **extra: Any) -> bytes:
    obj = {"id": refund, "object": "refund", "amount": 1500, "currency": "usd",
           "status": status, **extra}  # fmt: skip
    return json.dumps({"id": event_id, "type": type_, "data": {"object": obj}}).encode()


async def test_a_refund_that_fails_after_it_was_accepted_is_reversed_once(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await charged(hub, alice, patient, 4000)
    asked = await pay(hub, alice, patient, await new_card(hub, sdk, alice, patient), 4000)
    await settled(hub, asked["payment_id"])
    payment = (await ledger(hub, alice, patient))["items"][0]
    async with hub.db.transaction() as session:
        await session.execute(update(User).where(User.username == "alice").values(refunds=True))
    url = f"/api/v1/payments/{payment['id']}/refunds"
    status, refund = await call(hub, "POST", url, alice, {"amount": 1500, "reason": "copay"})
    assert status == 200, refund
    async with hub.db.sessions() as session:
        ref = await session.scalar(
            select(LedgerEntry.provider_ref).where(LedgerEntry.id == uuid.UUID(refund["id"]))
        )
    assert ref is not None
    assert (await ledger(hub, alice, patient))["balance"] == {"usd": 1500}

    # a late "pending" and an unknown refund change nothing
    status, answer = await deliver(hub, refund_event("evt_r0", ref, "pending", "refund.updated"))
    assert (status, answer["outcome"]) == (200, "ignored")
    status, answer = await deliver(
        hub, refund_event("evt_rx", "re_unknown", "failed", "refund.failed")
    )
    assert (status, answer["outcome"]) == (200, "unknown_refund")

    # the provider says the refund failed, in its three ways and twice: reversed once
    answers = await asyncio.gather(
        deliver(hub, refund_event("evt_r1", ref, "failed", "charge.refund.updated")),
        deliver(hub, refund_event("evt_r1", ref, "failed", "charge.refund.updated")),
        deliver(hub, refund_event("evt_r2", ref, "failed", "refund.failed")),
        deliver(hub, refund_event("evt_r3", ref, "canceled", "refund.updated")),
    )
    assert sorted(a["outcome"] for _, a in answers) == [
        "duplicate", "duplicate", "duplicate", "refund_reversed"
    ]  # fmt: skip
    # ... and a "succeeded" sent late does not undo the reversal
    status, answer = await deliver(hub, refund_event("evt_r4", ref, "succeeded", "refund.updated"))
    assert (status, answer["outcome"]) == (200, "ignored")
    book = await ledger(hub, alice, patient)
    assert book["balance"] == {}  # the money did not go back: the payment counts again
    reversal = book["items"][0]
    assert (reversal["kind"], reversal["cause_type"], reversal["signed"]) == (
        "adjustment", "refund_failed", -1500,
    )  # fmt: skip
    assert reversal["refunds"] == refund["id"]
    assert reversal["description"].startswith("Refund failed")
    async with hub.db.sessions() as session:
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "payment.webhook",
                AuditEvent.detail["outcome"].as_string() == "refund_reversed",
            )
        )
        reversals = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.cause_type == "refund_failed")
        )
    assert (reversals, audited) == (1, 1)
    # the day's close sees the reversal beside the refund, and counts the money collected again
    start, end = reconciling.day_bounds(dt.datetime.now(dt.UTC).date())
    async with hub.db.sessions() as session:
        moved = await session.run_sync(lambda s: store.day_movements(s, None, start, end))
        pharmacy = await session.scalar(select(LedgerEntry.pharmacy_id).limit(1))
        assert pharmacy is not None
        took = await session.run_sync(lambda s: store.collected(s, pharmacy, start, end))
    assert sorted((m.kind, m.amount) for m in moved if m.ref == ref) == [
        ("refund", 1500), ("refund_failure", 1500)
    ]  # fmt: skip
    assert took == {"counter": {"usd": 4000}}
    # the whole payment may be refunded again (what failed went back to nobody)
    status, again = await call(hub, "POST", url, alice, {"amount": 4000, "reason": "all of it"})
    assert status == 200, again

    # the hub's own refund, failed before its answer was written: sent again (503)
    young = refund_event(
        "evt_r5", "re_not_yet", "failed", "refund.failed",
        metadata={"payment": payment["id"]}, created=int(time.time()),
    )  # fmt: skip
    status, problem = await deliver(hub, young)
    assert (status, problem["code"]) == (503, "retry_later")


async def test_the_day_reconciles_then_shows_what_the_provider_did_alone(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None
) -> None:
    await hub.pharmacy()
    await hub.pharmacy(**OTHER_PHARMACY)
    patient, alice = await profile(hub), await staff(hub, "alice")
    admin = await staff(hub, "ada", role="pharmacy_admin")
    other = await staff(hub, "oscar", role="pharmacy_admin", pharmacy=OTHER_PHARMACY["ncpdpid"])
    async with hub.db.transaction() as session:
        await session.execute(update(User).where(User.username == "alice").values(refunds=True))
    await charged(hub, alice, patient, 4000)
    asked = await pay(hub, alice, patient, await new_card(hub, sdk, alice, patient), 4000)
    await settled(hub, asked["payment_id"])
    payment = (await ledger(hub, alice, patient))["items"][0]
    status, _ = await call(
        hub,
        "POST",
        f"/api/v1/payments/{payment['id']}/refunds",
        alice,
        {"amount": 1000, "reason": "copay recalculated"},
    )
    assert status == 200
    today = dt.datetime.now(dt.UTC).date().isoformat()
    url = f"/api/v1/payments/reconciliation?day={today}"

    status, day = await call(hub, "GET", url, admin)
    assert status == 200, day
    assert (day["clean"], day["matched"], day["discrepancies"]) == (True, 2, [])
    assert day["matched_totals"] == {"usd": {"payment": 4000, "refund": 1000}}
    assert day["collected"] == {"counter": {"usd": 3000}}

    # someone refunds at the provider's dashboard, past the hub: the day no longer reconciles
    await asyncio.to_thread(
        lambda: sdk.v1.refunds.create(
            params={"payment_intent": asked["provider_id"], "amount": 500}
        )
    )
    status, day = await call(hub, "GET", url, admin)
    assert day["clean"] is False
    (found,) = day["discrepancies"]
    assert (found["code"], found["provider_amount"], found["ledger_amount"]) == (
        "missing_in_ledger",
        500,
        None,
    )
    response = await hub.client.get(
        f"/api/v1/payments/reconciliation.csv?day={today}", headers=bearer(admin)
    )
    assert response.status == 200
    rows = (await response.text()).splitlines()
    assert rows[0].startswith("status,provider_ref,kind")
    assert rows[1].startswith(f"missing_in_ledger,{found['provider_ref']},refund,,500,usd")
    assert sum(row.startswith("matched,") for row in rows) == 2

    # the other pharmacy's day holds none of it
    status, theirs = await call(hub, "GET", url, other)
    assert (theirs["clean"], theirs["matched"]) == (True, 0)
    tech = await staff(hub, "terry", role="technician")
    assert (await call(hub, "GET", url, tech))[0] == 403
    assert (await call(hub, "GET", "/api/v1/payments/reconciliation?day=2026-13-01", admin))[
        0
    ] == 400


async def test_a_plan_charges_its_instalments_and_agrees_with_the_ledger(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None, schedule: Schedule
) -> None:
    await hub.pharmacy()
    patient, tech = await profile(hub), await staff(hub, "terry", role="technician")
    alice = await staff(hub, "alice")
    await charged(hub, alice, patient, 9000)
    # a card kept for later: set up, confirmed, saved with a first small payment
    card = await new_card(hub, sdk, tech, patient)
    first = await pay(hub, tech, patient, card, 1000, save=True)
    await settled(hub, first["payment_id"])
    url = f"/api/v1/patients/{patient}/plans"
    today = dt.datetime.now(dt.UTC).date()

    status, plan = await call(
        hub, "POST", url, tech, {"card_id": card, "count": 3, "every_days": 30}
    )
    assert status == 200, plan
    assert [(i["number"], i["amount"], i["status"]) for i in plan["instalments"]] == [
        (1, 2667, "pending"),
        (2, 2667, "pending"),
        (3, 2666, "pending"),
    ]
    assert plan["instalments"][1]["due"] == (today + dt.timedelta(days=30)).isoformat()
    status, problem = await call(hub, "POST", url, tech, {"card_id": card, "count": 2})
    assert (status, problem["code"]) == (409, "plan_exists")

    assert await take_due(schedule) == 1  # the first instalment is due today
    assert await take_due(schedule) == 0  # asked once, however often the job runs
    await until_paid(hub, tech, patient, instalments=1)
    book = await ledger(hub, tech, patient)
    assert book["balance"] == {"usd": 8000 - 2667}
    status, listed = await call(hub, "GET", url, tech)
    (shown,) = listed["items"]
    assert (shown["paid"], shown["status"]) == (2667, "active")
    assert [i["status"] for i in shown["instalments"]] == ["paid", "pending", "pending"]

    # a month on, the second; then the plan is cancelled before the third
    assert await take_due(schedule, utcnow() + dt.timedelta(days=30)) == 1
    await until_paid(hub, tech, patient, instalments=2)
    status, cancelled = await call(hub, "POST", f"/api/v1/payment-plans/{shown['id']}/cancel", tech)
    assert status == 200
    assert cancelled["status"] == "cancelled"
    assert [i["status"] for i in cancelled["instalments"]] == ["paid", "paid", "cancelled"]
    assert await take_due(schedule, utcnow() + dt.timedelta(days=61)) == 0
    assert (await ledger(hub, tech, patient))["balance"] == {"usd": 8000 - 2 * 2667}


async def test_the_plans_job_is_one_of_the_schedule_under_its_lease(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None, settings: Settings, schedule: Schedule
) -> None:
    """Two processes' schedules at the same moment: one asks the instalment, the other finds
    the job's lease held; nobody runs it again before its interval. No process runs a loop
    of its own for the plans any more."""
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await charged(hub, alice, patient, 4000)
    card = await new_card(hub, sdk, alice, patient)
    await settled(hub, (await pay(hub, alice, patient, card, 100, save=True))["payment_id"])
    status, plan = await call(
        hub, "POST", f"/api/v1/patients/{patient}/plans", alice, {"card_id": card, "count": 2}
    )
    assert status == 200, plan
    other = await asyncio.to_thread(Schedule.from_settings, settings)
    try:
        # past any lease the hub's own loop took when it started
        later = utcnow() + dt.timedelta(hours=1)
        ran = await asyncio.gather(
            asyncio.to_thread(schedule.run_due, later), asyncio.to_thread(other.run_due, later)
        )
        runs = [r.counts[PLANS_JOB] for r in ran if r is not None and PLANS_JOB in r.counts]
        assert runs == [1], ran
        again = await asyncio.to_thread(other.run_due, later + dt.timedelta(seconds=299))
        assert again is None or PLANS_JOB not in again.counts
        after = await asyncio.to_thread(other.run_due, later + dt.timedelta(seconds=301))
        assert after is not None
        assert after.counts[PLANS_JOB] == 0  # its next instalment is due in 30 days
    finally:
        await asyncio.to_thread(other.close)
    async with hub.db.sessions() as session:
        leased = await session.get(JobLease, PLANS_JOB)
        asked = await session.scalar(
            select(func.count())
            .select_from(PaymentInstalment)
            .where(PaymentInstalment.status.in_(["asked", "paid"]))
        )
    assert leased is not None
    assert leased.last_run_at is not None
    assert asked == 1
    status = await (await hub.client.get("/readyz")).json()
    assert PLANS_JOB not in str(status)


async def until_paid(hub: Hub, token: str, patient: uuid.UUID, instalments: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        _, listed = await call(hub, "GET", f"/api/v1/patients/{patient}/plans", token)
        paid = [i for i in listed["items"][0]["instalments"] if i["status"] == "paid"]
        if len(paid) >= instalments:
            return
        assert time.monotonic() < deadline, listed
        await asyncio.sleep(0.2)


async def test_a_declined_instalment_is_tried_again_later_and_plans_are_refused_clearly(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None, schedule: Schedule
) -> None:
    await hub.pharmacy()
    await hub.pharmacy(**OTHER_PHARMACY)
    patient, tech = await profile(hub), await staff(hub, "terry", role="technician")
    other = await staff(hub, "olga", pharmacy=OTHER_PHARMACY["ncpdpid"])
    alice = await staff(hub, "alice")
    await charged(hub, alice, patient, 5000)
    url = f"/api/v1/patients/{patient}/plans"
    # a card set up but not saved cannot carry a plan
    unsaved = await new_card(hub, sdk, tech, patient)
    status, problem = await call(hub, "POST", url, tech, {"card_id": unsaved, "count": 2})
    assert (status, problem["code"]) == (422, "card_not_saved")
    # a card the bank accepts keeping but declines charging
    status, setup = await call(hub, "POST", f"/api/v1/patients/{patient}/cards", tech)
    await asyncio.to_thread(type_card, sdk, setup["client_secret"], "4000000000000341")
    declining = setup["card_id"]
    async with hub.db.transaction() as session:
        await session.execute(
            update(PaymentCard)
            .where(PaymentCard.id == uuid.UUID(declining))
            .values(
                saved=True,
                payment_method=(
                    await asyncio.to_thread(
                        lambda: sdk.v1.setup_intents.retrieve(
                            setup["client_secret"].split("_secret_")[0]
                        )
                    )
                ).payment_method,
            )
        )
    for body, code in [
        ({"card_id": declining, "count": 1}, "bad_request"),
        ({"card_id": declining, "count": 60}, "bad_request"),
        ({"card_id": declining, "count": 2, "every_days": 0}, "bad_request"),
        ({"card_id": declining, "count": 2, "extra": 1}, "bad_request"),
    ]:
        status, problem = await call(hub, "POST", url, tech, body)
        assert (status, problem["code"]) == (400, code), body
    status, problem = await call(hub, "POST", url, other, {"card_id": declining, "count": 2})
    assert status == 404
    status, plan = await call(hub, "POST", url, tech, {"card_id": declining, "count": 2})
    assert status == 200, plan
    assert await take_due(schedule) == 0  # declined at once: not asked
    status, listed = await call(hub, "GET", url, tech)
    first = listed["items"][0]["instalments"][0]
    assert (first["status"], first["attempts"]) == ("failed", 1)
    assert first["last_error"]
    assert await take_due(schedule) == 0  # not again before the wait
    async with hub.db.sessions() as session:
        tried = await session.scalar(
            select(PaymentInstalment.attempts).where(PaymentInstalment.number == 1)
        )
    assert tried == 1
    await take_due(schedule, utcnow() + dt.timedelta(days=1, minutes=1))
    async with hub.db.sessions() as session:
        tried = await session.scalar(
            select(PaymentInstalment.attempts).where(PaymentInstalment.number == 1)
        )
    assert tried == 2
    assert (await ledger(hub, tech, patient))["balance"] == {"usd": 5000}
    status, problem = await call(
        hub, "POST", f"/api/v1/payment-plans/{listed['items'][0]['id']}/cancel", other
    )
    assert status == 404


async def test_a_plan_never_takes_more_than_the_patient_owes(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None, schedule: Schedule
) -> None:
    await hub.pharmacy()
    patient, tech = await profile(hub), await staff(hub, "terry", role="technician")
    alice = await staff(hub, "alice")
    await charged(hub, alice, patient, 6000)
    card = await new_card(hub, sdk, tech, patient)
    await settled(hub, (await pay(hub, tech, patient, card, 100, save=True))["payment_id"])
    url = f"/api/v1/patients/{patient}/plans"
    status, plan = await call(hub, "POST", url, tech, {"card_id": card, "count": 3})
    assert status == 200, plan
    assert [i["amount"] for i in plan["instalments"]] == [1967, 1967, 1966]
    assert await take_due(schedule) == 1
    await until_paid(hub, tech, patient, instalments=1)
    # the patient pays most of the rest at the counter: the next instalment shrinks to it
    paid = await pay(hub, tech, patient, card, 3933 - 500)
    await settled(hub, paid["payment_id"])
    assert await take_due(schedule, utcnow() + dt.timedelta(days=30)) == 1
    await until_paid(hub, tech, patient, instalments=2)
    _, listed = await call(hub, "GET", url, tech)
    assert [(i["amount"], i["status"]) for i in listed["items"][0]["instalments"]] == [
        (1967, "paid"),
        (500, "paid"),
        (1966, "pending"),
    ]
    # nothing is owed when the third is due: it is not charged, and the plan is done
    assert (await ledger(hub, tech, patient))["balance"] == {}
    assert await take_due(schedule, utcnow() + dt.timedelta(days=60)) == 0
    _, listed = await call(hub, "GET", url, tech)
    (shown,) = listed["items"]
    assert shown["status"] == "completed"
    assert shown["instalments"][2]["status"] == "cancelled"
    assert shown["paid"] == 1967 + 500


async def test_money_on_its_way_is_not_asked_twice_and_a_webhook_may_come_first(
    hub: Hub, sdk: stripe.StripeClient
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await charged(hub, alice, patient, 3000)
    card = await new_card(hub, sdk, alice, patient)
    # no webhook registered: the first payment stays on its way, so a second for the same
    # balance (another request, another key) is refused
    first = await pay(hub, alice, patient, card, 3000)
    status, problem = await call(
        hub, "POST", f"/api/v1/patients/{patient}/payments", alice,
        {"amount": 1, "card_id": card},
    )  # fmt: skip
    assert (status, problem["code"]) == (422, "amount_over_balance")
    assert problem["balance"] == 0

    # a payment whose row exists but whose provider answer never came: the webhook finds it
    # by the hub's own ID in the metadata and settles it
    async with hub.db.transaction() as session:
        row = await session.get(PaymentIntent, uuid.UUID(first["payment_id"]))
        assert row is not None
        provider_id, row.provider_id, row.status = row.provider_id, None, "creating"
    payload = json.dumps(
        {
            "id": "evt_first_before_answer",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": provider_id,
                    "amount": 3000,
                    "amount_received": 3000,
                    "currency": "usd",
                    "latest_charge": "ch_first",
                    "metadata": {"hub_payment": first["payment_id"]},
                }
            },
        }
    ).encode()
    status, answer = await deliver(hub, payload)
    assert (status, answer["outcome"]) == (200, "settled")
    async with hub.db.sessions() as session:
        row = await session.get(PaymentIntent, uuid.UUID(first["payment_id"]))
        assert row is not None
        assert row.provider_id == provider_id
    assert (await ledger(hub, alice, patient))["balance"] == {}

    # the hub's own ID, but no such payment (not written yet): 503, kept nowhere, sent again
    stray = json.loads(payload)
    stray["id"], stray["data"]["object"]["id"] = "evt_not_yet", "pi_not_yet"
    stray["data"]["object"]["metadata"]["hub_payment"] = str(uuid.uuid4())
    status, problem = await deliver(hub, json.dumps(stray).encode())
    assert (status, problem["code"]) == (503, "retry_later")
    async with hub.db.sessions() as session:
        assert await session.get(PaymentEvent, "evt_not_yet") is None


async def test_a_removed_card_stops_its_plan_and_days_are_bounded(
    hub: Hub, sdk: stripe.StripeClient, webhooks: None, schedule: Schedule
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    await charged(hub, alice, patient, 5000)
    card = await new_card(hub, sdk, alice, patient)
    await settled(hub, (await pay(hub, alice, patient, card, 100, save=True))["payment_id"])
    url = f"/api/v1/patients/{patient}/plans"
    status, plan = await call(hub, "POST", url, alice, {"card_id": card, "count": 2})
    assert status == 200, plan
    status, _ = await call(hub, "DELETE", f"/api/v1/patients/{patient}/cards/{card}", alice)
    assert status == 200
    assert await take_due(schedule) == 0
    _, listed = await call(hub, "GET", url, alice)
    assert listed["items"][0]["instalments"][0]["status"] == "stopped"
    admin = await staff(hub, "ada", role="pharmacy_admin")
    for query in ("day=9999-12-31", "day=0001-01-01"):
        status, problem = await call(hub, "GET", f"/api/v1/payments/reconciliation?{query}", admin)
        assert status == 400, problem
    status, _ = await call(hub, "GET", "/api/v1/payments/receivables?as_of=0001-01-01", admin)
    assert status == 400
