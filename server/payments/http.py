"""Payments' API: a patient's ledger (balance and lines), a charge typed by staff, a payment
asked of the provider (the browser confirms it in the provider's card fields), a refund, the
price list; and the provider's webhook (``POST /payments/webhook``, signed, outside the API).

Thin handlers: they check the role, turn bodies into values and answer with what
:class:`~.service.Payments` did. Another pharmacy's patient or payment is 404.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from eprescribe.payments import CURRENCIES, Money, MoneyRefused, money, write_csv
from eprescribe.payments.money import AMOUNT_MAX

from .. import audit
from ..callers import PHARMACIST, Caller, caller
from ..db.models import utcnow
from ..errors import BadRequest, NotFound, Unprocessable
from ..http import (
    PROXIES,
    cursor_after,
    cursor_of,
    path_uuid,
    query_int,
    read_body,
    read_json_as,
    respond,
)
from ..openapi import Body, Operation, Timestamp, operation, path, query
from ..settings import SETTINGS
from . import plans
from .models import LedgerEntry, PaymentCard, PriceListItem
from .service import PAYMENTS, PLANS, Asking
from .service import Asked as Made

READ_SCOPE = "rx:read"
SCOPE = "rx:verify"
TECHNICIAN = "technician"
ADMIN = "pharmacy_admin"
MAX_BODY = 4096
#: the provider's events are small; a larger body is not one of them
WEBHOOK_MAX = 256 * 1024
#: who read a patient's ledger and take payments at the counter
STAFF = (PHARMACIST, TECHNICIAN, ADMIN)
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_\-]{8,64}")
#: the ``Idempotency-Key`` header, as every payment-asking operation documents it
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
    "description": "the same key again answers with the same payment",
}
_PATIENT = [path("id", "the patient profile")]

Amount = Annotated[
    int,
    msgspec.Meta(ge=1, le=AMOUNT_MAX, description="in the currency's minor unit (cents)"),
]
Currency = Annotated[
    str,
    msgspec.Meta(
        pattern="^[a-z]{3}$",
        description=f"ISO 4217, lower case: {', '.join(sorted(CURRENCIES))}; "
        "the hub's (TELEPHARM_CURRENCY) when left out",
    ),
]
Words = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class LineView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: Literal["charge", "payment", "refund", "write_off", "adjustment"]
    amount: Annotated[int, msgspec.Meta(description="minor units; an adjustment's is signed")]
    signed: Annotated[int, msgspec.Meta(description="its effect on the balance")]
    currency: str
    description: str
    cause_type: str
    method: str | None
    reason: str | None
    refunds: uuid.UUID | None
    at: Timestamp


class Ledger(msgspec.Struct, frozen=True, kw_only=True):
    """What the patient owes per currency (negative: a credit) and the lines, newest first."""

    balance: dict[str, int]
    items: list[LineView]
    next: str | None


class ChargeBody(Body, frozen=True, kw_only=True):
    amount: Amount
    currency: Currency | None = None
    description: Annotated[Words, msgspec.Meta(description="what the patient reads")]
    reason: Annotated[Reason, msgspec.Meta(description="why it was typed, not priced")]


class PaymentBody(Body, frozen=True, kw_only=True):
    amount: Amount
    currency: Currency | None = None
    method: Annotated[
        Literal["counter", "online", "saved_card"],
        msgspec.Meta(description="at the counter, on the patient's page, a saved card"),
    ] = "counter"
    card_id: Annotated[
        uuid.UUID,
        msgspec.Meta(
            description="the patient's card: one just set up (its setup confirmed in "
            "the browser) or a saved one"
        ),
    ]
    save: Annotated[bool, msgspec.Meta(description="keep a new card for later payments")] = False


class CardSetup(msgspec.Struct, frozen=True, kw_only=True):
    """A card to be typed into the provider's own fields: the browser confirms the setup with
    ``client_secret`` (Stripe.js ``confirmCardSetup``, with ``publishable_key``, loaded from
    ``js_url``), then pays with ``card_id``."""

    card_id: uuid.UUID
    client_secret: str | None
    publishable_key: str
    js_url: str


class CardView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None


class Cards(msgspec.Struct, frozen=True, kw_only=True):
    items: list[CardView]


class Asked(msgspec.Struct, frozen=True, kw_only=True):
    """A payment the browser confirms in the provider's card fields (Stripe.js): its
    ``client_secret`` with the ``publishable_key``, loaded from ``js_url``."""

    payment_id: uuid.UUID
    provider_id: str | None
    status: str
    amount: int
    currency: str
    client_secret: Annotated[
        str | None,
        msgspec.Meta(
            description="only when the bank's check (3-D Secure) is to be completed "
            "in the browser (status requires_action)"
        ),
    ]


class PaymentStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What became of a payment asked: ``paid`` (on the ledger), ``processing``,
    ``action_required``, ``declined`` (also when the provider declines it after the hub
    answered; ``reason`` in its words), ``canceled``, ``held`` (another amount arrived)."""

    payment_id: uuid.UUID
    status: Literal["paid", "processing", "action_required", "declined", "canceled", "held"]
    amount: int
    currency: str
    reason: str | None
    entry_id: Annotated[uuid.UUID | None, msgspec.Meta(description="paid: its ledger line")]


