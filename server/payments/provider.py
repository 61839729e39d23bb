"""The payment provider behind a small interface, and its Stripe adapter (the official
``stripe`` SDK). Blocking calls: the service runs them in a thread, outside any database
transaction.

Every call that moves money or makes something carries an idempotency key: a retry after a
timeout is the same call, not a second charge. Cards never pass through here: the patient
types them into the provider's own fields (Stripe.js), which give the provider a payment
method; the hub handles only its identifier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from eprescribe.payments import REFUND_FAILURE, ProviderMovement

from ..settings import Settings


class ProviderError(Exception):
    """The provider refused or could not be reached; ``words`` are safe to show staff."""

    def __init__(self, words: str, *, declined: bool = False) -> None:
        super().__init__(words)
        self.words = words
        self.declined = declined


@dataclass(frozen=True, slots=True)
class ProviderIntent:
    id: str
    status: str
    amount: int
    currency: str
    #: what the browser's provider fields need to confirm it (never logged)
    client_secret: str | None
    #: the charge that paid it, once succeeded
    charge: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    id: str
    status: str
    amount: int


@dataclass(frozen=True, slots=True)
class SavedCard:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class PaymentProvider(Protocol):
    def create_customer(self, *, idempotency_key: str) -> str: ...

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        customer: str,
        idempotency_key: str,
        metadata: dict[str, str],
        payment_method: str | None = None,
        off_session: bool = False,
    ) -> ProviderIntent: ...

    def retrieve_intent(self, intent: str) -> ProviderIntent: ...

    def create_setup_intent(self, *, customer: str, idempotency_key: str) -> ProviderIntent: ...

    def refund(
        self, *, intent: str, amount: int, idempotency_key: str, metadata: dict[str, str]
    ) -> ProviderRefund: ...

    def retrieve_setup(self, setup: str) -> tuple[str, str | None]: ...

    def card(self, payment_method: str) -> SavedCard: ...

    def detach(self, payment_method: str) -> None: ...

    def movements(self, start: dt.datetime, end: dt.datetime) -> list[ProviderMovement]: ...

    def refunded_charge(self, refund: str) -> str | None: ...

    def charge_intent(self, charge: str) -> str | None: ...


class StripeProvider:
    """:class:`PaymentProvider` on Stripe's API (or a compatible local server in tests)."""

    def __init__(self, api_key: str, api_base: str, *, timeout: float = 30.0) -> None:
        import stripe

        self._stripe = stripe
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeProvider | None:
        if not settings.stripe_api_key:
            return None
        return cls(settings.stripe_api_key, settings.stripe_api_base)

    def _call(self, method: Any, params: dict[str, Any], key: str | None = None, *args: str) -> Any:
        options = {"idempotency_key": key} if key else None
        try:
            return method(*args, params=params, options=options)
        except self._stripe.CardError as exc:
            raise ProviderError(
                exc.user_message or "The card was declined.", declined=True
            ) from None
        except self._stripe.StripeError as exc:
            raise ProviderError(
                f"The payment provider refused: {exc.user_message or exc.code or 'error'}."
            ) from None

    def create_customer(self, *, idempotency_key: str) -> str:
        # no name, address or email: the provider needs none to keep a card
        customer = self._call(self._client.v1.customers.create, {}, idempotency_key)
        return str(customer.id)

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        customer: str,
        idempotency_key: str,
        metadata: dict[str, str],
        payment_method: str | None = None,
        off_session: bool = False,
    ) -> ProviderIntent:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "customer": customer,
            "metadata": metadata,
            "payment_method_types": ["card"],
        }
        if payment_method:
            params |= {"payment_method": payment_method, "confirm": True}
            if off_session:
                params["off_session"] = True
        intent = self._call(self._client.v1.payment_intents.create, params, idempotency_key)
        return _intent(intent)

    def retrieve_intent(self, intent: str) -> ProviderIntent:
        return _intent(self._call(self._client.v1.payment_intents.retrieve, {}, None, intent))

    def create_setup_intent(self, *, customer: str, idempotency_key: str) -> ProviderIntent:
        params = {"customer": customer, "payment_method_types": ["card"], "usage": "off_session"}
        setup = self._call(self._client.v1.setup_intents.create, params, idempotency_key)
        return ProviderIntent(setup.id, setup.status, 0, "", setup.client_secret)

    def refund(
        self, *, intent: str, amount: int, idempotency_key: str, metadata: dict[str, str]
    ) -> ProviderRefund:
        params = {"payment_intent": intent, "amount": amount, "metadata": metadata}
        refund = self._call(self._client.v1.refunds.create, params, idempotency_key)
        return ProviderRefund(refund.id, refund.status, refund.amount)

    def retrieve_setup(self, setup: str) -> tuple[str, str | None]:
        """A setup intent's status and the payment method the browser's card fields gave it."""
        found = self._call(self._client.v1.setup_intents.retrieve, {}, None, setup)
        method = found.payment_method
        return str(found.status), None if method is None else str(getattr(method, "id", method))

    def card(self, payment_method: str) -> SavedCard:
        found = self._call(self._client.v1.payment_methods.retrieve, {}, None, payment_method)
        card = found.card
        return SavedCard(
            str(found.id), str(card.brand), str(card.last4), int(card.exp_month), int(card.exp_year)
        )

    def detach(self, payment_method: str) -> None:
        self._call(self._client.v1.payment_methods.detach, {}, None, payment_method)

    def movements(self, start: dt.datetime, end: dt.datetime) -> list[ProviderMovement]:
        """The balance transactions created in [start, end) that move a patient's money
        (payments and refunds). The list comes newest first: pages are read until one older
        than ``start``."""
        begin, stop = int(start.timestamp()), int(end.timestamp())
        page = self._call(self._client.v1.balance_transactions.list, {"limit": 100})
        out = []
        for txn in page.auto_paging_iter():
            created = int(txn.created)
            if created < begin:
                break
            kind = _KINDS.get(str(txn.type))
            if created >= stop or kind is None or not txn.source:
                continue
            out.append(
                ProviderMovement(
                    ref=str(getattr(txn.source, "id", txn.source)),
                    kind=kind,
                    amount=abs(int(txn.amount)),
                    currency=str(txn.currency),
                    transaction_id=str(txn.id),
                    at=dt.datetime.fromtimestamp(created, dt.UTC),
                )
            )
        return out

    def refunded_charge(self, refund: str) -> str | None:
        found = self._call(self._client.v1.refunds.retrieve, {}, None, refund)
        charge = found.charge
        return None if charge is None else str(getattr(charge, "id", charge))

    def charge_intent(self, charge: str) -> str | None:
        found = self._call(self._client.v1.charges.retrieve, {}, None, charge)
        intent = found.payment_intent
        return None if intent is None else str(getattr(intent, "id", intent))


#: the balance transaction types that are a patient's money moving, and which way
_KINDS = {
    "charge": "payment",
    "payment": "payment",
    "refund": "refund",
    "payment_refund": "refund",
    # a refund that failed after it was accepted: the money back, its source the refund
    "refund_failure": REFUND_FAILURE,
}


def _intent(intent: Any) -> ProviderIntent:
    charge = getattr(intent, "latest_charge", None)
    if charge is None:  # older API versions list the charges
        charges = getattr(intent, "charges", None)
        data = getattr(charges, "data", None) or []
        charge = data[0].id if data else None
    return ProviderIntent(
        id=str(intent.id),
        status=str(intent.status),
        amount=int(intent.amount),
        currency=str(intent.currency),
        client_secret=intent.client_secret,
        charge=None if charge is None else str(getattr(charge, "id", charge)),
    )
