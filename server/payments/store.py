"""The one writer of the payments tables: blocking functions on the caller's ``Session``,
inside its unit of work (the audit entry of the change is the caller's last statement in the
same transaction).

A balance is always the ledger's sum, read in SQL over the patient's entries (an index on
``(patient_id, currency)``); nothing stores a running total that could drift from it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Uuid, and_, bindparam, case, func, or_, select, true, tuple_, update
from sqlalchemy.orm import Session

from eprescribe.payments import REFUND_FAILURE, EntryKind, LedgerMovement, Money
from signaling.consults import ConsultState

from ..consults.models import ConsultRow
from ..db.models import utcnow
from .models import (
    LedgerEntry,
    PaymentCard,
    PaymentCustomer,
    PaymentEvent,
    PaymentIntent,
    PaymentSettings,
    PriceListItem,
)

#: the signed amount of an entry, in SQL (eprescribe.payments.ledger.signed)
_SIGNED = case(
    (
        LedgerEntry.kind.in_([EntryKind.PAYMENT.value, EntryKind.WRITE_OFF.value]),
        -LedgerEntry.amount,
    ),
    else_=LedgerEntry.amount,
)


@dataclass(frozen=True, slots=True)
class Cause:
    """What an entry is for: ``type`` (fill, consult, delivery, intent, refund, manual) and its
    identifier, and the words the patient reads on the line."""

    type: str
    id: str
    description: str


#: a patient's balance per currency (built once: the ledger's most asked statement)
_BALANCE = (
    select(LedgerEntry.currency, func.sum(_SIGNED))
    .where(LedgerEntry.patient_id == bindparam("patient"))
    .group_by(LedgerEntry.currency)
)
_NEWEST = (LedgerEntry.at.desc(), LedgerEntry.id.desc())
#: a patient's first page, newest first
_FIRST_PAGE = (
    select(LedgerEntry)
    .where(LedgerEntry.patient_id == bindparam("patient"))
    .order_by(*_NEWEST)
    .limit(bindparam("limit"))
)
#: a later page: the row comparison starts the index's range at the cursor (``at < x OR (at =
#: x AND id < y)`` would be a filter over every line of the patient)
_NEXT_PAGE = (
    select(LedgerEntry)
    .where(
        LedgerEntry.patient_id == bindparam("patient"),
        tuple_(LedgerEntry.at, LedgerEntry.id)
        < tuple_(bindparam("at", type_=LedgerEntry.at.type), bindparam("key", type_=Uuid())),
    )
    .order_by(*_NEWEST)
    .limit(bindparam("limit"))
)


def balance(session: Session, patient_id: uuid.UUID) -> dict[str, int]:
    """What the patient owes per currency (negative: a credit), currencies at zero left out."""
    rows = session.execute(_BALANCE, {"patient": patient_id})
    return {currency: int(total) for currency, total in rows if total}


def entries(
    session: Session,
    patient_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[dt.datetime, uuid.UUID] | None = None,
) -> list[LedgerEntry]:
    """The patient's entries, newest first, a page at a time (keyset: ``before`` the last
    one's ``(at, id)``)."""
    if before is None:
        rows = session.scalars(_FIRST_PAGE, {"patient": patient_id, "limit": limit})
    else:
        at, key = before
        values = {"patient": patient_id, "limit": limit, "at": at, "key": key}
        rows = session.scalars(_NEXT_PAGE, values)
    return list(rows)


def existing(
    session: Session, pharmacy_id: uuid.UUID, kind: EntryKind, cause: Cause
) -> LedgerEntry | None:
    return session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.pharmacy_id == pharmacy_id,
            LedgerEntry.kind == kind.value,
            LedgerEntry.cause_type == cause.type,
            LedgerEntry.cause_id == cause.id,
        )
    )