class RefundBody(Body, frozen=True, kw_only=True):
    amount: Amount
    reason: Reason


class PriceView(msgspec.Struct, frozen=True, kw_only=True):
    item: str
    amount: int
    currency: str


class Prices(msgspec.Struct, frozen=True, kw_only=True):
    items: list[PriceView]


class PriceBody(Body, frozen=True, kw_only=True):
    amount: Annotated[
        Annotated[int, msgspec.Meta(ge=0, le=AMOUNT_MAX)] | None,
        msgspec.Meta(description="in the currency's minor unit; null: removed"),
    ]
    currency: Currency | None = None


def money_of(request: web.Request, amount: int, currency: str | None) -> Money:
    try:
        return money(amount, currency or request.app[SETTINGS].currency)
    except MoneyRefused as exc:
        raise Unprocessable(exc.code, exc.words) from None


def line_view(entry: LedgerEntry) -> LineView:
    sign = -1 if entry.kind in ("payment", "write_off") else 1
    return LineView(
        id=entry.id,
        kind=entry.kind,  # type: ignore[arg-type]
        amount=entry.amount,
        signed=sign * entry.amount,
        currency=entry.currency,
        description=entry.description,
        cause_type=entry.cause_type,
        method=entry.method,
        reason=entry.reason,
        refunds=entry.refunds_entry_id,
        at=entry.at.isoformat(),
    )


async def staff_caller(request: web.Request, scope: str, *roles: str) -> Caller:
    who = await caller(request, scope)
    who.require_role(*roles)
    return who


@dataclass(frozen=True, slots=True)
class Payer:
    """Whose money a request is about, and who acts: staff on a patient of their pharmacy
    (``/api/v1/patients/{id}``), or the patient on their own page (``/api/v1/me``, whose
    session names both). The card and plan operations of both are answered by the same
    functions below: the same JSON, the same service calls, the same audits."""

    actor: audit.Actor
    pharmacy_id: uuid.UUID
    patient_id: uuid.UUID


async def staff_payer(request: web.Request, scope: str, *roles: str) -> Payer:
    who = await staff_caller(request, scope, *roles)
    return Payer(who.actor, who.pharmacy_id, path_uuid(request, "patient"))


async def card_setup_answer(request: web.Request, payer: Payer) -> web.Response:
    card, secret = await request.app[PAYMENTS].card_setup(
        payer.actor, payer.pharmacy_id, payer.patient_id
    )
    return respond(card_setup_view(request, card.id, secret))


async def cards_answer(request: web.Request, payer: Payer) -> web.Response:
    found = await request.app[PAYMENTS].cards(payer.actor, payer.pharmacy_id, payer.patient_id)
    return respond(cards_view(found))


async def remove_card_answer(request: web.Request, payer: Payer) -> web.Response:
    try:
        card_id = uuid.UUID(request.match_info["card"])
    except ValueError:
        raise NotFound("No such card.") from None
    payments = request.app[PAYMENTS]
    await payments.remove_card(payer.actor, payer.pharmacy_id, payer.patient_id, card_id)
    return await cards_answer(request, payer)


