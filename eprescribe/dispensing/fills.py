"""The fill aggregate: one fill of an approved prescription, from the first count to the hand-over
(DESIGN.md "Prescription states", docs/dispensing.md).

A :class:`Fill` is immutable, like :class:`~eprescribe.prescriptions.Prescription`. Each decision
is a pure function taking the fill (and, where it moves, its prescription) and returning a
:class:`FillOutcome`: the new fill with its history grown, the prescription moved in step with
it (its own transition), and the events a store acts on (an RxFill to send). A refused decision
raises :class:`~eprescribe.verification.VerificationError` with a stable code and plain words,
and changes nothing. Storage is ``server.dispensing.store``'s business.

Decisions made here (docs/dispensing.md says why):

- a fill starts from ``approved`` (fill 0), ``completed`` (the next refill, or the completion of
  a partial fill, while the prescription allows it) or ``returned_to_stock`` (the same fill made
  again); one fill is open at a time;
- the product must be the prescribed NDC, or another NDC of the same clinical drug (the drug
  reference's identity: ingredients, strengths, dose form) when the prescription allows
  substitution (``Substitutions`` 0); a lot that expires before the supply ends (today plus
  the days supply, or today without one) is refused;
- the product check is a pharmacist's, never a technician's, never the filler's own, and a
  controlled substance needs the controlled-substance permission;
- the hand-over needs a signature and the counselling offer's answer, and for a controlled
  substance an identity check.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .. import prescriptions as rx_rules
from ..prescriptions import Prescription
from ..verification import VerificationError, reason_text
from ..workflow import FILL_OPEN, FILLABLE, State

PHARMACIST = "pharmacist"
TECHNICIAN = "technician"
#: how long a ready fill waits for its patient before it goes back to stock, by default
RETURN_TO_STOCK_DAYS = 14
#: a will-call bin's label
BIN_MAX = 20
#: who collected a fill, as the staff member wrote it
COLLECTED_BY_MAX = 100
#: the Rx number's digits (zero-padded)
RX_NUMBER_DIGITS = 7


class FillState(enum.StrEnum):
    FILLING = "filling"
    PRODUCT_CHECK = "product_check"
    READY = "ready"
    COMPLETED = "completed"
    RETURNED_TO_STOCK = "returned_to_stock"
    CANCELLED = "cancelled"


#: a fill in these states is the prescription's open fill
OPEN = frozenset({FillState.FILLING, FillState.PRODUCT_CHECK, FillState.READY})

_ALLOWED: dict[FillState, frozenset[FillState]] = {
    FillState.FILLING: frozenset({FillState.PRODUCT_CHECK, FillState.CANCELLED}),
    FillState.PRODUCT_CHECK: frozenset({FillState.READY, FillState.FILLING, FillState.CANCELLED}),
    FillState.READY: frozenset(
        {FillState.COMPLETED, FillState.RETURNED_TO_STOCK, FillState.CANCELLED}
    ),
    FillState.COMPLETED: frozenset(),
    FillState.RETURNED_TO_STOCK: frozenset(),
    FillState.CANCELLED: frozenset(),
}

#: the prescription's state while its current fill is in each state
_PRESCRIPTION_STATE = {
    FillState.FILLING: State.FILLING,
    FillState.PRODUCT_CHECK: State.PRODUCT_CHECK,
    FillState.READY: State.READY,
    FillState.COMPLETED: State.COMPLETED,
    FillState.RETURNED_TO_STOCK: State.RETURNED_TO_STOCK,
}


class Counselling(enum.StrEnum):
    """The answer to the offer to counsel (OBRA '90)."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    #: counselled by video: the consult is named
    VIDEO = "video"


class FillStatus(enum.StrEnum):
    """What an RxFill tells the prescriber (its FillStatus)."""

    DISPENSED = "Dispensed"
    PARTIALLY_DISPENSED = "PartiallyDispensed"
    NOT_DISPENSED = "NotDispensed"


@dataclass(frozen=True, slots=True)
class Staff:
    """Who acts on a fill: a user, their role, and whether their account may handle
    controlled substances."""

    user_id: str
    role: str
    controlled_substances: bool = False

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True, slots=True)
class FillTransition:
    from_state: FillState | None
    to_state: FillState
    actor: str
    reason: str
    at: dt.datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("transition times are timezone-aware")
        if not self.actor or not self.reason:
            raise ValueError("a transition needs an actor and a reason")


