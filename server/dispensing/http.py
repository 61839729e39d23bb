"""The fill flow's HTTP API: the queues, one fill, and each step of a fill.

The handlers only translate between HTTP and the decisions of
:mod:`eprescribe.dispensing.fills`; the store (:mod:`.store`) runs each in one audited unit of
work. Another pharmacy's fill or prescription answers 404.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from aiohttp import web
from sqlalchemy import and_, or_, select, tuple_

from eprescribe.dispensing import fills as rules
from eprescribe.verification import REASON_MAX
from eprescribe.workflow import State

from .. import audit
from ..callers import PHARMACIST, Caller, caller
from ..db import DATABASE
from ..errors import BadRequest, NotFound
from ..http import (
    cursor_after,
    cursor_of,
    path_uuid,
    query_int,
    read_body,
    read_json_as,
    require_content_type,
    respond,
)
from ..openapi import Operation, Timestamp, operation, path, query
from ..prescriptions.models import Prescription
from .models import Fill as FillRow
from .models import FillTransition
from .photos import ImageView, signed
from .photos import current as current_images
from .photos import view as image_view
from .store import FILLS, Context, Decide

READ_SCOPE = "rx:read"
SCOPE = "rx:verify"
TECHNICIAN = "technician"
STAFF = (PHARMACIST, TECHNICIAN)
MAX_BODY = 16 * 1024
MAX_LIMIT = 200
#: ``rx=`` at most: an Rx number, or a label's barcode with a scanner's prefix
RX_QUERY_MAX = 40
#: the queue of approved prescriptions waiting for their (next) fill
WAITING = "waiting"
QUEUE_STATES = frozenset({*(s.value for s in rules.FillState), WAITING})

Handler = Callable[[web.Request], Awaitable[web.Response]]
Reason = Annotated[str, msgspec.Meta(extra_json_schema={"minLength": 1, "maxLength": REASON_MAX})]


# -- bodies -----------------------------------------------------------------------------------


class StepBody(msgspec.Struct, frozen=True, kw_only=True):
    """A step's body: members it does not name are ignored."""


class ScanBody(StepBody, frozen=True, kw_only=True):
    text: Annotated[
        str,
        msgspec.Meta(
            description="the scanned code as the scanner typed it (GS1 element string, UPC-A, "
            "NDC), or as decoded from a photo",
            extra_json_schema={"minLength": 1, "maxLength": 200},
        ),
    ]


class QuantityBody(StepBody, frozen=True, kw_only=True):
    quantity: Annotated[
        str | float,
        msgspec.Meta(description="counted: more than 0, at most what the fill owes"),
    ]
    reason: Annotated[
        Reason | None, msgspec.Meta(description="required when less than owed (partial)")
    ] = None


class ReasonBody(StepBody, frozen=True, kw_only=True):
    reason: Reason


class BinBody(StepBody, frozen=True, kw_only=True):
    bin: Annotated[str, msgspec.Meta(extra_json_schema={"minLength": 1, "maxLength": 20})]


class HandOverBody(StepBody, frozen=True, kw_only=True):
    """The collector's signature is not in the body: it is the fill's stored ``signature``
    image (``POST /api/v1/fills/{id}/images?kind=signature``), required."""

    collected_by: Annotated[
        str,
        msgspec.Meta(
            description="who collected it (the patient, or their agent) as written",
            extra_json_schema={"minLength": 1, "maxLength": 100},
        ),
    ]
    id_checked: Annotated[
        bool, msgspec.Meta(description="identity checked (required for a controlled substance)")
    ] = False
    counselling: Annotated[
        str,
        msgspec.Meta(
            description="the offer to counsel: accepted, refused, or video (with consult_id)",
            extra_json_schema={"enum": [c.value for c in rules.Counselling]},
        ),
    ]
    consult_id: uuid.UUID | None = None


# -- answers ----------------------------------------------------------------------------------


class Step(msgspec.Struct, frozen=True, kw_only=True):
    from_state: str | None = msgspec.field(name="from")
    to_state: str = msgspec.field(name="to")
    actor: str
    reason: str
    at: Timestamp


class ProductView(msgspec.Struct, frozen=True, kw_only=True):
    ndc11: str
    lot: str | None
    expiry: str | None
    serial: str | None
    gtin: str | None
    drug: str | None


class HandOverView(msgspec.Struct, frozen=True, kw_only=True):
    collected_by: str
    id_checked: bool
    counselling: str
    consult_id: uuid.UUID | None
    #: the signature image stored at the hand-over (in ``images``, kind ``signature``)
    signature: bool


