"""The day's reconciliation: the ledger's payments and refunds against the provider's balance
transactions, matched by the provider's identifier of the money's source (the charge a
payment made, the refund). Each side's lines are compared as a multiset of identifiers:

- **matched**: one line each side, the same kind, amount and currency;
- **mismatched**: one line each side whose kind, amount or currency differ;
- **missing in the provider**: in the ledger, not in the provider's transactions (not yet
  settled there, or never charged: the ledger must not say the money arrived);
- **missing in the ledger**: the provider moved money the hub did not record;
- **duplicates**: an identifier more than once on one side (a payment recorded twice).

A refund the provider failed after accepting it is a line of its own on each side (kind
``refund_failure``: the provider's balance transaction that gives the money back, the ledger's
reversal of the refund), under the refund's identifier beside the refund itself.

Amounts are positive on both sides; the kind says which way the money went.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from ..spreadsheet import safe_cell


@dataclass(frozen=True, slots=True)
class LedgerMovement:
    ref: str
    kind: str  # "payment" | "refund" | "refund_failure"
    amount: int
    currency: str
    entry_id: str


@dataclass(frozen=True, slots=True)
class ProviderMovement:
    ref: str
    kind: str  # "payment" | "refund" | "refund_failure"
    amount: int
    currency: str
    transaction_id: str
    payout_id: str | None = None
    #: when the provider recorded it
    at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Discrepancy:
    code: str  # mismatched | missing_in_provider | missing_in_ledger | duplicate
    ref: str
    ledger: tuple[LedgerMovement, ...] = ()
    provider: tuple[ProviderMovement, ...] = ()

    @property
    def words(self) -> str:
        if self.code == "missing_in_provider":
            return "In the ledger, not at the provider."
        if self.code == "missing_in_ledger":
            return "At the provider, not in the ledger."
        if self.code == "duplicate":
            twice = [
                side
                for side, lines in (("ledger", self.ledger), ("provider", self.provider))
                if len(lines) > 1
            ]
            return f"Recorded more than once in the {' and the '.join(twice)}."
        led, pro = self.ledger[0], self.provider[0]
        return (
            f"The ledger has {led.kind} {led.amount} {led.currency.upper()}, the provider "
            f"{pro.kind} {pro.amount} {pro.currency.upper()}."
        )


@dataclass(frozen=True, slots=True)
class Reconciliation:
    matched: tuple[tuple[LedgerMovement, ProviderMovement], ...]
    discrepancies: tuple[Discrepancy, ...] = field(default=())

    @property
    def clean(self) -> bool:
        return not self.discrepancies

    def totals(self) -> dict[str, dict[str, int]]:
        """Matched money per currency and kind."""
        out: dict[str, dict[str, int]] = {}
        for led, _ in self.matched:
            per = out.setdefault(led.currency, {})
            per[led.kind] = per.get(led.kind, 0) + led.amount
        return out


#: the kind of a refund's failure after it was accepted (the money came back to the pharmacy)
REFUND_FAILURE = "refund_failure"


def _key(line: LedgerMovement | ProviderMovement) -> tuple[str, bool]:
    """What two sides' lines are matched by: the identifier, and whether it is a refund's
    failure (which shares its refund's identifier)."""
    return line.ref, line.kind == REFUND_FAILURE


def reconcile(
    ledger: Iterable[LedgerMovement], provider: Iterable[ProviderMovement]
) -> Reconciliation:
    ours: dict[tuple[str, bool], list[LedgerMovement]] = {}
    theirs: dict[tuple[str, bool], list[ProviderMovement]] = {}
    for line in ledger:
        ours.setdefault(_key(line), []).append(line)
    for movement in provider:
        theirs.setdefault(_key(movement), []).append(movement)
    matched: list[tuple[LedgerMovement, ProviderMovement]] = []
    found: list[Discrepancy] = []
    for key in sorted(ours.keys() | theirs.keys()):
        ref = key[0]
        led: Sequence[LedgerMovement] = ours.get(key, [])
        pro: Sequence[ProviderMovement] = theirs.get(key, [])
        if len(led) > 1 or len(pro) > 1:
            found.append(Discrepancy("duplicate", ref, tuple(led), tuple(pro)))
        elif not pro:
            found.append(Discrepancy("missing_in_provider", ref, tuple(led)))
        elif not led:
            found.append(Discrepancy("missing_in_ledger", ref, provider=tuple(pro)))
        elif (led[0].kind, led[0].amount, led[0].currency) != (
            pro[0].kind,
            pro[0].amount,
            pro[0].currency,
        ):
            found.append(Discrepancy("mismatched", ref, tuple(led), tuple(pro)))
        else:
            matched.append((led[0], pro[0]))
    return Reconciliation(tuple(matched), tuple(found))


#: the CSV's columns: one row per matched pair or discrepancy
CSV_HEADER = (
    "status",
    "provider_ref",
    "kind",
    "ledger_amount",
    "provider_amount",
    "currency",
    "ledger_entry",
    "provider_transaction",
    "words",
)


def write_csv(done: Reconciliation, out: TextIO) -> None:
    """The reconciliation as CSV: discrepancies first, then what matched; amounts in minor
    units. Identifiers only (no patient data)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for found in done.discrepancies:
        first: LedgerMovement | ProviderMovement = (found.ledger or found.provider)[0]
        writer.writerow(
            [
                found.code,
                safe_cell(found.ref),
                first.kind,
                sum(line.amount for line in found.ledger) if found.ledger else "",
                sum(m.amount for m in found.provider) if found.provider else "",
                first.currency,
                ";".join(safe_cell(line.entry_id) for line in found.ledger),
                ";".join(safe_cell(m.transaction_id) for m in found.provider),
                found.words,
            ]
        )
    for led, pro in done.matched:
        writer.writerow(
            [
                "matched",
                safe_cell(led.ref),
                led.kind,
                led.amount,
                pro.amount,
                led.currency,
                safe_cell(led.entry_id),
                safe_cell(pro.transaction_id),
                "",
            ]
        )
