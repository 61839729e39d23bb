"""Payments' actions, each one audited unit of work; the provider is called in a thread,
never inside a database transaction (a slow provider must not hold a patient's lock).

- A **charge** comes from what caused it (a fill handed over, a consult, a delivery; or typed by
  a pharmacist with a reason), once per cause.
- A **payment** is asked of the provider (an intent the browser's provider fields confirm, or a
  saved card charged off-session); it becomes a ledger entry only when the provider's signed
  webhook says it succeeded, for the amount asked.
- A **refund** is made at the provider by staff with the refunds permission, at most what the
  payment paid less what was refunded of it, and written when the provider accepted it.

Audit entries carry amounts and identifiers, never card data (the hub has none).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from eprescribe.payments import (
    Ageing,
    EntryKind,
    Money,
    SignatureRefused,
    verify_signature,
)

from .. import audit
from ..db import Database
from ..db.models import utcnow
from ..errors import BadRequest, Conflict, Forbidden, NotFound, ServiceUnavailable, Unprocessable
from ..notifications import Triggers
from ..settings import Settings
from . import plans, refusals, store
from .guards import own_profile, refuse_with
from .models import LedgerEntry, PaymentCard, PaymentIntent, PriceListItem
from .provider import PaymentProvider, ProviderError, StripeProvider
from .reconciling import DayReport, day_report, receivables

log = logging.getLogger(__name__)
_T = TypeVar("_T")
#: how a payment was taken
METHODS = ("counter", "online", "saved_card")


class PaymentsUnavailable(ServiceUnavailable):
    code = "payments_not_configured"


@dataclass(frozen=True, slots=True)
class Statement:
    balance: dict[str, int]
    entries: list[LedgerEntry]


@dataclass(frozen=True, slots=True)
class Asking:
    """A payment as asked: how much, how (``counter``, ``online``, ``saved_card``), with which
    of the patient's cards, whether to keep the card, and the request's idempotency key."""

    money: Money
    method: str
    card_id: uuid.UUID
    key: str
    save: bool = False
    #: the consult whose fee this pays, and the fee, charged with the payment's row once (the
    #: payment may be less: the patient's credit pays the rest)
    consult_id: uuid.UUID | None = None
    fee: Money | None = None


@dataclass(frozen=True, slots=True)
class Asked:
    """A payment asked of the provider, with what the browser needs to confirm it."""

    intent: PaymentIntent
    client_secret: str | None


class Payments:
    """The hub's handlers' door to payments."""

    def __init__(
        self,
        db: Database,
        provider: PaymentProvider | None,
        settings: Settings,
        notices: Triggers | None = None,
    ) -> None:
        self._db = db
        self._provider = provider
        self._settings = settings
        #: what tells the patient (a refused instalment); ``None``: nothing is told
        self._notices = notices
        #: the webhook's refused posts of the current window
        self._refusals = refusals.RefusalTally()

    @classmethod
    def from_settings(
        cls, db: Database, settings: Settings, notices: Triggers | None = None
    ) -> Payments:
        return cls(db, StripeProvider.from_settings(settings), settings, notices)

    @property
    def configured(self) -> bool:
        return self._provider is not None

    def plans(self) -> plans.Plans:
        """The payment plans, on the same database (the provider is asked by the schedule's
        :class:`~.plans.InstalmentJob`)."""
        return plans.Plans(self._db)

    def _need_provider(self) -> PaymentProvider:
        if self._provider is None:
            raise PaymentsUnavailable(
                "Card payments are not configured (TELEPHARM_STRIPE_API_KEY)."
            )
        return self._provider

    async def _call(self, work: Callable[[], _T]) -> _T:
        try:
            return await asyncio.to_thread(work)
        except ProviderError as exc:
            if exc.declined:
                raise Unprocessable("card_declined", exc.words) from None
            raise ServiceUnavailable(exc.words) from None

    # -- the ledger -------------------------------------------------------------------------

    async def statement(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        *,
        limit: int = 50,
        before: tuple[dt.datetime, uuid.UUID] | None = None,
    ) -> Statement:
        event = audit.Event("payment.statement.read", "patient", str(patient_id))
        async with audit.refusable(self._db) as session:
            await own_profile(session, actor, pharmacy_id, patient_id, event)
            owed = await session.run_sync(lambda s: store.balance(s, patient_id))
            lines = await session.run_sync(
                lambda s: store.entries(s, patient_id, limit=limit, before=before)
            )
            await audit.add(session, actor, replace(event, detail={"entries": len(lines)}))
        return Statement(owed, lines)

    async def charge(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        money: Money,
        description: str,
        reason: str,
    ) -> LedgerEntry:
        """A charge typed by staff, with the reason (a fill's patient-pay amount not in the
        price list, a fee)."""
        return await self._typed(
            actor, pharmacy_id, patient_id, EntryKind.CHARGE, money, description, reason
        )

    async def write_off(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        money: Money,
        reason: str,
    ) -> LedgerEntry:
        """What the pharmacy gives up collecting, with the reason: at most what is owed."""
        return await self._typed(
            actor, pharmacy_id, patient_id, EntryKind.WRITE_OFF, money, "Written off", reason
        )

    async def _typed(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        kind: EntryKind,
        money: Money,
        description: str,
        reason: str,
    ) -> LedgerEntry:
        event = audit.Event(f"payment.{kind.value}", "patient", str(patient_id))
        async with audit.refusable(self._db) as session:
            await own_profile(session, actor, pharmacy_id, patient_id, event)
            if kind is EntryKind.WRITE_OFF:
                owed = (await session.run_sync(lambda s: store.balance(s, patient_id))).get(
                    money.currency, 0
                )
                if money.amount > owed:
                    await refuse_with(
                        session,
                        actor,
                        event,
                        Unprocessable(
                            "write_off_over_balance",
                            f"The patient owes {Money(max(owed, 0), money.currency).show()}; "
                            f"{money.show()} is more.",
                        ),
                    )
            cause = store.Cause("manual", str(uuid.uuid4()), description)
            entry = await session.run_sync(
                lambda s: store.add_entry(
                    s,
                    pharmacy_id=pharmacy_id,
                    patient_id=patient_id,
                    kind=kind,
                    money=money,
                    cause=cause,
                    actor=str(actor),
                    reason=reason,
                )
            )
            await session.flush()
            await audit.add(session, actor, replace(event, detail=_entry_detail(entry)))
        return entry

    async def prices(self, pharmacy_id: uuid.UUID) -> list[PriceListItem]:
        """The price list names no patient: not audited."""
        async with self._db.sessions() as session:
            return list(await session.run_sync(lambda s: store.prices(s, pharmacy_id)))

    async def set_price(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, item: str, price: Money | None
    ) -> list[PriceListItem]:
        async with self._db.transaction() as session:
            await session.run_sync(lambda s: store.set_price(s, pharmacy_id, item, price))
            await session.flush()
            detail = {
                "item": item,
                "amount": None if price is None else price.amount,
                "currency": None if price is None else price.currency,
            }
            await audit.add(
                session, actor, audit.Event("payment.price", "price", item, detail=detail)
            )
            return list(await session.run_sync(lambda s: store.prices(s, pharmacy_id)))

    # -- paying -----------------------------------------------------------------------------

    async def card_setup(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, patient_id: uuid.UUID
    ) -> tuple[PaymentCard, str | None]:
        """A setup at the provider for a card the patient types into the provider's own fields
        (Stripe.js ``confirmCardSetup``): its client secret, for the browser only."""
        provider = self._need_provider()
        event = audit.Event("payment.card.setup", "patient", str(patient_id))
        async with audit.refusable(self._db) as session:
            await own_profile(session, actor, pharmacy_id, patient_id, event)
            customer = await session.run_sync(lambda s: store.customer_of(s, patient_id))
        if customer is None:
            customer = await self._customer(pharmacy_id, patient_id, provider)
        card_id = uuid.uuid4()
        made = await self._call(
            lambda: provider.create_setup_intent(
                customer=customer, idempotency_key=f"setup-{card_id}"
            )
        )
        async with self._db.transaction() as session:
            card = PaymentCard(
                id=card_id, pharmacy_id=pharmacy_id, patient_id=patient_id, setup_id=made.id
            )
            session.add(card)
            await session.flush()
            await audit.add(session, actor, replace(event, detail={"card_id": str(card_id)}))
        return card, made.client_secret

    async def cards(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, patient_id: uuid.UUID
    ) -> list[PaymentCard]:
        """The patient's saved cards (brand, last four digits, expiry)."""
        event = audit.Event("payment.cards.read", "patient", str(patient_id))
        async with audit.refusable(self._db) as session:
            await own_profile(session, actor, pharmacy_id, patient_id, event)
            found = await session.run_sync(lambda s: store.saved_cards(s, patient_id))
            await audit.add(session, actor, replace(event, detail={"cards": len(found)}))
        return found

    async def remove_card(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, patient_id: uuid.UUID, card_id: uuid.UUID
    ) -> None:
        provider = self._need_provider()
        event = audit.Event("payment.card.remove", "patient", str(patient_id))
        async with audit.refusable(self._db) as session:
            await own_profile(session, actor, pharmacy_id, patient_id, event)
            card = await session.run_sync(lambda s: store.card_of(s, patient_id, card_id))
            if card is None or card.removed_at is not None:
                await audit.refuse(
                    session, actor, replace(event, outcome="not_found"), NotFound("No such card.")
                )
            method = card.payment_method
            card.removed_at, card.saved = utcnow(), False
            await audit.add(session, actor, replace(event, detail={"card_id": str(card_id)}))
        if method is not None:
            await self._call(lambda: provider.detach(method))

    async def ask(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        asked: Asking,
    ) -> Asked:
        """A payment of at most what the patient owes less what is already on its way, with a
        card of theirs: one just typed into the provider's fields (its setup confirmed by the
        browser) or one saved. The payment's row is written first (``creating``), then the
        provider is asked; the ledger has it once the provider's webhook says it succeeded. A
        card that needs the bank's check (3-D Secure) answers ``requires_action`` with the
        secret the browser completes it with. The same Idempotency-Key again is the same
        payment."""
        provider = self._need_provider()
        try:
            intent, setup_id, method, customer = await self._reserve(
                actor, pharmacy_id, patient_id, asked
            )
        except IntegrityError:  # the same key at the same moment: the other request's payment
            async with self._db.sessions() as session:
                again = await session.run_sync(lambda s: store.intent_by_key(s, asked.key))
            if again is None or again.patient_id != patient_id:
                raise
            intent, setup_id, method, customer = again, None, None, None
        if intent.provider_id is not None:  # asked already: the same payment
            provider_id = intent.provider_id
            found = await self._call(lambda: provider.retrieve_intent(provider_id))
            secret = found.client_secret if found.status == "requires_action" else None
            return Asked(intent, secret)
        if intent.status != "creating" or customer is None:
            raise Conflict("This payment is being asked: try again in a moment.")
        if method is None and setup_id is not None:
            method = await self._card_confirmed(patient_id, asked.card_id, setup_id, asked.save)
        try:
            made = await self._call(
                lambda: provider.create_intent(
                    amount=intent.amount,
                    currency=intent.currency,
                    customer=customer,
                    idempotency_key=f"intent-{asked.key}",
                    metadata={"hub_payment": str(intent.id), "pharmacy": str(pharmacy_id)},
                    payment_method=method,
                    off_session=asked.method == "saved_card",
                )
            )
        except Unprocessable as declined:  # refused by the bank: nothing is on its way
            await self._concluded(intent.id, None, "failed", declined.detail)
            raise
        # another failure leaves it "creating": the provider may have it (the webhook finds
        # it by its hub_payment), and it holds its amount back for IN_FLIGHT_FOR
        done = await self._concluded(intent.id, made.id, made.status, None)
        return Asked(done, made.client_secret if made.status == "requires_action" else None)

    async def payment_status(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        payment_id: uuid.UUID,
    ) -> PaymentState:
        """What became of a payment asked (the console polls it after taking one): settled by
        the webhook, still on its way, or declined later by the provider, with its words."""
        event = audit.Event("payment.status.read", "patient", str(patient_id))
        async with audit.refusable(self._db) as session:
            await own_profile(session, actor, pharmacy_id, patient_id, event)
            intent = await session.get(PaymentIntent, payment_id)
            if intent is None or intent.patient_id != patient_id:
                await audit.refuse(
                    session,
                    actor,
                    replace(event, outcome="not_found", detail={"payment_id": str(payment_id)}),
                    NotFound("No such payment."),
                )
            entry = None
            if intent.provider_id is not None:
                paid = store.Cause("intent", intent.provider_id, "")
                entry = await session.run_sync(
                    lambda s: store.existing(s, pharmacy_id, EntryKind.PAYMENT, paid)
                )
            state = _state_of(intent, entry)
            detail = {"payment_id": str(payment_id), "status": state.status}
            await audit.add(session, actor, replace(event, detail=detail))
        return state

    async def _reserve(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        asked: Asking,
    ) -> tuple[PaymentIntent, str | None, str | None, str | None]:
        """Under the patient's lock: the refusals, then the payment's row (``creating``), or
        the payment the key already names; with the card's setup, its payment method and the
        provider's customer."""
        event = audit.Event("payment.ask", "patient", str(patient_id))
        money = asked.money
        async with audit.refusable(self._db) as session:
            await own_profile(session, actor, pharmacy_id, patient_id, event)
            known = await session.run_sync(lambda s: store.intent_by_key(s, asked.key))
            if known is not None and known.patient_id != patient_id:
                await refuse_with(
                    session,
                    actor,
                    event,
                    Unprocessable(
                        "idempotency_key_reused",
                        "This Idempotency-Key was used for another payment.",
                    ),
                )
            card = await session.run_sync(lambda s: store.card_of(s, patient_id, asked.card_id))
            if card is None or card.removed_at is not None:
                await audit.refuse(
                    session, actor, replace(event, outcome="not_found"), NotFound("No such card.")
                )
            customer = await session.run_sync(lambda s: store.customer_of(s, patient_id))
            if customer is None:
                await refuse_with(
                    session,
                    actor,
                    event,
                    Unprocessable("card_not_ready", "Set up a card for this patient first."),
                )
            if known is not None:
                return known, card.setup_id, card.payment_method, customer
            consult_id = asked.consult_id
            if consult_id is not None and not await session.run_sync(
                lambda s: store.consult_payable(s, consult_id)
            ):  # called off or ended since the waiting room read it: nothing to pay for
                over = Conflict("This consultation is over.")
                over.code = "consult_over"
                await refuse_with(session, actor, event, over)
            now = utcnow()
            fee: store.Cause | None = None
            if asked.consult_id is not None:  # the consult's fee is charged with its payment
                cause = store.Cause("consult", str(asked.consult_id), "Consultation")
                charged = await session.run_sync(
                    lambda s: store.existing(s, pharmacy_id, EntryKind.CHARGE, cause)
                )
                fee = None if charged is not None else cause
            owed = (
                (await session.run_sync(lambda s: store.balance(s, patient_id))).get(
                    money.currency, 0
                )
                + (asked.fee.amount if fee is not None and asked.fee is not None else 0)
                - await session.run_sync(
                    lambda s: store.in_flight(s, patient_id, money.currency, now)
                )
            )
            if money.amount > owed:
                await audit.refuse(
                    session,
                    actor,
                    replace(
                        event,
                        outcome="refused",
                        detail={"refused": "amount_over_balance", "amount": money.amount},
                    ),
                    Unprocessable(
                        "amount_over_balance",
                        f"The patient owes {Money(max(owed, 0), money.currency).show()} "
                        f"(less payments on their way); {money.show()} is more.",
                        extra={"balance": max(owed, 0)},
                    ),
                )
            if fee is not None and asked.fee is not None:
                charge, price = fee, asked.fee
                await session.run_sync(
                    lambda s: store.add_entry(
                        s,
                        pharmacy_id=pharmacy_id,
                        patient_id=patient_id,
                        kind=EntryKind.CHARGE,
                        money=price,
                        cause=charge,
                        actor=str(actor),
                    )
                )
            intent = PaymentIntent(
                id=uuid.uuid4(),
                pharmacy_id=pharmacy_id,
                patient_id=patient_id,
                consult_id=asked.consult_id,
                provider_id=None,
                amount=money.amount,
                currency=money.currency,
                method=asked.method,
                status="creating",
                idempotency_key=asked.key,
                actor=str(actor)[:100],
                created_at=now,
                updated_at=now,
            )
            session.add(intent)
            await session.flush()
            detail = {
                "payment_id": str(intent.id),
                "card_id": str(asked.card_id),
                "amount": money.amount,
                "currency": money.currency,
                "method": asked.method,
            }
            if asked.consult_id is not None:
                detail["consult_id"] = str(asked.consult_id)
                detail["fee_charged"] = fee is not None
            await audit.add(session, actor, replace(event, detail=detail))
        return intent, card.setup_id, card.payment_method, customer

    async def _concluded(
        self, intent_id: uuid.UUID, provider_id: str | None, status: str, error: str | None
    ) -> PaymentIntent:
        """The provider's answer on the payment's row (a webhook may have settled it first:
        its status is kept then)."""
        async with self._db.transaction() as session:
            intent = await session.run_sync(lambda s: store.intent_by_id(s, intent_id))
            assert intent is not None
            if provider_id is not None and intent.provider_id is None:
                intent.provider_id = provider_id
            if intent.status in ("creating", "failed"):
                intent.status = status
            intent.last_error = error[:500] if error else intent.last_error
            intent.updated_at = utcnow()
        return intent

    async def _card_confirmed(
        self, patient_id: uuid.UUID, card_id: uuid.UUID, setup_id: str, save: bool
    ) -> str:
        """The payment method the browser's confirmed setup gave, recorded on the card with
        what the provider says of it (brand, last four digits, expiry)."""
        provider = self._need_provider()
        status, method = await self._call(lambda: provider.retrieve_setup(setup_id))
        if status != "succeeded" or method is None:
            raise Unprocessable(
                "card_not_ready", f"The card's setup is {status}, not confirmed in the browser."
            )
        shown = await self._call(lambda: provider.card(method))
        async with self._db.transaction() as session:
            card = await session.run_sync(lambda s: store.card_of(s, patient_id, card_id))
            assert card is not None
            card.payment_method, card.brand, card.last4 = method, shown.brand, shown.last4
            card.exp_month, card.exp_year, card.saved = shown.exp_month, shown.exp_year, save
        return method

    async def _customer(
        self, pharmacy_id: uuid.UUID, patient_id: uuid.UUID, provider: PaymentProvider
    ) -> str:
        made = await self._call(
            lambda: provider.create_customer(idempotency_key=f"customer-{patient_id}")
        )
        try:
            async with self._db.transaction() as session:
                await session.run_sync(
                    lambda s: store.add_customer(s, pharmacy_id, patient_id, made)
                )
        except IntegrityError:  # made at the same moment by another request: use that one
            async with self._db.sessions() as session:
                kept = await session.run_sync(lambda s: store.customer_of(s, patient_id))
            if kept is None:
                raise
            return kept
        return made

    # -- the provider's webhook -------------------------------------------------------------

    async def webhook(
        self, payload: bytes, signature: str | None, source: str | None = None
    ) -> str:
        """Verify, then process the event once: the outcome (``settled``, ``duplicate``,
        ``mismatch``, ``unknown_payment``, ``failed``, ``refund_reversed``,
        ``unknown_refund``, ``ignored``). A post refused (400) is counted by its ``source``
        address, audited as a window's summary (:mod:`.refusals`)."""
        if not self._settings.stripe_webhook_secrets:
            raise PaymentsUnavailable(
                "The webhook's secret is not configured (TELEPHARM_STRIPE_WEBHOOK_SECRETS)."
            )
        actor = audit.Actor("system", "payment-provider")
        try:
            verify_signature(signature, payload, self._settings.stripe_webhook_secrets, time.time())
        except SignatureRefused as exc:
            await self._summarise(self._refusals.note(source, exc.code, time.time()))
            problem = BadRequest(exc.words)
            problem.code = exc.code
            raise problem from None
        event = _event(payload)
        told: list[uuid.UUID] = []
        try:
            async with self._db.transaction() as session:
                if await session.run_sync(lambda s: store.event_seen(s, event.id)):
                    return "duplicate"
                # the event's row first: of two deliveries at once, the second waits, then fails
                await session.run_sync(
                    lambda s: store.add_event(s, event.id, event.type, event.object_id, "")
                )
                await session.flush()
                outcome, detail = await self._apply(session, event)
                await session.run_sync(lambda s: store.set_outcome(s, event.id, outcome))
                audited = audit.Event(
                    "payment.webhook",
                    "payment_event",
                    event.id,
                    pharmacy_id=detail.pop("pharmacy_id", None),
                    detail={"type": event.type, "outcome": outcome, **detail},
                )
                await audit.add(session, actor, audited)
                told = self._notices.written(session) if self._notices is not None else []
        except IntegrityError:
            return "duplicate"
        if self._notices is not None:
            self._notices.publish(told)
        return outcome

    async def close(self) -> None:
        """The hub stops: the refused posts counted so far are audited."""
        await self._summarise(self._refusals.flush())

    async def _summarise(self, summaries: list[refusals.Summary]) -> None:
        """A closed window's refused posts (bad or missing signature), audited as summaries."""
        actor = audit.Actor("system", "payment-provider")
        await refusals.write(self._db, summaries, actor, "payment.webhook.refused", "payment_event")

    async def _apply(self, session: AsyncSession, event: _Event) -> tuple[str, dict[str, Any]]:
        if event.type in REFUND_EVENTS and event.object_id is not None:
            refund_ref = event.object_id
            return await session.run_sync(lambda s: _refund_changed(s, refund_ref, event.object))
        if not event.type.startswith("payment_intent.") or event.object_id is None:
            return "ignored", {}
        object_id = str(event.object_id)
        intent = await session.run_sync(lambda s: store.intent_by_provider_id(s, object_id))
        if intent is None:
            hub_payment = _hub_payment(event.object)
            if hub_payment is None:
                return "unknown_payment", {}
            intent = await session.run_sync(lambda s: store.intent_by_id(s, hub_payment))
            if intent is None:  # ours, not written yet (or lost): the provider tries again
                raise RetryLater("This payment is not recorded yet: send the event again.")
            if intent.provider_id is None:  # the webhook came before the provider's answer
                intent.provider_id = object_id
            elif intent.provider_id != object_id:
                return "unknown_payment", {}
        detail: dict[str, Any] = {"payment_id": str(intent.id), "pharmacy_id": intent.pharmacy_id}
        cause = store.Cause("intent", object_id, "Payment, thank you")
        paid = await session.run_sync(
            lambda s: store.existing(s, intent.pharmacy_id, EntryKind.PAYMENT, cause)
        )
        if paid is not None:  # settled already: a late or repeated event changes nothing
            return "duplicate", detail
        obj = event.object
        if event.type == "payment_intent.succeeded":
            received = obj.get("amount_received", obj.get("amount"))
            currency = str(obj.get("currency", "")).lower()
            if received != intent.amount or currency != intent.currency:
                intent.status = "mismatch"
                intent.last_error = (
                    f"asked {intent.amount} {intent.currency}, received {received} {currency}"
                )[:500]
                return "mismatch", {**detail, "asked": intent.amount, "received": received}
            charge = _charge_of(obj)
            entry = await session.run_sync(
                lambda s: store.add_entry(
                    s,
                    pharmacy_id=intent.pharmacy_id,
                    patient_id=intent.patient_id,
                    kind=EntryKind.PAYMENT,
                    money=Money(intent.amount, intent.currency),
                    cause=cause,
                    actor="system:payment-provider",
                    provider_ref=charge,
                    method=intent.method,
                )
            )
            intent.status, intent.charge_ref = "succeeded", charge
            intent.updated_at = entry.at
            await session.run_sync(lambda s: plans.settled(s, intent.id))
            return "settled", {**detail, "entry_id": str(entry.id), "amount": intent.amount}
        if event.type == "payment_intent.payment_failed":
            error = obj.get("last_payment_error") or {}
            intent.status = "failed"
            intent.last_error = str(error.get("message") or "declined")[:500]
            words = intent.last_error
            notices = self._notices
            await session.run_sync(lambda s: plans.failed(s, intent.id, words, notices))
            return "failed", detail
        if event.type == "payment_intent.canceled":
            intent.status = "canceled"
            return "canceled", detail
        return "ignored", detail

    # -- the day's close --------------------------------------------------------------------

    async def reconciliation(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, day: dt.date
    ) -> DayReport:
        provider = self._need_provider()
        try:
            report, _ = await day_report(self._db, provider, pharmacy_id, day)
        except ProviderError as exc:
            raise ServiceUnavailable(exc.words) from None
        done = report.reconciliation
        detail = {
            "day": day.isoformat(),
            "matched": len(done.matched),
            "discrepancies": len(done.discrepancies),
        }
        event = audit.Event(
            "payment.reconciliation.read", "pharmacy", str(pharmacy_id), detail=detail
        )
        await audit.record(self._db, actor, event)
        return report

    async def receivables(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, as_of: dt.date
    ) -> list[Ageing]:
        aged = await receivables(self._db, pharmacy_id, as_of)
        event = audit.Event(
            "payment.receivables.read",
            "pharmacy",
            str(pharmacy_id),
            detail={"as_of": as_of.isoformat()},
        )
        await audit.record(self._db, actor, event)
        return aged

    # -- refunds ----------------------------------------------------------------------------

    async def refund(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        may_refund: bool,
        entry_id: uuid.UUID,
        money: Money,
        reason: str,
    ) -> LedgerEntry:
        provider = self._need_provider()
        event = audit.Event("payment.refund", "ledger_entry", str(entry_id))
        async with audit.refusable(self._db) as session:
            if not may_refund:
                await audit.refuse(
                    session,
                    actor,
                    replace(event, outcome="refused", detail={"refused": "no_permission"}),
                    _forbidden("refund_not_allowed", "Only staff allowed to refund may refund."),
                )
            payment = await session.get(LedgerEntry, entry_id, with_for_update=True)
            if payment is None or payment.pharmacy_id != pharmacy_id:
                await audit.refuse(
                    session,
                    actor,
                    replace(event, outcome="not_found"),
                    NotFound("No such payment."),
                )
            if payment.kind != EntryKind.PAYMENT.value:
                await refuse_with(
                    session,
                    actor,
                    event,
                    Unprocessable("not_a_payment", "Only a payment is refunded."),
                )
            if money.currency != payment.currency:
                await refuse_with(
                    session,
                    actor,
                    event,
                    Unprocessable(
                        "currency_mismatch",
                        f"The payment was in {payment.currency.upper()}.",
                    ),
                )
            left = payment.amount - await session.run_sync(lambda s: store.refunded(s, entry_id))
            if money.amount > left:
                await refuse_with(
                    session,
                    actor,
                    event,
                    Unprocessable(
                        "refund_over_payment",
                        f"At most {Money(left, payment.currency).show()} of this payment is left "
                        "to refund.",
                    ),
                )
            intent_ref, patient_id = payment.cause_id, payment.patient_id
        key = f"refund-{entry_id}-{uuid.uuid4()}"
        made = await self._call(
            lambda: provider.refund(
                intent=intent_ref,
                amount=money.amount,
                idempotency_key=key,
                metadata={"pharmacy": str(pharmacy_id), "payment": str(entry_id)},
            )
        )
        if made.status in ("failed", "canceled"):  # nothing went back: nothing is written
            await audit.record(
                self._db,
                actor,
                replace(event, outcome="refused", detail={"refused": "refund_failed"}),
            )
            raise Unprocessable("refund_failed", f"The payment provider's refund {made.status}.")
        async with self._db.transaction() as session:
            entry = await session.run_sync(
                lambda s: store.add_entry(
                    s,
                    pharmacy_id=pharmacy_id,
                    patient_id=patient_id,
                    kind=EntryKind.REFUND,
                    money=money,
                    cause=store.Cause("refund", made.id, "Refund"),
                    actor=str(actor),
                    provider_ref=made.id,
                    refunds_entry_id=entry_id,
                    reason=reason,
                )
            )
            await session.flush()
            detail = {**_entry_detail(entry), "payment_entry_id": str(entry_id)}
            await audit.add(session, actor, replace(event, detail=detail))
        return entry