def add_entry(
    session: Session,
    *,
    pharmacy_id: uuid.UUID,
    patient_id: uuid.UUID,
    kind: EntryKind,
    money: Money,
    cause: Cause,
    actor: str,
    provider_ref: str | None = None,
    method: str | None = None,
    refunds_entry_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> LedgerEntry:
    """A new line (the caller checked :func:`existing` under the patient's lock; the unique
    key on the cause is the last guard)."""
    entry = LedgerEntry(
        id=uuid.uuid4(),
        pharmacy_id=pharmacy_id,
        patient_id=patient_id,
        kind=kind.value,
        amount=money.amount,
        currency=money.currency,
        cause_type=cause.type,
        cause_id=cause.id,
        description=cause.description[:200],
        provider_ref=provider_ref,
        method=method,
        refunds_entry_id=refunds_entry_id,
        reason=reason,
        actor=actor[:100],
        at=utcnow(),
    )
    session.add(entry)
    return entry


def refunded(session: Session, payment_entry_id: uuid.UUID) -> int:
    """What has been refunded of a payment so far: its refunds less those that failed after
    they were accepted (their reversals, :func:`reverse_refund`)."""
    refunds = select(LedgerEntry.id).where(
        LedgerEntry.refunds_entry_id == payment_entry_id,
        LedgerEntry.kind == EntryKind.REFUND.value,
    )
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            or_(
                LedgerEntry.id.in_(refunds),
                (LedgerEntry.cause_type == REFUND_FAILED)
                & LedgerEntry.refunds_entry_id.in_(refunds),
            )
        )
    )
    return int(total or 0)


#: the cause of a refund's reversal: the provider's refund, failed or canceled after it was
#: accepted
REFUND_FAILED = "refund_failed"


def refund_entry(session: Session, refund_ref: str) -> LedgerEntry | None:
    """The refund the provider's refund ``refund_ref`` wrote, under its row's lock."""
    return session.scalar(
        select(LedgerEntry)
        .where(
            LedgerEntry.kind == EntryKind.REFUND.value,
            LedgerEntry.cause_type == "refund",
            LedgerEntry.cause_id == refund_ref,
        )
        .with_for_update()
    )


def reverse_refund(session: Session, refund: LedgerEntry, status: str) -> LedgerEntry | None:
    """The refund ``refund`` failed (or was canceled) at the provider after it was accepted:
    the money did not go back, so the patient owes again what it had given back less, i.e.
    an adjustment of minus the refund, tied to it (``refunds_entry_id``) and caused by the
    provider's refund (once: the ledger's unique cause). ``None``: reversed already."""
    cause = Cause(REFUND_FAILED, refund.cause_id, f"Refund {status}: the money did not go back")
    if existing(session, refund.pharmacy_id, EntryKind.ADJUSTMENT, cause) is not None:
        return None
    return add_entry(
        session,
        pharmacy_id=refund.pharmacy_id,
        patient_id=refund.patient_id,
        kind=EntryKind.ADJUSTMENT,
        money=Money(-refund.amount, refund.currency),
        cause=cause,
        actor="system:payment-provider",
        provider_ref=refund.provider_ref,
        refunds_entry_id=refund.id,
        reason=f"the payment provider reported the refund {status}",
    )


#: the states in which a consult's fee may still be paid
CONSULT_PAYABLE = (
    ConsultState.SCHEDULED,
    ConsultState.WAITING,
    ConsultState.ADMITTED,
    ConsultState.IN_CALL,
)


def consult_payable(session: Session, consult_id: uuid.UUID) -> bool:
    """Whether the consult's fee may still be paid, its row locked until the commit: a
    cancellation or an end waits for the payment's row (and finds its charge to reverse), or
    the payment sees the consult over."""
    state = session.scalar(
        select(ConsultRow.state).where(ConsultRow.id == consult_id).with_for_update()
    )
    return state is not None and ConsultState(state) in CONSULT_PAYABLE


def customer_of(session: Session, patient_id: uuid.UUID) -> str | None:
    return session.scalar(
        select(PaymentCustomer.provider_id).where(PaymentCustomer.patient_id == patient_id)
    )


def add_customer(
    session: Session, pharmacy_id: uuid.UUID, patient_id: uuid.UUID, provider_id: str
) -> None:
    session.add(
        PaymentCustomer(patient_id=patient_id, pharmacy_id=pharmacy_id, provider_id=provider_id)
    )


def intent_by_provider_id(session: Session, provider_id: str) -> PaymentIntent | None:
    """The hub's record of a provider intent, locked (its settlement is decided once)."""
    return session.scalar(
        select(PaymentIntent).where(PaymentIntent.provider_id == provider_id).with_for_update()
    )


def event_seen(session: Session, event_id: str) -> bool:
    return session.get(PaymentEvent, event_id) is not None


def add_event(
    session: Session, event_id: str, type_: str, object_id: str | None, outcome: str
) -> None:
    session.add(PaymentEvent(id=event_id, type=type_[:100], object_id=object_id, outcome=outcome))