def idempotency_key(request: web.Request) -> str:
    """The request's ``Idempotency-Key`` (one made up when it sent none)."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequest("Idempotency-Key is 8 to 64 letters, digits, - or _.")
    return key or str(uuid.uuid4())


async def payment_answer(
    request: web.Request, payer: Payer, key: str, body: PaymentBody
) -> web.Response:
    asking = Asking(
        money=money_of(request, body.amount, body.currency),
        method=body.method,
        card_id=body.card_id,
        key=key,
        save=body.save,
    )
    asked = await request.app[PAYMENTS].ask(
        payer.actor, payer.pharmacy_id, payer.patient_id, asking
    )
    return respond(asked_view(asked))


async def plans_answer(request: web.Request, payer: Payer) -> web.Response:
    found = await request.app[PLANS].of_patient(payer.actor, payer.pharmacy_id, payer.patient_id)
    return respond(PlanList(items=[plan_view(v) for v in found]))


@operation(
    Operation(
        operation_id="getPatientLedger",
        summary="A patient's balance and ledger lines, newest first",
        scope=READ_SCOPE,
        parameters=[
            *_PATIENT,
            query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "lines a page"),
            query("after", {"type": "string"}, "the cursor of the previous page"),
        ],
        response=Ledger,
        errors=("400", "401", "403", "404"),
    )
)
async def get_ledger(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}/ledger``."""
    who = await staff_caller(request, READ_SCOPE, *STAFF)
    patient_id = path_uuid(request, "patient")
    limit = max(1, query_int(request, "limit", 50, 200))
    after = cursor_after(request)
    statement = await request.app[PAYMENTS].statement(
        who.actor, who.pharmacy_id, patient_id, limit=limit, before=after
    )
    lines = statement.entries
    more = cursor_of(lines[-1].at, lines[-1].id) if len(lines) == limit else None
    return respond(
        Ledger(balance=statement.balance, items=[line_view(e) for e in lines], next=more)
    )