@dataclass(frozen=True, slots=True)
class PaymentState:
    """A payment as the person who took it follows it: ``paid`` (on the ledger: ``entry``),
    ``processing`` (asked, not settled yet), ``action_required`` (the bank's check in the
    browser), ``declined`` (refused, also later by the provider: ``reason`` in its words),
    ``canceled``, ``held`` (the provider received another amount: see the reconciliation)."""

    intent: PaymentIntent
    status: str
    reason: str | None
    entry: LedgerEntry | None


def _state_of(intent: PaymentIntent, entry: LedgerEntry | None) -> PaymentState:
    if entry is not None:
        return PaymentState(intent, "paid", None, entry)
    if intent.status == "failed":
        words = intent.last_error or "The card's bank declined the payment."
        return PaymentState(intent, "declined", _plain(words), None)
    if intent.status == "canceled":
        return PaymentState(intent, "canceled", "The payment was canceled.", None)
    if intent.status == "mismatch":
        return PaymentState(
            intent, "held", "The payment provider received another amount than asked.", None
        )
    if intent.status == "requires_action":
        return PaymentState(intent, "action_required", None, None)
    return PaymentState(intent, "processing", None, None)


def _plain(words: str) -> str:
    """The provider's message as a sentence (it may come as a bare code)."""
    text = words.strip().replace("_", " ")
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!")) else text + "."


