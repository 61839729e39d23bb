"""Fills in the database: the one writer of fill state, through the prescriptions' writer.

Each decision of :mod:`eprescribe.dispensing.fills` runs in one unit of work that locks the
prescription (``server.prescriptions.store.load``: every writer of a prescription locks it
first, so fills and verification never interleave), then its fill, decides, writes the fill
row and its transitions, the RxFill owed (to the outbox), and saves the prescription moved in
step through ``server.prescriptions.store.save``, which writes the audit entries last. A
refusal changes nothing, is audited too, and is raised after the commit.

Hooks for the pieces plugged in beside this one (docs/dispensing.md "Plugging in"):

- :data:`SUBMIT_CHECKS`: what a fill still lacks before its product check (the images, the
  printed label), in plain words;
- :data:`SCANNED`: what the stock says of a scanned product before the rules judge it (the
  lot a code without one is taken from, the expiry it was received with);
- :data:`ON_CHANGE`: called in the unit of work with each change about to be stored, before
  any of the fill is written (the inventory checks the lot at ``scan``/``quantity``, takes
  it at ``submit`` and puts it back on ``send_back``/``return_to_stock``/``cancel``); raising
  :class:`~eprescribe.verification.VerificationError` refuses the step,
  audited, with nothing of the fill written (a hook refuses before writing rows of its own;
  ``cancel`` comes from a CancelRx and must not be refused).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

from aiohttp import web
from sqlalchemy import exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from eprescribe import prescriptions as rx_rules
from eprescribe.checks import ExpiryRules
from eprescribe.dispensing import fills as rules
from eprescribe.drugs import DrugReference
from eprescribe.drugs.ndc import ndc_candidates
from eprescribe.verification import VerificationError

from .. import audit
from ..admin.models import Pharmacy
from ..db import Database
from ..db.models import utcnow
from ..errors import Conflict, Forbidden, NotFound, Problem, Unprocessable
from ..notifications import Triggers
from ..outbox import Deliver
from ..outbox import store as outbox
from ..prescriptions import store as prescriptions
from ..prescriptions.models import Prescription as PrescriptionRow
from . import outbound
from .models import Fill as FillRow
from .models import FillTransition, RxNumberSequence, Shipment

#: refusals about the current state of things, not about the request
_CONFLICTS = frozenset(
    {"wrong_state", "fill_open", "no_refills_left", "prescription_expired", "too_early"}
)
_FORBIDDEN = frozenset(
    {"role_not_allowed", "pharmacist_required", "controlled_substance_permission", "own_fill"}
)
#: the sweep returns this many fills a pass at most (the rest in the next)
SWEEP_BATCH = 200
#: how long the drug reference read from the database is kept before it is read again
REFERENCE_TTL = 300.0

#: what a fill lacks before its product check: each returns plain words for what is missing
#: (the images of the fill, the label printed), read in the submit's unit of work
SubmitCheck = Callable[[Session, rules.Fill], Sequence[str]]
SUBMIT_CHECKS: list[SubmitCheck] = []


@dataclass(frozen=True, slots=True)
class Stored:
    """A change of a fill about to be written: the action's name, before (None: started), the
    outcome, and who acts (as the audit trail names them). What :data:`ON_CHANGE` hooks
    receive."""

    action: str
    before: rules.Fill | None
    outcome: rules.FillOutcome
    actor: audit.Actor


#: what the stock knows of a scanned product, before the fill rules judge it: the lot when the
#: code carried none (a UPC), the expiry it was received with; may refuse
#: (:class:`~eprescribe.verification.VerificationError`), and writes nothing
ScanLookup = Callable[[Session, rules.Fill, rules.Product], rules.Product]
SCANNED: list[ScanLookup] = []


def scanned(session: Session, fill: rules.Fill, product: rules.Product) -> rules.Product:
    """``product`` as the :data:`SCANNED` lookups complete it (as scanned when none is
    plugged in)."""
    for lookup in SCANNED:
        product = lookup(session, fill, product)
    return product


#: the key of the drug reference of a fill's unit of work in its ``Session.info`` (for a
#: :data:`SUBMIT_CHECKS` entry that needs it: the label's)
REFERENCE_INFO = "telepharm.drug_reference"


#: a hook may return facts for the step's audit entry (e.g. the stock that moved)
OnChange = Callable[[Session, Stored], Mapping[str, Any] | None]
ON_CHANGE: list[OnChange] = []


# -- reading --------------------------------------------------------------------------------


def order_of(
    row: PrescriptionRow,
    reference: DrugReference,
    expiry: ExpiryRules | None = None,
    state: str | None = None,
) -> rules.Order:
    """What the fill rules read of a stored prescription; with ``expiry``, the last day it
    may be filled in the pharmacy's ``state`` (the rules the checks apply at receipt)."""
    medication = row.medication
    quantity = medication["quantity"]
    product = medication.get("product_code") or {}
    ndc = product.get("code") if product.get("qualifier") == "ND" else None
    ndc11 = next(iter(ndc_candidates(ndc)), None) if ndc else None
    if ndc and len(ndc_candidates(ndc)) > 1:
        # an unhyphenated 10-digit NDC: the reading the reference knows, if one
        known = [c for c in ndc_candidates(ndc) if reference.by_ndc(c)]
        ndc11 = known[0] if len(known) == 1 else None
    coded = medication.get("drug_db_code") or {}
    found = reference.identify(ndc, coded.get("code"), medication["drug_description"]).drug
    days = medication.get("days_supply")
    return rules.Order(
        quantity=Decimal(str(quantity["value"])),
        unit=str(quantity["unit_code"]),
        days_supply=days if isinstance(days, int) else None,
        substitution_allowed=medication.get("substitutions") == "0",
        ndc11=ndc11,
        drug=found.name if found else None,
        controlled=row.dea_schedule is not None,
        fill_until=(
            row.written_date + dt.timedelta(days=expiry.days(row.dea_schedule, state))
            if expiry is not None
            else None
        ),
    )