class PrescriptionView(msgspec.Struct, frozen=True, kw_only=True):
    """The prescription as written, beside the label and the scan at the product check."""

    patient_name: str
    prescriber_name: str
    drug_description: str
    ndc: str | None
    quantity: str
    unit: str
    days_supply: int | None
    substitutions: str
    refills: int
    sig: str
    written_date: str
    dea_schedule: str | None


class FillView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    prescription_id: uuid.UUID
    rx_number: str | None
    number: int
    state: str
    prescription_state: str
    quantity_owed: str
    unit: str
    quantity: str | None
    partial: bool
    partial_reason: str | None
    product: ProductView | None
    bin: str | None
    controlled: bool
    filled_by: str | None
    checked_by: str | None
    handed_over_by: str | None
    hand_over: HandOverView | None
    history: list[Step]
    #: the current images (product photos, signature), for the product check side by side;
    #: retakes replaced earlier ones, all listed by ``GET /api/v1/fills/{id}/images``
    images: list[ImageView]
    #: the label's text as printed for the fill (fixed at the submit: what the product check
    #: compares with the prescription and the scanned product), and when it was printed
    label_text: str | None = None
    label_printed_at: Timestamp | None = None
    prescription: PrescriptionView | None = None


class QueueItem(msgspec.Struct, frozen=True, kw_only=True):
    """A fill in a queue (or, in ``waiting``, a prescription waiting for its fill: ``id`` is
    then None)."""

    id: uuid.UUID | None
    prescription_id: uuid.UUID
    rx_number: str | None
    number: int | None
    state: str
    since: Timestamp
    drug_description: str
    quantity_owed: str | None
    bin: str | None
    controlled: bool


class FillQueue(msgspec.Struct, frozen=True, kw_only=True):
    items: list[QueueItem]
    #: pass as ``after`` for the next page (None: the last page)
    next: str | None


# -- reading ----------------------------------------------------------------------------------