@dataclass(frozen=True, slots=True)
class _Event:
    id: str
    type: str
    object: dict[str, Any]

    @property
    def object_id(self) -> str | None:
        value = self.object.get("id")
        return str(value)[:255] if value else None


def _event(payload: bytes) -> _Event:
    try:
        doc = json.loads(payload)
        obj = doc["data"]["object"]
        event_id, type_ = doc["id"], doc["type"]
    except (ValueError, KeyError, TypeError):
        raise BadRequest("The event is not a JSON object with id, type and data.object.") from None
    if not (isinstance(event_id, str) and isinstance(type_, str) and isinstance(obj, dict)):
        raise BadRequest("The event's id and type are strings, data.object an object.")
    if not 0 < len(event_id) <= 255:
        raise BadRequest("The event's id is 1 to 255 characters.")
    return _Event(event_id, type_, obj)


class RetryLater(ServiceUnavailable):
    code = "retry_later"


#: the provider's events that say what became of a refund (its object: the refund)
REFUND_EVENTS = frozenset({"charge.refund.updated", "refund.updated", "refund.failed"})
#: a refund's statuses that mean the money did not go back
_REFUND_UNDONE = frozenset({"failed", "canceled"})
#: a refund of the hub's not written yet this long after it was made never will be
_REFUND_YOUNG = 600