def fill_value(row: FillRow, history: tuple[rules.FillTransition, ...] = ()) -> rules.Fill:
    product = (
        rules.Product(row.ndc11, row.lot, row.expiry, row.serial, row.gtin, row.drug)
        if row.ndc11
        else None
    )
    handed = (
        rules.HandOver(
            row.collected_by,
            bool(row.id_checked),
            rules.Counselling(row.counselling),
            bool(row.signature),
            row.consult_id,
        )
        if row.collected_by and row.counselling
        else None
    )
    return rules.Fill(
        id=row.id,
        prescription_id=row.prescription_id,
        pharmacy_id=row.pharmacy_id,
        number=row.number,
        state=rules.FillState(row.state),
        quantity_owed=Decimal(row.quantity_owed),
        unit=row.unit,
        history=history,
        controlled=row.controlled,
        days_supply=row.days_supply,
        quantity=Decimal(row.quantity) if row.quantity is not None else None,
        partial_reason=row.partial_reason,
        product=product,
        bin=row.bin,
        filled_by=str(row.filled_by) if row.filled_by else None,
        fillers=frozenset(row.fillers or ()),
        checked_by=str(row.checked_by) if row.checked_by else None,
        handed_over_by=str(row.handed_over_by) if row.handed_over_by else None,
        hand_over=handed,
        started_at=row.started_at,
        submitted_at=row.submitted_at,
        ready_at=row.ready_at,
        ended_at=row.ended_at,
    )


def history_of(session: Session, fill_id: uuid.UUID) -> tuple[rules.FillTransition, ...]:
    return tuple(
        rules.FillTransition(
            rules.FillState(t.from_state) if t.from_state else None,
            rules.FillState(t.to_state),
            t.actor,
            t.reason,
            t.at,
        )
        for t in session.scalars(
            select(FillTransition)
            .where(FillTransition.fill_id == fill_id)
            .order_by(FillTransition.id)
        )
    )


def past_fills(session: Session, rx_id: uuid.UUID) -> tuple[rules.PastFill, ...]:
    rows = session.execute(
        select(FillRow.number, FillRow.state, FillRow.quantity)
        .where(FillRow.prescription_id == rx_id)
        .order_by(FillRow.started_at, FillRow.id)
    ).all()
    return tuple(
        rules.PastFill(number, rules.FillState(state), Decimal(q) if q is not None else None)
        for number, state, q in rows
    )