def price(session: Session, pharmacy_id: uuid.UUID, item: str) -> Money | None:
    row = session.get(PriceListItem, (pharmacy_id, item))
    return None if row is None else Money(row.amount, row.currency)


def prices(session: Session, pharmacy_id: uuid.UUID) -> Sequence[PriceListItem]:
    rows = session.scalars(
        select(PriceListItem)
        .where(PriceListItem.pharmacy_id == pharmacy_id)
        .order_by(PriceListItem.item)
    )
    return list(rows)


def set_price(session: Session, pharmacy_id: uuid.UUID, item: str, money: Money | None) -> None:
    row = session.get(PriceListItem, (pharmacy_id, item), with_for_update=True)
    if money is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = PriceListItem(pharmacy_id=pharmacy_id, item=item)
        session.add(row)
    row.amount, row.currency, row.updated_at = money.amount, money.currency, utcnow()


def day_movements(
    session: Session, pharmacy_id: uuid.UUID | None, start: dt.datetime, end: dt.datetime
) -> list[LedgerMovement]:
    """The ledger's payments and refunds made in [start, end) (of one pharmacy, or all), as
    the reconciliation takes them (by the provider's reference: a payment's charge, a
    refund)."""
    mine = true() if pharmacy_id is None else LedgerEntry.pharmacy_id == pharmacy_id
    rows = session.scalars(
        select(LedgerEntry).where(
            mine,
            LedgerEntry.at >= start,
            LedgerEntry.at < end,
            or_(
                LedgerEntry.kind.in_([EntryKind.PAYMENT.value, EntryKind.REFUND.value]),
                # a refund's reversal: the provider's refund failed, the money came back
                (LedgerEntry.kind == EntryKind.ADJUSTMENT.value)
                & (LedgerEntry.cause_type == REFUND_FAILED),
            ),
            LedgerEntry.provider_ref.is_not(None),
        )
    )
    return [
        LedgerMovement(
            str(r.provider_ref),
            REFUND_FAILURE if r.cause_type == REFUND_FAILED else r.kind,
            abs(r.amount),
            r.currency,
            str(r.id),
        )
        for r in rows
    ]


def intent_by_key(session: Session, key: str) -> PaymentIntent | None:
    return session.scalar(select(PaymentIntent).where(PaymentIntent.idempotency_key == key))


def set_outcome(session: Session, event_id: str, outcome: str) -> None:
    event = session.get(PaymentEvent, event_id)
    if event is not None:
        event.outcome = outcome


def card_of(session: Session, patient_id: uuid.UUID, card_id: uuid.UUID) -> PaymentCard | None:
    """The patient's card (locked), else None (another patient's card is no card)."""
    return session.scalar(
        select(PaymentCard)
        .where(PaymentCard.id == card_id, PaymentCard.patient_id == patient_id)
        .with_for_update()
    )


def saved_cards(session: Session, patient_id: uuid.UUID) -> list[PaymentCard]:
    rows = session.scalars(
        select(PaymentCard)
        .where(
            PaymentCard.patient_id == patient_id,
            PaymentCard.saved.is_(True),
            PaymentCard.removed_at.is_(None),
        )
        .order_by(PaymentCard.created_at)
    )
    return list(rows)


def pharmacies_of_refs(session: Session, refs: Sequence[str]) -> dict[str, uuid.UUID]:
    """Which pharmacy's ledger holds each of the provider's references (any pharmacy's)."""
    found: dict[str, uuid.UUID] = {}
    for start in range(0, len(refs), 500):
        chunk = refs[start : start + 500]
        rows = session.execute(
            select(LedgerEntry.provider_ref, LedgerEntry.pharmacy_id).where(
                LedgerEntry.provider_ref.in_(chunk)
            )
        )
        found.update({str(ref): pharmacy for ref, pharmacy in rows})
    return found


def pharmacy_of_intent(session: Session, provider_id: str) -> uuid.UUID | None:
    return session.scalar(
        select(PaymentIntent.pharmacy_id).where(PaymentIntent.provider_id == provider_id)
    )