@dataclass(frozen=True, slots=True)
class Order:
    """What the fill rules read of the prescription as written (the store reads it from the
    stored order and the drug reference): the quantity and its NCI unit, the days supply,
    whether substitution is allowed (``Substitutions`` 0), the prescribed NDC (11 digits)
    when it named one, the prescribed clinical drug (the reference's name for it) when the
    reference knows it, and whether it is a controlled substance."""

    quantity: Decimal
    unit: str
    days_supply: int | None
    substitution_allowed: bool
    ndc11: str | None
    drug: str | None
    controlled: bool
    #: the last day the prescription may be filled (its written date plus the days its
    #: schedule allows in the pharmacy's state); None: not known, no limit checked
    fill_until: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Product:
    """The product scanned for a fill: its NDC (11 digits, 5-4-2 without hyphens), lot,
    expiry and serial as the code carried them, and the clinical drug the reference knows
    the NDC as (None: unknown to the reference)."""

    ndc11: str
    lot: str | None = None
    expiry: dt.date | None = None
    serial: str | None = None
    gtin: str | None = None
    drug: str | None = None


@dataclass(frozen=True, slots=True)
class HandOver:
    """The pick-up: who collected it (the patient or their agent, as written), whether their
    identity was checked, the answer to the offer to counsel (and the consult, when by
    video), and whether a signature was drawn."""

    collected_by: str
    id_checked: bool
    counselling: Counselling
    signature: bool
    consult_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class PastFill:
    """A fill of the prescription made before, as the start of the next one reads it."""

    number: int
    state: FillState
    quantity: Decimal | None


@dataclass(frozen=True, slots=True)
class Fill:
    id: uuid.UUID
    prescription_id: uuid.UUID
    pharmacy_id: uuid.UUID
    #: 0 the original fill, 1.. the refills; a completion of a partial fill has its number
    number: int
    state: FillState
    #: what this fill should supply (the prescribed quantity, or the rest owed after a
    #: partial fill of the same number) and its NCI unit
    quantity_owed: Decimal
    unit: str
    history: tuple[FillTransition, ...]
    controlled: bool = False
    days_supply: int | None = None
    #: counted for it (None until recorded)
    quantity: Decimal | None = None
    #: why less than owed was dispensed (a partial fill)
    partial_reason: str | None = None
    product: Product | None = None
    bin: str | None = None
    filled_by: str | None = None  # user IDs
    #: everyone who did a step of the filling (started, scanned, counted, submitted): none of
    #: them may check the product
    fillers: frozenset[str] = frozenset()
    checked_by: str | None = None
    handed_over_by: str | None = None
    hand_over: HandOver | None = None
    started_at: dt.datetime | None = None
    submitted_at: dt.datetime | None = None
    ready_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None

    @property
    def partial(self) -> bool:
        """Less than owed was counted: the rest is owed by a later fill of the same number."""
        return self.quantity is not None and self.quantity < self.quantity_owed

    def _move(self, target: FillState, actor: str, reason: str, at: dt.datetime) -> Fill:
        if target not in _ALLOWED[self.state]:
            raise VerificationError(
                "wrong_state", f"The fill is {self.state}; it cannot become {target}."
            )
        step = FillTransition(self.state, target, actor, reason, at)
        return dataclasses.replace(self, state=target, history=(*self.history, step))


@dataclass(frozen=True, slots=True)
class RxFillDue:
    """An RxFill owed to the prescriber about this fill, if the prescription asked for fill
    status of this kind (the store reads the prescription's RxFillIndicator)."""

    status: FillStatus
    fill: Fill
    note: str | None = None


@dataclass(frozen=True, slots=True)
class FillOutcome:
    fill: Fill
    #: the prescription, moved in step (unchanged when the fill's step does not move it)
    rx: Prescription
    events: tuple[RxFillDue, ...] = ()
    #: a new Rx number is to be assigned to the prescription (its first fill)
    needs_rx_number: bool = False