# -- writing --------------------------------------------------------------------------------


def _fill_columns(fill: rules.Fill) -> dict[str, Any]:
    product, handed = fill.product, fill.hand_over
    return {
        "state": fill.state.value,
        "quantity": str(fill.quantity) if fill.quantity is not None else None,
        "partial_reason": fill.partial_reason,
        "ndc11": product.ndc11 if product else None,
        "lot": product.lot if product else None,
        "expiry": product.expiry if product else None,
        "serial": product.serial if product else None,
        "gtin": product.gtin if product else None,
        "drug": product.drug[:200] if product and product.drug else None,
        "bin": fill.bin,
        "filled_by": uuid.UUID(fill.filled_by) if fill.filled_by else None,
        "fillers": sorted(fill.fillers),
        "checked_by": uuid.UUID(fill.checked_by) if fill.checked_by else None,
        "handed_over_by": uuid.UUID(fill.handed_over_by) if fill.handed_over_by else None,
        "collected_by": handed.collected_by if handed else None,
        "id_checked": handed.id_checked if handed else None,
        "counselling": handed.counselling.value if handed else None,
        "consult_id": handed.consult_id if handed else None,
        "signature": handed.signature if handed else None,
        "submitted_at": fill.submitted_at,
        "ready_at": fill.ready_at,
        "ended_at": fill.ended_at,
    }


def next_rx_number(session: Session, pharmacy_id: uuid.UUID) -> str:
    """The pharmacy's next Rx number: one statement that takes the sequence row's lock (an
    upsert), so concurrent first fills each get their own (PostgreSQL and SQLite alike)."""
    dialect = session.get_bind().dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        make(RxNumberSequence)
        .values(pharmacy_id=pharmacy_id, last=1)
        .on_conflict_do_update(
            index_elements=[RxNumberSequence.pharmacy_id],
            set_={"last": RxNumberSequence.last + 1},
        )
        .returning(RxNumberSequence.last)
    )
    return rules.rx_number(int(session.execute(statement).scalar_one()))


def save(
    session: Session,
    action: str,
    before_rx: rx_rules.Prescription,
    before: rules.Fill | None,
    outcome: rules.FillOutcome,
    entries: list[dict[str, Any]],
    indicator: str | None,
    actor: audit.Actor,
    notify: Triggers | None = None,
    return_after_days: int = rules.RETURN_TO_STOCK_DAYS,
) -> rules.FillOutcome:
    """Write a fill's change and the prescription moved with it; the audit ``entries`` last
    (the last one grows by what the :data:`ON_CHANGE` hooks report). ``indicator`` is the
    prescription's RxFillIndicator (which RxFill statuses to send). ``notify``: the patient
    is told when the fill reaches ``ready`` (to pick it up within ``return_after_days``)."""
    now = utcnow()
    if outcome.needs_rx_number:
        numbered = dataclasses.replace(
            outcome.rx, rx_number=next_rx_number(session, outcome.rx.pharmacy_id)
        )
        outcome = dataclasses.replace(outcome, rx=numbered, needs_rx_number=False)
    # before anything of the fill is written: a hook that refuses leaves nothing behind
    reported = _hooks(session, Stored(action, before, outcome, actor))
    if reported and entries:
        entries[-1]["detail"] = {**entries[-1]["detail"], **reported}
    fill = outcome.fill
    steps = fill.history[len(before.history) :] if before is not None else fill.history
    moved = before is None or before.state is not fill.state
    columns = {**_fill_columns(fill), "updated_at": now}
    if moved:
        columns["state_since"] = steps[-1].at if steps else now
    if before is None:
        session.execute(
            insert(FillRow).values(
                id=fill.id,
                prescription_id=fill.prescription_id,
                pharmacy_id=fill.pharmacy_id,
                number=fill.number,
                controlled=fill.controlled,
                days_supply=fill.days_supply,
                quantity_owed=str(fill.quantity_owed),
                unit=fill.unit,
                started_at=fill.started_at or now,
                **columns,
            )
        )
    else:
        session.execute(update(FillRow).where(FillRow.id == fill.id).values(**columns))
    if steps:
        session.execute(
            insert(FillTransition),
            [
                {
                    "fill_id": fill.id,
                    "from_state": s.from_state.value if s.from_state else None,
                    "to_state": s.to_state.value,
                    "actor": s.actor,
                    "reason": s.reason,
                    "at": s.at,
                }
                for s in steps
            ],
        )
    for due in outcome.events:
        if rules.wanted(indicator, due.status):
            outbound.rx_fill_message(session, due, outcome.rx.rx_number, now)
    if notify is not None and moved and fill.state is rules.FillState.READY:
        ready_at = fill.ready_at or now
        notify.ready_for_pickup(
            session,
            pharmacy_id=fill.pharmacy_id,
            patient_id=outcome.rx.patient_id,
            fill_id=fill.id,
            pickup_by=ready_at + dt.timedelta(days=return_after_days),
            now=now,
        )
    change = prescriptions.Change(before_rx, rx_rules.Outcome(outcome.rx))
    prescriptions.save(session, [change], entries)
    return outcome


