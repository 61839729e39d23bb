"""The consult lifecycle: invite, waiting room, admission, call, end; consent and recording.

States: ``scheduled -> waiting -> admitted -> in_call -> ended``, or ``expired`` / ``cancelled``.
A patient may leave the waiting room (back to ``scheduled``) and a dropped call goes back to
``admitted`` until the media reconnects. Every change is a :class:`Step` in the history, with
actor, time and reason. The patient's invite is a single-use token with an expiry; only its
SHA-256 is kept. Joining needs the patient's telehealth consent (time and text version).
Recording is allowed only while *both* parties have consented, and a withdrawal stops it.
Values are immutable: each operation returns the new consult. Storage is not this module's
business.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

INVITE_TTL = dt.timedelta(hours=24)
NOTES_MAX = 4000


class ConsultState(enum.StrEnum):
    SCHEDULED = "scheduled"
    WAITING = "waiting"
    ADMITTED = "admitted"
    IN_CALL = "in_call"
    ENDED = "ended"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


ALLOWED: dict[ConsultState, frozenset[ConsultState]] = {
    # ended from scheduled or waiting: the patient left after the call (or between calls)
    # and the pharmacist writes it up; end() refuses a consult the patient never joined
    ConsultState.SCHEDULED: frozenset(
        {ConsultState.WAITING, ConsultState.EXPIRED, ConsultState.CANCELLED, ConsultState.ENDED}
    ),
    ConsultState.WAITING: frozenset(
        {
            ConsultState.ADMITTED,
            ConsultState.SCHEDULED,
            ConsultState.EXPIRED,
            ConsultState.CANCELLED,
            ConsultState.ENDED,
        }
    ),
    ConsultState.ADMITTED: frozenset(
        {ConsultState.IN_CALL, ConsultState.WAITING, ConsultState.ENDED}
    ),
    ConsultState.IN_CALL: frozenset({ConsultState.ENDED, ConsultState.ADMITTED}),
    ConsultState.ENDED: frozenset(),
    ConsultState.EXPIRED: frozenset(),
    ConsultState.CANCELLED: frozenset(),
}
PARTIES = ("pharmacist", "patient")
COUNSELLING = ("accepted", "refused")


class ConsultError(ValueError):
    """The step is not allowed now; ``code`` is stable (for the protocol's error message)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True, slots=True)
class Step:
    from_state: ConsultState | None
    to_state: ConsultState
    actor: str
    reason: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Consent:
    """The patient's telehealth consent: when, and which text they agreed to."""

    at: dt.datetime
    text_version: str


@dataclass(frozen=True, slots=True)
class Consult:
    id: str
    pharmacist: str  # the user ID of the pharmacist who owns it
    patient: str  # the patient profile it is for
    invite_digest: str
    invite_expires_at: dt.datetime
    state: ConsultState
    history: tuple[Step, ...]
    prescription_id: str | None = None
    invite_used_at: dt.datetime | None = None
    consent: Consent | None = None
    recording_consent: tuple[tuple[str, bool], ...] = ()
    notes: str | None = None
    counselling: str | None = None
    #: the store's count of changes (announcements carry it: an older one is ignored)
    revision: int = 0

    @property
    def recording_allowed(self) -> bool:
        given = dict(self.recording_consent)
        return self.state is ConsultState.IN_CALL and all(given.get(p) for p in PARTIES)

    def _move(self, target: ConsultState, actor: str, reason: str, at: dt.datetime) -> Consult:
        if target not in ALLOWED[self.state]:
            raise ConsultError("wrong_state", f"The consult is {self.state}.")
        step = Step(self.state, target, actor, reason, at)
        return dataclasses.replace(self, state=target, history=(*self.history, step))


def token_digest(token: str) -> str:
    """What is kept of a bearer token of a consult (an invite, a resume token): its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def schedule(
    consult_id: str,
    pharmacist: str,
    patient: str,
    now: dt.datetime,
    prescription_id: str | None = None,
    ttl: dt.timedelta = INVITE_TTL,
) -> tuple[Consult, str]:
    """A new consult and its invite token (shown once, in the patient's link)."""
    token = secrets.token_urlsafe(32)
    consult = Consult(
        id=consult_id,
        pharmacist=pharmacist,
        patient=patient,
        invite_digest=token_digest(token),
        invite_expires_at=now + ttl,
        state=ConsultState.SCHEDULED,
        history=(Step(None, ConsultState.SCHEDULED, f"user:{pharmacist}", "scheduled", now),),
        prescription_id=prescription_id,
    )
    return consult, token


def check_invite(consult: Consult, token: str, now: dt.datetime) -> None:
    """Whether ``token`` still opens ``consult``: the refusal a join would meet, if any (the
    patient's page asks before it has them consent and test their camera)."""
    if not hmac.compare_digest(token_digest(token), consult.invite_digest):
        raise ConsultError("invite_invalid", "This invite link is not valid.")
    if consult.state in (ConsultState.ENDED, ConsultState.CANCELLED):
        # over for good: that says more than which link opened it
        raise ConsultError("consult_over", "This consult is over.")
    if consult.invite_used_at is not None:
        raise ConsultError("invite_used", "This invite link was already used.")
    if consult.invite_expires_at <= now or consult.state is ConsultState.EXPIRED:
        raise ConsultError("invite_expired", "This invite link has expired.")
    if consult.state is not ConsultState.SCHEDULED:
        raise ConsultError("consult_over", "This consult is over.")


def join_waiting_room(consult: Consult, token: str, consent: Consent, now: dt.datetime) -> Consult:
    """The patient opens the invite, consents and waits. The invite works once."""
    check_invite(consult, token, now)
    if not consent.text_version:
        raise ConsultError("consent_required", "Telehealth consent is required to join.")
    moved = consult._move(ConsultState.WAITING, "patient", "joined the waiting room", now)
    return dataclasses.replace(moved, invite_used_at=now, consent=consent)


def rejoin_waiting_room(consult: Consult, now: dt.datetime) -> Consult:
    """The patient comes back on the resumable session the first join gave them (the caller
    checks that session); the invite itself stays used."""
    if consult.invite_used_at is None:
        raise ConsultError("invite_required", "Open the invite link first.")
    return consult._move(ConsultState.WAITING, "patient", "rejoined the waiting room", now)


def leave_waiting_room(consult: Consult, now: dt.datetime) -> Consult:
    return consult._move(ConsultState.SCHEDULED, "patient", "left the waiting room", now)


def admit(consult: Consult, pharmacist: str, now: dt.datetime) -> Consult:
    _owner(consult, pharmacist)
    return consult._move(ConsultState.ADMITTED, f"user:{pharmacist}", "admitted", now)


def media_connected(consult: Consult, now: dt.datetime) -> Consult:
    return consult._move(ConsultState.IN_CALL, "hub", "media connected", now)


def media_lost(consult: Consult, now: dt.datetime) -> Consult:
    """Back to ``admitted``: recording stops until both consent again."""
    moved = consult._move(ConsultState.ADMITTED, "hub", "media lost", now)
    return dataclasses.replace(moved, recording_consent=())


def patient_gone(consult: Consult, now: dt.datetime) -> Consult:
    """The patient left, or their socket stayed away past the reconnect grace period: out of
    the call and the waiting room, back to ``scheduled`` (their resume token lets them wait
    again, to be admitted anew). A consult that is over stays as it is."""
    if consult.state is ConsultState.IN_CALL:
        consult = media_lost(consult, now)
    if consult.state is ConsultState.ADMITTED:
        consult = consult._move(ConsultState.WAITING, "patient", "left the call", now)
    if consult.state is ConsultState.WAITING:
        consult = leave_waiting_room(consult, now)
    return consult


def forget_recording_consent(consult: Consult) -> Consult:
    """A party's connection dropped: recording stops, and both are asked again."""
    return dataclasses.replace(consult, recording_consent=())


def consent_to_recording(consult: Consult, party: str, given: bool) -> Consult:
    if party not in PARTIES:
        raise ConsultError("bad_party", "Only the pharmacist and the patient consent.")
    if consult.state is not ConsultState.IN_CALL:
        raise ConsultError("wrong_state", "Recording consent is asked during the call.")
    consents = dict(consult.recording_consent)
    consents[party] = given
    return dataclasses.replace(consult, recording_consent=tuple(sorted(consents.items())))


def end(
    consult: Consult, pharmacist: str, notes: str, counselling: str, now: dt.datetime
) -> Consult:
    """The pharmacist ends the consult with counselling notes and whether the offer to counsel
    was accepted or refused."""
    _owner(consult, pharmacist)
    if consult.invite_used_at is None:
        raise ConsultError("not_started", "The patient never joined: cancel the consult instead.")
    if counselling not in COUNSELLING:
        raise ConsultError("counselling_required", "Say whether counselling was accepted.")
    text = notes.strip()
    if not text or len(text) > NOTES_MAX:
        raise ConsultError("notes_required", f"Notes of 1 to {NOTES_MAX} characters are needed.")
    moved = consult._move(ConsultState.ENDED, f"user:{pharmacist}", "ended", now)
    return dataclasses.replace(moved, notes=text, counselling=counselling, recording_consent=())


def expire(consult: Consult, now: dt.datetime) -> Consult:
    return consult._move(ConsultState.EXPIRED, "hub", "invite expired unused", now)


def cancel(consult: Consult, pharmacist: str, now: dt.datetime) -> Consult:
    _owner(consult, pharmacist)
    return consult._move(ConsultState.CANCELLED, f"user:{pharmacist}", "cancelled", now)


def _owner(consult: Consult, pharmacist: str) -> None:
    if pharmacist != consult.pharmacist:
        raise ConsultError("not_yours", "Only the consult's pharmacist may do this.")