def days_supplied(days: int | None, prescribed: Decimal, dispensed: Decimal) -> int | None:
    """The days a dispensed quantity lasts: the prescription's ``days`` supply in proportion
    to the quantity (a partial fill; at least one day), all of them for the whole
    ``prescribed`` quantity or more (what RxFill reports and adherence counts)."""
    if days is None or dispensed >= prescribed:
        return days
    return max(1, int(days * dispensed / prescribed))


# -- who may do what --------------------------------------------------------------------------


def _staff(who: Staff, *roles: str) -> None:
    if who.role not in roles:
        raise VerificationError(
            "role_not_allowed", f"This step is for: {', '.join(roles)}; you are {who.role}."
        )


def _in(fill: Fill, *states: FillState) -> None:
    if fill.state not in states:
        raise VerificationError("wrong_state", f"The fill is {fill.state}.")


def _follow(rx: Prescription, fill: Fill, actor: str, reason: str, at: dt.datetime) -> Prescription:
    target = _PRESCRIPTION_STATE[fill.state]
    if rx.state is target:
        return rx
    return rx_rules.follow_fill(rx, target, actor, f"fill {fill.number}: {reason}", at)


# -- starting a fill --------------------------------------------------------------------------


def next_fill(rx: Prescription, order: Order, past: tuple[PastFill, ...]) -> tuple[int, Decimal]:
    """The number of the fill to start and the quantity it owes: the completion of the last
    fill when it was partial, else the next refill (0 the first time). Refused when none is
    left: refills are the NewRx's NumberOfRefills beyond the original fill."""
    done: dict[int, Decimal] = {}
    for f in past:
        if f.state is FillState.COMPLETED and f.quantity is not None:
            done[f.number] = done.get(f.number, Decimal(0)) + f.quantity
    if not done:
        return 0, order.quantity
    last = max(done)
    if done[last] < order.quantity:
        return last, order.quantity - done[last]
    if last + 1 > rx.refills:
        raise VerificationError(
            "no_refills_left",
            f"All {rx.refills + 1} fills the prescription allows were dispensed "
            f"({rx.refills} refills): ask the prescriber for a renewal.",
        )
    return last + 1, order.quantity


def start_fill(
    rx: Prescription,
    order: Order,
    past: tuple[PastFill, ...],
    who: Staff,
    fill_id: uuid.UUID,
    now: dt.datetime,
) -> FillOutcome:
    """Start a fill (a technician or a pharmacist): refused while one is open, before the
    prescription is approved, after it ended, past the last day it may be filled (refills and
    the completion of a partial fill too), and when no refill is left."""
    _staff(who, TECHNICIAN, PHARMACIST)
    if rx.state in FILL_OPEN or any(f.state in OPEN for f in past):
        raise VerificationError("fill_open", "A fill of this prescription is already open.")
    if rx.state not in FILLABLE:
        raise VerificationError(
            "wrong_state", f"Only an approved prescription is filled; this one is {rx.state}."
        )
    if order.fill_until is not None and now.date() > order.fill_until:
        raise VerificationError(
            "prescription_expired",
            f"The prescription may be filled until {order.fill_until.isoformat()} "
            "(its written date and schedule): ask the prescriber for a new one.",
        )
    number, owed = next_fill(rx, order, past)
    completing = any(f.number == number and f.state is FillState.COMPLETED for f in past)
    why = (
        "completion of a partial fill started"
        if completing
        else ("fill started" if number == 0 else f"refill {number} started")
    )
    first = FillTransition(None, FillState.FILLING, who.actor, why, now)
    fill = Fill(
        id=fill_id,
        prescription_id=rx.id,
        pharmacy_id=rx.pharmacy_id,
        number=number,
        state=FillState.FILLING,
        quantity_owed=owed,
        unit=order.unit,
        history=(first,),
        controlled=order.controlled or rx.dea_schedule is not None,
        days_supply=order.days_supply,
        filled_by=who.user_id,
        fillers=frozenset({who.user_id}),
        started_at=now,
    )
    moved = rx_rules.follow_fill(rx, State.FILLING, who.actor, f"fill {number}: {why}", now)
    return FillOutcome(fill, moved, needs_rx_number=rx.rx_number is None)


def rx_number(sequence: int) -> str:
    """The pharmacy's Rx number for the ``sequence``-th prescription it filled."""
    if not 0 < sequence < 10**RX_NUMBER_DIGITS:
        raise ValueError("the Rx number sequence is out of range")
    return f"{sequence:0{RX_NUMBER_DIGITS}d}"