# -- the store the handlers use -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """What a decision on a fill is given: the fill (None when starting one), its
    prescription, the order as written, the prescription's fills so far."""

    fill: rules.Fill | None
    rx: rx_rules.Prescription
    order: rules.Order
    past: tuple[rules.PastFill, ...]
    reference: DrugReference
    session: Session


Decide = Callable[[Context, dt.datetime], rules.FillOutcome]


class FillStore:
    """Decisions on fills from the hub's handlers, each in one audited unit of work."""

    def __init__(
        self,
        db: Database,
        deliver: Deliver | None = None,
        reference: DrugReference | None = None,
        return_after_days: int = rules.RETURN_TO_STOCK_DAYS,
        expiry: ExpiryRules | None = None,
        notify: Triggers | None = None,
    ) -> None:
        self._db = db
        #: the patient's notifications (none: nothing notifies)
        self._notify = notify
        #: how long a prescription stays fillable, by schedule and state
        self._expiry = expiry or ExpiryRules()
        self._deliver = deliver
        #: a fixed reference (tests); None: the bundled one with the operator's imports
        self._fixed = reference
        self._cached: tuple[float, DrugReference] | None = None
        self._refreshing = asyncio.Lock()
        self.return_after_days = return_after_days

    async def reference(self) -> DrugReference:
        """The drug reference with the operator's imports, read again after
        :data:`REFERENCE_TTL` seconds: read before a unit of work takes its locks, and built in
        a thread (a full FDA import is a lot of work for the event loop)."""
        if self._fixed is not None:
            return self._fixed
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] <= REFERENCE_TTL:
            return cached[1]
        async with self._refreshing:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[0] <= REFERENCE_TTL:
                return cached[1]
            from ..drugs import imported_rows, reference_of

            async with self._db.sessions() as session:
                rows = await session.run_sync(imported_rows)
            reference = await asyncio.to_thread(reference_of, *rows)
            self._cached = (time.monotonic(), reference)
            return reference

    async def start(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, rx_id: uuid.UUID, decide: Decide
    ) -> rules.FillOutcome:
        """Start a fill of prescription ``rx_id`` (404 unless the pharmacy's)."""
        return await self._act(actor, pharmacy_id, "start", rx_id, None, decide)

    async def act(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        fill_id: uuid.UUID,
        action: str,
        decide: Decide,
    ) -> rules.FillOutcome:
        """A decision on fill ``fill_id`` (404 unless the pharmacy's)."""
        async with self._db.sessions() as session:
            rx_id = await session.scalar(
                select(FillRow.prescription_id).where(
                    FillRow.id == fill_id, FillRow.pharmacy_id == pharmacy_id
                )
            )
        return await self._act(actor, pharmacy_id, action, rx_id, fill_id, decide)

    async def _act(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        action: str,
        rx_id: uuid.UUID | None,
        fill_id: uuid.UUID | None,
        decide: Decide,
    ) -> rules.FillOutcome:
        subject = fill_id or rx_id
        reference = await self.reference()
        async with audit.refusable(self._db) as session:
            found = await session.run_sync(
                lambda s: self._load(s, pharmacy_id, rx_id, fill_id, reference)
            )
            if found is None:
                what = "fill" if fill_id is not None else "prescription"
                await _refuse(
                    session, actor, action, subject, "not_found", {}, NotFound(f"No such {what}.")
                )
            now = utcnow()
            try:
                outcome = await session.run_sync(lambda s: decide(found, now))
            except VerificationError as exc:
                detail = {"refused": exc.code}
                await _refuse(session, actor, action, subject, "refused", detail, _problem(exc))
            entry = audit.values(
                actor,
                _event(action, outcome.fill.id, "success", _detail(outcome), pharmacy_id),
                now,
            )
            indicator = await session.run_sync(lambda s: _indicator(s, found.rx.id))
            try:
                outcome = await session.run_sync(
                    lambda s: save(
                        s, action, found.rx, found.fill, outcome, [entry], indicator, actor,
                        self._notify, self.return_after_days,
                    )
                )  # fmt: skip
            except VerificationError as exc:  # an ON_CHANGE hook refused (e.g. no stock)
                detail = {"refused": exc.code}
                await _refuse(session, actor, action, subject, "refused", detail, _problem(exc))
            written = outbox.enqueued(session)
            told = self._notify.written(session) if self._notify is not None else []
        if written and self._deliver is not None:
            self._deliver(written)
        if self._notify is not None:
            self._notify.publish(told)
        return outcome

    def _load(
        self,
        session: Session,
        pharmacy_id: uuid.UUID,
        rx_id: uuid.UUID | None,
        fill_id: uuid.UUID | None,
        reference: DrugReference,
    ) -> Context | None:
        if rx_id is None:
            return None
        session.info[REFERENCE_INFO] = reference
        rx = prescriptions.load(session, [rx_id], pharmacy_id=pharmacy_id).get(rx_id)
        row = session.get(PrescriptionRow, rx_id)
        if rx is None or row is None or row.test:
            return None
        fill = None
        if fill_id is not None:
            fill_row = session.scalars(
                select(FillRow)
                .where(FillRow.id == fill_id, FillRow.pharmacy_id == pharmacy_id)
                .with_for_update()
            ).first()
            if fill_row is None:
                return None
            fill = fill_value(fill_row, history_of(session, fill_id))
        state = session.scalar(select(Pharmacy.state).where(Pharmacy.id == pharmacy_id))
        order = order_of(row, reference, self._expiry, state)
        return Context(fill, rx, order, past_fills(session, rx_id), reference, session)

    # -- the return-to-stock sweep ----------------------------------------------------------

    async def sweep(self, now: dt.datetime | None = None) -> int:
        """Return to stock the ready fills not collected within the setting's days (each in a
        unit of work of its own: one that fails leaves the others returned)."""
        now = now or utcnow()
        cutoff = now - dt.timedelta(days=self.return_after_days)
        async with self._db.sessions() as session:
            due = (
                await session.execute(
                    select(FillRow.id, FillRow.pharmacy_id)
                    .where(
                        FillRow.state == rules.FillState.READY.value,
                        FillRow.ready_at <= cutoff,
                        ~exists().where(Shipment.fill_id == FillRow.id),  # on its way
                    )
                    .order_by(FillRow.ready_at, FillRow.id)
                    .limit(SWEEP_BATCH)
                )
            ).all()
        actor = audit.Actor("system", "return_to_stock")
        returned = 0
        days = self.return_after_days
        for fill_id, pharmacy_id in due:

            def decide(ctx: Context, at: dt.datetime) -> rules.FillOutcome:
                assert ctx.fill is not None
                return rules.return_to_stock(ctx.fill, ctx.rx, str(actor), now, days)

            try:
                await self.act(actor, pharmacy_id, fill_id, "return_to_stock", decide)
            except Problem:
                continue  # moved meanwhile (handed over): nothing to return
            returned += 1
        return returned


