"""The stock's part in the fill flow, plugged into ``server.dispensing.store`` by the inventory's
setup (:func:`register`), not by importing this module.

- **scan** (:func:`lot_of_scan`, before the fill rules judge the product): a code without a lot
  (a UPC) is given the first lot to expire that lasts through the supply and holds what the
  fill needs (failing that, the first that may be dispensed at all, which the rules then refuse
  as expiring too soon, in their words); a code without an expiry is given the lot's, as
  received; one whose expiry differs from the lot's as received is refused.
- **scan** and **quantity** (:func:`on_change`): the lot must cover what the fill needs (the
  quantity counted, or owed until it is counted), checked before anything is counted: a
  recalled, expired or unknown lot, or too little of it, is refused with the stock's words.
- **submit**: the counted quantity leaves the shelf (a ``dispense`` movement), decided under
  the product's and the lot's locks; of two fills taking the last units the second is refused.
- **send_back**, **return_to_stock**, **cancel**: what the fill took goes back (idempotent).

What moved goes into the step's own audit entry (``stock``: ``movement_detail`` of each).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from eprescribe.dispensing import fills as rules
from eprescribe.dispensing.inventory import REASON_MAX, StockRefused
from eprescribe.verification import VerificationError

from ..db.models import utcnow
from ..dispensing import store as fills
from . import store

#: the steps after which what the fill took goes back on the shelf
_PUT_BACK = frozenset({"send_back", "return_to_stock", "cancel"})


def register() -> None:
    """Plug the stock into the fill flow (idempotent: an app made twice plugs it once)."""
    if lot_of_scan not in fills.SCANNED:
        fills.SCANNED.append(lot_of_scan)
    if on_change not in fills.ON_CHANGE:
        fills.ON_CHANGE.append(on_change)


def needed(fill: rules.Fill) -> Decimal:
    """What the fill takes from the shelf: the quantity counted, or owed until counted."""
    return fill.quantity if fill.quantity is not None else fill.quantity_owed


def lot_of_scan(session: Session, fill: rules.Fill, product: rules.Product) -> rules.Product:
    """The scanned product with its lot and expiry as the stock knows them."""
    today = utcnow().date()
    if product.lot is None:
        supply_ends = today + dt.timedelta(days=fill.days_supply or 0)
        try:
            # the fill rules' own expiry rule (it must last through the supply) is the stricter
            lot = store.pick_lot(
                session, fill.pharmacy_id, product.ndc11, needed(fill), today=supply_ends
            )
        except StockRefused:
            try:  # one that may be dispensed but expires too soon: the rules say so
                lot = store.pick_lot(session, fill.pharmacy_id, product.ndc11, needed(fill), today)
            except StockRefused as exc:
                raise VerificationError(exc.code, exc.words) from None
        expiry = store.lot_expiry(session, fill.pharmacy_id, product.ndc11, lot)
        return dataclasses.replace(product, lot=lot, expiry=expiry)
    received = store.lot_expiry(session, fill.pharmacy_id, product.ndc11, product.lot)
    if received is None:
        return product  # not stocked: refused as lot_unknown once the rules passed it
    if product.expiry is None:
        return dataclasses.replace(product, expiry=received)
    if product.expiry != received:
        raise VerificationError(
            "lot_expiry_mismatch",
            f"Lot {product.lot} of NDC {product.ndc11} was received with expiry "
            f"{received.isoformat()}, but this package says {product.expiry.isoformat()}: "
            "check the package.",
        )
    return product


def on_change(session: Session, change: fills.Stored) -> Mapping[str, Any] | None:
    """Check, take or put back the fill's stock as its step asks (see the module)."""
    fill = change.outcome.fill
    product = fill.product
    if change.action in ("scan", "quantity"):
        if product is None or product.lot is None:
            return None
        refusal = store.check(session, fill.pharmacy_id, product.ndc11, product.lot, needed(fill))
        if refusal is not None:
            raise VerificationError(refusal.code, refusal.words)
        return None
    if change.action == "submit":
        if product is None or product.lot is None or fill.quantity is None:
            raise VerificationError(
                "lot_missing", "The product's lot is not known: scan the stock bottle again."
            )
        try:
            moved = store.take(
                session,
                change.actor,
                fill.pharmacy_id,
                product.ndc11,
                product.lot,
                fill.quantity,
                fill.id,
            )
        except StockRefused as exc:
            raise VerificationError(exc.code, exc.words) from None
        return {"stock": [store.movement_detail(moved)]}
    if change.action in _PUT_BACK:
        reason = fill.history[-1].reason if fill.history else change.action
        back = store.put_back(session, change.actor, fill.pharmacy_id, fill.id, reason[:REASON_MAX])
        return {"stock": [store.movement_detail(m) for m in back]} if back else None
    return None