# -- the technician's steps -------------------------------------------------------------------


def record_scan(
    fill: Fill, rx: Prescription, order: Order, product: Product, who: Staff, today: dt.date
) -> FillOutcome:
    """Record the scanned product: the prescribed NDC, or an equivalent the prescription
    allows. Refused with the reason for another drug or strength, an equivalent when the
    prescriber asked for no substitution, and a lot that expires before the supply ends."""
    _staff(who, TECHNICIAN, PHARMACIST)
    _in(fill, FillState.FILLING)
    if order.ndc11 is None or product.ndc11 != order.ndc11:
        _equivalent(order, product)
    if product.expiry is not None:
        supply_ends = today + dt.timedelta(days=fill.days_supply or 0)
        if product.expiry < today:
            raise VerificationError(
                "lot_expired",
                f"Lot {product.lot or '(no lot)'} expired on {product.expiry.isoformat()}.",
            )
        if product.expiry < supply_ends:
            raise VerificationError(
                "lot_expires_too_soon",
                f"Lot {product.lot or '(no lot)'} expires on {product.expiry.isoformat()}, "
                f"before this {fill.days_supply}-day supply ends ({supply_ends.isoformat()}).",
            )
    return FillOutcome(dataclasses.replace(fill, product=product, fillers=_with(fill, who)), rx)


def _equivalent(order: Order, product: Product) -> None:
    """A product other than the prescribed NDC: the same clinical drug, substitution
    allowed."""
    if product.drug is None:
        raise VerificationError(
            "product_unknown",
            f"NDC {product.ndc11} is not in the drug reference: it cannot be matched to the "
            "prescribed drug.",
        )
    if order.drug is None or product.drug.lower() != order.drug.lower():
        prescribed = order.drug or (f"NDC {order.ndc11}" if order.ndc11 else "the prescription")
        raise VerificationError(
            "wrong_product",
            f"The scanned product (NDC {product.ndc11}, {product.drug}) is not the prescribed "
            f"drug ({prescribed}).",
        )
    if not order.substitution_allowed and order.ndc11 is not None:
        raise VerificationError(
            "substitution_not_permitted",
            f"The prescriber asked for no substitution: only NDC {order.ndc11} may be "
            f"dispensed, not {product.ndc11}.",
        )


def record_quantity(
    fill: Fill, rx: Prescription, quantity: object, reason: object, who: Staff
) -> FillOutcome:
    """Record the quantity counted: more than zero and at most what this fill owes; less is
    a partial fill and needs a reason."""
    _staff(who, TECHNICIAN, PHARMACIST)
    _in(fill, FillState.FILLING)
    try:
        counted = Decimal(str(quantity))
    except (InvalidOperation, ValueError):
        raise VerificationError("quantity_invalid", "The quantity must be a number.") from None
    if not counted.is_finite() or counted <= 0:
        raise VerificationError("quantity_invalid", "The quantity must be more than zero.")
    if counted > fill.quantity_owed:
        raise VerificationError(
            "quantity_exceeds_owed",
            f"This fill owes {fill.quantity_owed}; {counted} is more than that.",
        )
    why = None
    if counted < fill.quantity_owed:
        if reason is None:
            raise VerificationError(
                "partial_reason_required",
                f"{counted} is less than the {fill.quantity_owed} owed: a partial fill needs "
                "a reason.",
            )
        why = reason_text(reason)
    counted_fill = dataclasses.replace(
        fill, quantity=counted, partial_reason=why, fillers=_with(fill, who)
    )
    return FillOutcome(counted_fill, rx)


def submit_for_check(
    fill: Fill, rx: Prescription, who: Staff, now: dt.datetime, missing: tuple[str, ...] = ()
) -> FillOutcome:
    """To the pharmacist's product check: needs the scanned product and the quantity.
    ``missing`` is what else the pieces plugged into the store ask for (the images, the
    label), in plain words: refused while anything is missing."""
    _staff(who, TECHNICIAN, PHARMACIST)
    _in(fill, FillState.FILLING)
    lacking = [
        *(["the scanned product"] if fill.product is None else []),
        *(["the quantity counted"] if fill.quantity is None else []),
        *missing,
    ]
    if lacking:
        raise VerificationError(
            "fill_incomplete", f"Before the product check the fill needs: {', '.join(lacking)}."
        )
    why = "submitted for product check"
    if fill.partial:
        why += f" (partial: {fill.quantity} of {fill.quantity_owed}; {fill.partial_reason})"
    moved = fill._move(FillState.PRODUCT_CHECK, who.actor, why, now)
    moved = dataclasses.replace(moved, submitted_at=now, fillers=_with(fill, who))
    return FillOutcome(moved, _follow(rx, moved, who.actor, why, now))


