"""The prescription state machine (DESIGN.md "Prescription states").

Every change of state is a :class:`Transition` recorded with actor, time and reason; this
module decides which changes are allowed and knows nothing of storage.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class State(enum.StrEnum):
    RECEIVED = "received"
    CHECKING = "checking"
    AWAITING_REVIEW = "awaiting_review"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLARIFICATION_REQUESTED = "clarification_requested"
    #: a fill is being made (counted, scanned): nothing handed over yet
    FILLING = "filling"
    #: the fill waits for a pharmacist's product check
    PRODUCT_CHECK = "product_check"
    #: checked, labelled and in its will-call bin: not yet handed over
    READY = "ready"
    #: the current fill was handed over (a refill starts from here)
    COMPLETED = "completed"
    #: the current fill was not collected in time and went back to stock
    RETURNED_TO_STOCK = "returned_to_stock"
    CANCELLED = "cancelled"


_OPEN = {
    State.RECEIVED,
    State.CHECKING,
    State.AWAITING_REVIEW,
    State.IN_REVIEW,
    State.CLARIFICATION_REQUESTED,
    State.APPROVED,
    State.FILLING,
    State.PRODUCT_CHECK,
    State.READY,
    State.RETURNED_TO_STOCK,
}

#: a pharmacist accepted it: what the patient takes (active medication, while its supply lasts)
ACCEPTED = frozenset(
    {
        State.APPROVED,
        State.FILLING,
        State.PRODUCT_CHECK,
        State.READY,
        State.COMPLETED,
        State.RETURNED_TO_STOCK,
    }
)

#: a fill of it may start: approved and never filled, a refill after a completed fill (the
#: fill rules count the refills left), or filled again after a return to stock
FILLABLE = frozenset({State.APPROVED, State.COMPLETED, State.RETURNED_TO_STOCK})
#: a fill of it is open (being filled, checked, or waiting in its bin)
FILL_OPEN = frozenset({State.FILLING, State.PRODUCT_CHECK, State.READY})

#: not yet decided: part of the patient's picture as a pending prescription, not yet verified
PENDING = frozenset(
    {
        State.RECEIVED,
        State.CHECKING,
        State.AWAITING_REVIEW,
        State.IN_REVIEW,
        State.CLARIFICATION_REQUESTED,
    }
)

#: checked and waiting for a pharmacist's decision: checked again when the picture changes
REVIEWABLE = frozenset({State.AWAITING_REVIEW, State.IN_REVIEW, State.CLARIFICATION_REQUESTED})

ALLOWED: dict[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.CHECKING}),
    State.CHECKING: frozenset({State.AWAITING_REVIEW, State.RECEIVED}),
    State.AWAITING_REVIEW: frozenset({State.IN_REVIEW, State.CHECKING}),
    State.IN_REVIEW: frozenset(
        {State.APPROVED, State.REJECTED, State.CLARIFICATION_REQUESTED, State.AWAITING_REVIEW}
    ),
    State.CLARIFICATION_REQUESTED: frozenset({State.AWAITING_REVIEW}),
    State.APPROVED: frozenset({State.FILLING}),
    State.FILLING: frozenset({State.PRODUCT_CHECK}),
    # sent back to the technician with a reason, or checked and ready
    State.PRODUCT_CHECK: frozenset({State.READY, State.FILLING}),
    # handed over, or not collected in time
    State.READY: frozenset({State.COMPLETED, State.RETURNED_TO_STOCK}),
    State.REJECTED: frozenset(),
    # a refill (or the completion of a partial fill), while refills remain
    State.COMPLETED: frozenset({State.FILLING}),
    # filled again
    State.RETURNED_TO_STOCK: frozenset({State.FILLING}),
    State.CANCELLED: frozenset(),
}


class TransitionNotAllowed(ValueError):
    """The prescription cannot move from its current state to the one asked for."""


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: State | None
    to_state: State
    actor: str
    reason: str
    at: dt.datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("transition times are timezone-aware")
        if not self.actor or not self.reason:
            raise ValueError("a transition needs an actor and a reason")


def can_move(current: State, target: State) -> bool:
    if target is State.CANCELLED:
        return current in _OPEN
    return target in ALLOWED[current]


def received(actor: str, reason: str, at: dt.datetime) -> Transition:
    """The first entry of every prescription's history."""
    return Transition(None, State.RECEIVED, actor, reason, at)


def move(current: State, target: State, actor: str, reason: str, at: dt.datetime) -> Transition:
    if not can_move(current, target):
        raise TransitionNotAllowed(f"{current} -> {target} is not allowed")
    return Transition(current, target, actor, reason, at)
