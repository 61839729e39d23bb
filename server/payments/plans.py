"""Payment plans: a patient's balance split into instalments (eprescribe.payments.plans),
each charged to a saved card on its day by the periodic job (:class:`InstalmentJob`), paid
when the provider's webhook settles it, tried again after a failure (1, 3, then 7 days later;
after the third failure the instalment stops and the pharmacy is told on the plan), and
cancellable.

A plan's state is the ledger's: the webhook that writes an instalment's payment marks it paid
in the same transaction (:func:`settled`, :func:`failed`), and the plan is completed when none
is left to pay.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from eprescribe.payments import PlanRefused, instalments

from .. import audit
from ..db import Database
from ..db.models import utcnow
from ..errors import Conflict, NotFound, Unprocessable
from ..notifications import Triggers
from . import store
from .guards import own_profile, refuse_with
from .models import PaymentCard, PaymentInstalment, PaymentIntent, PaymentPlan
from .provider import PaymentProvider, ProviderError

log = logging.getLogger(__name__)

#: the waits after the first, second and third failure (then the instalment stops)
RETRY_AFTER = (dt.timedelta(days=1), dt.timedelta(days=3), dt.timedelta(days=7))
#: how often the job runs (seconds), on the hub's one schedule
EVERY = 300.0
#: instalments asked per pass of the job
BATCH = 50
#: an instalment the provider did not answer for is asked again (same key) after this
RETRY_UNANSWERED = dt.timedelta(hours=1)
#: an instalment asked and not settled is looked at again after this
RECHECK_ASKED = dt.timedelta(days=1)
#: the instalments the job looks at when their time comes
_DUE = ("pending", "failed", "asked")
ACTIVE = "active"
SYSTEM = audit.Actor("system", "payment-plans")


@dataclass(frozen=True, slots=True)
class PlanView:
    plan: PaymentPlan
    instalments: list[PaymentInstalment]

    @property
    def paid(self) -> int:
        return sum(i.amount for i in self.instalments if i.status == "paid")


class Plans:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        patient_id: uuid.UUID,
        card_id: uuid.UUID,
        count: int,
        every_days: int,
        first_due: dt.date,
        currency: str,
    ) -> PlanView:
        """The patient's whole balance in ``currency`` in ``count`` instalments, on a saved
        card of theirs; one active plan a patient."""
        event = audit.Event("payment.plan.create", "patient", str(patient_id))
        async with audit.refusable(self._db) as session:
            await own_profile(session, actor, pharmacy_id, patient_id, event)
            card = await session.run_sync(lambda s: store.card_of(s, patient_id, card_id))
            if card is None or not card.saved or card.removed_at or not card.payment_method:
                await refuse_with(
                    session,
                    actor,
                    event,
                    Unprocessable("card_not_saved", "A plan needs a card the patient saved."),
                )
            if await session.run_sync(lambda s: _active_plan(s, patient_id)) is not None:
                conflict = Conflict("The patient has a plan already: cancel it first.")
                conflict.code = "plan_exists"
                await refuse_with(session, actor, event, conflict)
            owed = (await session.run_sync(lambda s: store.balance(s, patient_id))).get(currency, 0)
            try:
                planned = instalments(owed, count, first_due, every_days)
            except PlanRefused as exc:
                await refuse_with(session, actor, event, Unprocessable(exc.code, exc.words))
            plan = PaymentPlan(
                id=uuid.uuid4(),
                pharmacy_id=pharmacy_id,
                patient_id=patient_id,
                card_id=card_id,
                total=owed,
                currency=currency,
                status=ACTIVE,
                actor=str(actor)[:100],
            )
            session.add(plan)
            await session.flush()
            rows = [
                PaymentInstalment(
                    id=uuid.uuid4(),
                    plan_id=plan.id,
                    number=i.number,
                    due=i.due,
                    amount=i.amount,
                    status="pending",
                    next_attempt_at=dt.datetime.combine(i.due, dt.time(), dt.UTC),
                    attempts=0,
                )
                for i in planned
            ]
            session.add_all(rows)
            await session.flush()
            detail = {"plan_id": str(plan.id), "total": owed, "count": count, "every": every_days}
            await audit.add(session, actor, replace(event, detail=detail))
        return PlanView(plan, rows)

    async def of_patient(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, patient_id: uuid.UUID
    ) -> list[PlanView]:
        event = audit.Event("payment.plans.read", "patient", str(patient_id))
        async with audit.refusable(self._db) as session:
            await own_profile(session, actor, pharmacy_id, patient_id, event)
            found = await session.run_sync(lambda s: _plans_of(s, patient_id))
            await audit.add(session, actor, event)
        return found

    async def cancel(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, plan_id: uuid.UUID
    ) -> PlanView:
        """Instalments not asked yet are cancelled; one being paid completes as the provider
        says."""
        event = audit.Event("payment.plan.cancel", "payment_plan", str(plan_id))
        async with audit.refusable(self._db) as session:
            plan = await session.get(PaymentPlan, plan_id, with_for_update=True)
            if plan is None or plan.pharmacy_id != pharmacy_id:
                await audit.refuse(
                    session, actor, replace(event, outcome="not_found"), NotFound("No such plan.")
                )
            if plan.status != ACTIVE:
                conflict = Conflict(f"The plan is {plan.status}.")
                conflict.code = "plan_not_active"
                await audit.refuse(session, actor, replace(event, outcome="refused"), conflict)
            rows = await session.run_sync(lambda s: _instalments(s, plan_id))
            for row in rows:
                if row.status in ("pending", "failed", "stopped"):
                    row.status = "cancelled"
            plan.status, plan.ended_at = "cancelled", utcnow()
            await audit.add(session, actor, event)
        return PlanView(plan, rows)


class InstalmentJob:
    """The periodic job that asks the provider for every instalment due: a job of the hub's
    one schedule (:mod:`server.schedule`, every :data:`EVERY` seconds under its lease, in a
    hub's own loop or a worker's task). Blocking: the schedule runs it in a thread, on its
    own engine.

    Each instalment is claimed in its own transaction first, under its row's lock (the
    safety net should two runners ever meet), with its payment's row written (``creating``),
    so money on its way counts against the balance; the idempotency key names the
    instalment and the attempt. An attempt whose answer was lost (a timeout) is asked again
    with the same key an hour later; one the provider has, not settled after a day, is
    looked at again then."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: PaymentProvider,
        notices: Triggers | None = None,
    ) -> None:
        self._sessions = sessions
        self._provider = provider
        self._notices = notices

    def run(self, now: dt.datetime, written: list[uuid.UUID]) -> int:
        """One pass (at most :data:`BATCH` instalments): how many were asked; the notices
        written (a refused instalment's, :func:`_failed`) are added to ``written``, for the
        caller to publish."""
        with self._sessions() as session:
            due = _due(session, now)
        asked = 0
        for instalment_id in due:
            with self._sessions.begin() as session:
                claimed = _claim(session, instalment_id, now)
            if claimed is not None and self._ask(claimed, now, written):
                asked += 1
        return asked

    def _ask(self, claimed: _Claimed, now: dt.datetime, written: list[uuid.UUID]) -> bool:
        try:
            made = self._provider.create_intent(
                amount=claimed.amount,
                currency=claimed.currency,
                customer=claimed.customer,
                idempotency_key=claimed.key,
                metadata={"hub_payment": str(claimed.intent_id),
                          "pharmacy": str(claimed.pharmacy_id)},
                payment_method=claimed.method,
                off_session=True,
            )  # fmt: skip
        except ProviderError as exc:
            told: list[uuid.UUID] = []
            with self._sessions.begin() as session:
                if exc.declined:
                    _failed(session, claimed.instalment_id, exc.words, now, self._notices)
                    _audit(session, claimed, "failed")
                    told = self._notices.written(session) if self._notices else []
                else:  # the answer was lost: asked again with the same key in an hour
                    _unanswered(session, claimed.instalment_id, exc.words, now)
            written += told
            return False
        with self._sessions.begin() as session:
            intent = store.intent_by_id(session, claimed.intent_id)
            if intent is not None:
                if intent.provider_id is None:
                    intent.provider_id = made.id
                if intent.status == "creating":
                    intent.status = made.status
                intent.updated_at = utcnow()
            _audit(session, claimed, "success")
        return True