# -- the pharmacist's product check -----------------------------------------------------------


def approve_product(fill: Fill, rx: Prescription, who: Staff, now: dt.datetime) -> FillOutcome:
    """The product check passed: the fill is ready. A pharmacist's, not the filler's own; a
    controlled substance needs the controlled-substance permission."""
    _check(fill, who)
    moved = fill._move(FillState.READY, who.actor, "product check passed", now)
    moved = dataclasses.replace(moved, checked_by=who.user_id, ready_at=now)
    return FillOutcome(moved, _follow(rx, moved, who.actor, "product check passed", now))


def send_back(
    fill: Fill, rx: Prescription, who: Staff, reason: object, now: dt.datetime
) -> FillOutcome:
    """The product check failed: back to filling, with the reason for the technician."""
    _check(fill, who)
    why = f"sent back: {reason_text(reason)}"
    moved = fill._move(FillState.FILLING, who.actor, why, now)
    moved = dataclasses.replace(moved, submitted_at=None)
    return FillOutcome(moved, _follow(rx, moved, who.actor, why, now))


def _check(fill: Fill, who: Staff) -> None:
    if who.role != PHARMACIST:
        raise VerificationError(
            "pharmacist_required", "Only a pharmacist checks the product of a fill."
        )
    _in(fill, FillState.PRODUCT_CHECK)
    if fill.controlled and not who.controlled_substances:
        raise VerificationError(
            "controlled_substance_permission",
            "Checking a controlled substance needs that permission on your account.",
        )
    if who.user_id in fill.fillers or fill.filled_by == who.user_id:
        raise VerificationError(
            "own_fill", "The product check is another pharmacist's: you filled this one."
        )


def _with(fill: Fill, who: Staff) -> frozenset[str]:
    return fill.fillers | {who.user_id}


# -- will-call and pick-up --------------------------------------------------------------------


def place_in_bin(fill: Fill, rx: Prescription, who: Staff, bin_label: object) -> FillOutcome:
    """Put a ready fill in its will-call bin (or move it to another)."""
    _staff(who, TECHNICIAN, PHARMACIST)
    _in(fill, FillState.READY)
    if not isinstance(bin_label, str) or not bin_label.strip():
        raise VerificationError("bin_required", "Name the bin.")
    label = bin_label.strip()
    if len(label) > BIN_MAX or not label.isprintable():
        raise VerificationError("bin_invalid", f"A bin is at most {BIN_MAX} printable characters.")
    return FillOutcome(dataclasses.replace(fill, bin=label), rx)


def hand_over(
    fill: Fill, rx: Prescription, who: Staff, handed: HandOver, now: dt.datetime
) -> FillOutcome:
    """The patient (or their agent) collected the fill: recorded with the identity check
    (required for a controlled substance), the answer to the offer to counsel and the
    signature (required). The prescriber is told (RxFill Dispensed, or PartiallyDispensed)."""
    _staff(who, TECHNICIAN, PHARMACIST)
    _in(fill, FillState.READY)
    collected = handed.collected_by.strip()
    if not collected or len(collected) > COLLECTED_BY_MAX or not collected.isprintable():
        raise VerificationError(
            "collected_by_required",
            f"Write who collected it (1 to {COLLECTED_BY_MAX} characters).",
        )
    if fill.controlled and not handed.id_checked:
        raise VerificationError(
            "identity_check_required",
            "A controlled substance is handed over only after checking the collector's identity.",
        )
    if not handed.signature:
        raise VerificationError("signature_required", "The collector's signature is required.")
    if handed.counselling is Counselling.VIDEO and handed.consult_id is None:
        raise VerificationError(
            "consult_required", "Counselling by video names the consult it was done in."
        )
    why = f"handed over to {collected}; counselling {handed.counselling.value}"
    if handed.id_checked:
        why += "; identity checked"
    moved = fill._move(FillState.COMPLETED, who.actor, why, now)
    moved = dataclasses.replace(
        moved,
        hand_over=dataclasses.replace(handed, collected_by=collected),
        handed_over_by=who.user_id,
        ended_at=now,
    )
    after = _follow(rx, moved, who.actor, why, now)
    after = dataclasses.replace(after, fills_dispensed=rx.fills_dispensed + 1)
    status = FillStatus.PARTIALLY_DISPENSED if moved.partial else FillStatus.DISPENSED
    return FillOutcome(moved, after, (RxFillDue(status, moved, moved.partial_reason),))


