"""A consult's fee paid in its waiting room, per the pharmacy's policy
(:data:`~.models.CONSULT_FEE_POLICIES`):

- ``after``: billed after the consult (charged when it ends, :mod:`.fills`); nothing is asked in
  the waiting room.
- ``waiting_room``: the patient may pay it while waiting, or later (then it is charged when the
  consult ends, like ``after``).
- ``before_admission``: the pharmacist may admit the patient only once the fee is paid (the
  payment settled by the provider's webhook).

The fee is charged once: a payment asked in the waiting room writes the consult's charge with
the payment's row (:meth:`.service.Payments.ask`, ``consult_id``); the consult's end finds it
and charges nothing more. A consult cancelled or expired before it took place has its charge
reversed (``consult_reversal``): money paid stays a credit on the balance and the consult's fee
shows ``refund_due``; staff with the refunds permission refund it (the existing refund rules).

The patient in the waiting room has no account: their consult's ``resume`` token (the bearer
credential of their seat, sent in the body, never the URL) says which consult and patient it is.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from eprescribe.payments import EntryKind, Money
from signaling import consults as rules

from .. import audit
from ..consults import store as consults
from ..consults.models import ConsultRow, ConsultSeatRow
from ..db import Database
from ..errors import Conflict, NotFound
from . import refusals, store
from .models import CONSULT_FEE_POLICIES
from .service import Asked, Asking, Payments
from .store import ConsultFee

_OPEN = store.CONSULT_PAYABLE


def register() -> None:
    """Plug the fee into the consults' admission and cancellation (idempotent)."""
    if admission not in consults.ADMIT_CHECKS:
        consults.ADMIT_CHECKS.append(admission)
    if called_off not in consults.ON_CALLED_OFF:
        consults.ON_CALLED_OFF.append(called_off)


def admission(
    session: Session, pharmacy_id: uuid.UUID, consult_id: uuid.UUID
) -> tuple[str, str] | None:
    """``before_admission``: a fee not paid yet keeps the patient waiting (one their credit
    covers does not). Under any other policy the fee is not read at all: every admission
    asks, and most pharmacies take the fee after the consult."""
    if store.consult_fee_policy(session, pharmacy_id) != "before_admission":
        return None
    row = session.get(ConsultRow, consult_id)  # locked by the admission already
    assert row is not None
    fee = store.consult_fee(session, pharmacy_id, row.patient_id, consult_id)
    if fee.policy != "before_admission" or fee.status in ("none", "paid", "covered"):
        return None
    return "fee_unpaid", "The patient has not paid the consultation fee yet."


def called_off(
    session: Session, pharmacy_id: uuid.UUID, patient_id: uuid.UUID, consult_id: uuid.UUID,
    actor: str,
) -> None:  # fmt: skip
    """A consult that never took place is not the patient's to pay: its charge (written when
    the fee was asked in the waiting room) is reversed, once."""
    charged = store.existing(
        session, pharmacy_id, EntryKind.CHARGE, store.Cause("consult", str(consult_id), "")
    )
    reversal = store.Cause("consult_reversal", str(consult_id), "Consultation: not held")
    if charged is None or store.existing(session, pharmacy_id, EntryKind.ADJUSTMENT, reversal):
        return
    store.add_entry(
        session,
        pharmacy_id=pharmacy_id,
        patient_id=charged.patient_id,
        kind=EntryKind.ADJUSTMENT,
        money=Money(-charged.amount, charged.currency),
        cause=reversal,
        actor=actor,
        reason="consult called off",
    )


@dataclass(frozen=True, slots=True)
class Seated:
    """The waiting patient a resume token names."""

    consult_id: uuid.UUID
    pharmacy_id: uuid.UUID
    patient_id: uuid.UUID
    state: rules.ConsultState
    actor: audit.Actor