def _refund_changed(
    session: Session, refund_ref: str, obj: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """A refund the provider accepted failed or was canceled since: reversed on the ledger
    once (``refund_reversed``; a replay, or a late ``succeeded``/``pending``, changes
    nothing). One the hub asked for and has not written yet (made less than
    :data:`_REFUND_YOUNG` seconds ago: its answer is on its way) is sent again (503); an older
    one the hub never wrote (refused at once) is not the ledger's."""
    status = str(obj.get("status", ""))
    if status not in _REFUND_UNDONE:
        return "ignored", {}
    refund = store.refund_entry(session, refund_ref)
    if refund is None:
        metadata, made = obj.get("metadata"), obj.get("created")
        young = isinstance(made, int) and time.time() - made < _REFUND_YOUNG
        if isinstance(metadata, dict) and metadata.get("payment") and young:
            # the hub's own refund, its answer not written yet: the provider tries again
            raise RetryLater("This refund is not recorded yet: send the event again.")
        return "unknown_refund", {}
    detail: dict[str, Any] = {"refund_entry_id": str(refund.id), "pharmacy_id": refund.pharmacy_id}
    reversal = store.reverse_refund(session, refund, status)
    if reversal is None:
        return "duplicate", detail
    session.flush()
    return "refund_reversed", {**detail, "entry_id": str(reversal.id), "amount": refund.amount}


def _hub_payment(obj: dict[str, Any]) -> uuid.UUID | None:
    """The hub's own ID of a payment, from the metadata it gave the provider."""
    metadata = obj.get("metadata")
    raw = metadata.get("hub_payment") if isinstance(metadata, dict) else None
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


def _charge_of(obj: dict[str, Any]) -> str | None:
    charge = obj.get("latest_charge")
    if charge is None:
        charges = (obj.get("charges") or {}).get("data") or []
        charge = charges[0].get("id") if charges else None
    if isinstance(charge, dict):
        charge = charge.get("id")
    return None if charge is None else str(charge)[:255]


def _entry_detail(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "entry_id": str(entry.id),
        "kind": entry.kind,
        "amount": entry.amount,
        "currency": entry.currency,
        "cause_type": entry.cause_type,
    }


def _forbidden(code: str, words: str) -> Forbidden:
    problem = Forbidden(words)
    problem.code = code
    return problem


PAYMENTS = web.AppKey("payments", Payments)
PLANS = web.AppKey("payment_plans", plans.Plans)
