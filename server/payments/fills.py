"""The ledger's part in the fill flow and the other events that cost the patient, plugged into
their writers by the payments' setup (:func:`register`), not by importing this module.

- A fill that becomes **ready** is charged its patient-pay amount from the pharmacy's price
  list: the product's own price (``ndc:<NDC11>``), else the pharmacy's price per fill
  (``fill``); no price, no charge (staff charge it by hand, with the reason). Once per fill.
- A ready fill **returned to stock** or **cancelled** is not the patient's to pay: its charge
  is reversed by an adjustment; money already paid stays a credit on the balance, which the
  console offers to refund.

- A fill **shipped** is charged the pharmacy's ``delivery`` price, and a consult that **ends**
  its ``consult`` price (once each; no price, no charge).

Written in the step's own unit of work, so the charge and the step commit together; what a
fill step charged goes into its audit entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from eprescribe.dispensing import fills as rules
from eprescribe.payments import EntryKind, Money

from ..consults import store as consults
from ..dispensing import shipping
from ..dispensing import store as fills
from . import store

#: the price list's item for any fill whose product has no price of its own
PER_FILL = "fill"


def register() -> None:
    """Plug the ledger into the fill flow, shipping and consults (idempotent)."""
    if on_change not in fills.ON_CHANGE:
        fills.ON_CHANGE.append(on_change)
    if delivered_fee not in shipping.ON_SHIPPED:
        shipping.ON_SHIPPED.append(delivered_fee)
    if consult_fee not in consults.ON_ENDED:
        consults.ON_ENDED.append(consult_fee)


def delivered_fee(
    session: Session, pharmacy_id: uuid.UUID, patient_id: uuid.UUID | None, fill_id: uuid.UUID,
    actor: str,
) -> None:  # fmt: skip
    _fee(session, pharmacy_id, patient_id, "delivery", str(fill_id), "Delivery", actor)


def consult_fee(
    session: Session, pharmacy_id: uuid.UUID, patient_id: uuid.UUID, consult_id: uuid.UUID,
    actor: str,
) -> None:  # fmt: skip
    _fee(session, pharmacy_id, patient_id, "consult", str(consult_id), "Consultation", actor)


def _fee(
    session: Session,
    pharmacy_id: uuid.UUID,
    patient_id: uuid.UUID | None,
    item: str,
    cause_id: str,
    words: str,
    actor: str,
) -> None:
    """The pharmacy's price of ``item`` charged once for ``cause_id`` (none: nothing)."""
    price = store.price(session, pharmacy_id, item)
    cause = store.Cause(item, cause_id, words)
    if price is None or patient_id is None or price.amount == 0:
        return
    if store.existing(session, pharmacy_id, EntryKind.CHARGE, cause) is not None:
        return
    store.add_entry(
        session,
        pharmacy_id=pharmacy_id,
        patient_id=patient_id,
        kind=EntryKind.CHARGE,
        money=price,
        cause=cause,
        actor=actor,
    )


def on_change(session: Session, change: fills.Stored) -> Mapping[str, Any] | None:
    fill, rx = change.outcome.fill, change.outcome.rx
    was = change.before.state if change.before is not None else None
    if rx.patient_id is None or was is fill.state:
        return None
    cause = store.Cause("fill", str(fill.id), _words(rx.rx_number, fill.number))
    if fill.state is rules.FillState.READY:
        if store.existing(session, fill.pharmacy_id, EntryKind.CHARGE, cause) is not None:
            return None
        price = _price(session, fill)
        if price is None:
            return {"charged": None}
        store.add_entry(
            session,
            pharmacy_id=fill.pharmacy_id,
            patient_id=rx.patient_id,
            kind=EntryKind.CHARGE,
            money=price,
            cause=cause,
            actor=str(change.actor),
        )
        return {"charged": price.amount, "currency": price.currency}
    if was is rules.FillState.READY and fill.state in (
        rules.FillState.RETURNED_TO_STOCK,
        rules.FillState.CANCELLED,
    ):
        charged = store.existing(session, fill.pharmacy_id, EntryKind.CHARGE, cause)
        reversal = store.Cause("fill_reversal", str(fill.id), f"{cause.description}: not collected")
        if charged is None or store.existing(
            session, fill.pharmacy_id, EntryKind.ADJUSTMENT, reversal
        ):
            return None
        store.add_entry(
            session,
            pharmacy_id=fill.pharmacy_id,
            patient_id=charged.patient_id,
            kind=EntryKind.ADJUSTMENT,
            money=Money(-charged.amount, charged.currency),
            cause=reversal,
            actor=str(change.actor),
            reason=fill.state.value,
        )
        return {"charge_reversed": charged.amount}
    return None


def _price(session: Session, fill: rules.Fill) -> Money | None:
    if fill.product is not None:
        own = store.price(session, fill.pharmacy_id, f"ndc:{fill.product.ndc11}")
        if own is not None:
            return own
    return store.price(session, fill.pharmacy_id, PER_FILL)


def _words(rx_number: str | None, number: int) -> str:
    return f"Prescription {rx_number or ''} fill {number}".replace("  ", " ")
