"""The day's close: the ledger's payments and refunds against the provider's balance
transactions (eprescribe.payments.reconcile), the collections per method, and the
accounts-receivable ageing.

One provider account serves the hub: its transactions are first attributed to the pharmacy
whose ledger names them (a payment's charge, a refund), then to the pharmacy that asked for
the payment the charge settled; what no pharmacy asked for is counted (``unattributed``), not
shown to any pharmacy, and listed by ``telepharm payments reconcile``.

A payment the provider recorded just before midnight may reach the ledger just after: the
provider's side is read an hour either side of the day, and a transaction outside the day
counts only when it matches one of the day's ledger lines.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from eprescribe.payments import (
    AGEING_BUCKETS,
    Ageing,
    ProviderMovement,
    Reconciliation,
    reconcile,
)

from ..db import Database
from . import store
from .provider import PaymentProvider

#: how far either side of the day the provider's transactions are read
SLACK = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DayReport:
    day: dt.date
    reconciliation: Reconciliation
    #: payments less refunds per method (counter, online, saved_card) and currency
    collected: dict[str, dict[str, int]]
    #: the provider's transactions of the day no pharmacy's ledger or payments name
    unattributed: int


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The day in UTC."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return start, start + dt.timedelta(days=1)


async def day_report(
    db: Database, provider: PaymentProvider, pharmacy_id: uuid.UUID | None, day: dt.date
) -> tuple[DayReport, list[ProviderMovement]]:
    """The day's report for ``pharmacy_id`` (None: the whole account, every pharmacy's ledger),
    and the provider's transactions no pharmacy is known for."""
    start, end = day_bounds(day)
    movements = await asyncio.to_thread(provider.movements, start - SLACK, end + SLACK)
    async with db.sessions() as session:
        owners = await session.run_sync(
            lambda s: store.pharmacies_of_refs(s, [m.ref for m in movements])
        )
    stray = [m for m in movements if m.ref not in owners]
    for movement in stray:
        owner = await _owner(db, provider, movement)
        if owner is not None:
            owners[movement.ref] = owner
    async with db.sessions() as session:
        ledger = await session.run_sync(lambda s: _ledger(s, pharmacy_id, start, end))
        collected = (
            await session.run_sync(lambda s: store.collected(s, pharmacy_id, start, end))
            if pharmacy_id is not None
            else {}
        )
    day_refs = {line.ref for line in ledger}
    ours = [
        m
        for m in movements
        if (pharmacy_id is None or owners.get(m.ref) == pharmacy_id)
        and m.ref in owners
        and (_within(m, start, end) or m.ref in day_refs)
    ]
    unknown = [m for m in movements if m.ref not in owners and _within(m, start, end)]
    if pharmacy_id is None:
        ours.extend(unknown)
    report = DayReport(day, reconcile(ledger, ours), collected, len(unknown))
    return report, unknown


def _within(movement: ProviderMovement, start: dt.datetime, end: dt.datetime) -> bool:
    return movement.at is None or start <= movement.at < end


def _ledger(
    session: Session, pharmacy_id: uuid.UUID | None, start: dt.datetime, end: dt.datetime
) -> list[store.LedgerMovement]:
    return store.day_movements(session, pharmacy_id, start, end)


async def _owner(
    db: Database, provider: PaymentProvider, movement: ProviderMovement
) -> uuid.UUID | None:
    """The pharmacy a transaction unknown to the ledgers belongs to: a refund through the
    charge it refunds, a charge through the payment the hub asked for."""
    charge = movement.ref
    if movement.kind == "refund":
        refunded = await asyncio.to_thread(provider.refunded_charge, movement.ref)
        if refunded is None:
            return None
        charge = refunded
        async with db.sessions() as session:
            known = await session.run_sync(lambda s: store.pharmacies_of_refs(s, [refunded]))
        if refunded in known:
            return known[refunded]
    intent = await asyncio.to_thread(provider.charge_intent, charge)
    if intent is None:
        return None
    async with db.sessions() as session:
        return await session.run_sync(lambda s: store.pharmacy_of_intent(s, intent))


async def receivables(db: Database, pharmacy_id: uuid.UUID, as_of: dt.date) -> list[Ageing]:
    """What the pharmacy's patients owe by age (0-30, 31-60, 61-90, 90+ days), per currency:
    each patient's credits settle their own oldest debits first (eprescribe.payments.ageing,
    computed in the database: a pharmacy's ledger is millions of lines)."""
    async with db.sessions() as session:
        return await session.run_sync(lambda s: _receivables(s, pharmacy_id, as_of))


def _receivables(session: Session, pharmacy_id: uuid.UUID, as_of: dt.date) -> list[Ageing]:
    return [
        Ageing(currency, buckets, credit)
        for currency, buckets, credit in store.aged(session, pharmacy_id, bucket_starts(as_of))
    ]


def bucket_starts(as_of: dt.date) -> list[tuple[str, dt.datetime | None]]:
    """Each ageing bucket's label and its oldest moment (UTC midnight of the oldest day in it;
    None for the open-ended last), newest first: a debit's age is the days from its UTC date
    to ``as_of``."""
    return [
        (label, None if high is None else day_bounds(as_of - dt.timedelta(days=high))[0])
        for label, _, high in AGEING_BUCKETS
    ]


__all__: Sequence[str] = ("DayReport", "day_bounds", "day_report", "receivables")
