"""Payments woven into the record: each pharmacy's ledger (charges from the fills and consults
that cause them, payments settled by the provider's signed webhook, refunds, adjustments),
card payments through a provider the hub never shows a card number to (Stripe, behind
:class:`~.provider.PaymentProvider`), and the price list.

``store.py`` is the one writer of the tables; ``service.py`` runs the actions audited;
``http.py`` is the API and the webhook; ``fills.py`` charges a fill when it becomes ready.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..db import DATABASE
from ..notifications import TRIGGERS
from ..patients import merges
from ..settings import Settings
from . import consult_fees, consult_http, fills, http, plans, store
from .models import LedgerEntry, PaymentIntent
from .service import PAYMENTS, PLANS, Payments

_PATIENT = "/api/v1/patients/{id}"


def register_merges() -> None:
    """A patient's money follows their profile into a merge (the ledger and the payments
    asked); their customer at the provider and its cards follow only when the kept profile
    has no customer of its own (else the cards stay: they hang on the merged profile's
    customer); a profile paying a plan is not merged away (its card and plan are its own:
    cancel the plan first); a merge is not undone once the kept profile's ledger moved since
    (whose money it was cannot be told). Idempotent."""
    merges.MOVED_TABLES.setdefault("ledger_entries", LedgerEntry)
    merges.MOVED_TABLES.setdefault("payment_intents", PaymentIntent)
    if plans.merge_check not in merges.MERGE_CHECKS:
        merges.MERGE_CHECKS.append(plans.merge_check)
    if store.moved_money_since not in merges.UNMERGE_CHECKS:
        merges.UNMERGE_CHECKS.append(store.moved_money_since)
    if not any(mover.names == store.CARD_NAMES for mover in merges.MOVERS):
        merges.MOVERS.append(
            merges.Mover(
                store.CARD_NAMES, store.merge_cards, store.cards_not_exact, store.unmerge_cards
            )
        )


def setup(app: web.Application, settings: Settings) -> None:
    async def payments_ctx(app: web.Application) -> AsyncIterator[None]:
        # a refused instalment tells the patient through the hub's triggers
        notices = app.get(TRIGGERS)
        payments = app[PAYMENTS] = Payments.from_settings(app[DATABASE], settings, notices)
        app[PLANS] = payments.plans()  # their instalments are asked by the schedule's job
        fees = app[consult_http.CONSULT_FEES] = consult_fees.ConsultFees(app[DATABASE], payments)
        yield
        await fees.close()  # the refusals counted so far are audited
        await payments.close()

    app.cleanup_ctx.append(payments_ctx)
    fills.register()  # a fill that becomes ready is charged its price
    consult_fees.register()  # a consult's fee paid in its waiting room
    register_merges()
    router = app.router
    router.add_get(f"{_PATIENT}/ledger", http.get_ledger)
    router.add_post(f"{_PATIENT}/charges", http.add_charge)
    router.add_post(f"{_PATIENT}/write-offs", http.write_off)
    router.add_post(f"{_PATIENT}/payments", http.ask_payment)
    router.add_get(f"{_PATIENT}/payments/{{payment}}", http.get_payment)
    router.add_post(f"{_PATIENT}/cards", http.set_up_card)
    router.add_get(f"{_PATIENT}/cards", http.list_cards)
    router.add_delete(f"{_PATIENT}/cards/{{card}}", http.remove_card)
    router.add_post("/api/v1/payments/{id}/refunds", http.refund)
    router.add_get("/api/v1/payments/prices", http.list_prices)
    router.add_put("/api/v1/payments/prices/{item}", http.set_price)
    router.add_post(f"{_PATIENT}/plans", http.create_plan)
    router.add_get(f"{_PATIENT}/plans", http.list_plans)
    router.add_post("/api/v1/payment-plans/{id}/cancel", http.cancel_plan)
    router.add_get("/api/v1/payments/reconciliation", http.get_reconciliation)
    router.add_get("/api/v1/payments/reconciliation.csv", http.get_reconciliation_csv)
    router.add_get("/api/v1/payments/receivables", http.get_receivables)
    router.add_post("/payments/webhook", http.webhook)
    router.add_get("/api/v1/payments/settings", consult_http.get_settings)
    router.add_put("/api/v1/payments/settings", consult_http.set_settings)
    router.add_get("/api/v1/consults/{id}/fee", consult_http.get_fee)
    router.add_post("/api/v1/consult-fee", consult_http.read_fee)
    router.add_post("/api/v1/consult-fee/cards", consult_http.set_up_card)
    router.add_post("/api/v1/consult-fee/payments", consult_http.pay)
