"""The ledger's entries and what follows from them: a patient's balance is the sum of the
signed entries, never a stored number; the ageing of what is owed allocates credits to the
oldest debits first.

Signs, from the pharmacy's side (positive: the patient owes more):

- ``charge`` +: a fill's patient-pay amount, a consult fee, a delivery fee;
- ``payment`` -: money received (settled by the provider's webhook only);
- ``refund`` +: money given back (the patient owes what a refunded payment had paid);
- ``write_off`` -: what the pharmacy gives up collecting;
- ``adjustment`` ±: a correction with a reason, its amount signed.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final


class EntryKind(enum.StrEnum):
    CHARGE = "charge"
    PAYMENT = "payment"
    REFUND = "refund"
    WRITE_OFF = "write_off"
    ADJUSTMENT = "adjustment"


_SIGN: Final = {
    EntryKind.CHARGE: 1,
    EntryKind.PAYMENT: -1,
    EntryKind.REFUND: 1,
    EntryKind.WRITE_OFF: -1,
    EntryKind.ADJUSTMENT: 1,
}

#: accounts-receivable ageing: (label, oldest day of the bucket's age, newest), days since
#: the debit; the last is open-ended
AGEING_BUCKETS: Final = (("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None))


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger line: ``amount`` is positive, but for an adjustment, whose sign it is."""

    kind: EntryKind
    amount: int
    currency: str
    at: dt.datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)


def signed(entry: Entry) -> int:
    """The entry's effect on what the patient owes."""
    return _SIGN[entry.kind] * entry.amount


def balance(entries: Iterable[Entry]) -> dict[str, int]:
    """What the patient owes per currency (negative: a credit); currencies netting to zero
    are left out."""
    owed: dict[str, int] = {}
    for entry in entries:
        owed[entry.currency] = owed.get(entry.currency, 0) + signed(entry)
    return {currency: amount for currency, amount in owed.items() if amount}


@dataclass(frozen=True, slots=True)
class Ageing:
    """What is owed in one currency by the age of the debits it comes from."""

    currency: str
    buckets: dict[str, int]
    #: credits not allocated to any debit (the patient paid ahead)
    credit: int

    @property
    def total(self) -> int:
        return sum(self.buckets.values()) - self.credit


def ageing(entries: Iterable[Entry], as_of: dt.date) -> list[Ageing]:
    """Credits (payments, write-offs, negative adjustments) settle the oldest debits first
    (first in, first out), whatever their own dates; what remains of each debit is aged by the
    days from its date to ``as_of``. A debit dated after ``as_of`` counts as 0 days old."""
    by_currency: dict[str, list[Entry]] = {}
    for entry in entries:
        by_currency.setdefault(entry.currency, []).append(entry)
    result = []
    for currency, lines in sorted(by_currency.items()):
        debits = sorted(
            ((e.at, e.id, signed(e)) for e in lines if signed(e) > 0), key=lambda d: d[:2]
        )
        credit = -sum(signed(e) for e in lines if signed(e) < 0)
        buckets = {label: 0 for label, _, _ in AGEING_BUCKETS}
        for at, _, amount in debits:
            settled = min(amount, credit)
            credit -= settled
            left = amount - settled
            if left:
                buckets[_bucket(max(0, (as_of - at.date()).days))] += left
        result.append(Ageing(currency, buckets, credit))
    return result


def _bucket(days: int) -> str:
    for label, low, high in AGEING_BUCKETS:
        if days >= low and (high is None or days <= high):
            return label
    raise AssertionError(days)
