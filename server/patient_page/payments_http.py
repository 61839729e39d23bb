"""The signed-in patient's payments under ``/api/v1/me``: what they owe and what each line is
for, a card typed into the payment provider's own fields (the hub never sees it), their saved
cards, paying (at most the balance), their payment plans. The cards, payments and plans are
answered by the staff's own code (:class:`server.payments.http.Payer`: the same JSON, service
calls and audits) with the patient as the actor; the patient and pharmacy are the session's,
so another patient's card is 404, audited as a miss. Only the balance has a view of its own
(the lines without the staff's reasons).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from ..http import read_json_as, respond
from ..openapi import Body, Operation, Timestamp, operation, path
from ..payments.http import (
    IDEMPOTENCY_KEY_PARAMETER,
    Amount,
    Asked,
    Cards,
    CardSetup,
    Currency,
    Payer,
    PaymentBody,
    PlanList,
    card_setup_answer,
    cards_answer,
    idempotency_key,
    payment_answer,
    plans_answer,
    remove_card_answer,
)
from ..payments.models import LedgerEntry
from ..payments.service import PAYMENTS
from .signin import signed_in

MAX_BODY = 4096
#: the lines a patient's page shows, newest first
LINES = 100
_SESSION = "The patient session cookie (POST /api/v1/me/sign-in)."
_CHANGE = _SESSION + " With X-CSRF-Token."


class MyLine(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: Literal["charge", "payment", "refund", "write_off", "adjustment"]
    description: Annotated[str, msgspec.Meta(description="what the line is for")]
    amount: Annotated[int, msgspec.Meta(description="minor units (cents)")]
    signed: Annotated[int, msgspec.Meta(description="its effect on the balance")]
    currency: str
    at: Timestamp


class MyBalance(msgspec.Struct, frozen=True, kw_only=True):
    """What the patient owes per currency (negative: a credit) and the lines, newest first."""

    balance: dict[str, int]
    items: list[MyLine]


class MyPayment(Body, frozen=True, kw_only=True):
    amount: Amount
    currency: Currency | None = None
    card_id: Annotated[
        uuid.UUID,
        msgspec.Meta(
            description="a card just set up (POST /api/v1/me/cards, confirmed in the "
            "provider's fields) or a saved one"
        ),
    ]
    save: Annotated[bool, msgspec.Meta(description="keep a new card for later payments")] = False


async def _me(request: web.Request, *, change: bool = False) -> Payer:
    """The signed-in patient as the payer and the actor (their session's pharmacy)."""
    me = await signed_in(request, change=change)
    return Payer(me.actor, me.row.pharmacy_id, me.row.patient_id)


def _line(entry: LedgerEntry) -> MyLine:
    sign = -1 if entry.kind in ("payment", "write_off") else 1
    return MyLine(
        id=entry.id,
        kind=entry.kind,  # type: ignore[arg-type]
        description=entry.description,
        amount=entry.amount,
        signed=sign * entry.amount,
        currency=entry.currency,
        at=entry.at.isoformat(),
    )


@operation(
    Operation(
        operation_id="getMyBalance",
        summary="What the patient owes and what each line is for, newest first",
        scope=None,
        response=MyBalance,
        errors=("401",),
        description=_SESSION + f" The newest {LINES} lines.",
    )
)
async def get_balance(request: web.Request) -> web.Response:
    """``GET /api/v1/me/balance``."""
    me = await _me(request)
    statement = await request.app[PAYMENTS].statement(
        me.actor, me.pharmacy_id, me.patient_id, limit=LINES
    )
    return respond(
        MyBalance(balance=statement.balance, items=[_line(e) for e in statement.entries])
    )


@operation(
    Operation(
        operation_id="setUpMyCard",
        summary="Set up a card the patient types into the payment provider's own fields",
        scope=None,
        response=CardSetup,
        errors=("401", "403", "503"),
        description=_CHANGE + " The browser loads js_url, confirms the setup with "
        "client_secret (Stripe.js confirmCardSetup), then pays with card_id; the card number "
        "goes to the provider only.",
    )
)
async def set_up_card(request: web.Request) -> web.Response:
    """``POST /api/v1/me/cards``."""
    return await card_setup_answer(request, await _me(request, change=True))


@operation(
    Operation(
        operation_id="listMyCards",
        summary="The patient's saved cards (brand, last four digits, expiry)",
        scope=None,
        response=Cards,
        errors=("401",),
        description=_SESSION,
    )
)
async def list_cards(request: web.Request) -> web.Response:
    """``GET /api/v1/me/cards``."""
    return await cards_answer(request, await _me(request))


@operation(
    Operation(
        operation_id="removeMyCard",
        summary="The patient forgets a saved card (detached at the provider)",
        scope=None,
        parameters=[path("card", "the card")],
        response=Cards,
        errors=("401", "403", "404", "503"),
        description=_CHANGE + " Another patient's card is 404.",
    )
)
async def remove_card(request: web.Request) -> web.Response:
    """``DELETE /api/v1/me/cards/{card}``."""
    return await remove_card_answer(request, await _me(request, change=True))


@operation(
    Operation(
        operation_id="payMine",
        summary="The patient pays (part of) their balance with a card of theirs",
        scope=None,
        parameters=[
            IDEMPOTENCY_KEY_PARAMETER,
        ],
        body=MyPayment,
        response=Asked,
        errors=("400", "401", "403", "404", "413", "415", "422", "503"),
        description=_CHANGE + " The payment is on the balance once the provider's signed "
        "webhook says it succeeded (poll GET /api/v1/me/balance); status requires_action: "
        "the browser completes the bank's check with client_secret. 422 "
        "amount_over_balance, card_declined (the provider's words), card_not_ready; another "
        "patient's card is 404.",
    )
)
async def pay(request: web.Request) -> web.Response:
    """``POST /api/v1/me/payments``."""
    payer = await _me(request, change=True)
    key = idempotency_key(request)
    body = await read_json_as(request, MyPayment, MAX_BODY)
    paying = PaymentBody(
        amount=body.amount,
        currency=body.currency,
        method="online",  # on their own page
        card_id=body.card_id,
        save=body.save,
    )
    return await payment_answer(request, payer, key, paying)


@operation(
    Operation(
        operation_id="listMyPlans",
        summary="The patient's payment plans and their instalments (read-only)",
        scope=None,
        response=PlanList,
        errors=("401",),
        description=_SESSION + " Plans are made with the pharmacy's staff.",
    )
)
async def list_plans(request: web.Request) -> web.Response:
    """``GET /api/v1/me/plans``."""
    return await plans_answer(request, await _me(request))