class ConsultFees:
    """The consult fee's actions: the patient's in the waiting room, the staff's reads and the
    pharmacy's policy."""

    def __init__(self, db: Database, payments: Payments) -> None:
        self._db = db
        self._payments = payments
        #: the sessions that were not one, counted by address (anyone may post them)
        self._refusals = refusals.RefusalTally()

    async def close(self) -> None:
        """The hub stops: the refusals counted so far are audited."""
        await self._summarise(self._refusals.flush())

    async def _summarise(self, summaries: list[refusals.Summary]) -> None:
        anonymous = audit.Actor("patient", "anonymous")
        await refusals.write(
            self._db, summaries, anonymous, "payment.consult_fee.refused", "consult"
        )

    async def _seated(self, resume: str, ip: str | None, action: str) -> Seated:
        digest = rules.token_digest(resume)
        async with audit.refusable(self._db) as session:
            row = await session.scalar(
                select(ConsultRow)
                .join(ConsultSeatRow, ConsultSeatRow.consult_id == ConsultRow.id)
                .where(
                    ConsultSeatRow.role == "patient",
                    or_(
                        ConsultSeatRow.resume_digest == digest,
                        ConsultSeatRow.previous_digest == digest,
                    ),
                )
            )
            if row is None:  # counted, audited as a window's summary (:mod:`.refusals`)
                closed = self._refusals.note(ip, action, time.time())
                await self._summarise(closed)
                raise _not_found("resume_invalid", "This consultation's session is not valid.")
            actor = audit.Actor("patient", str(row.patient_id), row.pharmacy_id, ip)
            return Seated(
                row.id, row.pharmacy_id, row.patient_id, rules.ConsultState(row.state), actor
            )

    async def for_patient(self, resume: str, ip: str | None) -> ConsultFee:
        """The fee of the patient's consult, as they see it in the waiting room."""
        seated = await self._seated(resume, ip, "payment.consult_fee.read")
        return await self._read(seated.actor, seated.pharmacy_id, seated.consult_id)

    async def for_staff(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, consult_id: uuid.UUID
    ) -> ConsultFee:
        """The fee of one of the pharmacy's consults (another's: 404, audited as a miss)."""
        return await self._read(actor, pharmacy_id, consult_id)

    async def _read(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, consult_id: uuid.UUID
    ) -> ConsultFee:
        event = audit.Event("payment.consult_fee.read", "consult", str(consult_id))
        async with audit.refusable(self._db) as session:
            row = await session.get(ConsultRow, consult_id)
            if row is None or row.pharmacy_id != pharmacy_id:
                await audit.refuse(
                    session,
                    actor,
                    replace(event, outcome="not_found"),
                    NotFound("No such consult."),
                )
            patient_id = row.patient_id
            fee = await session.run_sync(
                lambda s: store.consult_fee(s, pharmacy_id, patient_id, consult_id)
            )
            detail = {"status": fee.status, "policy": fee.policy}
            await audit.add(session, actor, replace(event, detail=detail))
        return fee

    async def _payable(self, seated: Seated, action: str) -> ConsultFee:
        """The fee the waiting patient may pay now, else the refusal (audited)."""
        event = audit.Event(action, "consult", str(seated.consult_id))
        async with audit.refusable(self._db) as session:
            fee = await session.run_sync(
                lambda s: store.consult_fee(
                    s, seated.pharmacy_id, seated.patient_id, seated.consult_id
                )
            )
            refusal: Conflict | None = None
            if seated.state not in _OPEN:
                refusal = _conflict("consult_over", "This consultation is over.")
            elif fee.fee is None:
                refusal = _conflict("no_fee", "This consultation has no fee.")
            elif fee.policy == "after":
                refusal = _conflict(
                    "fee_billed_after", "The pharmacy bills this consultation after it."
                )
            elif fee.status == "paid":
                refusal = _conflict("fee_paid", "The consultation fee is paid.")
            elif fee.status == "processing":
                refusal = _conflict("fee_processing", "A payment of the fee is on its way.")
            elif fee.status == "covered":
                refusal = _conflict(
                    "fee_covered", "Your credit with the pharmacy covers the consultation fee."
                )
            if refusal is not None:
                detail = {"refused": refusal.code}
                await audit.refuse(
                    session, seated.actor, replace(event, outcome="refused", detail=detail), refusal
                )
        return fee

    async def card_setup(self, resume: str, ip: str | None) -> tuple[uuid.UUID, str | None]:
        """A card for the fee, typed into the provider's own fields."""
        seated = await self._seated(resume, ip, "payment.card.setup")
        await self._payable(seated, "payment.card.setup")
        card, secret = await self._payments.card_setup(
            seated.actor, seated.pharmacy_id, seated.patient_id
        )
        return card.id, secret

    async def pay(self, resume: str, ip: str | None, card_id: uuid.UUID, key: str) -> Asked:
        """The fee asked of the provider with the patient's card; the consult's charge is
        written with the payment's row (once)."""
        seated = await self._seated(resume, ip, "payment.ask")
        fee = await self._payable(seated, "payment.ask")
        assert fee.due is not None  # _payable refused any other
        assert fee.fee is not None
        asking = Asking(
            money=fee.due,
            method="online",
            card_id=card_id,
            key=key,
            consult_id=seated.consult_id,
            fee=fee.fee,
        )
        return await self._payments.ask(seated.actor, seated.pharmacy_id, seated.patient_id, asking)

    async def policy(self, pharmacy_id: uuid.UUID) -> str:
        """The policy names no patient: not audited."""
        async with self._db.sessions() as session:
            return await session.run_sync(lambda s: store.consult_fee_policy(s, pharmacy_id))

    async def set_policy(self, actor: audit.Actor, pharmacy_id: uuid.UUID, policy: str) -> str:
        assert policy in CONSULT_FEE_POLICIES
        async with self._db.transaction() as session:
            await session.run_sync(lambda s: store.set_consult_fee_policy(s, pharmacy_id, policy))
            event = audit.Event(
                "payment.settings", "pharmacy", str(pharmacy_id), detail={"consult_fee": policy}
            )
            await audit.add(session, actor, event)
        return policy


def _conflict(code: str, words: str) -> Conflict:
    problem = Conflict(words)
    problem.code = code
    return problem


def _not_found(code: str, words: str) -> NotFound:
    problem = NotFound(words)
    problem.code = code
    return problem
