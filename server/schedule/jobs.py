"""The scheduled notices: what a periodic run writes to the notification outbox.

- **prescription received**: a prescription (not a test message) received in the last
  :data:`RECEIVED_WITHIN` and linked to a patient's profile by the checks, not rejected;
- **refill due**: the last fill handed over of a prescription whose supply
  (:func:`eprescribe.adherence.refills.refill_due`, lead :data:`LEAD_DAYS` days) is due for a
  reminder and has not run out more than :data:`STALE_AFTER` ago, with no fill open; with no
  refill left the text says the pharmacy will ask the prescriber (a renewal);
- **not collected**: a fill ``ready`` for ``TELEPHARM_NOT_COLLECTED_DAYS`` days, not shipped,
  reminded to be picked up before it goes back to stock.

Each occasion (kind, subject: the prescription or the fill) is written once: its
``notice_occasions`` row is inserted first (``ON CONFLICT DO NOTHING``, a batch's in one
statement), and only the transaction that inserted it writes the notification (found by its
``kind`` and ``subject_id``), in the same unit of work. A run twice,
or on two processes at once, writes nothing more. An occasion with nowhere to go (no channel,
switched off by the patient or the pharmacy) is spent all the same: it is not tried again.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from eprescribe.adherence.refills import Dispensed, RenewalDue, refill_due
from eprescribe.dispensing.fills import OPEN, FillState, days_supplied
from eprescribe.notifications import EventKind
from eprescribe.workflow import State

from .. import audit
from ..dispensing.models import Fill, Shipment
from ..notifications.triggers import HubTriggers
from ..prescriptions.models import Prescription
from .models import NoticeOccasion
from .occasions import claim

log = logging.getLogger(__name__)
K = EventKind
ACTOR = audit.Actor("system", "scheduled-notices")
#: a run writes this many of a kind in one unit of work (then the next batch)
BATCH = 500
#: remind this many days before the supply runs out
LEAD_DAYS = 7
#: a supply that ran out longer ago than this is not reminded of any more
STALE_AFTER = dt.timedelta(days=7)
#: the fills read for refill reminders: handed over within this long
LOOK_BACK = dt.timedelta(days=400)
#: a prescription received longer ago than this is not announced any more (a hub that was
#: down, a profile linked late)
RECEIVED_WITHIN = dt.timedelta(days=2)
#: the states of a prescription past its checks that is not refused
_RECEIVED_STATES = tuple(
    s.value for s in State if s not in (State.RECEIVED, State.CHECKING, State.REJECTED)
)


@dataclass(frozen=True, slots=True)
class Occasion:
    """One notice a run would write: its kind, what it is about, and how to write it."""

    kind: EventKind
    subject_id: uuid.UUID
    pharmacy_id: uuid.UUID
    patient_id: uuid.UUID
    write: Callable[[Session, HubTriggers, dt.datetime], uuid.UUID | None]


def spend(
    session: Session, occasions: Sequence[Occasion], triggers: HubTriggers, now: dt.datetime
) -> list[uuid.UUID]:
    """Write each occasion not spent yet, in the caller's unit of work: the notifications
    written (to publish after the commit), one audit entry each. The occasions are claimed
    in one statement; the notifications are inserted together when the unit of work ends
    (nothing read meanwhile needs them)."""
    claimed = _claim(session, occasions, now)
    written, entries = [], []
    with session.no_autoflush:
        for occasion in occasions:
            if (occasion.kind.value, occasion.subject_id) not in claimed:
                continue  # spent already (an earlier run, another process)
            notification = occasion.write(session, triggers, now)
            if notification is not None:
                written.append(notification)
                entries.append(_entry(occasion, notification, now))
    session.flush()
    if entries:
        audit.append(session, entries)
    return written


def _claim(
    session: Session, occasions: Sequence[Occasion], now: dt.datetime
) -> set[tuple[str, uuid.UUID]]:
    """The occasions this unit of work takes: those no other has (one statement)."""
    return claim(session, [(o.kind, o.subject_id, o.pharmacy_id) for o in occasions], now)


def _entry(occasion: Occasion, notification: uuid.UUID, now: dt.datetime) -> dict[str, object]:
    return audit.values(
        ACTOR,
        audit.Event(
            "notification.scheduled",
            "notification",
            str(notification),
            pharmacy_id=occasion.pharmacy_id,
            detail={
                "kind": occasion.kind.value,
                "patient_id": str(occasion.patient_id),
                "subject_id": str(occasion.subject_id),
            },
        ),
        now,
    )


def _unspent(kind: EventKind, subject: Any) -> ColumnElement[bool]:
    return ~exists().where(NoticeOccasion.kind == kind.value, NoticeOccasion.subject_id == subject)


# -- the occasions ------------------------------------------------------------------------------


def received(session: Session, now: dt.datetime, limit: int = BATCH) -> list[Occasion]:
    """Prescriptions received lately, linked to a profile, past their checks, not refused."""
    rows = session.execute(
        select(Prescription.id, Prescription.pharmacy_id, Prescription.patient_id)
        .where(
            Prescription.patient_id.is_not(None),
            Prescription.test.is_(False),
            Prescription.received_at >= now - RECEIVED_WITHIN,
            Prescription.state.in_(_RECEIVED_STATES),
            _unspent(K.PRESCRIPTION_RECEIVED, Prescription.id),
        )
        .order_by(Prescription.received_at, Prescription.id)
        .limit(limit)
    ).all()
    return [
        Occasion(
            K.PRESCRIPTION_RECEIVED,
            rx_id,
            pharmacy,
            patient,
            _write_received(rx_id, pharmacy, patient),
        )
        for rx_id, pharmacy, patient in rows
        if patient is not None
    ]


def _write_received(
    rx_id: uuid.UUID, pharmacy: uuid.UUID, patient: uuid.UUID
) -> Callable[[Session, HubTriggers, dt.datetime], uuid.UUID | None]:
    return lambda s, t, now: t.prescription_received(
        s, pharmacy_id=pharmacy, patient_id=patient, rx_id=rx_id, now=now
    )


def not_collected(
    session: Session, now: dt.datetime, after_days: int, keep_days: int, limit: int = BATCH
) -> list[Occasion]:
    """Fills ready for ``after_days`` days, not shipped: pick up before the day they go back
    to stock (``keep_days`` after they were ready)."""
    rows = session.execute(
        select(Fill.id, Fill.pharmacy_id, Prescription.patient_id, Fill.ready_at)
        .join(Prescription, Prescription.id == Fill.prescription_id)
        .where(
            Fill.state == FillState.READY.value,
            Fill.ready_at <= now - dt.timedelta(days=after_days),
            Prescription.patient_id.is_not(None),
            ~exists().where(Shipment.fill_id == Fill.id),
            _unspent(K.NOT_COLLECTED, Fill.id),
        )
        .order_by(Fill.ready_at, Fill.id)
        .limit(limit)
    ).all()
    keep = dt.timedelta(days=keep_days)
    return [
        Occasion(
            K.NOT_COLLECTED,
            fill_id,
            pharmacy,
            patient,
            _write_not_collected(fill_id, pharmacy, patient, ready_at + keep),
        )
        for fill_id, pharmacy, patient, ready_at in rows
        if patient is not None and ready_at is not None
    ]


def _write_not_collected(
    fill_id: uuid.UUID, pharmacy: uuid.UUID, patient: uuid.UUID, pickup_by: dt.datetime
) -> Callable[[Session, HubTriggers, dt.datetime], uuid.UUID | None]:
    return lambda s, t, now: t.not_collected(
        s, pharmacy_id=pharmacy, patient_id=patient, fill_id=fill_id, pickup_by=pickup_by, now=now
    )


@dataclass(frozen=True, slots=True)
class _Handed:
    rx_id: uuid.UUID
    pharmacy_id: uuid.UUID
    patient_id: uuid.UUID
    refills: int
    fill_id: uuid.UUID
    number: int
    dispensed: Dispensed


def refills(session: Session, now: dt.datetime, limit: int = BATCH) -> list[Occasion]:
    """The prescriptions whose last fill handed over is due for a refill (or renewal)
    reminder today, none of their fills open, the reminder of that fill not spent."""
    today = now.date()
    by_rx: dict[uuid.UUID, list[_Handed]] = {}
    for handed in _handed(session, now):
        by_rx.setdefault(handed.rx_id, []).append(handed)
    found: list[Occasion] = []
    for fills in by_rx.values():
        last = max(fills, key=lambda f: (f.dispensed.filled_on, f.number))
        due = refill_due([f.dispensed for f in fills], max(0, last.refills - last.number),
                         LEAD_DAYS)  # fmt: skip
        if due.remind_on > today or due.runs_out_on < today - STALE_AFTER:
            continue
        found.append(
            Occasion(
                K.REFILL_DUE,
                last.fill_id,
                last.pharmacy_id,
                last.patient_id,
                _write_refill(last, due.runs_out_on, isinstance(due, RenewalDue)),
            )
        )
    return _unspent_of(session, K.REFILL_DUE, found)[:limit]


def _handed(session: Session, now: dt.datetime) -> Iterable[_Handed]:
    """The fills handed over within :data:`LOOK_BACK` of prescriptions linked to a profile
    that have no fill open."""
    other = Fill.__table__.alias("open_fill")
    open_fill = exists().where(
        other.c.prescription_id == Prescription.id,
        other.c.state.in_([s.value for s in OPEN]),
    )
    rows = session.execute(
        select(
            Prescription.id,
            Prescription.pharmacy_id,
            Prescription.patient_id,
            Prescription.medication,
            Fill.id,
            Fill.number,
            Fill.ended_at,
            Fill.days_supply,
            Fill.quantity,
        )
        .join(Prescription, Prescription.id == Fill.prescription_id)
        .where(
            Fill.state == FillState.COMPLETED.value,
            Fill.ended_at >= now - LOOK_BACK,
            Prescription.patient_id.is_not(None),
            ~open_fill,
        )
    ).all()
    for rx_id, pharmacy, patient, medication, fill_id, number, ended_at, days, quantity in rows:
        supply = _days(days, quantity, medication)
        if supply is None or ended_at is None or patient is None or quantity is None:
            continue
        refills = medication.get("number_of_refills")
        yield _Handed(
            rx_id, pharmacy, patient, refills if isinstance(refills, int) else 0, fill_id,
            number, Dispensed(ended_at.astimezone(dt.UTC).date(), supply, Decimal(quantity)),
        )  # fmt: skip


def _days(days: int | None, quantity: str | None, medication: dict[str, object]) -> int | None:
    """The days the quantity handed over lasts (a partial fill's, prorated)."""
    if days is None or quantity is None or not Decimal(quantity) > 0:
        return None
    value = medication.get("quantity")
    prescribed = Decimal(str(value["value"])) if isinstance(value, dict) else Decimal(quantity)
    return days_supplied(days, prescribed, Decimal(quantity))


def _write_refill(
    last: _Handed, runs_out_on: dt.date, renewal: bool
) -> Callable[[Session, HubTriggers, dt.datetime], uuid.UUID | None]:
    return lambda s, t, now: t.refill_due(
        s, pharmacy_id=last.pharmacy_id, patient_id=last.patient_id, fill_id=last.fill_id,
        runs_out_on=runs_out_on, renewal=renewal, now=now,
    )  # fmt: skip


def _unspent_of(session: Session, kind: EventKind, found: list[Occasion]) -> list[Occasion]:
    if not found:
        return []
    spent = set(
        session.scalars(
            select(NoticeOccasion.subject_id).where(
                NoticeOccasion.kind == kind.value,
                NoticeOccasion.subject_id.in_([o.subject_id for o in found]),
            )
        )
    )
    return [o for o in found if o.subject_id not in spent]
