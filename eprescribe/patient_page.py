"""The patient page's rules, pure: what a prescription's state is called in plain words, what
more of it a patient may ask for (a refill while refills remain, else a renewal from the
prescriber), and reading the address a patient types (an email or a mobile number).

The hub's side (sessions, codes, requests) is ``server.patient_page``; nothing here knows the
web or a database.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Final

from .contacts import ContactKind, normalise
from .prescriptions import Prescription, renewal_refusal
from .workflow import State

#: a sign-in code holds this long and takes this many tries (as a contact point's code)
CODE_TTL: Final = dt.timedelta(minutes=10)
MAX_ATTEMPTS: Final = 5
#: at most this many codes for one contact point within CODE_TTL (the sixth waits)
MAX_CODES: Final = 3
#: a patient session ends after this long unused, or this long after sign-in
IDLE: Final = dt.timedelta(minutes=30)
ABSOLUTE: Final = dt.timedelta(hours=4)


class Status(StrEnum):
    """What a patient is told of a prescription."""

    RECEIVED = "received"
    BEING_CHECKED = "being_checked"
    NEEDS_PRESCRIBER = "needs_prescriber"
    BEING_PREPARED = "being_prepared"
    READY = "ready"
    OUT_FOR_DELIVERY = "out_for_delivery"
    PICKED_UP = "picked_up"
    NOT_COLLECTED = "not_collected"
    CANCELLED = "cancelled"


#: each status in words a patient reads
WORDS: Final = {
    Status.RECEIVED: "Received",
    Status.BEING_CHECKED: "Being checked by the pharmacist",
    Status.NEEDS_PRESCRIBER: "Waiting for your prescriber",
    Status.BEING_PREPARED: "Being prepared",
    Status.READY: "Ready for pick-up",
    Status.OUT_FOR_DELIVERY: "Out for delivery",
    Status.PICKED_UP: "Picked up",
    Status.NOT_COLLECTED: "Not collected: returned to the shelf",
    Status.CANCELLED: "Cancelled",
}

_BY_STATE: Final = {
    State.RECEIVED: Status.RECEIVED,
    State.CHECKING: Status.BEING_CHECKED,
    State.AWAITING_REVIEW: Status.BEING_CHECKED,
    State.IN_REVIEW: Status.BEING_CHECKED,
    State.CLARIFICATION_REQUESTED: Status.NEEDS_PRESCRIBER,
    State.APPROVED: Status.BEING_PREPARED,
    State.FILLING: Status.BEING_PREPARED,
    State.PRODUCT_CHECK: Status.BEING_PREPARED,
    State.READY: Status.READY,
    State.COMPLETED: Status.PICKED_UP,
    State.RETURNED_TO_STOCK: Status.NOT_COLLECTED,
    State.REJECTED: Status.CANCELLED,
    State.CANCELLED: Status.CANCELLED,
}


def status_of(state: State | str, *, shipped: bool = False) -> Status:
    """The one mapping from a prescription's state to what the patient is told; a ready fill
    shipped to the patient (``shipped``, not delivered yet) is out for delivery."""
    status = _BY_STATE[State(state)]
    return Status.OUT_FOR_DELIVERY if shipped and status is Status.READY else status


class RefillKind(StrEnum):
    REFILL = "refill"
    RENEWAL = "renewal"


def refills_left(rx: Prescription) -> int:
    """Fills still allowed beyond those handed over (the original fill and its refills)."""
    return max(0, rx.refills + 1 - rx.fills_dispensed)


def refill_kind(rx: Prescription) -> RefillKind | None:
    """What a patient may ask for ``rx``: a refill when it was handed over (or never
    collected) and refills remain; a renewal when none remain and the prescriber takes
    renewal requests; ``None`` otherwise (still open, cancelled, renewal prohibited or
    already asked)."""
    if rx.state not in (State.COMPLETED, State.RETURNED_TO_STOCK):
        return None
    if rx.state is State.RETURNED_TO_STOCK or refills_left(rx) > 0:
        return RefillKind.REFILL
    return RefillKind.RENEWAL if renewal_refusal(rx) is None else None


def read_address(typed: str) -> tuple[ContactKind, str]:
    """The contact point a patient typed: an email when it has an ``@``, else a mobile
    number; normalised as the profile stores it (``ContactError`` when it is neither)."""
    kind = ContactKind.EMAIL if "@" in typed else ContactKind.MOBILE
    return kind, normalise(kind, typed)