def _audit(session: Session, claimed: _Claimed, outcome: str) -> None:
    """An instalment asked of the provider (``success``) or refused by the bank at once
    (``failed``): amounts and identifiers only."""
    detail = {"plan_id": str(claimed.plan_id), "number": claimed.number,
              "amount": claimed.amount}  # fmt: skip
    event = audit.Event(
        "payment.plan.instalment",
        "payment_plan",
        str(claimed.plan_id),
        outcome=outcome,
        pharmacy_id=claimed.pharmacy_id,
        detail=detail,
    )
    audit.append(session, [audit.values(SYSTEM, event)])


@dataclass(frozen=True, slots=True)
class _Claimed:
    """An instalment claimed for asking: what the provider is asked (plain values, read
    in the claim's transaction)."""

    instalment_id: uuid.UUID
    plan_id: uuid.UUID
    pharmacy_id: uuid.UUID
    number: int
    amount: int
    currency: str
    method: str
    customer: str
    key: str
    intent_id: uuid.UUID


def _claim(session: Session, instalment_id: uuid.UUID, now: dt.datetime) -> _Claimed | None:
    """Claim the instalment for asking, under its row's lock (``None``: not due, or stopped,
    cancelled, left to its webhook)."""
    row = session.get(PaymentInstalment, instalment_id, with_for_update=True)
    if row is None or row.status not in _DUE or row.next_attempt_at > now:
        return None
    plan = session.get_one(PaymentPlan, row.plan_id)
    card = session.get(PaymentCard, plan.card_id)
    customer = store.customer_of(session, plan.patient_id)
    method = card.payment_method if card is not None else None

    def claimed(method: str, customer: str, key: str, intent_id: uuid.UUID) -> _Claimed:
        return _Claimed(row.id, plan.id, plan.pharmacy_id, row.number, row.amount,
                        plan.currency, method, customer, key, intent_id)  # fmt: skip

    if row.status == "asked":  # asked before, not settled yet
        intent = session.get(PaymentIntent, row.intent_id) if row.intent_id else None
        if intent is None or intent.provider_id is not None or not method or not customer:
            # the provider has it: its webhook settles or fails it; looked at again
            row.next_attempt_at = now + RECHECK_ASKED
            return None
        row.next_attempt_at = now + RETRY_UNANSWERED
        return claimed(method, customer, f"instalment-{row.id}-{row.attempts}", intent.id)
    gone = card is None or card.removed_at is not None or not card.saved
    if plan.status != ACTIVE or gone or not method or not customer:
        row.status, row.last_error = "stopped", "the plan's card is gone"
        return None
    # never more than the patient owes now less what is on its way (a payment made
    # meanwhile, a refund, a charge reversed): the instalment shrinks, or ends
    owed = _owed(session, plan, now)
    if owed <= 0:
        row.status, row.last_error = "cancelled", "nothing owed"
        _complete_if_done(session, plan)
        return None
    row.amount = min(row.amount, owed)
    row.attempts += 1
    key = f"instalment-{row.id}-{row.attempts}"
    row.status, row.intent_id = "asked", uuid.uuid4()
    row.next_attempt_at = now + RECHECK_ASKED
    session.add(
        PaymentIntent(
            id=row.intent_id,
            pharmacy_id=plan.pharmacy_id,
            patient_id=plan.patient_id,
            provider_id=None,
            amount=row.amount,
            currency=plan.currency,
            method="saved_card",
            status="creating",
            idempotency_key=key,
            actor=str(SYSTEM),
            created_at=now,
            updated_at=now,
        )
    )
    return claimed(method, customer, key, row.intent_id)