@operation(
    Operation(
        operation_id="addPatientCharge",
        summary="Charge a patient an amount typed by staff, with the reason",
        scope=SCOPE,
        parameters=_PATIENT,
        body=ChargeBody,
        response=LineView,
        errors=("400", "401", "403", "404", "413", "415", "422"),
        description="Allowed to: pharmacist. Charges from fills come from the price list "
        "by themselves; this is for what it does not price.",
    )
)
async def add_charge(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/charges``."""
    who = await staff_caller(request, SCOPE, PHARMACIST)
    patient_id = path_uuid(request, "patient")
    body = await read_json_as(request, ChargeBody, MAX_BODY)
    entry = await request.app[PAYMENTS].charge(
        who.actor,
        who.pharmacy_id,
        patient_id,
        money_of(request, body.amount, body.currency),
        body.description,
        body.reason,
    )
    return respond(line_view(entry))


class WriteOffBody(Body, frozen=True, kw_only=True):
    amount: Amount
    currency: Currency | None = None
    reason: Annotated[Reason, msgspec.Meta(description="why the pharmacy stops collecting it")]


@operation(
    Operation(
        operation_id="writeOffPatientBalance",
        summary="Write off (part of) what a patient owes, with the reason",
        scope=SCOPE,
        parameters=_PATIENT,
        body=WriteOffBody,
        response=LineView,
        errors=("400", "401", "403", "404", "413", "415", "422"),
        description="Allowed to: pharmacist. 422 write_off_over_balance: more than is owed.",
    )
)
async def write_off(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/write-offs``."""
    who = await staff_caller(request, SCOPE, PHARMACIST)
    patient_id = path_uuid(request, "patient")
    body = await read_json_as(request, WriteOffBody, MAX_BODY)
    entry = await request.app[PAYMENTS].write_off(
        who.actor, who.pharmacy_id, patient_id, money_of(request, body.amount, body.currency),
        body.reason,
    )  # fmt: skip
    return respond(line_view(entry))


@operation(
    Operation(
        operation_id="askPatientPayment",
        summary="Ask the payment provider for a payment of (part of) a patient's balance",
        scope=SCOPE,
        parameters=[
            *_PATIENT,
            IDEMPOTENCY_KEY_PARAMETER,
        ],
        body=PaymentBody,
        response=Asked,
        errors=("400", "401", "403", "404", "413", "415", "422", "503"),
        description="Allowed to: pharmacist, technician (at the counter, the patient "
        "present). The card is typed into the provider's own fields, never sent to the hub; "
        "the payment is on the ledger once the provider's webhook says it succeeded. 422 "
        "amount_over_balance; 503 when card payments are not configured.",
    )
)
async def ask_payment(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/payments``."""
    payer = await staff_payer(request, SCOPE, PHARMACIST, TECHNICIAN)
    key = idempotency_key(request)
    body = await read_json_as(request, PaymentBody, MAX_BODY)
    return await payment_answer(request, payer, key, body)


@operation(
    Operation(
        operation_id="getPatientPayment",
        summary="What became of a payment asked: paid, processing or declined (and why)",
        scope=READ_SCOPE,
        parameters=[*_PATIENT, path("payment", "the payment (payment_id of its asking)")],
        response=PaymentStatus,
        errors=("401", "403", "404"),
        description="Allowed to: pharmacist, technician, pharmacy admin. The console asks it "
        "after taking a payment until it is paid or declined: a payment the provider declines "
        "after the hub answered shows here with the provider's reason.",
    )
)
async def get_payment(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}/payments/{payment}``."""
    who = await staff_caller(request, READ_SCOPE, *STAFF)
    patient_id = path_uuid(request, "patient")
    try:
        payment_id = uuid.UUID(request.match_info["payment"])
    except ValueError:
        raise NotFound("No such payment.") from None
    state = await request.app[PAYMENTS].payment_status(
        who.actor, who.pharmacy_id, patient_id, payment_id
    )
    return respond(
        PaymentStatus(
            payment_id=state.intent.id,
            status=state.status,  # type: ignore[arg-type]
            amount=state.intent.amount,
            currency=state.intent.currency,
            reason=state.reason,
            entry_id=None if state.entry is None else state.entry.id,
        )
    )


def asked_view(asked: Made) -> Asked:
    intent = asked.intent
    return Asked(
        payment_id=intent.id,
        provider_id=intent.provider_id,
        status=intent.status,
        amount=intent.amount,
        currency=intent.currency,
        client_secret=asked.client_secret,
    )


@operation(
    Operation(
        operation_id="setUpPatientCard",
        summary="Set up a card the patient types into the payment provider's own fields",
        scope=SCOPE,
        parameters=_PATIENT,
        response=CardSetup,
        errors=("401", "403", "404", "503"),
        description="Allowed to: pharmacist, technician. The hub never receives the card: "
        "the browser confirms the setup at the provider, then pays with card_id.",
    )
)
async def set_up_card(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/cards``."""
    return await card_setup_answer(
        request, await staff_payer(request, SCOPE, PHARMACIST, TECHNICIAN)
    )


def card_setup_view(request: web.Request, card_id: uuid.UUID, secret: str | None) -> CardSetup:
    settings = request.app[SETTINGS]
    return CardSetup(
        card_id=card_id,
        client_secret=secret,
        publishable_key=settings.stripe_publishable_key,
        js_url=settings.stripe_js_url,
    )


@operation(
    Operation(
        operation_id="listPatientCards",
        summary="A patient's saved cards (brand, last four digits, expiry)",
        scope=READ_SCOPE,
        parameters=_PATIENT,
        response=Cards,
        errors=("401", "403", "404"),
    )
)
async def list_cards(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}/cards``."""
    return await cards_answer(request, await staff_payer(request, READ_SCOPE, *STAFF))


def cards_view(found: Sequence[PaymentCard]) -> Cards:
    return Cards(
        items=[
            CardView(
                id=c.id, brand=c.brand, last4=c.last4, exp_month=c.exp_month, exp_year=c.exp_year
            )
            for c in found
        ]
    )


@operation(
    Operation(
        operation_id="removePatientCard",
        summary="Forget a saved card (detached at the provider)",
        scope=SCOPE,
        parameters=[*_PATIENT, path("card", "the card")],
        response=Cards,
        errors=("401", "403", "404", "503"),
    )
)
async def remove_card(request: web.Request) -> web.Response:
    """``DELETE /api/v1/patients/{id}/cards/{card}``."""
    payer = await staff_payer(request, SCOPE, PHARMACIST, TECHNICIAN)
    return await remove_card_answer(request, payer)


@operation(
    Operation(
        operation_id="refundPayment",
        summary="Refund (part of) a payment, with the reason",
        scope=SCOPE,
        parameters=[path("id", "the payment's ledger line")],
        body=RefundBody,
        response=LineView,
        errors=("400", "401", "403", "404", "413", "415", "422", "503"),
        description="Allowed to: staff with the refunds permission (a pharmacy admin grants "
        "it). 422 refund_over_payment: more than the payment less its refunds.",
    )
)
async def refund(request: web.Request) -> web.Response:
    """``POST /api/v1/payments/{id}/refunds``."""
    who = await staff_caller(request, SCOPE, *STAFF)
    entry_id = path_uuid(request, "payment")
    body = await read_json_as(request, RefundBody, MAX_BODY)
    payments = request.app[PAYMENTS]
    entry = await payments.refund(
        who.actor,
        who.pharmacy_id,
        who.refunds,
        entry_id,
        money_of(request, body.amount, None),
        body.reason,
    )
    return respond(line_view(entry))


@operation(
    Operation(
        operation_id="listPrices",
        summary="The pharmacy's price list (consult, delivery, fill, ndc:<NDC11>)",
        scope=READ_SCOPE,
        response=Prices,
        errors=("401", "403"),
    )
)
async def list_prices(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/prices``."""
    who = await staff_caller(request, READ_SCOPE, *STAFF)
    return respond(_prices(await request.app[PAYMENTS].prices(who.pharmacy_id)))


_ITEM = re.compile(r"consult|delivery|fill|ndc:[0-9]{11}")


@operation(
    Operation(
        operation_id="setPrice",
        summary="Set or remove a price (pharmacy admins)",
        scope=SCOPE,
        parameters=[
            {
                "name": "item",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^(consult|delivery|fill|ndc:[0-9]{11})$"},
                "description": "consult, delivery, fill (any fill without a price of its "
                "own) or ndc:<NDC11>",
            }
        ],
        body=PriceBody,
        response=Prices,
        errors=("400", "401", "403", "404", "413", "415", "422"),
    )
)
async def set_price(request: web.Request) -> web.Response:
    """``PUT /api/v1/payments/prices/{item}``."""
    who = await staff_caller(request, SCOPE, ADMIN)
    item = request.match_info["item"]
    if not _ITEM.fullmatch(item):
        raise BadRequest("item is consult, delivery, fill or ndc:<11 digits>.")
    body = await read_json_as(request, PriceBody, MAX_BODY)
    price = None
    if body.amount is not None:
        try:
            price = money(
                body.amount, body.currency or request.app[SETTINGS].currency, allow_zero=True
            )
        except MoneyRefused as exc:
            raise Unprocessable(exc.code, exc.words) from None
    return respond(
        _prices(await request.app[PAYMENTS].set_price(who.actor, who.pharmacy_id, item, price))
    )


def _prices(rows: Sequence[PriceListItem]) -> Prices:
    return Prices(
        items=[PriceView(item=r.item, amount=r.amount, currency=r.currency) for r in rows]
    )


class DiscrepancyView(msgspec.Struct, frozen=True, kw_only=True):
    code: Literal["mismatched", "missing_in_provider", "missing_in_ledger", "duplicate"]
    provider_ref: str
    words: str
    ledger_entries: list[str]
    ledger_amount: int | None
    provider_transactions: list[str]
    provider_amount: int | None
    currency: str


class Reconciled(msgspec.Struct, frozen=True, kw_only=True):
    """The day (UTC) reconciled: clean when every payment and refund on the ledger is at the
    provider for the same amount, and nothing more."""

    day: dt.date
    clean: bool
    matched: int
    matched_totals: Annotated[
        dict[str, dict[str, int]], msgspec.Meta(description="currency -> kind -> amount")
    ]
    discrepancies: list[DiscrepancyView]
    collected: Annotated[
        dict[str, dict[str, int]],
        msgspec.Meta(description="method -> currency -> payments less refunds"),
    ]


class AgeingView(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    buckets: Annotated[dict[str, int], msgspec.Meta(description="0-30, 31-60, 61-90, 90+")]
    credit: int
    total: int


class Receivables(msgspec.Struct, frozen=True, kw_only=True):
    as_of: dt.date
    items: list[AgeingView]


def _day(request: web.Request, name: str) -> dt.date:
    raw = request.query.get(name)
    if raw is None:
        return utcnow().date() - (dt.timedelta(days=1) if name == "day" else dt.timedelta())
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} is a date: YYYY-MM-DD.") from None
    latest = utcnow().date() + dt.timedelta(days=1)
    if not EARLIEST_DAY <= day <= latest:
        raise BadRequest(f"{name} is a day from {EARLIEST_DAY} to {latest}.")
    return day


#: no ledger is older than this
EARLIEST_DAY = dt.date(2000, 1, 1)


_DAY = query("day", {"type": "string", "format": "date"}, "the day (UTC); yesterday if left out")


@operation(
    Operation(
        operation_id="getReconciliation",
        summary="The day's reconciliation of the ledger against the payment provider",
        scope=READ_SCOPE,
        parameters=[_DAY],
        response=Reconciled,
        errors=("400", "401", "403", "503"),
        description="Allowed to: pharmacist, pharmacy admin. Matched by the provider's "
        "reference (a payment's charge, a refund); mismatched amounts, lines missing on "
        "either side and duplicates listed; collections per method.",
    )
)
async def get_reconciliation(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/reconciliation``."""
    who = await staff_caller(request, READ_SCOPE, PHARMACIST, ADMIN)
    day = _day(request, "day")
    report = await request.app[PAYMENTS].reconciliation(who.actor, who.pharmacy_id, day)
    done = report.reconciliation
    return respond(
        Reconciled(
            day=day,
            clean=done.clean,
            matched=len(done.matched),
            matched_totals=done.totals(),
            discrepancies=[
                DiscrepancyView(
                    code=d.code,  # type: ignore[arg-type]
                    provider_ref=d.ref,
                    words=d.words,
                    ledger_entries=[line.entry_id for line in d.ledger],
                    ledger_amount=sum(line.amount for line in d.ledger) if d.ledger else None,
                    provider_transactions=[m.transaction_id for m in d.provider],
                    provider_amount=sum(m.amount for m in d.provider) if d.provider else None,
                    currency=(d.ledger or d.provider)[0].currency,
                )
                for d in done.discrepancies
            ],
            collected=report.collected,
        )
    )


@operation(
    Operation(
        operation_id="getReconciliationCsv",
        summary="The day's reconciliation as CSV (discrepancies first)",
        scope=READ_SCOPE,
        parameters=[_DAY],
        errors=("400", "401", "403", "503"),
        media_type="text/csv",
    )
)
async def get_reconciliation_csv(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/reconciliation.csv``."""
    who = await staff_caller(request, READ_SCOPE, PHARMACIST, ADMIN)
    day = _day(request, "day")
    report = await request.app[PAYMENTS].reconciliation(who.actor, who.pharmacy_id, day)
    out = io.StringIO(newline="")
    write_csv(report.reconciliation, out)
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="reconciliation-{day.isoformat()}.csv"',
        },
    )


@operation(
    Operation(
        operation_id="getReceivables",
        summary="Accounts receivable by age (0-30, 31-60, 61-90, 90+ days)",
        scope=READ_SCOPE,
        parameters=[query("as_of", {"type": "string", "format": "date"}, "today if left out")],
        response=Receivables,
        errors=("400", "401", "403"),
    )
)
async def get_receivables(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/receivables``."""
    who = await staff_caller(request, READ_SCOPE, PHARMACIST, ADMIN)
    as_of = _day(request, "as_of")
    aged = await request.app[PAYMENTS].receivables(who.actor, who.pharmacy_id, as_of)
    return respond(
        Receivables(
            as_of=as_of,
            items=[
                AgeingView(currency=a.currency, buckets=a.buckets, credit=a.credit, total=a.total)
                for a in aged
            ],
        )
    )


class PlanBody(Body, frozen=True, kw_only=True):
    card_id: Annotated[uuid.UUID, msgspec.Meta(description="a card the patient saved")]
    count: Annotated[int, msgspec.Meta(ge=2, le=24, description="instalments")]
    every_days: Annotated[int, msgspec.Meta(ge=1, le=90)] = 30
    first_due: Annotated[dt.date | None, msgspec.Meta(description="today if left out")] = None
    currency: Currency | None = None


class InstalmentView(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    due: dt.date
    amount: int
    status: Literal["pending", "asked", "paid", "failed", "stopped", "cancelled"]
    attempts: int
    next_attempt_at: Timestamp | None
    last_error: str | None


class PlanView(msgspec.Struct, frozen=True, kw_only=True):
    """A plan; ``paid`` is what its instalments' payments put on the ledger."""

    id: uuid.UUID
    status: Literal["active", "completed", "cancelled"]
    total: int
    paid: int
    currency: str
    card_id: uuid.UUID
    created_at: Timestamp
    instalments: list[InstalmentView]


class PlanList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[PlanView]


def plan_view(view: plans.PlanView) -> PlanView:
    plan = view.plan
    return PlanView(
        id=plan.id,
        status=plan.status,  # type: ignore[arg-type]
        total=plan.total,
        paid=view.paid,
        currency=plan.currency,
        card_id=plan.card_id,
        created_at=plan.created_at.isoformat(),
        instalments=[
            InstalmentView(
                number=i.number,
                due=i.due,
                amount=i.amount,
                status=i.status,  # type: ignore[arg-type]
                attempts=i.attempts,
                next_attempt_at=i.next_attempt_at.isoformat()
                if i.status in ("pending", "failed")
                else None,
                last_error=i.last_error,
            )
            for i in view.instalments
        ],
    )


@operation(
    Operation(
        operation_id="createPaymentPlan",
        summary="Split a patient's balance into instalments charged to a saved card",
        scope=SCOPE,
        parameters=_PATIENT,
        body=PlanBody,
        response=PlanView,
        errors=("400", "401", "403", "404", "409", "413", "415", "422"),
        description="Allowed to: pharmacist, technician. The whole balance in the currency; "
        "one active plan a patient (409 plan_exists); 422 card_not_saved, plan_count, "
        "plan_interval, plan_too_small.",
    )
)
async def create_plan(request: web.Request) -> web.Response:
    """``POST /api/v1/patients/{id}/plans``."""
    who = await staff_caller(request, SCOPE, PHARMACIST, TECHNICIAN)
    patient_id = path_uuid(request, "patient")
    body = await read_json_as(request, PlanBody, MAX_BODY)
    currency = money_of(request, 1, body.currency).currency
    view = await request.app[PLANS].create(
        who.actor,
        who.pharmacy_id,
        patient_id,
        body.card_id,
        body.count,
        body.every_days,
        body.first_due or utcnow().date(),
        currency,
    )
    return respond(plan_view(view))


@operation(
    Operation(
        operation_id="listPaymentPlans",
        summary="A patient's payment plans, newest first, with their instalments",
        scope=READ_SCOPE,
        parameters=_PATIENT,
        response=PlanList,
        errors=("401", "403", "404"),
    )
)
async def list_plans(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}/plans``."""
    return await plans_answer(request, await staff_payer(request, READ_SCOPE, *STAFF))


@operation(
    Operation(
        operation_id="cancelPaymentPlan",
        summary="Cancel a plan: the instalments not asked yet are not charged",
        scope=SCOPE,
        parameters=[path("id", "the plan")],
        response=PlanView,
        errors=("401", "403", "404", "409"),
    )
)
async def cancel_plan(request: web.Request) -> web.Response:
    """``POST /api/v1/payment-plans/{id}/cancel``."""
    who = await staff_caller(request, SCOPE, PHARMACIST, TECHNICIAN)
    plan_id = path_uuid(request, "plan")
    return respond(plan_view(await request.app[PLANS].cancel(who.actor, who.pharmacy_id, plan_id)))


class WebhookAnswer(msgspec.Struct, frozen=True):
    received: bool
    outcome: str


async def webhook(request: web.Request) -> web.Response:
    """``POST /payments/webhook``: the provider's events, signed (``Stripe-Signature``)."""
    payload = await read_body(request, WEBHOOK_MAX)
    signature, source = (
        request.headers.get("Stripe-Signature"),
        request.app[PROXIES].client_ip(request),
    )
    outcome = await request.app[PAYMENTS].webhook(payload, signature, source)
    return respond(WebhookAnswer(received=True, outcome=outcome))
