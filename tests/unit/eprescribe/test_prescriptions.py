"""The prescription aggregate, as whole histories: each test walks a prescription from its
arrival through the checks and the pharmacist's decisions, and reads the history it leaves."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from eprescribe import prescriptions as rx_rules
from eprescribe.checks import Finding, Severity
from eprescribe.prescriptions import (
    CANCELLABLE,
    Approved,
    CancelApproved,
    CancelDenial,
    CancelDenied,
    Cancelled,
    ChecksDone,
    ClarificationAsked,
    NoteAdded,
    Prescription,
    Rejected,
    Reviewer,
)
from eprescribe.verification import CLAIM_TTL, VerificationError
from eprescribe.workflow import State, TransitionNotAllowed

T0 = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
ANNA = Reviewer(str(uuid.UUID(int=1)))
BORIS = Reviewer(str(uuid.UUID(int=2)), controlled_substances=True)
SCHEDULE_II = "C48675"
WARNING = Finding("THERAPEUTIC_DUPLICATION", Severity.WARNING, "two SSRIs")
HARD_STOP = Finding("DEA_INVALID", Severity.HARD_STOP, "DEA number fails its check digit")
INFO = Finding("NDC_UNKNOWN", Severity.INFO, "not in the reference")


def minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def arrived(schedule: str | None = None) -> Prescription:
    return rx_rules.receive(
        uuid.UUID(int=7), uuid.UUID(int=9), "client:ehr", "NewRx", T0, dea_schedule=schedule
    )


def checked(findings: tuple[Finding, ...] = (), schedule: str | None = None) -> Prescription:
    started = rx_rules.start_checks(arrived(schedule), minutes(1)).rx
    return rx_rules.finish_checks(started, findings, minutes(2)).rx


def path(rx: Prescription) -> list[tuple[State | None, State, str]]:
    return [(step.from_state, step.to_state, step.actor) for step in rx.history]


def test_arrival_checks_claim_and_approval_with_an_override() -> None:
    rx = checked((WARNING, INFO))
    claimed = rx_rules.claim(rx, ANNA, minutes(3)).rx
    assert claimed.claim is not None
    assert claimed.claim.holder == ANNA.user_id
    outcome = rx_rules.approve(
        claimed, ANNA, {"THERAPEUTIC_DUPLICATION": " patient switching, told "}, minutes(4)
    )
    assert outcome.events == (Approved({"THERAPEUTIC_DUPLICATION": "patient switching, told"}),)
    done = outcome.rx
    assert done.state is State.APPROVED
    assert done.claim is None
    assert path(done) == [
        (None, State.RECEIVED, "client:ehr"),
        (State.RECEIVED, State.CHECKING, "system:checks"),
        (State.CHECKING, State.AWAITING_REVIEW, "system:checks"),
        (State.AWAITING_REVIEW, State.IN_REVIEW, f"user:{ANNA.user_id}"),
        (State.IN_REVIEW, State.APPROVED, f"user:{ANNA.user_id}"),
    ]
    assert done.history[-1].reason == (
        "approved; override THERAPEUTIC_DUPLICATION: patient switching, told"
    )
    assert [step.at for step in done.history] == [T0, *map(minutes, (1, 2, 3, 4))]


def test_the_checks_record_their_findings_and_an_interrupted_run_is_finished() -> None:
    started = rx_rules.start_checks(arrived(), minutes(1)).rx
    again = rx_rules.start_checks(started, minutes(5))  # a redelivered task
    assert again.rx == started
    assert again.events == ()
    outcome = rx_rules.finish_checks(started, (HARD_STOP,), minutes(6))
    assert outcome.rx.findings == (HARD_STOP,)
    assert outcome.events == (ChecksDone((HARD_STOP,)),)
    assert outcome.rx.history[-1].reason == "checks done"
    with pytest.raises(TransitionNotAllowed):
        rx_rules.finish_checks(outcome.rx, (), minutes(7))  # finished by another run


def test_checks_that_cannot_run_park_the_prescription_for_review() -> None:
    started = rx_rules.start_checks(arrived(), minutes(1)).rx
    outcome = rx_rules.finish_checks(started, (HARD_STOP,), minutes(2), failed=True)
    assert outcome.rx.state is State.AWAITING_REVIEW
    assert outcome.events == (ChecksDone((HARD_STOP,), failed=True),)
    assert outcome.rx.history[-1].reason == "checks could not run"


def test_a_colleagues_claim_blocks_until_it_runs_out() -> None:
    rx = rx_rules.claim(checked(), ANNA, minutes(3)).rx
    with pytest.raises(VerificationError) as refused:
        rx_rules.claim(rx, BORIS, minutes(4))
    assert refused.value.code == "claimed_by_other"
    with pytest.raises(VerificationError) as refused:
        rx_rules.approve(rx, BORIS, {}, minutes(4))
    assert refused.value.code == "claimed_by_other"
    later = minutes(3) + CLAIM_TTL + dt.timedelta(seconds=1)
    taken = rx_rules.claim(rx, BORIS, later).rx
    assert taken.state is State.IN_REVIEW  # taken over, no new transition
    assert taken.claim is not None
    assert taken.claim.holder == BORIS.user_id
    assert len(taken.history) == len(rx.history)
    assert rx_rules.approve(taken, BORIS, {}, later).rx.state is State.APPROVED


def test_renewing_a_claim_and_releasing_it() -> None:
    rx = rx_rules.claim(checked(), ANNA, minutes(3)).rx
    renewed = rx_rules.claim(rx, ANNA, minutes(10)).rx
    assert renewed.claim is not None
    assert renewed.claim.until == minutes(10) + CLAIM_TTL
    released = rx_rules.release(renewed, ANNA, minutes(11)).rx
    assert released.state is State.AWAITING_REVIEW
    assert released.claim is None
    assert released.history[-1].reason == "released to the queue"
    with pytest.raises(VerificationError) as refused:
        rx_rules.release(released, ANNA, minutes(12))
    assert refused.value.code == "claim_required"


def test_approval_is_refused_while_a_hard_stop_stands_then_rejected() -> None:
    rx = rx_rules.claim(checked((HARD_STOP, WARNING)), ANNA, minutes(3)).rx
    with pytest.raises(VerificationError) as refused:
        rx_rules.approve(rx, ANNA, {"THERAPEUTIC_DUPLICATION": "ok"}, minutes(4))
    assert (refused.value.code, refused.value.codes) == ("hard_stops", ("DEA_INVALID",))
    outcome = rx_rules.reject(rx, ANNA, "prescriber_not_verified", "DEA does not check", minutes(5))
    assert outcome.rx.state is State.REJECTED
    assert outcome.rx.claim is None
    assert outcome.events == (Rejected("prescriber_not_verified"),)
    assert outcome.rx.history[-1].reason == (
        "rejected (prescriber_not_verified): DEA does not check"
    )
    with pytest.raises(VerificationError) as refused:
        rx_rules.claim(outcome.rx, ANNA, minutes(6))
    assert refused.value.code == "wrong_state"


def test_every_warning_needs_a_reason_and_only_warnings_take_one() -> None:
    rx = rx_rules.claim(checked((WARNING,)), ANNA, minutes(3)).rx
    for overrides, code in (
        ({}, "override_reasons_missing"),
        ({"THERAPEUTIC_DUPLICATION": "  "}, "override_reasons_missing"),
        ({"THERAPEUTIC_DUPLICATION": "ok", "NDC_UNKNOWN": "x"}, "unknown_overrides"),
        (["THERAPEUTIC_DUPLICATION"], "overrides_invalid"),
    ):
        with pytest.raises(VerificationError) as refused:
            rx_rules.approve(rx, ANNA, overrides, minutes(4))
        assert refused.value.code == code


def test_a_controlled_substance_needs_the_permission() -> None:
    rx = checked(schedule=SCHEDULE_II)
    mine = rx_rules.claim(rx, ANNA, minutes(3)).rx
    with pytest.raises(VerificationError) as refused:
        rx_rules.approve(mine, ANNA, {}, minutes(4))
    assert refused.value.code == "controlled_substance_permission"
    theirs = rx_rules.claim(rx, BORIS, minutes(3)).rx
    assert rx_rules.approve(theirs, BORIS, {}, minutes(4)).rx.state is State.APPROVED


def test_a_clarification_asks_the_prescriber_and_the_answer_comes_back_to_review() -> None:
    rx = rx_rules.claim(checked(), ANNA, minutes(3)).rx
    with pytest.raises(VerificationError) as refused:
        rx_rules.clarify(rx, ANNA, "colour", "which colour?", minutes(4))
    assert refused.value.code == "reason_code_invalid"
    outcome = rx_rules.clarify(rx, ANNA, "strength", " 10 or 20 mg? ", minutes(4))
    assert outcome.rx.state is State.CLARIFICATION_REQUESTED
    assert outcome.rx.claim is None
    assert outcome.events == (
        ClarificationAsked(ANNA.user_id, "strength", "10 or 20 mg?", minutes(4)),
    )
    with pytest.raises(TransitionNotAllowed):
        rx_rules.start_checks(outcome.rx, minutes(5))


def test_a_note_changes_neither_state_nor_claim() -> None:
    rx = rx_rules.claim(checked(), ANNA, minutes(3)).rx
    outcome = rx_rules.add_note(rx, BORIS.user_id, "patient prefers mornings", minutes(4))
    assert outcome.rx == rx
    assert outcome.events == (NoteAdded(BORIS.user_id, "patient prefers mornings", minutes(4)),)
    with pytest.raises(VerificationError) as refused:
        rx_rules.add_note(rx, BORIS.user_id, "", minutes(5))
    assert refused.value.code == "reason_required"


def test_decisions_need_the_review_state_and_a_claim() -> None:
    waiting = checked()
    for decide in (
        lambda rx: rx_rules.approve(rx, ANNA, {}, minutes(4)),
        lambda rx: rx_rules.reject(rx, ANNA, "other", "no", minutes(4)),
        lambda rx: rx_rules.clarify(rx, ANNA, "other", "why?", minutes(4)),
        lambda rx: rx_rules.release(rx, ANNA, minutes(4)),
    ):
        with pytest.raises(VerificationError) as refused:
            decide(waiting)
        assert refused.value.code == "claim_required"
        with pytest.raises(VerificationError) as refused:
            decide(arrived())
        assert refused.value.code == "wrong_state"


def test_linking_the_patient_keeps_the_history() -> None:
    rx = rx_rules.start_checks(arrived(), minutes(1)).rx
    linked = rx_rules.link_patient(rx, uuid.UUID(int=42)).rx
    assert linked.patient_id == uuid.UUID(int=42)
    assert linked.history == rx.history


PATIENT = uuid.UUID(int=11)


def on_picture(version: int, now: int | None = None) -> Prescription:
    """Checked for a linked patient on picture ``version``; the picture is at ``now``."""
    linked = rx_rules.link_patient(rx_rules.start_checks(arrived(), minutes(1)).rx, PATIENT).rx
    done = rx_rules.finish_checks(linked, (WARNING,), minutes(2), basis=version).rx
    return dataclasses.replace(done, picture=version if now is None else now)


def test_findings_on_an_older_picture_refuse_approval_until_checked_again() -> None:
    claimed = rx_rules.claim(on_picture(3, now=4), ANNA, minutes(3)).rx
    assert claimed.findings_stale
    overrides = {"THERAPEUTIC_DUPLICATION": "reviewed"}
    with pytest.raises(VerificationError) as refused:
        rx_rules.approve(claimed, ANNA, overrides, minutes(4))
    assert refused.value.code == "checked_again"
    again = rx_rules.check_again(claimed, (WARNING, INFO), 4)
    assert again.events == (ChecksDone((WARNING, INFO), again=True),)
    fresh = dataclasses.replace(again.rx, picture=4)
    assert (fresh.state, fresh.claim, fresh.checked_basis) == (State.IN_REVIEW, claimed.claim, 4)
    assert fresh.history == claimed.history  # checked again: no transition, no move
    # the findings the pharmacist saw (basis 3) are not the current ones: refused as well
    with pytest.raises(VerificationError):
        rx_rules.approve(fresh, ANNA, overrides, minutes(5), basis=3)
    approved = rx_rules.approve(fresh, ANNA, overrides, minutes(5), basis=4).rx
    assert approved.state is State.APPROVED


def test_an_older_or_equal_basis_never_replaces_newer_findings() -> None:
    rx = on_picture(5)
    assert not rx.findings_stale
    for basis in (4, 5):
        assert rx_rules.check_again(rx, (), basis) == rx_rules.Outcome(rx)
    rejected = rx_rules.reject(
        rx_rules.claim(on_picture(5, now=6), ANNA, minutes(3)).rx,
        ANNA,
        "drug_interaction",
        "on file",
        minutes(4),
    ).rx
    assert rx_rules.check_again(rejected, (), 6) == rx_rules.Outcome(rejected)  # decided


def test_an_unlinked_prescription_has_no_picture_to_go_stale() -> None:
    rx = checked((WARNING,))
    assert rx.patient_id is None
    assert not rx.findings_stale


# -- cancellation (a CancelRx) ------------------------------------------------------------

EHR = "client:ehr"


def dispensed_step(rx: Prescription, target: State, at: dt.datetime) -> Prescription:
    """A step of the fill flow (the fill rules' business, eprescribe.dispensing.fills), as the
    prescription records it."""
    moved = rx_rules.follow_fill(rx, target, "user:tech", "fill", at)
    if target is State.COMPLETED:
        return dataclasses.replace(moved, fills_dispensed=rx.fills_dispensed + 1)
    return moved


def in_every_state() -> dict[State, Prescription]:
    """One prescription walked to each state by the decisions that lead there."""
    received = arrived()
    checking = rx_rules.start_checks(received, minutes(1)).rx
    awaiting = rx_rules.finish_checks(checking, (), minutes(2)).rx
    in_review = rx_rules.claim(awaiting, ANNA, minutes(3)).rx
    asking = rx_rules.clarify(in_review, ANNA, "dose", "which dose?", minutes(4)).rx
    approved = rx_rules.approve(in_review, ANNA, {}, minutes(4)).rx
    rejected = rx_rules.reject(in_review, ANNA, "prescriber_not_verified", "no", minutes(4)).rx
    filling = dispensed_step(approved, State.FILLING, minutes(5))
    checking_product = dispensed_step(filling, State.PRODUCT_CHECK, minutes(5))
    ready = dispensed_step(checking_product, State.READY, minutes(6))
    completed = dispensed_step(ready, State.COMPLETED, minutes(7))
    returned = dispensed_step(ready, State.RETURNED_TO_STOCK, minutes(7))
    cancelled = rx_rules.cancel(awaiting, EHR, "CancelRx received", minutes(3))
    assert isinstance(cancelled, CancelApproved)
    walked = (received, checking, awaiting, in_review, asking, approved, rejected)
    filled = (filling, checking_product, ready, completed, returned)
    every = {rx.state: rx for rx in (*walked, *filled, cancelled.outcome.rx)}
    assert set(every) == set(State)
    return every


def test_a_cancel_is_approved_in_every_state_before_dispensing() -> None:
    assert set(State) - CANCELLABLE == {
        State.COMPLETED,
        State.REJECTED,
        State.CANCELLED,
    }
    for state, rx in in_every_state().items():
        if state not in CANCELLABLE:
            continue
        answer = rx_rules.cancel(rx, EHR, "CancelRx received", minutes(9))
        assert isinstance(answer, CancelApproved), state
        done = answer.outcome.rx
        assert done.state is State.CANCELLED
        assert done.claim is None
        assert done.history[: len(rx.history)] == rx.history
        assert path(done)[-1] == (state, State.CANCELLED, EHR)
        assert done.history[-1].reason == "CancelRx received"
        assert done.history[-1].at == minutes(9)
        (event,) = answer.outcome.events
        assert isinstance(event, Cancelled)
        assert event.response == "Approved"


def test_a_cancel_in_review_ends_the_claim_and_names_its_holder() -> None:
    in_review = rx_rules.claim(checked(), ANNA, minutes(3)).rx
    answer = rx_rules.cancel(in_review, EHR, "CancelRx received", minutes(4))
    assert isinstance(answer, CancelApproved)
    assert answer.outcome.rx.claim is None
    assert answer.outcome.events == (
        Cancelled(EHR, "CancelRx received", minutes(4), claim_holder=ANNA.user_id),
    )
    assert path(answer.outcome.rx) == [
        (None, State.RECEIVED, "client:ehr"),
        (State.RECEIVED, State.CHECKING, "system:checks"),
        (State.CHECKING, State.AWAITING_REVIEW, "system:checks"),
        (State.AWAITING_REVIEW, State.IN_REVIEW, f"user:{ANNA.user_id}"),
        (State.IN_REVIEW, State.CANCELLED, EHR),
    ]
    # the pharmacist's next decision finds it cancelled
    with pytest.raises(VerificationError) as refused:
        rx_rules.approve(answer.outcome.rx, ANNA, {}, minutes(5))
    assert refused.value.code == "wrong_state"


def test_an_expired_claim_names_no_holder() -> None:
    in_review = rx_rules.claim(checked(), ANNA, minutes(3)).rx
    later = minutes(3) + CLAIM_TTL + dt.timedelta(seconds=1)
    answer = rx_rules.cancel(in_review, EHR, "CancelRx received", later)
    assert isinstance(answer, CancelApproved)
    assert answer.outcome.events == (Cancelled(EHR, "CancelRx received", later),)


def test_a_cancel_after_dispensing_or_the_end_is_denied_and_changes_nothing() -> None:
    expected = {
        State.COMPLETED: CancelDenial.ALREADY_DISPENSED,
        State.REJECTED: CancelDenial.ALREADY_ENDED,
        State.CANCELLED: CancelDenial.ALREADY_ENDED,
    }
    every = in_every_state()
    for state, reason in expected.items():
        answer = rx_rules.cancel(every[state], EHR, "CancelRx received", minutes(9))
        assert answer == CancelDenied(reason), state
        assert answer.text == reason.text
    # the prescription itself is untouched: only the answer is a value
    assert every[State.COMPLETED].state is State.COMPLETED
    # a refill being made after a fill was handed over: the medication is with the patient
    refill = dispensed_step(every[State.COMPLETED], State.FILLING, minutes(8))
    answer = rx_rules.cancel(refill, EHR, "CancelRx received", minutes(9))
    assert answer == CancelDenied(CancelDenial.ALREADY_DISPENSED)


def test_every_denial_has_its_text() -> None:
    assert all(reason.text for reason in CancelDenial)


# -- the prescriber's answers ---------------------------------------------------------------

NEW = uuid.UUID(int=8)


def test_an_approved_change_ends_the_prescription_asked_about_with_its_successor_named() -> None:
    asking = in_every_state()[State.CLARIFICATION_REQUESTED]
    outcome = rx_rules.replaced(asking, EHR, NEW, "RxChangeResponse Approved", minutes(9))
    assert path(outcome.rx)[-1] == (State.CLARIFICATION_REQUESTED, State.CANCELLED, EHR)
    assert outcome.rx.history[-1].reason == (
        f"replaced by prescription {NEW} (RxChangeResponse Approved)"
    )
    assert (outcome.rx.claim, outcome.events) == (None, ())
    # what is dispensed or ended stays as it is: the replacement is reviewed, linked
    for state in (State.READY, State.COMPLETED, State.REJECTED, State.CANCELLED):
        rx = in_every_state()[state]
        assert rx_rules.replaced(rx, EHR, NEW, "RxChangeResponse Approved", minutes(9)).rx == rx


def test_a_replacement_arrives_received_naming_what_it_replaces_or_renews() -> None:
    change = rx_rules.receive_replacement(
        NEW, uuid.UUID(int=9), EHR, "RxChangeResponse ApprovedWithChanges", uuid.UUID(int=7), T0
    )
    assert path(change) == [(None, State.RECEIVED, EHR)]
    assert change.history[0].reason.endswith(f"replaces prescription {uuid.UUID(int=7)}")
    renewal = rx_rules.receive_replacement(
        NEW,
        uuid.UUID(int=9),
        EHR,
        "RxRenewalResponse Approved",
        uuid.UUID(int=7),
        T0,
        SCHEDULE_II,
        renewal=True,
    )
    assert renewal.dea_schedule == SCHEDULE_II
    assert renewal.history[0].reason.endswith(f"renews prescription {uuid.UUID(int=7)}")
    # and walks the checks like any prescription
    assert rx_rules.start_checks(renewal, minutes(1)).rx.state is State.CHECKING


def test_a_denied_or_validated_change_returns_to_the_pharmacist_never_silently() -> None:
    asking = in_every_state()[State.CLARIFICATION_REQUESTED]
    why = "prescriber answered: RxChangeResponse Denied - reasons: AA"
    denied = rx_rules.prescriber_answered(asking, EHR, why, minutes(9))
    assert path(denied.rx)[-1] == (State.CLARIFICATION_REQUESTED, State.AWAITING_REVIEW, EHR)
    assert (denied.rx.history[-1].reason, denied.events) == (why, ())
    validated = rx_rules.prescriber_answered(asking, EHR, "validated", minutes(9), "PA-1")
    assert validated.rx.state is State.AWAITING_REVIEW
    assert validated.events == (rx_rules.PriorAuthorizationRecorded("PA-1"),)
    # an answer to a prescription no longer waiting for it moves nothing, still records
    approved = in_every_state()[State.APPROVED]
    late = rx_rules.prescriber_answered(approved, EHR, "validated", minutes(9), "PA-1")
    assert late.rx == approved
    assert late.events == (rx_rules.PriorAuthorizationRecorded("PA-1"),)