def settled(session: Session, intent_id: uuid.UUID) -> None:
    """The webhook put the payment of ``intent_id`` on the ledger: its instalment is paid, and
    its plan completed when none is left to pay (in the webhook's transaction)."""
    row = session.scalar(
        select(PaymentInstalment).where(PaymentInstalment.intent_id == intent_id).with_for_update()
    )
    if row is None:
        return
    row.status = "paid"
    plan = session.get(PaymentPlan, row.plan_id, with_for_update=True)
    if plan is not None:
        _complete_if_done(session, plan)


def _complete_if_done(session: Session, plan: PaymentPlan) -> None:
    """An active plan none of whose instalments is left to pay is completed."""
    if plan.status == ACTIVE and all(
        i.status in ("paid", "cancelled") for i in _instalments(session, plan.id)
    ):
        plan.status, plan.ended_at = "completed", utcnow()


def _owed(session: Session, plan: PaymentPlan, now: dt.datetime) -> int:
    """What the patient owes in the plan's currency, less the payments on their way (this
    plan's instalments asked and not settled among them)."""
    owed = store.balance(session, plan.patient_id).get(plan.currency, 0)
    return owed - store.in_flight(session, plan.patient_id, plan.currency, now)


def failed(
    session: Session, intent_id: uuid.UUID, words: str, notices: Triggers | None = None
) -> None:
    """The provider reported the payment of ``intent_id`` failed (the webhook)."""
    row = session.scalar(
        select(PaymentInstalment.id).where(PaymentInstalment.intent_id == intent_id)
    )
    if row is not None:
        _failed(session, row, words, utcnow(), notices)