def _indicator(session: Session, rx_id: uuid.UUID) -> str | None:
    indicator: str | None = session.scalar(
        select(PrescriptionRow.rx_fill_indicator).where(PrescriptionRow.id == rx_id)
    )
    return indicator


def cancel_open_fill(
    session: Session,
    before_rx: rx_rules.Prescription,
    cancelled: rx_rules.Prescription,
    actor: audit.Actor,
    reason: str,
    now: dt.datetime,
) -> dict[str, Any] | None:
    """In a CancelRx's unit of work (the prescription locked, decided ``cancelled``): end its
    open fill, nothing handed over, and send NotDispensed if it was asked. The prescription
    itself is saved by the caller. None when it had no open fill, else what the
    :data:`ON_CHANGE` hooks report (for the cancel's audit entry; they must not refuse)."""
    row = session.scalars(
        select(FillRow)
        .where(
            FillRow.prescription_id == before_rx.id,
            FillRow.state.in_([s.value for s in rules.OPEN]),
        )
        .with_for_update()
    ).first()
    if row is None:
        return None
    fill = fill_value(row, history_of(session, row.id))
    outcome = rules.cancel(fill, cancelled, str(actor), reason, now)
    reported = _hooks(session, Stored("cancel", fill, outcome, actor))
    steps = outcome.fill.history[len(fill.history) :]
    session.execute(
        update(FillRow)
        .where(FillRow.id == fill.id)
        .values(**_fill_columns(outcome.fill), state_since=now, updated_at=now)
    )
    session.execute(
        insert(FillTransition),
        [
            {
                "fill_id": fill.id,
                "from_state": s.from_state.value if s.from_state else None,
                "to_state": s.to_state.value,
                "actor": s.actor,
                "reason": s.reason,
                "at": s.at,
            }
            for s in steps
        ],
    )
    indicator = _indicator(session, before_rx.id)
    for due in outcome.events:
        if rules.wanted(indicator, due.status):
            outbound.rx_fill_message(session, due, before_rx.rx_number, now)
    return reported


