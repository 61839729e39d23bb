"""``/api/v1/inventory``: stock on hand, receiving, counts, reorder points and the log of a
product's movements (for a Schedule II product, its perpetual inventory).

Thin handlers: they check the role, turn bodies into values and answer with what
:class:`~.service.Inventory` did. A product of another pharmacy is 404 like a product the
pharmacy never stocked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from aiohttp import web

from eprescribe.dispensing import inventory as rules
from eprescribe.drugs import ndc_candidates, normalize_ndc

from ..callers import PHARMACIST, caller
from ..errors import BadRequest, NotFound, Unprocessable
from ..http import read_json_as, respond
from ..openapi import Body, Operation, Timestamp, operation, query
from .scans import receipt_of
from .service import INVENTORY
from .store import Movement, ProductStock

SCOPE = "rx:verify"
TECHNICIAN = "technician"
ADMIN = "pharmacy_admin"
MAX_BODY = 8 * 1024
#: who may read the stock
READERS = (TECHNICIAN, PHARMACIST, ADMIN)
#: who receive stock and count it (a Schedule II count: a pharmacist only)
HANDLERS = (TECHNICIAN, PHARMACIST)
#: who set reorder points (a purchasing decision)
BUYERS = (PHARMACIST, ADMIN)

#: a quantity in the product's unit: above 0, three decimal places at most (422 otherwise)
QuantityIn = Annotated[
    float,
    msgspec.Meta(
        gt=0,
        le=float(rules.QUANTITY_MAX),
        description="in the product's unit (tablets, mL, g); at most three decimal places",
    ),
]
#: a count or a reorder point: 0 or more
CountIn = Annotated[float, msgspec.Meta(ge=0, le=float(rules.QUANTITY_MAX))]
NdcText = Annotated[
    str,
    msgspec.Meta(
        max_length=13, description="the package NDC: 11 digits, or 10 with or without hyphens"
    ),
]
LotText = Annotated[str, msgspec.Meta(min_length=1, max_length=rules.LOT_MAX)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=rules.REASON_MAX)]
ScanText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=500,
        description="the scanned text, as a keyboard-wedge scanner types it",
    ),
]


class ReceiptBody(Body, frozen=True, kw_only=True):
    """Stock received: the package's barcode as the scanner typed it (GS1 DataMatrix element
    string, or a UPC-A / NDC linear code), or the NDC, lot and expiry typed; a UPC carries no
    lot or expiry, so those are typed beside it."""

    scan: ScanText | None = None
    ndc: NdcText | None = None
    lot: LotText | None = None
    expiry: Annotated[
        dt.date | None, msgspec.Meta(description="the lot's expiry (good through that day)")
    ] = None
    quantity: QuantityIn


class AdjustmentBody(Body, frozen=True, kw_only=True):
    """A count of one lot: the quantity counted on the shelf, and why it differs."""

    ndc: NdcText
    lot: LotText
    counted: Annotated[CountIn, msgspec.Meta(description="the quantity on the shelf")]
    reason: Reason


class ReorderBody(Body, frozen=True, kw_only=True):
    reorder_point: Annotated[
        CountIn | None,
        msgspec.Meta(description="low stock at or below this quantity; null: never low"),
    ]


class LotView(msgspec.Struct, frozen=True, kw_only=True):
    lot: str
    expiry: dt.date
    on_hand: float
    expired: bool
    recalled: bool


class ProductView(msgspec.Struct, frozen=True, kw_only=True):
    ndc11: str
    description: str
    dea_schedule: Annotated[str | None, msgspec.Meta(description="NCI code; null if none")]
    schedule_ii: bool
    on_hand: float
    reorder_point: float | None
    low: bool
    lots: list[LotView]


class Stock(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ProductView]


class MovementView(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: Annotated[str, msgspec.Meta(extra_json_schema={"enum": [str(k) for k in rules.Kind]})]
    ndc11: str
    lot: str
    expiry: dt.date
    quantity: Annotated[float, msgspec.Meta(description="signed: + onto the shelf, - off it")]
    balance_after: Annotated[float, msgspec.Meta(description="the product's on hand after it")]
    lot_balance_after: float
    fill_id: uuid.UUID | None
    actor: str
    reason: str | None
    at: Timestamp


class Moved(msgspec.Struct, frozen=True, kw_only=True):
    """What an action moved (none: the count was right) and the product after it."""

    movement: MovementView | None
    product: ProductView


class ProductLog(msgspec.Struct, frozen=True, kw_only=True):
    """Every movement of the product, oldest first, with the running balance."""

    product: ProductView
    movements: list[MovementView]


def product_view(p: ProductStock, today: dt.date) -> ProductView:
    return ProductView(
        ndc11=p.ndc11,
        description=p.description,
        dea_schedule=p.dea_schedule,
        schedule_ii=p.dea_schedule == rules.SCHEDULE_II,
        on_hand=float(p.on_hand),
        reorder_point=None if p.reorder_point is None else float(p.reorder_point),
        low=p.low,
        lots=[
            LotView(
                lot=lot.lot,
                expiry=lot.expiry,
                on_hand=float(lot.on_hand),
                expired=lot.expiry < today,
                recalled=lot.recalled,
            )
            for lot in p.lots
        ],
    )


def movement_view(m: Movement) -> MovementView:
    return MovementView(
        id=m.id,
        kind=str(m.kind),
        ndc11=m.ndc11,
        lot=m.lot,
        expiry=m.expiry,
        quantity=float(m.quantity),
        balance_after=float(m.balance_after),
        lot_balance_after=float(m.lot_balance_after),
        fill_id=m.fill_id,
        actor=m.actor,
        reason=m.reason,
        at=m.at.isoformat(),
    )


def _ndc11_path(request: web.Request) -> str:
    """The ``{ndc11}`` of the route: 11 digits, or it names no product."""
    code = request.match_info["ndc11"]
    if not (len(code) == 11 and code.isascii() and code.isdigit()):
        raise NotFound("No such product in stock.")
    return code


def _ndc11_typed(text: str) -> str:
    """A typed NDC that says which 11-digit code it is (an unhyphenated 10-digit one does
    not: 422)."""
    code = normalize_ndc(text)
    if code is None:
        raise Unprocessable(
            "ndc_invalid",
            "Give the NDC as 11 digits, or as 10 with its hyphens (e.g. 0002-3227-30).",
        )
    return code


NDC11_PATH: dict[str, Any] = {
    "name": "ndc11",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]{11}$"},
    "description": "the package NDC, 11 digits (5-4-2)",
}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@operation(
    Operation(
        operation_id="listInventory",
        summary="Stock on hand by product and lot (low=true: at or below the reorder point)",
        scope=SCOPE,
        parameters=[
            query("low", {"type": "string", "enum": ["true", "false"]}, "only low stock"),
            query("ndc", {"type": "string", "maxLength": 13}, "one product, by its NDC"),
        ],
        response=Stock,
        errors=("400", "401", "403"),
        description=f"Allowed to: {', '.join(READERS)}.",
    )
)
async def list_inventory(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(*READERS)
    low = request.query.get("low", "false")
    if low not in ("true", "false"):
        raise BadRequest("low must be true or false.")
    ndcs = None
    if "ndc" in request.query:
        ndcs = ndc_candidates(request.query["ndc"][:20])
        if not ndcs:
            raise BadRequest("ndc is not an NDC.")
    found = await request.app[INVENTORY].on_hand(who.pharmacy_id, low=low == "true", ndcs=ndcs)
    today = _today()
    return respond(Stock(items=[product_view(p, today) for p in found]))


@operation(
    Operation(
        operation_id="receiveStock",
        summary="Receive stock: the package scanned (or its NDC, lot and expiry typed)",
        scope=SCOPE,
        body=ReceiptBody,
        response=Moved,
        errors=("400", "401", "403", "413", "415", "422"),
        description=f"Allowed to: {', '.join(HANDLERS)}. Refused (422, with the reason): an "
        "NDC the NDC Directory does not list, a recalled or expired lot, a lot received "
        "before with another expiry.",
    )
)
async def receive_stock(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(*HANDLERS)
    body = await read_json_as(request, ReceiptBody, MAX_BODY)
    receipt = receipt_of(body.scan, body.ndc, body.lot, body.expiry, _decimal(body.quantity))
    inventory = request.app[INVENTORY]
    moved = await inventory.receive(who.actor, who.pharmacy_id, receipt)
    product = (await inventory.on_hand(who.pharmacy_id, ndcs=[moved.ndc11]))[0]
    return respond(Moved(movement=movement_view(moved), product=product_view(product, _today())))


@operation(
    Operation(
        operation_id="adjustStock",
        summary="Correct a lot's count (the quantity counted, and why)",
        scope=SCOPE,
        body=AdjustmentBody,
        response=Moved,
        errors=("400", "401", "403", "413", "415", "422"),
        description=f"Allowed to: {', '.join(HANDLERS)}; a Schedule II product's count: "
        "pharmacists with the controlled-substance permission only (403 schedule_ii_pharmacist).",
    )
)
async def adjust_stock(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(*HANDLERS)
    body = await read_json_as(request, AdjustmentBody, MAX_BODY)
    ndc11 = _ndc11_typed(body.ndc)
    if not body.reason.strip():
        raise BadRequest("Give the reason for the correction.")
    counted = _count(body.counted)
    inventory = request.app[INVENTORY]
    moved = await inventory.adjust(
        who.actor,
        who.pharmacy_id,
        ndc11,
        body.lot,
        counted,
        body.reason.strip(),
        pharmacist=who.role == PHARMACIST and who.controlled_substances,
    )
    product = (await inventory.on_hand(who.pharmacy_id, ndcs=[ndc11]))[0]
    return respond(
        Moved(
            movement=None if moved is None else movement_view(moved),
            product=product_view(product, _today()),
        )
    )


@operation(
    Operation(
        operation_id="setReorderPoint",
        summary="Set a product's reorder point (low stock at or below it)",
        scope=SCOPE,
        parameters=[NDC11_PATH],
        body=ReorderBody,
        response=ProductView,
        errors=("400", "401", "403", "404", "413", "415", "422"),
        description=f"Allowed to: {', '.join(BUYERS)}.",
    )
)
async def set_reorder_point(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(*BUYERS)
    ndc11 = _ndc11_path(request)
    body = await read_json_as(request, ReorderBody, MAX_BODY)
    point = None if body.reorder_point is None else _count(body.reorder_point)
    product = await request.app[INVENTORY].set_reorder_point(
        who.actor, who.pharmacy_id, ndc11, point
    )
    return respond(product_view(product, _today()))


@operation(
    Operation(
        operation_id="productLog",
        summary="Every movement of a product with the running balance (for Schedule II: the "
        "perpetual inventory)",
        scope=SCOPE,
        parameters=[NDC11_PATH],
        response=ProductLog,
        errors=("401", "403", "404"),
        description=f"Allowed to: {', '.join(READERS)}. Audited.",
    )
)
async def product_log(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(*READERS)
    ndc11 = _ndc11_path(request)
    product, moved = await request.app[INVENTORY].log(who.actor, who.pharmacy_id, ndc11)
    return respond(
        ProductLog(
            product=product_view(product, _today()),
            movements=[movement_view(m) for m in moved],
        )
    )


def _decimal(value: float) -> Decimal:
    """A JSON number as the decimal it was written as (7.5, not 7.4999...)."""
    return Decimal(repr(value))


def _count(value: float) -> Decimal:
    """A count or a reorder point: 0 or more, three decimals at most (422 otherwise)."""
    if value == 0:
        return Decimal(0)
    try:
        return rules.quantity(_decimal(value))
    except ValueError as exc:
        raise Unprocessable("quantity_invalid", f"The quantity is not valid: {exc}.") from None