def collected(
    session: Session, pharmacy_id: uuid.UUID, start: dt.datetime, end: dt.datetime
) -> dict[str, dict[str, int]]:
    """Payments less their refunds in [start, end), per method and currency (a refund counts
    against the method of the payment it refunds)."""
    paid = session.execute(
        select(LedgerEntry.method, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .where(
            LedgerEntry.pharmacy_id == pharmacy_id,
            LedgerEntry.kind == EntryKind.PAYMENT.value,
            LedgerEntry.at >= start,
            LedgerEntry.at < end,
        )
        .group_by(LedgerEntry.method, LedgerEntry.currency)
    )
    out: dict[str, dict[str, int]] = {}
    for method, currency, total in paid:
        per = out.setdefault(method or "unknown", {})
        per[currency] = per.get(currency, 0) + int(total)
    refunded = LedgerEntry.__table__.alias("payment")
    back = session.execute(
        select(refunded.c.method, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(refunded, refunded.c.id == LedgerEntry.refunds_entry_id)
        .where(
            LedgerEntry.pharmacy_id == pharmacy_id,
            LedgerEntry.kind == EntryKind.REFUND.value,
            LedgerEntry.at >= start,
            LedgerEntry.at < end,
        )
        .group_by(refunded.c.method, LedgerEntry.currency)
    )
    for method, currency, total in back:
        per = out.setdefault(method or "unknown", {})
        per[currency] = per.get(currency, 0) - int(total)
    # a refund that failed after it was accepted gave nothing back: its reversal (signed, less
    # than zero) counts the money again against the method of the payment it refunded
    refund = LedgerEntry.__table__.alias("refund")
    failed = session.execute(
        select(refunded.c.method, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(refund, refund.c.id == LedgerEntry.refunds_entry_id)
        .join(refunded, refunded.c.id == refund.c.refunds_entry_id)
        .where(
            LedgerEntry.pharmacy_id == pharmacy_id,
            LedgerEntry.kind == EntryKind.ADJUSTMENT.value,
            LedgerEntry.cause_type == REFUND_FAILED,
            LedgerEntry.at >= start,
            LedgerEntry.at < end,
        )
        .group_by(refunded.c.method, LedgerEntry.currency)
    )
    for method, currency, total in failed:
        per = out.setdefault(method or "unknown", {})
        per[currency] = per.get(currency, 0) - int(total)
    return out


def aged(
    session: Session, pharmacy_id: uuid.UUID, starts: Sequence[tuple[str, dt.datetime | None]]
) -> list[tuple[str, dict[str, int], int]]:
    """What the pharmacy's patients owe per currency by the age of the debits it comes from,
    and their credits left over, in one statement (eprescribe.payments.ageing in SQL; the
    entries never leave the database). ``starts``: each bucket's label and the oldest moment
    in it (None: all older), newest bucket first.

    Each patient's lines in a currency are ordered credits first, then debits by ``(at, id)``:
    the running sum of the signed amounts at a debit is then its debits so far less all the
    credits, and what is left of the debit once the credits settled the older ones first is
    that sum clamped to ``[0, the debit]``. The credits left over are the debts left less the
    balance (``sum(left) - sum(signed)``), per currency."""
    s = _SIGNED.label("s")
    lines = (
        select(LedgerEntry.patient_id, LedgerEntry.currency, LedgerEntry.at, LedgerEntry.id, s)
        .where(LedgerEntry.pharmacy_id == pharmacy_id)
        .subquery("lines")
    )
    c = lines.c
    running = select(
        c.currency,
        c.at,
        c.s,
        func.sum(c.s)
        .over(
            partition_by=(c.patient_id, c.currency),
            order_by=(case((c.s > 0, 1), else_=0), c.at, c.id),
            rows=(None, 0),
        )
        .label("upto"),
    ).subquery("running")
    r = running.c
    left = case((r.s <= 0, 0), (r.upto <= 0, 0), (r.upto >= r.s, r.s), else_=r.upto)
    columns = []
    newer: list[Any] = []
    for _, start in starts:
        within = [*newer, r.at >= start] if start is not None else newer
        columns.append(func.coalesce(func.sum(case((and_(true(), *within), left), else_=0)), 0))
        if start is not None:
            newer = [*newer, r.at < start]
    rows = session.execute(
        select(r.currency, func.sum(left) - func.sum(r.s), *columns)
        .group_by(r.currency)
        .order_by(r.currency)
    )
    return [
        (
            currency,
            {label: int(v) for (label, _), v in zip(starts, values, strict=True)},
            int(credit),
        )
        for currency, credit, *values in rows
    ]


#: an intent asked this long ago and still not settled no longer holds money back (the
#: provider's answer was lost; the reconciliation shows what became of it)
IN_FLIGHT_FOR = dt.timedelta(hours=24)
#: the statuses of an intent whose money may still come
_MAY_COME = ("creating", "requires_confirmation", "requires_action", "processing", "succeeded")


def in_flight(session: Session, patient_id: uuid.UUID, currency: str, now: dt.datetime) -> int:
    """What the patient's payments asked and not settled yet may still bring (asked in the last
    :data:`IN_FLIGHT_FOR`): counted against what may be asked next, so two payments at once
    cannot pay more than is owed."""
    settled = select(LedgerEntry.id).where(
        LedgerEntry.kind == EntryKind.PAYMENT.value,
        LedgerEntry.cause_type == "intent",
        LedgerEntry.cause_id == PaymentIntent.provider_id,
    )
    total = session.scalar(
        select(func.coalesce(func.sum(PaymentIntent.amount), 0)).where(
            PaymentIntent.patient_id == patient_id,
            PaymentIntent.currency == currency,
            PaymentIntent.status.in_(_MAY_COME),
            PaymentIntent.created_at >= now - IN_FLIGHT_FOR,
            ~settled.exists(),
        )
    )
    return int(total or 0)


def intent_by_id(session: Session, intent_id: uuid.UUID) -> PaymentIntent | None:
    """The hub's record of a payment by its own ID (``metadata.hub_payment``), locked."""
    return session.scalar(
        select(PaymentIntent).where(PaymentIntent.id == intent_id).with_for_update()
    )


def moved_money_since(session: Session, merge: Any) -> tuple[str, int] | None:
    """The kept profile's ledger entries since a merge (server.patients.merges): an unmerge
    could not tell whose they are, so it is refused while there are any."""
    count = session.scalar(
        select(func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.patient_id == merge.survivor_id, LedgerEntry.at >= merge.created_at)
    )
    return ("ledger_entries_since", int(count)) if count else None


def consult_fee_policy(session: Session, pharmacy_id: uuid.UUID) -> str:
    """When the pharmacy's consult fee is paid (models.CONSULT_FEE_POLICIES; ``after`` unset)."""
    row = session.get(PaymentSettings, pharmacy_id)
    return "after" if row is None else row.consult_fee


def set_consult_fee_policy(session: Session, pharmacy_id: uuid.UUID, policy: str) -> None:
    row = session.get(PaymentSettings, pharmacy_id, with_for_update=True)
    if row is None:
        row = PaymentSettings(pharmacy_id=pharmacy_id)
        session.add(row)
    row.consult_fee, row.updated_at = policy, utcnow()


@dataclass(frozen=True, slots=True)
class ConsultFee:
    """A consult's fee as it stands: the pharmacy's policy, the amount (the consult's charge,
    else the price list's; None: no fee), and ``status``: ``none`` (no fee), ``paid`` (a
    payment of it settled by the webhook), ``processing`` (asked, not settled yet),
    ``covered`` (the patient's credit covers it: nothing to pay), ``failed`` (the last one
    asked was refused: ``reason``, the provider's words), ``unpaid``. ``due``: what paying it
    asks now (the fee less the patient's credit). A fee paid for a consult that was then
    called off is ``refund_due`` while the payment is not wholly refunded."""

    policy: str
    fee: Money | None
    status: str
    reason: str | None = None
    payment_entry_id: uuid.UUID | None = None
    refund_due: bool = False
    due: Money | None = None


def consult_fee(
    session: Session, pharmacy_id: uuid.UUID, patient_id: uuid.UUID, consult_id: uuid.UUID
) -> ConsultFee:
    policy = consult_fee_policy(session, pharmacy_id)
    charged = existing(
        session, pharmacy_id, EntryKind.CHARGE, Cause("consult", str(consult_id), "")
    )
    fee = (
        Money(charged.amount, charged.currency)
        if charged is not None
        else price(session, pharmacy_id, "consult")
    )
    if fee is not None and fee.amount == 0:
        fee = None
    asked = list(
        session.scalars(
            select(PaymentIntent)
            .where(PaymentIntent.consult_id == consult_id)
            .order_by(PaymentIntent.created_at.desc())
        )
    )
    refs = [i.provider_id for i in asked if i.provider_id is not None]
    paid = (
        session.scalar(
            select(LedgerEntry).where(
                LedgerEntry.pharmacy_id == pharmacy_id,
                LedgerEntry.kind == EntryKind.PAYMENT.value,
                LedgerEntry.cause_type == "intent",
                LedgerEntry.cause_id.in_(refs),
            )
        )
        if refs
        else None
    )
    if paid is not None:
        reversed_ = existing(
            session,
            pharmacy_id,
            EntryKind.ADJUSTMENT,
            Cause("consult_reversal", str(consult_id), ""),
        )
        to_refund = reversed_ is not None and refunded(session, paid.id) < paid.amount
        return ConsultFee(policy, fee, "paid", None, paid.id, to_refund)
    if fee is None:
        return ConsultFee(policy, None, "none")
    now = utcnow()
    newest = asked[0] if asked else None
    if (
        newest is not None
        and newest.status in _MAY_COME
        and newest.created_at >= now - IN_FLIGHT_FOR
    ):
        return ConsultFee(policy, fee, "processing")
    owed = (
        balance(session, patient_id).get(fee.currency, 0)
        + (0 if charged is not None else fee.amount)
        - in_flight(session, patient_id, fee.currency, now)
    )
    due = min(fee.amount, owed)
    if due <= 0:
        return ConsultFee(policy, fee, "covered")
    if newest is not None and newest.status in ("failed", "canceled", "mismatch"):
        words = newest.last_error or newest.status
        return ConsultFee(policy, fee, "failed", words, due=Money(due, fee.currency))
    return ConsultFee(policy, fee, "unpaid", due=Money(due, fee.currency))


# -- a profile merge (server.patients.merges.Mover) ------------------------------------------
#: a saved card is a payment method attached to the patient's customer at the provider: it
#: follows the customer, never alone (charged with another profile's customer, it would fail)
CARD_NAMES = ("payment_customers", "payment_cards", "payment_cards_kept")


def merge_cards(
    session: Session, survivor_id: uuid.UUID, merged_id: uuid.UUID
) -> dict[str, list[str]]:
    """The merged profile's customer at the provider and its cards move to the kept profile
    when that one has no customer yet; else they stay with the merged profile (``kept``: the
    kept profile's customer is another object at the provider; the patient's card is set up
    again on the kept profile)."""
    theirs = session.get(PaymentCustomer, merged_id, with_for_update=True)
    ours = session.get(PaymentCustomer, survivor_id)
    cards = sorted(
        session.scalars(select(PaymentCard.id).where(PaymentCard.patient_id == merged_id))
    )
    if theirs is None or ours is not None:
        return {"payment_customers": [], "payment_cards": [], "payment_cards_kept": _ids(cards)}
    theirs.patient_id = survivor_id
    if cards:
        session.execute(
            update(PaymentCard).where(PaymentCard.id.in_(cards)).values(patient_id=survivor_id)
        )
    return {
        "payment_customers": [theirs.provider_id],
        "payment_cards": _ids(cards),
        "payment_cards_kept": [],
    }


def cards_not_exact(session: Session, merge: Any) -> dict[str, int]:
    """What an unmerge could not put back: the customer moved is no longer the kept profile's,
    a card moved is no longer with it, or a card was set up on that customer since (it would
    leave with the customer)."""
    customers = merge.moved.get("payment_customers", [])
    if not customers:
        return {}
    missing: dict[str, int] = {}
    row = session.get(PaymentCustomer, merge.survivor_id)
    if row is None or row.provider_id != customers[0]:
        missing["payment_customers"] = 1
    moved = [uuid.UUID(i) for i in merge.moved.get("payment_cards", [])]
    still = session.scalar(
        select(func.count())
        .select_from(PaymentCard)
        .where(PaymentCard.id.in_(moved), PaymentCard.patient_id == merge.survivor_id)
    )
    if moved and still != len(moved):
        missing["payment_cards"] = len(moved) - int(still or 0)
    since = session.scalar(
        select(func.count())
        .select_from(PaymentCard)
        .where(
            PaymentCard.patient_id == merge.survivor_id,
            PaymentCard.created_at >= merge.created_at,
        )
    )
    if since:
        missing["payment_cards_since"] = int(since)
    return missing


def unmerge_cards(session: Session, merge: Any) -> None:
    """The customer and cards a merge moved go back to the merged profile."""
    if not merge.moved.get("payment_customers"):
        return
    row = session.get(PaymentCustomer, merge.survivor_id, with_for_update=True)
    assert row is not None  # cards_not_exact said so
    row.patient_id = merge.merged_id
    moved = [uuid.UUID(i) for i in merge.moved.get("payment_cards", [])]
    if moved:
        session.execute(
            update(PaymentCard).where(PaymentCard.id.in_(moved)).values(patient_id=merge.merged_id)
        )


def _ids(ids: Sequence[uuid.UUID]) -> list[str]:
    return [str(i) for i in ids]