def _failed(
    session: Session,
    instalment_id: uuid.UUID,
    words: str,
    now: dt.datetime,
    notices: Triggers | None,
) -> None:
    """The bank refused the instalment's payment: tried again later, or stopped; the patient
    is told (``payment_failed``, once an attempt: its payment asked is the occasion)."""
    row = session.get(PaymentInstalment, instalment_id, with_for_update=True)
    if row is None or row.status not in ("asked", "pending", "failed"):
        return
    if notices is not None and row.intent_id is not None:
        plan = session.get_one(PaymentPlan, row.plan_id)
        notices.payment_failed(
            session, pharmacy_id=plan.pharmacy_id, patient_id=plan.patient_id,
            attempt_id=row.intent_id, amount=row.amount, currency=plan.currency, now=now,
        )  # fmt: skip
    intent = session.get(PaymentIntent, row.intent_id) if row.intent_id else None
    if intent is not None and intent.status in ("creating", "requires_payment_method"):
        intent.status = "failed"  # no money on its way
    row.last_error = words[:500]
    if row.attempts >= len(RETRY_AFTER):
        row.status = "stopped"
    else:
        row.status = "failed"
        row.next_attempt_at = now + RETRY_AFTER[max(0, row.attempts - 1)]
    # no patient data: the plan and the instalment's number
    log.warning("plan instalment %s failed (attempt %d, %s)", row.number, row.attempts, row.status)


def merge_check(session: Session, merged_id: uuid.UUID) -> tuple[str, str] | None:
    """A profile paying a plan is not merged into another (server.patients.merges)."""
    if _active_plan(session, merged_id) is None:
        return None
    return "payment_plan_active", "The profile pays a payment plan: cancel it before merging."


def _unanswered(session: Session, instalment_id: uuid.UUID, words: str, now: dt.datetime) -> None:
    """The provider did not answer (a timeout, a connection lost): the instalment stays asked
    and is asked again with the same key (the provider gives the same payment back)."""
    row = session.get(PaymentInstalment, instalment_id, with_for_update=True)
    if row is not None and row.status == "asked":
        row.last_error = words[:500]
        row.next_attempt_at = now + RETRY_UNANSWERED


def _due(session: Session, now: dt.datetime) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(PaymentInstalment.id)
            .join(PaymentPlan, PaymentPlan.id == PaymentInstalment.plan_id)
            .where(
                PaymentInstalment.status.in_(_DUE),
                PaymentInstalment.next_attempt_at <= now,
                PaymentPlan.status == ACTIVE,
            )
            .order_by(PaymentInstalment.next_attempt_at)
            .limit(BATCH)
        )
    )


def _instalments(session: Session, plan_id: uuid.UUID) -> list[PaymentInstalment]:
    return list(
        session.scalars(
            select(PaymentInstalment)
            .where(PaymentInstalment.plan_id == plan_id)
            .order_by(PaymentInstalment.number)
        )
    )


def _active_plan(session: Session, patient_id: uuid.UUID) -> PaymentPlan | None:
    return session.scalar(
        select(PaymentPlan).where(
            PaymentPlan.patient_id == patient_id, PaymentPlan.status == ACTIVE
        )
    )


def _plans_of(session: Session, patient_id: uuid.UUID) -> list[PlanView]:
    plans = session.scalars(
        select(PaymentPlan)
        .where(PaymentPlan.patient_id == patient_id)
        .order_by(PaymentPlan.created_at.desc())
    )
    return [PlanView(p, _instalments(session, p.id)) for p in plans]
