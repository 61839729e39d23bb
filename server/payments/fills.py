"""The ledger's part in the fill flow, plugged into ``server.dispensing.store`` by the payments'
setup (:func:`register`), not by importing this module.

- A fill that becomes **ready** is charged its patient-pay amount from the pharmacy's price
  list: the product's own price (``ndc:<NDC11>``), else the pharmacy's price per fill
  (``fill``); no price, no charge (staff charge it by hand, with the reason). Once per fill.
- A ready fill **returned to stock** or **cancelled** is not the patient's to pay: its charge
  is reversed by an adjustment; money already paid stays a credit on the balance, which the
  console offers to refund.

Written in the fill step's own unit of work, so the charge and the step commit together; what
was charged goes into the step's audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from eprescribe.dispensing import fills as rules
from eprescribe.payments import EntryKind, Money

from ..dispensing import store as fills
from . import store

#: the price list's item for any fill whose product has no price of its own
PER_FILL = "fill"


def register() -> None:
    """Plug the ledger into the fill flow (idempotent)."""
    if on_change not in fills.ON_CHANGE:
        fills.ON_CHANGE.append(on_change)


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
