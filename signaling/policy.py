"""The rules of a live consult's sockets: which side may send what, in which state, and which
consult step (:mod:`signaling.consults`) each changing message stands for.

The tables are checked on what the socket last heard of the consult, before the database
is asked; the steps run under the store's lock, on the consult as the database has it.
"""

from __future__ import annotations

import datetime as dt

from . import consults as rules
from . import protocol as p
from .consults import Consult, ConsultError, ConsultState
from .ports import Step

PHARMACIST, PATIENT = "pharmacist", "patient"
LIVE = frozenset({ConsultState.ADMITTED, ConsultState.IN_CALL})
OVER = frozenset({ConsultState.ENDED, ConsultState.EXPIRED, ConsultState.CANCELLED})
SIGNED_OUT = "Your sign-in has ended; sign in again to rejoin the consult."

#: what each side may send once joined (``join`` itself comes first, and only once)
MAY_SEND: dict[str, frozenset[type[p.Message]]] = {
    PATIENT: frozenset(
        {p.Offer, p.Answer, p.IceCandidate, p.Mute, p.Media, p.Stats}
        | {p.RecordingConsent, p.RecordOffer, p.Leave, p.Ping}
    ),
}
MAY_SEND[PHARMACIST] = MAY_SEND[PATIENT] | {p.Admit, p.End}
#: passed to the other side as they are
RELAYED = (p.Offer, p.Answer, p.IceCandidate, p.Mute)
#: the state a message needs (as this socket last heard it), checked before the database
NEEDS: dict[type[p.Message], frozenset[ConsultState]] = {
    **dict.fromkeys((*RELAYED, p.Media), LIVE),
    p.RecordingConsent: frozenset({ConsultState.IN_CALL}),
    p.RecordOffer: frozenset({ConsultState.IN_CALL}),
}


def other(role: str) -> str:
    return PATIENT if role == PHARMACIST else PHARMACIST


def check(role: str, state: ConsultState, message: p.Message) -> None:
    """:class:`ConsultError` unless ``role`` may send ``message`` while the consult is in
    ``state``."""
    kind = type(message)
    if kind not in MAY_SEND[role]:
        code = "already_joined" if isinstance(message, p.Join) else "not_allowed"
        raise ConsultError(code, f"A {role} may not send {message.type} now.")
    if state not in NEEDS.get(kind, state):
        raise ConsultError("wrong_state", f"Not now: the consult is {state}.")


# -- the steps the rooms ask the store to apply ---------------------------------------------


def refuse_signed_out(consult: Consult) -> Consult:
    raise ConsultError("unauthorized", SIGNED_OUT)


def still_open(consult: Consult) -> Consult:
    if consult.state in OVER:
        raise ConsultError("consult_over", f"This consult is {consult.state}.")
    return consult


def owned_by(pharmacist: str) -> Step:
    def step(consult: Consult) -> Consult:
        if consult.pharmacist != pharmacist:
            raise ConsultError("not_found", "No such consult of yours.")
        return still_open(consult)

    return step


def join_waiting_room(invite: str, consent: rules.Consent, now: dt.datetime) -> Step:
    return lambda consult: rules.join_waiting_room(consult, invite, consent, now)


def expire(now: dt.datetime) -> Step:
    return lambda consult: rules.expire(consult, now)


def unchanged(consult: Consult) -> Consult:
    return consult


def step_for(message: p.Message, role: str, user: str, now: dt.datetime) -> tuple[str, Step]:
    """The audited action and the consult step a changing message stands for."""
    if isinstance(message, p.Admit):
        return "consult.admit", lambda c: rules.admit(c, user, now)
    if isinstance(message, p.Media):
        return ("consult.media", _media(message.connected, now))
    if isinstance(message, p.RecordingConsent):
        given = message.consent
        return "consult.recording_consent", lambda c: rules.consent_to_recording(c, role, given)
    assert isinstance(message, p.End)
    notes, counselling = message.notes, message.counselling
    return "consult.end", lambda c: rules.end(c, user, notes, counselling, now)


def _media(connected: bool, now: dt.datetime) -> Step:
    """Both pages report their connection: the first report moves the consult, the second
    finds it there already."""

    def step(consult: Consult) -> Consult:
        if connected and consult.state is ConsultState.ADMITTED:
            return rules.media_connected(consult, now)
        if not connected and consult.state is ConsultState.IN_CALL:
            return rules.media_lost(consult, now)
        if consult.state not in LIVE:
            raise ConsultError("wrong_state", "There is no call to report on.")
        return consult

    return step
