"""The prescription aggregate: one prescription's state, claim, findings and history, and every
decision on it (DESIGN.md "Prescription states").

A :class:`Prescription` is immutable. Each decision is a pure function that takes the current
value and returns an :class:`Outcome`: the new value (its history grown by the transition, if
the state changed) and the :data:`Event` values a store records beside it (a note, a question
for the prescriber, findings). A refused decision raises
:class:`~eprescribe.verification.VerificationError` (or :class:`TransitionNotAllowed`) and
changes nothing. The state machine is :mod:`eprescribe.workflow`; the verification rules
(claims, reasons, overrides) are :mod:`eprescribe.verification`. Storage is not this module's
business: the one writer is ``server.prescriptions.store``.

Actors are strings, ``kind:id`` (``user:<uuid>``, ``client:<client id>``, ``system:checks``),
as the audit trail writes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from . import verification
from .checks.base import Finding
from .ncpdp.outbound import ChangeRequestCode
from .verification import Claim, VerificationError
from .workflow import ACCEPTED, REVIEWABLE, State, Transition, move, received


@dataclass(frozen=True, slots=True)
class Reviewer:
    """The pharmacist deciding: who, and whether their account may approve controlled
    substances."""

    user_id: str
    controlled_substances: bool = False

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Prescription:
    id: uuid.UUID
    pharmacy_id: uuid.UUID
    state: State
    #: its transitions, the first from :func:`receive`; a value a store loads to decide on
    #: carries none (no rule reads them), and what a decision appends is what it writes
    history: tuple[Transition, ...]
    #: the NCI code of the DEA schedule, None when not controlled
    dea_schedule: str | None = None
    claim: Claim | None = None
    #: the checks' latest findings (replaced as a whole when the checks run again)
    findings: tuple[Finding, ...] = ()
    #: the patient's profile, once the checks matched one
    patient_id: uuid.UUID | None = None
    #: the version of the patient's picture (medications, open prescriptions, allergies) the
    #: findings were computed on, and the picture's version now (as loaded); the findings are
    #: stale when they differ
    checked_basis: int | None = None
    picture: int | None = None
    #: the NewRx's NumberOfRefills (refills authorised beyond the first fill)
    refills: int = 0
    #: the NewRx's ProhibitRenewalRequest: the prescriber takes no renewal request for it
    renewal_prohibited: bool = False
    #: when a renewal request still waiting for the prescriber's answer was sent (None: none)
    renewal_open_since: dt.datetime | None = None
    #: the pharmacy's prescription number (Rx number), given at its first fill
    rx_number: str | None = None
    #: how many of its fills were handed over (partial ones included): once one was, the
    #: medication is with the patient and a CancelRx is denied
    fills_dispensed: int = 0

    @property
    def findings_stale(self) -> bool:
        """The patient's picture changed since the findings were computed: they are being
        computed again, and no decision may rest on them."""
        return self.patient_id is not None and self.checked_basis != self.picture

    def _move(self, target: State, actor: str, reason: str, at: dt.datetime) -> Prescription:
        step = move(self.state, target, actor, reason, at)
        return dataclasses.replace(self, state=target, history=(*self.history, step))

    def _leave_review(
        self, target: State, reviewer: Reviewer, reason: str, now: dt.datetime
    ) -> Prescription:
        """Out of review to ``target``: the claim ends with it."""
        moved = self._move(target, reviewer.actor, reason, now)
        return dataclasses.replace(moved, claim=None)

    def _in_review_with_claim(self, reviewer: Reviewer, now: dt.datetime) -> None:
        if self.state is State.AWAITING_REVIEW:
            raise VerificationError("claim_required", "Claim the prescription first.")
        if self.state is not State.IN_REVIEW:
            raise VerificationError("wrong_state", f"The prescription is {self.state}.")
        verification.require_claim(self.claim, reviewer.user_id, now)


@dataclass(frozen=True, slots=True)
class NoteAdded:
    """A pharmacist's or technician's note (never sent to the prescriber)."""

    author: str  # the user ID
    text: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class ClarificationAsked:
    """A question for the prescriber, to be sent as an outbound SCRIPT message (an
    RxChangeRequest of the question's kind; ``question`` is None for a plain clarification
    with ``reason_code`` and ``text``, as before the other kinds)."""

    by: str  # the user ID
    reason_code: str
    text: str
    at: dt.datetime
    question: verification.ChangeQuestion | None = None

    @property
    def request(self) -> verification.ChangeQuestion:
        """What is asked, as a change question (a plain clarification is a script
        clarification)."""
        if self.question is not None:
            return self.question
        return verification.ChangeQuestion(
            ChangeRequestCode.SCRIPT_CLARIFICATION, self.reason_code, self.text
        )


@dataclass(frozen=True, slots=True)
class RenewalRequested:
    """A renewal request for the prescriber (an RxRenewalRequest): ``refills`` is how many
    refills the pharmacy asks for (None: as the prescriber sees fit); ``asserted``: the
    pharmacist stated that the refills authorised are used up (the hub counts no fills
    yet)."""

    by: str  # the user ID
    at: dt.datetime
    note: str | None = None
    refills: int | None = None
    asserted: bool = False


@dataclass(frozen=True, slots=True)
class Approved:
    #: the reason given for each warning, by finding code
    overrides: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Rejected:
    reason_code: str


@dataclass(frozen=True, slots=True)
class ChecksDone:
    """The checks ran (``failed``: they could not, and the findings say so; ``again``: on a
    prescription already checked, because the patient's picture changed)."""

    findings: tuple[Finding, ...]
    failed: bool = False
    again: bool = False


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The prescriber cancelled the prescription (a CancelRx); ``response`` is the
    CancelRxResponse to send, and ``claim_holder`` the pharmacist whose claim it ended."""

    actor: str
    reason: str
    at: dt.datetime
    claim_holder: str | None = None
    response: Literal["Approved"] = "Approved"


@dataclass(frozen=True, slots=True)
class PriorAuthorizationRecorded:
    """The prescriber confirmed a prior authorization (RxChangeResponse Validated)."""

    number: str


Event = (
    NoteAdded
    | ClarificationAsked
    | RenewalRequested
    | Approved
    | Rejected
    | ChecksDone
    | Cancelled
    | PriorAuthorizationRecorded
)


@dataclass(frozen=True, slots=True)
class Outcome:
    rx: Prescription
    events: tuple[Event, ...] = ()


def receive(
    rx_id: uuid.UUID,
    pharmacy_id: uuid.UUID,
    actor: str,
    transaction: str,
    at: dt.datetime,
    dea_schedule: str | None = None,
) -> Prescription:
    """A prescription as it arrives: ``received``, the first entry of its history."""
    first = received(actor, f"{transaction} received", at)
    return Prescription(rx_id, pharmacy_id, State.RECEIVED, (first,), dea_schedule)


# -- the checks ---------------------------------------------------------------------------

CHECKER = "system:checks"


def start_checks(rx: Prescription, at: dt.datetime) -> Outcome:
    """``received`` to ``checking``; a prescription already ``checking`` (a run that was
    interrupted) stays as it is, to be finished by this run."""
    if rx.state is State.CHECKING:
        return Outcome(rx)
    return Outcome(rx._move(State.CHECKING, CHECKER, "checks started", at))


def finish_checks(
    rx: Prescription,
    findings: tuple[Finding, ...],
    at: dt.datetime,
    *,
    basis: int | None = None,
    failed: bool = False,
) -> Outcome:
    """The findings replace the earlier ones and the prescription goes to the pharmacist's
    queue; ``basis`` is the version of the patient's picture they were computed on,
    ``failed`` when the checks could not run (the findings say so)."""
    why = "checks could not run" if failed else "checks done"
    moved = rx._move(State.AWAITING_REVIEW, CHECKER, why, at)
    done = dataclasses.replace(moved, findings=findings, checked_basis=basis)
    return Outcome(done, (ChecksDone(findings, failed),))


def check_again(
    rx: Prescription, findings: tuple[Finding, ...], basis: int, *, failed: bool = False
) -> Outcome:
    """Findings computed again on a newer picture (``basis``) replace the earlier ones; the
    state and the claim stay as they are. Nothing changes for findings on a picture no newer
    than those it has (a run that lost a race with a later one), nor once a pharmacist has
    decided."""
    if rx.state not in REVIEWABLE or (rx.checked_basis is not None and basis <= rx.checked_basis):
        return Outcome(rx)
    again = dataclasses.replace(rx, findings=findings, checked_basis=basis)
    return Outcome(again, (ChecksDone(findings, failed, again=True),))


def link_patient(rx: Prescription, patient_id: uuid.UUID) -> Outcome:
    """The checks matched the prescription's patient to a profile (or made a new one)."""
    return Outcome(dataclasses.replace(rx, patient_id=patient_id))


# -- verification -------------------------------------------------------------------------


def claim(rx: Prescription, reviewer: Reviewer, now: dt.datetime) -> Outcome:
    """Take (or renew) the claim: a lock with an expiry, visible to colleagues."""
    taken = verification.take_claim(rx.claim, reviewer.user_id, now)
    if rx.state is State.AWAITING_REVIEW:
        moved = rx._move(State.IN_REVIEW, reviewer.actor, "claimed for review", now)
        return Outcome(dataclasses.replace(moved, claim=taken))
    if rx.state is State.IN_REVIEW:
        return Outcome(dataclasses.replace(rx, claim=taken))
    raise VerificationError("wrong_state", f"The prescription is {rx.state}.")


def release(rx: Prescription, reviewer: Reviewer, now: dt.datetime) -> Outcome:
    rx._in_review_with_claim(reviewer, now)
    return Outcome(rx._leave_review(State.AWAITING_REVIEW, reviewer, "released to the queue", now))


def approve(
    rx: Prescription,
    reviewer: Reviewer,
    overrides: object,
    now: dt.datetime,
    basis: int | None = None,
) -> Outcome:
    """Refused while a hard stop stands; every warning needs its override reason (``overrides``
    maps finding codes to reasons); a controlled substance needs a pharmacist with that
    permission. Refused, too, while the findings are stale (the patient's picture changed
    since they were computed) or when ``basis``, the findings' version the pharmacist saw,
    is not theirs: a decision never rests on findings older than the picture."""
    rx._in_review_with_claim(reviewer, now)
    if rx.findings_stale or (basis is not None and basis != rx.checked_basis):
        raise VerificationError(
            "checked_again",
            "The patient's picture changed and the prescription is being checked again: "
            "review the new findings, then decide.",
        )
    if rx.dea_schedule and not reviewer.controlled_substances:
        raise VerificationError(
            "controlled_substance_permission",
            "Approving controlled substances needs that permission on your account.",
        )
    if not isinstance(overrides, Mapping):
        raise VerificationError("overrides_invalid", "overrides must map finding codes to reasons.")
    accepted = verification.approval_overrides(
        ((f.code, f.severity.value) for f in rx.findings), overrides
    )
    reason = "approved" + "".join(f"; override {code}: {why}" for code, why in accepted.items())
    return Outcome(rx._leave_review(State.APPROVED, reviewer, reason, now), (Approved(accepted),))


def reject(
    rx: Prescription, reviewer: Reviewer, reason_code: object, text: object, now: dt.datetime
) -> Outcome:
    rx._in_review_with_claim(reviewer, now)
    code = verification.reason_code(reason_code, verification.REJECT_REASONS)
    why = verification.reason_text(text)
    rejected = rx._leave_review(State.REJECTED, reviewer, f"rejected ({code}): {why}", now)
    return Outcome(rejected, (Rejected(code),))


def clarify(
    rx: Prescription, reviewer: Reviewer, reason_code: object, text: object, now: dt.datetime
) -> Outcome:
    """Ask the prescriber: the question is an event the store queues for sending."""
    rx._in_review_with_claim(reviewer, now)
    code = verification.reason_code(reason_code, verification.CLARIFY_REASONS)
    why = verification.reason_text(text)
    asking = rx._leave_review(
        State.CLARIFICATION_REQUESTED, reviewer, f"clarification requested ({code}): {why}", now
    )
    asked = ClarificationAsked(reviewer.user_id, code, why, now)
    return Outcome(asking, (asked,))


def ask_prescriber(
    rx: Prescription, reviewer: Reviewer, question: verification.ChangeQuestion, now: dt.datetime
) -> Outcome:
    """Ask the prescriber for a change of any kind (``question`` is checked by
    :func:`eprescribe.verification.change_question`): from review, with the claim, as a
    clarification; the prescription waits for the answer in ``clarification_requested``."""
    if question.kind is ChangeRequestCode.SCRIPT_CLARIFICATION:
        asked = clarify(rx, reviewer, question.reason_code, question.text, now)
        (event,) = asked.events
        assert isinstance(event, ClarificationAsked)
        return Outcome(asked.rx, (dataclasses.replace(event, question=question),))
    rx._in_review_with_claim(reviewer, now)
    why = f"change requested ({question.label}): {question.text}"
    asking = rx._leave_review(State.CLARIFICATION_REQUESTED, reviewer, why, now)
    asked_for = ClarificationAsked(
        reviewer.user_id, question.reason_code, question.text, now, question
    )
    return Outcome(asking, (asked_for,))


# -- renewal (an RxRenewalRequest) ----------------------------------------------------------


def renewal_refusal(rx: Prescription) -> VerificationError | None:
    """Why no renewal may be requested for ``rx`` (whatever the refills), or None: only an
    accepted prescription is renewed, never one whose NewRx prohibited renewal requests, and
    not twice while the prescriber has not answered."""
    if rx.state not in ACCEPTED:
        return VerificationError(
            "wrong_state", f"Only an approved prescription is renewed; this one is {rx.state}."
        )
    if rx.renewal_prohibited:
        return VerificationError(
            "renewal_prohibited",
            "The prescriber asked for no renewal requests for this prescription "
            "(ProhibitRenewalRequest).",
        )
    if rx.renewal_open_since is not None:
        return VerificationError(
            "renewal_pending",
            "A renewal request sent "
            f"{rx.renewal_open_since.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
            " is still waiting for the prescriber's answer.",
        )
    return None


def request_renewal(
    rx: Prescription,
    reviewer: Reviewer,
    now: dt.datetime,
    *,
    refills_used: bool = False,
    refills: int | None = None,
    note: object = None,
) -> Outcome:
    """Ask the prescriber to renew an accepted prescription whose refills are used up: a
    prescription written with none (NumberOfRefills 0), or one whose refills the pharmacist
    states are used (``refills_used``: the hub counts no fills yet). No claim is needed and
    the state stays as it is; the request is an event the store queues for sending."""
    refused = renewal_refusal(rx)
    if refused is not None:
        raise refused
    if rx.refills > 0 and not refills_used:
        raise VerificationError(
            "refills_remaining",
            f"The prescription was written with {rx.refills} refills: confirm they are used "
            "up before asking for a renewal.",
        )
    if refills is not None and not 0 <= refills <= verification.REFILLS_MAX:
        raise VerificationError(
            "refills_invalid", f"refills must be from 0 to {verification.REFILLS_MAX}."
        )
    text = verification.reason_text(note) if note is not None else None
    asked = RenewalRequested(reviewer.user_id, now, text, refills, rx.refills > 0)
    return Outcome(rx, (asked,))


def add_note(rx: Prescription, author: str, text: object, now: dt.datetime) -> Outcome:
    """A note from a pharmacist or a technician (``author`` is the user ID); the state and
    the claim stay as they are."""
    return Outcome(rx, (NoteAdded(author, verification.reason_text(text), now),))


# -- the fills (eprescribe.dispensing.fills) ------------------------------------------------


def follow_fill(
    rx: Prescription, target: State, actor: str, reason: str, at: dt.datetime
) -> Prescription:
    """The prescription moved in step with its current fill (the fill rules decide; this only
    records the prescription's own transition)."""
    return rx._move(target, actor, reason, at)


# -- cancellation (a CancelRx) ------------------------------------------------------------

#: not filled yet: a prescriber's approved change replaces one of these
UNFILLED = frozenset(
    {
        State.RECEIVED,
        State.CHECKING,
        State.AWAITING_REVIEW,
        State.IN_REVIEW,
        State.CLARIFICATION_REQUESTED,
        State.APPROVED,
    }
)
#: a CancelRx is approved in these states, as long as no fill was ever handed over: a fill
#: being made, checked or waiting in its bin is product counted but still in the pharmacy (the
#: open fill ends with the prescription, and its product goes back to stock); so is one
#: returned to stock
CANCELLABLE = UNFILLED | {
    State.FILLING,
    State.PRODUCT_CHECK,
    State.READY,
    State.RETURNED_TO_STOCK,
}


class CancelDenial(enum.StrEnum):
    """Why a CancelRx is answered ``Denied``.

    The hub's own reasons: the CancelRxResponse ``Denied/ReasonCode`` each one is sent as is
    the outbound message's business, and the code list is not in the hub's reference
    (ncpdp-script.md), so no wire code is written here.
    """

    #: no prescription matches the CancelRx (:mod:`eprescribe.cancellations`)
    NOT_FOUND = "not_found"
    #: a fill was handed over (completed, or a refill after one): the medication is with the
    #: patient
    ALREADY_DISPENSED = "already_dispensed"
    #: the prescription ended before (rejected, or cancelled already)
    ALREADY_ENDED = "already_ended"

    @property
    def text(self) -> str:
        return _DENIAL_TEXT[self]


_DENIAL_TEXT = {
    CancelDenial.NOT_FOUND: "No prescription matches the cancel request.",
    CancelDenial.ALREADY_DISPENSED: "The prescription has already been dispensed.",
    CancelDenial.ALREADY_ENDED: "The prescription was already rejected or cancelled.",
}


@dataclass(frozen=True, slots=True)
class CancelApproved:
    """The prescription is cancelled: store ``outcome``, answer Approved."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class CancelDenied:
    """Nothing changed: answer Denied with ``reason``."""

    reason: CancelDenial

    @property
    def text(self) -> str:
        return self.reason.text


CancelAnswer: TypeAlias = CancelApproved | CancelDenied


def cancel(rx: Prescription, actor: str, reason: str, now: dt.datetime) -> CancelAnswer:
    """The prescriber's cancel: approved (the prescription is ``cancelled``, the claim on it
    ends; an open fill ends with it, which is the fill store's part) while nothing has been
    handed over, else denied with nothing changed. Both answers are values, never an
    exception: a CancelRx is always answered, and the type leaves no third way (``actor`` is
    the sender, ``client:<id>``)."""
    if rx.fills_dispensed > 0 or rx.state is State.COMPLETED:
        return CancelDenied(CancelDenial.ALREADY_DISPENSED)
    if rx.state not in CANCELLABLE:
        return CancelDenied(CancelDenial.ALREADY_ENDED)
    holder = rx.claim.holder if rx.claim is not None and rx.claim.active(now) else None
    moved = dataclasses.replace(rx._move(State.CANCELLED, actor, reason, now), claim=None)
    return CancelApproved(Outcome(moved, (Cancelled(actor, reason, now, holder),)))


# -- the prescriber's answers (RxChangeResponse, RxRenewalResponse) -----------------------


def receive_replacement(
    rx_id: uuid.UUID,
    pharmacy_id: uuid.UUID,
    actor: str,
    answer: str,
    original: uuid.UUID,
    at: dt.datetime,
    dea_schedule: str | None = None,
    *,
    renewal: bool = False,
) -> Prescription:
    """The prescription a prescriber's answer makes (``answer``: e.g. "RxChangeResponse
    ApprovedWithChanges"): ``received`` like a NewRx's, so the checks run on it, its first
    transition naming the prescription it replaces or renews."""
    link = "renews" if renewal else "replaces"
    first = received(actor, f"{answer} received; {link} prescription {original}", at)
    return Prescription(rx_id, pharmacy_id, State.RECEIVED, (first,), dea_schedule)


def replaced(
    rx: Prescription, actor: str, replacement: uuid.UUID, answer: str, now: dt.datetime
) -> Outcome:
    """The prescriber approved a change: ``replacement`` takes this prescription's place. One
    not dispensed yet ends (``cancelled``, the reason naming its replacement; a claim on it
    ends too); one dispensed or ended stays as it is (the replacement is reviewed like any
    prescription, the link to this one in sight). One whose fill has started stays too: its
    fill is the pharmacy's to finish or stop."""
    if rx.state not in UNFILLED:
        return Outcome(rx)
    reason = f"replaced by prescription {replacement} ({answer})"
    moved = dataclasses.replace(rx._move(State.CANCELLED, actor, reason, now), claim=None)
    return Outcome(moved)


def prescriber_answered(
    rx: Prescription,
    actor: str,
    why: str,
    now: dt.datetime,
    prior_authorization: str | None = None,
) -> Outcome:
    """An answer the pharmacist decides on (a change Denied, or Validated): a prescription
    waiting for it (``clarification_requested``) goes back to the pharmacist's queue, ``why``
    (the answer, with a denial's reasons) as the transition's reason; in any other state it
    stays. A Validated answer's ``prior_authorization`` number is recorded either way."""
    events: tuple[Event, ...] = ()
    if prior_authorization:
        events = (PriorAuthorizationRecorded(prior_authorization),)
    if rx.state is State.CLARIFICATION_REQUESTED:
        return Outcome(rx._move(State.AWAITING_REVIEW, actor, why, now), events)
    return Outcome(rx, events)