def _hooks(session: Session, change: Stored) -> dict[str, Any]:
    reported: dict[str, Any] = {}
    for hook in ON_CHANGE:
        reported.update(hook(session, change) or {})
    return reported


def _detail(outcome: rules.FillOutcome) -> dict[str, Any]:
    fill = outcome.fill
    detail: dict[str, Any] = {
        "prescription_id": str(fill.prescription_id),
        "number": fill.number,
        "state": fill.state.value,
    }
    if fill.partial:
        detail["partial"] = True
    if fill.product is not None:  # the product's identity (no patient data): traceability
        detail["ndc11"] = fill.product.ndc11
        detail["lot"] = fill.product.lot
    if fill.bin is not None:
        detail["bin"] = fill.bin
    if fill.hand_over is not None:
        detail["counselling"] = fill.hand_over.counselling.value
        detail["id_checked"] = fill.hand_over.id_checked
    return detail


async def _refuse(
    session: AsyncSession,
    actor: audit.Actor,
    action: str,
    subject: uuid.UUID | None,
    outcome: str,
    detail: dict[str, Any],
    problem: Problem,
) -> NoReturn:
    await audit.refuse(session, actor, _event(action, subject, outcome, detail), problem)


def _event(
    action: str,
    subject: uuid.UUID | None,
    outcome: str,
    detail: dict[str, Any],
    pharmacy_id: uuid.UUID | None = None,
) -> audit.Event:
    kind = "prescription" if action == "start" and outcome != "success" else "fill"
    return audit.Event(
        f"fill.{action}",
        kind,
        str(subject) if subject else None,
        outcome=outcome,
        pharmacy_id=pharmacy_id,
        detail=detail,
    )


def _problem(exc: VerificationError) -> Problem:
    if exc.code in _CONFLICTS:
        problem: Problem = Conflict(exc.detail)
        problem.code = exc.code
        return problem
    if exc.code in _FORBIDDEN:
        forbidden = Forbidden(exc.detail)
        forbidden.code = exc.code
        return forbidden
    return Unprocessable(exc.code, exc.detail)


#: the store the hub's handlers decide through
FILLS: web.AppKey[FillStore] = web.AppKey("fills")

__all__ = [
    "FILLS",
    "ON_CHANGE",
    "SCANNED",
    "SUBMIT_CHECKS",
    "Context",
    "FillStore",
    "Stored",
    "cancel_open_fill",
    "next_rx_number",
    "order_of",
    "scanned",
]