def return_to_stock(
    fill: Fill, rx: Prescription, actor: str, now: dt.datetime, after_days: int
) -> FillOutcome:
    """A ready fill not collected within ``after_days`` days goes back to stock (the sweep's
    ``system:return_to_stock``, or a staff member); the prescription may be filled again.
    The prescriber is told (RxFill NotDispensed)."""
    _in(fill, FillState.READY)
    since = fill.ready_at or now
    if now - since < dt.timedelta(days=after_days):
        raise VerificationError(
            "too_early",
            f"A ready fill goes back to stock after {after_days} days; this one has waited "
            f"since {since.astimezone(dt.UTC):%Y-%m-%d}.",
        )
    why = f"not collected within {after_days} days: returned to stock"
    moved = fill._move(FillState.RETURNED_TO_STOCK, actor, why, now)
    moved = dataclasses.replace(moved, ended_at=now, bin=None)
    note = f"Not collected within {after_days} days"
    return FillOutcome(
        moved,
        _follow(rx, moved, actor, why, now),
        (RxFillDue(FillStatus.NOT_DISPENSED, moved, note),),
    )


def cancel(fill: Fill, rx: Prescription, actor: str, reason: str, now: dt.datetime) -> FillOutcome:
    """The prescription was cancelled (a CancelRx) while this fill was open: it ends, nothing
    handed over (its product goes back to stock). The prescription's own transition is the
    cancel's (:func:`eprescribe.prescriptions.cancel`); ``rx`` is returned as given. The
    prescriber is told NotDispensed if it asked for that."""
    if fill.state not in OPEN:
        raise VerificationError("wrong_state", f"The fill is {fill.state}.")
    moved = fill._move(FillState.CANCELLED, actor, reason, now)
    moved = dataclasses.replace(moved, ended_at=now, bin=None)
    return FillOutcome(
        moved, rx, (RxFillDue(FillStatus.NOT_DISPENSED, moved, "Prescription cancelled"),)
    )


# -- what the prescriber asked to be told (RxFillIndicator) -----------------------------------

#: the RxFillIndicator values and the statuses each asks for. The reference (ncpdp-script.md)
#: does not list the code list; these are the values public 2017071 material uses
#: (unverified). A value not listed asks for every status (the prescriber asked for fill
#: status; telling more is safer than telling nothing).
FILL_INDICATORS: dict[str, frozenset[FillStatus]] = {
    "all fill statuses": frozenset(FillStatus),
    "all fill statuses except transferred": frozenset(FillStatus),
    "dispensed and partially dispensed": frozenset(
        {FillStatus.DISPENSED, FillStatus.PARTIALLY_DISPENSED}
    ),
    "partially dispensed and not dispensed": frozenset(
        {FillStatus.PARTIALLY_DISPENSED, FillStatus.NOT_DISPENSED}
    ),
    "not dispensed": frozenset({FillStatus.NOT_DISPENSED}),
    "partially dispensed": frozenset({FillStatus.PARTIALLY_DISPENSED}),
    "dispensed": frozenset({FillStatus.DISPENSED}),
    "cancel all fill statuses": frozenset(),
}


def wanted(indicator: str | None, status: FillStatus) -> bool:
    """Whether the prescription's RxFillIndicator (None: the NewRx asked for none) asks to be
    told ``status``."""
    if indicator is None or not indicator.strip():
        return False
    known = FILL_INDICATORS.get(" ".join(indicator.lower().split()))
    return status in (frozenset(FillStatus) if known is None else known)