@operation(
    Operation(
        operation_id="listFills",
        summary="A fill queue of the pharmacy: fills in a state, or prescriptions waiting",
        description="state: filling, product_check (the pharmacist's product check), ready "
        "(will-call), completed, returned_to_stock, cancelled, or waiting (approved "
        "prescriptions, or returned to stock, waiting for a fill). Oldest first; keyset "
        "pagination with after (the previous page's next).",
        scope=READ_SCOPE,
        parameters=[
            query("state", {"type": "string", "enum": sorted(QUEUE_STATES)}, "the queue"),
            query("after", {"type": "string"}, "the cursor of the previous page"),
            query("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT}, "page size"),
            query(
                "rx",
                {"type": "string", "maxLength": RX_QUERY_MAX},
                "an Rx number, or a label's barcode as scanned (RX + the number): that "
                "prescription's fills, newest first, whatever their state",
            ),
        ],
        response=FillQueue,
        errors=("400", "401", "403"),
    )
)
async def list_fills(request: web.Request) -> web.Response:
    """``GET /api/v1/fills?state=``: one queue, keyset-paginated on (since, id)."""
    who = await caller(request, READ_SCOPE)
    if "rx" in request.query:
        return await _by_rx(request, who, _rx_number(request.query["rx"]))
    state = request.query.get("state", rules.FillState.PRODUCT_CHECK.value)
    if state not in QUEUE_STATES:
        raise BadRequest(f"state must be one of: {', '.join(sorted(QUEUE_STATES))}.")
    limit = query_int(request, "limit", 50, MAX_LIMIT)
    after = cursor_after(request)
    async with request.app[DATABASE].transaction() as session:
        if state == WAITING:
            items = await _waiting(session, who.pharmacy_id, after, limit)
        else:
            items = await _fills_in(session, who.pharmacy_id, state, after, limit)
        await audit.add(
            session,
            who.actor,
            audit.Event(
                "fill.list",
                "fill",
                None,
                detail={"state": state, "count": len(items)},
            ),
        )
    last = items[-1] if len(items) == limit and items else None
    following = (
        cursor_of(dt.datetime.fromisoformat(last.since), last.id or last.prescription_id)
        if last
        else None
    )
    return respond(FillQueue(items=items, next=following))


def _rx_number(text: str) -> str:
    """The Rx number of ``rx=``: the number itself, or a label's barcode as scanned."""
    from eprescribe.dispensing.barcodes import BarcodeError, parse_scan

    number = text.strip()
    if len(number) > RX_QUERY_MAX:
        raise BadRequest(f"rx is at most {RX_QUERY_MAX} characters.")
    if number.isascii() and number.isdigit() and len(number) == rules.RX_NUMBER_DIGITS:
        return number
    try:
        scan = parse_scan(number)
    except BarcodeError:
        scan = None
    if scan is None or scan.kind != "rx" or scan.rx_number is None:
        raise BadRequest("rx is an Rx number or a prescription label's barcode.")
    return scan.rx_number


async def _by_rx(request: web.Request, who: Caller, rx_number: str) -> web.Response:
    """The fills of the pharmacy's prescription with that Rx number, newest first (a label
    scanned at the product check or the hand-over finds its fill)."""
    async with request.app[DATABASE].transaction() as session:
        rows = (
            await session.execute(
                _queue_columns()
                .where(
                    FillRow.pharmacy_id == who.pharmacy_id,
                    Prescription.pharmacy_id == who.pharmacy_id,
                    Prescription.rx_number == rx_number,
                )
                .order_by(FillRow.started_at.desc(), FillRow.id.desc())
                .limit(MAX_LIMIT)
            )
        ).all()
        items = [_queue_item(r) for r in rows]
        await audit.add(
            session,
            who.actor,
            audit.Event("fill.list", "fill", None, detail={"rx": rx_number, "count": len(items)}),
        )
    return respond(FillQueue(items=items, next=None))


def _queue_columns() -> Any:
    return select(
        FillRow.id,
        FillRow.prescription_id,
        Prescription.rx_number,
        FillRow.number,
        FillRow.state,
        FillRow.state_since,
        Prescription.drug_description,
        FillRow.quantity_owed,
        FillRow.bin,
        FillRow.controlled,
    ).join(Prescription, Prescription.id == FillRow.prescription_id)


def _queue_item(r: Any) -> QueueItem:
    return QueueItem(
        id=r.id,
        prescription_id=r.prescription_id,
        rx_number=r.rx_number,
        number=r.number,
        state=r.state,
        since=r.state_since.isoformat(),
        drug_description=r.drug_description,
        quantity_owed=r.quantity_owed,
        bin=r.bin,
        controlled=r.controlled,
    )


async def _fills_in(
    session: Any,
    pharmacy_id: uuid.UUID,
    state: str,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[QueueItem]:
    query = _queue_columns().where(FillRow.pharmacy_id == pharmacy_id, FillRow.state == state)
    if after is not None:
        at, key = after
        # a row comparison, which PostgreSQL reads as the index range's start; the same
        # condition spelt with OR was a filter over every row before the page (a deep page of
        # 10,000 fills waiting scanned 9,000: tests/benchmarks/product_check_queue.py)
        query = query.where(tuple_(FillRow.state_since, FillRow.id) > tuple_(at, key))
    rows = (
        await session.execute(query.order_by(FillRow.state_since, FillRow.id).limit(limit))
    ).all()
    return [_queue_item(r) for r in rows]


async def _waiting(
    session: Any,
    pharmacy_id: uuid.UUID,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[QueueItem]:
    query = select(
        Prescription.id,
        Prescription.rx_number,
        Prescription.state,
        Prescription.received_at,
        Prescription.drug_description,
        Prescription.dea_schedule,
    ).where(
        Prescription.pharmacy_id == pharmacy_id,
        Prescription.state.in_([State.APPROVED.value, State.RETURNED_TO_STOCK.value]),
        Prescription.test.is_(False),
    )
    if after is not None:
        at, key = after
        query = query.where(
            or_(
                Prescription.received_at > at,
                and_(Prescription.received_at == at, Prescription.id > key),
            )
        )
    rows = (
        await session.execute(
            query.order_by(Prescription.received_at, Prescription.id).limit(limit)
        )
    ).all()
    return [
        QueueItem(
            id=None,
            prescription_id=r.id,
            rx_number=r.rx_number,
            number=None,
            state=r.state,
            since=r.received_at.isoformat(),
            drug_description=r.drug_description,
            quantity_owed=None,
            bin=None,
            controlled=r.dea_schedule is not None,
        )
        for r in rows
    ]


@operation(
    Operation(
        operation_id="getFill",
        summary="One fill: its product, quantity, bin, hand-over, whole history, the label as "
        "printed and the prescription (the product check's one screen)",
        scope=READ_SCOPE,
        parameters=[path("id", "the fill")],
        response=FillView,
        errors=("401", "403", "404"),
    )
)
async def get_fill(request: web.Request) -> web.Response:
    """``GET /api/v1/fills/{id}``."""
    who = await caller(request, READ_SCOPE)
    fill_id = path_uuid(request, "fill")
    event = audit.Event("fill.read", "fill", str(fill_id))
    async with audit.refusable(request.app[DATABASE]) as session:
        found = (
            await session.execute(
                select(FillRow, Prescription)
                .join(Prescription, Prescription.id == FillRow.prescription_id)
                .where(FillRow.id == fill_id, FillRow.pharmacy_id == who.pharmacy_id)
            )
        ).first()
        row, rx = await audit.found(session, who.actor, event, found, NotFound("No such fill."))
        steps = list(
            await session.scalars(
                select(FillTransition)
                .where(FillTransition.fill_id == fill_id)
                .order_by(FillTransition.id)
            )
        )
        images = await session.run_sync(lambda s: current_images(s, fill_id))
        await audit.add(session, who.actor, event)
    return respond(_view(row, rx, steps, [image_view(i) for i in images]))


def _view(
    row: FillRow, rx: Prescription, steps: list[FillTransition], images: list[ImageView]
) -> FillView:
    from .labelling import prescription_view
    from .store import fill_value

    fill = fill_value(row)
    product = fill.product
    handed = fill.hand_over
    return FillView(
        id=fill.id,
        prescription_id=fill.prescription_id,
        rx_number=rx.rx_number,
        number=fill.number,
        state=fill.state.value,
        prescription_state=rx.state,
        quantity_owed=str(fill.quantity_owed),
        unit=fill.unit,
        quantity=str(fill.quantity) if fill.quantity is not None else None,
        partial=fill.partial,
        partial_reason=fill.partial_reason,
        product=ProductView(
            ndc11=product.ndc11,
            lot=product.lot,
            expiry=product.expiry.isoformat() if product.expiry else None,
            serial=product.serial,
            gtin=product.gtin,
            drug=product.drug,
        )
        if product
        else None,
        bin=fill.bin,
        controlled=fill.controlled,
        filled_by=fill.filled_by,
        checked_by=fill.checked_by,
        handed_over_by=fill.handed_over_by,
        hand_over=HandOverView(
            collected_by=handed.collected_by,
            id_checked=handed.id_checked,
            counselling=handed.counselling.value,
            consult_id=handed.consult_id,
            signature=handed.signature,
        )
        if handed
        else None,
        history=[
            Step(
                from_state=s.from_state,
                to_state=s.to_state,
                actor=s.actor,
                reason=s.reason,
                at=s.at.isoformat(),
            )
            for s in steps
        ],
        images=images,
        label_text=row.label_text,
        label_printed_at=row.label_printed_at.isoformat() if row.label_printed_at else None,
        prescription=PrescriptionView(**prescription_view(rx)),
    )


# -- the steps --------------------------------------------------------------------------------


class StepResult(msgspec.Struct, frozen=True, kw_only=True):
    """The fill after the step."""

    id: uuid.UUID
    prescription_id: uuid.UUID
    rx_number: str | None
    number: int
    state: str
    prescription_state: str
    partial: bool


def _result(outcome: rules.FillOutcome) -> StepResult:
    return StepResult(
        id=outcome.fill.id,
        prescription_id=outcome.fill.prescription_id,
        rx_number=outcome.rx.rx_number,
        number=outcome.fill.number,
        state=outcome.fill.state.value,
        prescription_state=outcome.rx.state.value,
        partial=outcome.fill.partial,
    )


def _staff(who: Caller) -> rules.Staff:
    user_id = who.require_role(*STAFF)
    return rules.Staff(str(user_id), who.role or "", who.controlled_substances)


def _open(ctx: Context) -> rules.Fill:
    assert ctx.fill is not None
    return ctx.fill


@operation(
    Operation(
        operation_id="startFill",
        summary="Start a fill of an approved prescription (or its next refill)",
        description=(
            "Technicians and pharmacists. 409 fill_open, wrong_state, no_refills_left,"
            " prescription_expired."
        ),
        scope=SCOPE,
        parameters=[path("id", "the prescription")],
        response=StepResult,
        errors=("401", "403", "404", "409"),
    )
)
async def start_fill(request: web.Request) -> web.Response:
    """``POST /api/v1/prescriptions/{id}/fills``."""
    who = await caller(request, SCOPE)
    staff = _staff(who)
    rx_id = path_uuid(request, "prescription")

    def decide(ctx: Context, now: dt.datetime) -> rules.FillOutcome:
        return rules.start_fill(ctx.rx, ctx.order, ctx.past, staff, uuid.uuid4(), now)

    outcome = await request.app[FILLS].start(who.actor, who.pharmacy_id, rx_id, decide)
    return respond(_result(outcome))


def _scan(staff: rules.Staff, body: ScanBody) -> Decide:
    from .scans import product_of

    def decide(ctx: Context, now: dt.datetime) -> rules.FillOutcome:
        from .store import scanned

        fill = _open(ctx)
        product = scanned(
            ctx.session, fill, product_of(body.text, ctx.reference, ctx.order, ctx.rx.rx_number)
        )
        return rules.record_scan(fill, ctx.rx, ctx.order, product, staff, now.date())

    return decide


#: a photo of a stock bottle's code at most (phones send 1 to 3 MB)
PHOTO_MAX = 12 * 1024 * 1024
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


def _scan_texts(staff: rules.Staff, texts: list[str], unreadable: str | None) -> Decide:
    """The first code in a photo that names a product; refused (audited) when none does."""
    from eprescribe.verification import VerificationError

    from .scans import product_of
    from .store import scanned

    def decide(ctx: Context, now: dt.datetime) -> rules.FillOutcome:
        if unreadable is not None:
            raise VerificationError("photo_unreadable", unreadable)
        refusal: VerificationError | None = None
        for text in texts:
            try:
                product = product_of(text, ctx.reference, ctx.order, ctx.rx.rx_number)
            except VerificationError as exc:
                refusal = refusal or exc
                continue
            fill = _open(ctx)
            product = scanned(ctx.session, fill, product)
            return rules.record_scan(fill, ctx.rx, ctx.order, product, staff, now.date())
        raise refusal or VerificationError(
            "scan_unreadable", "No barcode was found in the photo: try again, closer and sharper."
        )

    return decide


@operation(
    Operation(
        operation_id="fillScanPhoto",
        summary="Record the scanned product from a photo of the stock bottle's code",
        description="Body: the photo itself (image/jpeg, image/png or image/webp, at most 12 "
        "MiB), decoded on the server. Then as the scan step: the first product code found is "
        "checked against the prescription.",
        scope=SCOPE,
        parameters=[path("id", "the fill")],
        response=StepResult,
        errors=("400", "401", "403", "404", "409", "413", "415", "422"),
    )
)
async def scan_photo(request: web.Request) -> web.Response:
    """``POST /api/v1/fills/{id}/scan-photo``: decoded in the images' bounded pool before the
    unit of work, so no lock is held while the CPU works."""
    from .decode import PhotoError, decode_image
    from .images import in_image_pool

    who = await caller(request, SCOPE)
    staff = _staff(who)
    fill_id = path_uuid(request, "fill")
    require_content_type(request, PHOTO_TYPES)
    photo = await read_body(request, PHOTO_MAX)
    texts: list[str] = []
    unreadable: str | None = None
    try:
        texts = await in_image_pool(decode_image, photo)
    except PhotoError as exc:
        unreadable = str(exc) or "The photo could not be read."
    outcome = await request.app[FILLS].act(
        who.actor, who.pharmacy_id, fill_id, "scan", _scan_texts(staff, texts, unreadable)
    )
    return respond(_result(outcome))


def _quantity(staff: rules.Staff, body: QuantityBody) -> Decide:
    return lambda ctx, now: rules.record_quantity(
        _open(ctx), ctx.rx, body.quantity, body.reason, staff
    )


def _submit(staff: rules.Staff, body: None) -> Decide:
    def decide(ctx: Context, now: dt.datetime) -> rules.FillOutcome:
        from .store import SUBMIT_CHECKS

        fill = _open(ctx)
        missing = tuple(m for check in SUBMIT_CHECKS for m in check(ctx.session, fill))
        return rules.submit_for_check(fill, ctx.rx, staff, now, missing)

    return decide


def _approve(staff: rules.Staff, body: None) -> Decide:
    return lambda ctx, now: rules.approve_product(_open(ctx), ctx.rx, staff, now)


def _send_back(staff: rules.Staff, body: ReasonBody) -> Decide:
    return lambda ctx, now: rules.send_back(_open(ctx), ctx.rx, staff, body.reason, now)


def _bin(staff: rules.Staff, body: BinBody) -> Decide:
    return lambda ctx, now: rules.place_in_bin(_open(ctx), ctx.rx, staff, body.bin)


def _hand_over(staff: rules.Staff, body: HandOverBody) -> Decide:
    def decide(ctx: Context, now: dt.datetime) -> rules.FillOutcome:
        try:
            counselling = rules.Counselling(body.counselling)
        except ValueError:
            from eprescribe.verification import VerificationError

            raise VerificationError(
                "counselling_invalid", "counselling is accepted, refused or video."
            ) from None
        if body.consult_id is not None and not _own_consult(ctx, body.consult_id):
            from eprescribe.verification import VerificationError

            raise VerificationError("consult_unknown", "No such consult of this pharmacy.")
        fill = _open(ctx)
        handed = rules.HandOver(
            body.collected_by,
            body.id_checked,
            counselling,
            signed(ctx.session, fill.id),
            body.consult_id,
        )
        return rules.hand_over(fill, ctx.rx, staff, handed, now)

    return decide


def _own_consult(ctx: Context, consult_id: uuid.UUID) -> bool:
    """The consult a counselling by video names is one of the pharmacy's."""
    from ..consults.models import ConsultRow

    found = ctx.session.scalar(
        select(ConsultRow.id).where(
            ConsultRow.id == consult_id, ConsultRow.pharmacy_id == ctx.rx.pharmacy_id
        )
    )
    return found is not None


def _return(days: Callable[[], int]) -> Callable[[rules.Staff, None], Decide]:
    def make(staff: rules.Staff, body: None) -> Decide:
        return lambda ctx, now: rules.return_to_stock(_open(ctx), ctx.rx, staff.actor, now, days())

    return make


STEPS: dict[str, tuple[str, str, type[StepBody] | None]] = {
    "scan": (
        "scan",
        "Record the scanned product (the prescribed NDC or an allowed equivalent)",
        ScanBody,
    ),
    "quantity": (
        "quantity",
        "Record the quantity counted (less than owed: partial, with a reason)",
        QuantityBody,
    ),
    "submit": ("submit", "Submit for the pharmacist's product check", None),
    "approve": (
        "approve",
        "Product check passed: ready (pharmacists; a controlled substance with the "
        "permission; never your own fill)",
        None,
    ),
    "send-back": (
        "send_back",
        "Product check failed: back to the technician with a reason",
        ReasonBody,
    ),
    "bin": ("bin", "Put a ready fill in its will-call bin", BinBody),
    "hand-over": (
        "hand_over",
        "Hand over: who collected, identity check, counselling (the signature drawn first, "
        "as the fill's signature image)",
        HandOverBody,
    ),
    "return-to-stock": (
        "return_to_stock",
        "Return a ready fill not collected in time to stock",
        None,
    ),
}


def _step(route: str, make: Callable[[rules.Staff, Any], Decide]) -> Handler:
    action, summary, body_type = STEPS[route]

    async def handler(request: web.Request) -> web.Response:
        who = await caller(request, SCOPE)
        staff = _staff(who)
        fill_id = path_uuid(request, "fill")
        payload = await read_json_as(request, body_type, MAX_BODY) if body_type else None
        outcome = await request.app[FILLS].act(
            who.actor, who.pharmacy_id, fill_id, action, make(staff, payload)
        )
        return respond(_result(outcome))

    handler.__name__ = action
    errors = ("400", "401", "403", "404", "409", "422") + (("413", "415") if body_type else ())
    return operation(
        Operation(
            operation_id="fill" + "".join(p.capitalize() for p in action.split("_")),
            summary=summary,
            scope=SCOPE,
            parameters=[path("id", "the fill")],
            body=body_type,
            response=StepResult,
            errors=errors,
        )
    )(handler)


def routes(app: web.Application) -> None:
    def days() -> int:
        return app[FILLS].return_after_days

    makers: dict[str, Callable[[rules.Staff, Any], Decide]] = {
        "scan": _scan,
        "quantity": _quantity,
        "submit": _submit,
        "approve": _approve,
        "send-back": _send_back,
        "bin": _bin,
        "hand-over": _hand_over,
        "return-to-stock": _return(days),
    }
    app.router.add_get("/api/v1/fills", list_fills)
    app.router.add_get("/api/v1/fills/{id}", get_fill)
    app.router.add_post("/api/v1/prescriptions/{id}/fills", start_fill)
    app.router.add_post("/api/v1/fills/{id}/scan-photo", scan_photo)
    for route, make in makers.items():
        app.router.add_post(f"/api/v1/fills/{{id}}/{route}", _step(route, make))
