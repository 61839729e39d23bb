"""The consult fee's API (:mod:`.consult_fees`): the waiting patient's, who proves their seat
with the consult's ``resume`` token in the body (no account, nothing in the URL), the
pharmacist's read of it, and the pharmacy's policy."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from ..http import PROXIES, path_uuid, read_json_as, respond
from ..openapi import Body, Operation, operation, path
from .consult_fees import ConsultFees
from .http import (
    ADMIN,
    IDEMPOTENCY_KEY_PARAMETER,
    MAX_BODY,
    READ_SCOPE,
    SCOPE,
    STAFF,
    Asked,
    CardSetup,
    asked_view,
    card_setup_view,
    idempotency_key,
    staff_caller,
)
from .store import ConsultFee

Policy = Literal["after", "waiting_room", "before_admission"]
Resume = Annotated[
    str,
    msgspec.Meta(
        min_length=16, max_length=100, description="the consult's resume token (its last joined)"
    ),
]


class FeeBody(Body, frozen=True, kw_only=True):
    resume: Resume


class FeePayment(Body, frozen=True, kw_only=True):
    resume: Resume
    card_id: Annotated[
        uuid.UUID,
        msgspec.Meta(description="the card just set up and confirmed in the provider's fields"),
    ]


class FeeView(msgspec.Struct, frozen=True, kw_only=True):
    """A consult's fee: the pharmacy's policy, the amount, and whether it is paid."""

    policy: Policy
    amount: Annotated[int | None, msgspec.Meta(description="minor units; none: no fee")]
    currency: str | None
    status: Literal["none", "unpaid", "processing", "covered", "paid", "failed"]
    due: Annotated[
        int | None,
        msgspec.Meta(description="unpaid or failed: what paying it asks now (less any credit)"),
    ] = None
    reason: Annotated[
        str | None, msgspec.Meta(description="failed: the payment provider's words")
    ] = None
    refund_due: Annotated[
        bool,
        msgspec.Meta(description="paid for a consult called off: the payment is to be refunded"),
    ] = False
    payment_entry_id: Annotated[
        uuid.UUID | None, msgspec.Meta(description="the payment's ledger line (for a refund)")
    ] = None


class Settings(Body, frozen=True, kw_only=True):
    consult_fee: Annotated[
        Policy,
        msgspec.Meta(
            description="after: billed after the consult; waiting_room: may be paid in the "
            "waiting room or later; before_admission: paid before the patient is admitted"
        ),
    ]


def fee_view(fee: ConsultFee, *, staff: bool) -> FeeView:
    return FeeView(
        policy=fee.policy,  # type: ignore[arg-type]
        amount=None if fee.fee is None else fee.fee.amount,
        currency=None if fee.fee is None else fee.fee.currency,
        status=fee.status,  # type: ignore[arg-type]
        due=None if fee.due is None else fee.due.amount,
        reason=fee.reason,
        refund_due=fee.refund_due if staff else False,
        payment_entry_id=fee.payment_entry_id if staff else None,
    )


CONSULT_FEES = web.AppKey("consult_fees", ConsultFees)
_WAITING = (
    "The patient in the consult's waiting room, with the resume token of their last joined "
    "(no account)."
)


def _ip(request: web.Request) -> str | None:
    return request.app[PROXIES].client_ip(request)


@operation(
    Operation(
        operation_id="getMyConsultFee",
        summary="The waiting patient reads their consult's fee and whether it is paid",
        scope=None,
        body=FeeBody,
        response=FeeView,
        errors=("400", "404", "413", "415"),
        description=_WAITING + " 404 resume_invalid.",
    )
)
async def read_fee(request: web.Request) -> web.Response:
    """``POST /api/v1/consult-fee``."""
    body = await read_json_as(request, FeeBody, MAX_BODY)
    fee = await request.app[CONSULT_FEES].for_patient(body.resume, _ip(request))
    return respond(fee_view(fee, staff=False))


@operation(
    Operation(
        operation_id="setUpConsultFeeCard",
        summary="Set up a card for the consult fee, typed into the provider's own fields",
        scope=None,
        body=FeeBody,
        response=CardSetup,
        errors=("400", "404", "409", "413", "415", "503"),
        description=_WAITING + " 409 consult_over, no_fee, fee_billed_after, fee_paid, "
        "fee_processing, fee_covered (the patient's credit covers it).",
    )
)
async def set_up_card(request: web.Request) -> web.Response:
    """``POST /api/v1/consult-fee/cards``."""
    body = await read_json_as(request, FeeBody, MAX_BODY)
    card_id, secret = await request.app[CONSULT_FEES].card_setup(body.resume, _ip(request))
    return respond(card_setup_view(request, card_id, secret))


@operation(
    Operation(
        operation_id="payConsultFee",
        summary="The waiting patient pays their consult's fee",
        scope=None,
        parameters=[
            IDEMPOTENCY_KEY_PARAMETER,
        ],
        body=FeePayment,
        response=Asked,
        errors=("400", "404", "409", "413", "415", "422", "503"),
        description=_WAITING + " The fee is the consult's charge (written with the payment, "
        "once); it is paid once the provider's signed webhook says so (poll "
        "POST /api/v1/consult-fee). 422 card_declined (the provider's words).",
    )
)
async def pay(request: web.Request) -> web.Response:
    """``POST /api/v1/consult-fee/payments``."""
    key = idempotency_key(request)
    body = await read_json_as(request, FeePayment, MAX_BODY)
    asked = await request.app[CONSULT_FEES].pay(body.resume, _ip(request), body.card_id, key)
    return respond(asked_view(asked))


@operation(
    Operation(
        operation_id="getConsultFee",
        summary="A consult's fee and whether it is paid",
        scope=READ_SCOPE,
        parameters=[path("id", "the consult")],
        response=FeeView,
        errors=("401", "403", "404"),
        description="Allowed to: pharmacist, technician, pharmacy admin. refund_due: the fee "
        "was paid for a consult called off (its charge reversed): refund the payment.",
    )
)
async def get_fee(request: web.Request) -> web.Response:
    """``GET /api/v1/consults/{id}/fee``."""
    who = await staff_caller(request, READ_SCOPE, *STAFF)
    consult_id = path_uuid(request, "consult")
    fee = await request.app[CONSULT_FEES].for_staff(who.actor, who.pharmacy_id, consult_id)
    return respond(fee_view(fee, staff=True))


@operation(
    Operation(
        operation_id="getPaymentSettings",
        summary="The pharmacy's payment settings (when the consult fee is paid)",
        scope=READ_SCOPE,
        response=Settings,
        errors=("401", "403"),
    )
)
async def get_settings(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/settings``."""
    who = await staff_caller(request, READ_SCOPE, *STAFF)
    policy = await request.app[CONSULT_FEES].policy(who.pharmacy_id)
    return respond(Settings(consult_fee=policy))  # type: ignore[arg-type]


@operation(
    Operation(
        operation_id="setPaymentSettings",
        summary="Set the pharmacy's payment settings (pharmacy admins)",
        scope=SCOPE,
        body=Settings,
        response=Settings,
        errors=("400", "401", "403", "413", "415"),
    )
)
async def set_settings(request: web.Request) -> web.Response:
    """``PUT /api/v1/payments/settings``."""
    who = await staff_caller(request, SCOPE, ADMIN)
    body = await read_json_as(request, Settings, MAX_BODY)
    policy = await request.app[CONSULT_FEES].set_policy(
        who.actor, who.pharmacy_id, body.consult_fee
    )
    return respond(Settings(consult_fee=policy))  # type: ignore[arg-type]
