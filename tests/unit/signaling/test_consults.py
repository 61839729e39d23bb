"""The consult lifecycle as whole histories; invites, consent and recording rules."""

from __future__ import annotations

import datetime as dt

import pytest

from signaling.consults import (
    Consent,
    ConsultError,
    ConsultState,
    admit,
    cancel,
    check_invite,
    consent_to_recording,
    end,
    expire,
    join_waiting_room,
    leave_waiting_room,
    media_connected,
    media_lost,
    patient_gone,
    rejoin_waiting_room,
    schedule,
)

T0 = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
CONSENT = Consent(T0, "telehealth-consent-v1")


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def history(consult: object) -> list[tuple[str | None, str]]:
    return [
        (s.from_state.value if s.from_state else None, s.to_state.value)
        for s in consult.history  # type: ignore[attr-defined]
    ]


def test_an_invite_works_once_even_if_the_patient_leaves() -> None:
    consult, token = schedule("c1", "ph-1", "pt-1", T0, prescription_id="rx-1")
    consult = join_waiting_room(consult, token, CONSENT, at(1))
    consult = leave_waiting_room(consult, at(2))  # the patient stepped away
    with pytest.raises(ConsultError) as used:
        join_waiting_room(consult, token, CONSENT, at(3))
    assert used.value.code == "invite_used"
    assert consult.state is ConsultState.SCHEDULED
    assert consult.prescription_id == "rx-1"
    consult = rejoin_waiting_room(consult, at(4))  # on the session from the first join
    assert history(consult) == [
        (None, "scheduled"),
        ("scheduled", "waiting"),
        ("waiting", "scheduled"),
        ("scheduled", "waiting"),
    ]
    fresh, _ = schedule("c2", "ph-1", "pt-1", T0)
    with pytest.raises(ConsultError) as refused:
        rejoin_waiting_room(fresh, at(1))
    assert refused.value.code == "invite_required"


def test_call_recording_and_end() -> None:
    consult, token = schedule("c1", "ph-1", "pt-1", T0)
    consult = join_waiting_room(consult, token, CONSENT, at(1))
    consult = admit(consult, "ph-1", at(2))
    consult = media_connected(consult, at(2))
    assert not consult.recording_allowed
    consult = consent_to_recording(consult, "pharmacist", True)
    assert not consult.recording_allowed  # one party is not enough
    consult = consent_to_recording(consult, "patient", True)
    assert consult.recording_allowed
    consult = media_lost(consult, at(5))
    assert not consult.recording_allowed  # asked again after a reconnect
    consult = media_connected(consult, at(6))
    consult = consent_to_recording(consult, "patient", False)
    assert not consult.recording_allowed
    consult = end(consult, "ph-1", "Counselled on dose and side effects.", "accepted", at(20))
    assert history(consult) == [
        (None, "scheduled"),
        ("scheduled", "waiting"),
        ("waiting", "admitted"),
        ("admitted", "in_call"),
        ("in_call", "admitted"),
        ("admitted", "in_call"),
        ("in_call", "ended"),
    ]
    assert consult.consent == CONSENT
    assert (consult.counselling, consult.recording_consent) == ("accepted", ())
    assert all(step.actor and step.at for step in consult.history)


def test_a_patient_who_is_gone_leaves_the_call_and_may_wait_again() -> None:
    consult, token = schedule("c1", "ph-1", "pt-1", T0)
    consult = join_waiting_room(consult, token, CONSENT, at(1))
    consult = media_connected(admit(consult, "ph-1", at(2)), at(2))
    consult = consent_to_recording(
        consent_to_recording(consult, "patient", True), "pharmacist", True
    )
    consult = patient_gone(consult, at(3))
    assert not consult.recording_allowed
    assert consult.recording_consent == ()
    assert patient_gone(consult, at(4)) == consult  # already out: nothing more happens
    consult = rejoin_waiting_room(consult, at(5))
    assert history(consult)[4:] == [
        ("in_call", "admitted"),
        ("admitted", "waiting"),
        ("waiting", "scheduled"),
        ("scheduled", "waiting"),
    ]
    ended = end(admit(consult, "ph-1", at(6)), "ph-1", "Done.", "refused", at(7))
    assert patient_gone(ended, at(8)) == ended


@pytest.mark.parametrize(
    ("token", "when", "code"),
    [("wrong-token", 1, "invite_invalid"), (None, 24 * 60 + 1, "invite_expired")],
)
def test_bad_invites(token: str | None, when: int, code: str) -> None:
    consult, real = schedule("c1", "ph-1", "pt-1", T0)
    with pytest.raises(ConsultError) as refused:
        join_waiting_room(consult, token or real, CONSENT, at(when))
    assert refused.value.code == code
    assert consult.invite_digest != real  # only the digest is kept


def test_consent_is_needed_to_join() -> None:
    consult, token = schedule("c1", "ph-1", "pt-1", T0)
    with pytest.raises(ConsultError) as refused:
        join_waiting_room(consult, token, Consent(at(1), ""), at(1))
    assert refused.value.code == "consent_required"


def test_only_the_owner_admits_ends_or_cancels() -> None:
    consult, token = schedule("c1", "ph-1", "pt-1", T0)
    consult = join_waiting_room(consult, token, CONSENT, at(1))
    for step in (lambda c: admit(c, "ph-2", at(2)), lambda c: cancel(c, "ph-2", at(2))):
        with pytest.raises(ConsultError) as refused:
            step(consult)
        assert refused.value.code == "not_yours"


def test_after_the_end_an_invite_says_the_consult_is_over() -> None:
    consult, token = schedule("c1", "ph-1", "pt-1", T0)
    consult = admit(join_waiting_room(consult, token, CONSENT, at(1)), "ph-1", at(2))
    consult = end(consult, "ph-1", "Counselled on dosing.", "accepted", at(3))
    with pytest.raises(ConsultError) as over:
        check_invite(consult, token, at(4))
    assert over.value.code == "consult_over"
    with pytest.raises(ConsultError) as wrong:  # a wrong token says nothing about the consult
        check_invite(consult, "wrong-token", at(4))
    assert wrong.value.code == "invite_invalid"


def test_the_pharmacist_writes_up_a_consult_after_the_patient_left() -> None:
    consult, token = schedule("c1", "ph-1", "pt-1", T0)
    consult = join_waiting_room(consult, token, CONSENT, at(1))
    consult = media_connected(admit(consult, "ph-1", at(2)), at(3))
    consult = patient_gone(consult, at(4))
    ended = end(consult, "ph-1", "Counselled on dosing.", "accepted", at(5))
    assert [(s.from_state, s.to_state) for s in ended.history] == [
        (None, ConsultState.SCHEDULED),
        (ConsultState.SCHEDULED, ConsultState.WAITING),
        (ConsultState.WAITING, ConsultState.ADMITTED),
        (ConsultState.ADMITTED, ConsultState.IN_CALL),
        (ConsultState.IN_CALL, ConsultState.ADMITTED),
        (ConsultState.ADMITTED, ConsultState.WAITING),
        (ConsultState.WAITING, ConsultState.SCHEDULED),
        (ConsultState.SCHEDULED, ConsultState.ENDED),
    ]
    assert ended.notes == "Counselled on dosing."


def test_steps_out_of_order_are_refused() -> None:
    consult, token = schedule("c1", "ph-1", "pt-1", T0)
    for step in (
        lambda c: admit(c, "ph-1", at(1)),
        lambda c: media_connected(c, at(1)),
        lambda c: consent_to_recording(c, "patient", True),
    ):
        with pytest.raises(ConsultError) as refused:
            step(consult)
        assert refused.value.code == "wrong_state"
    with pytest.raises(ConsultError) as refused:
        end(consult, "ph-1", "notes", "accepted", at(1))
    assert refused.value.code == "not_started"  # nobody came: cancel it instead
    expired = expire(consult, at(60 * 25))
    assert expired.state is ConsultState.EXPIRED
    with pytest.raises(ConsultError):
        join_waiting_room(expired, token, CONSENT, at(1))


def test_ending_needs_notes_and_the_counselling_outcome() -> None:
    consult, token = schedule("c1", "ph-1", "pt-1", T0)
    consult = admit(join_waiting_room(consult, token, CONSENT, at(1)), "ph-1", at(2))
    with pytest.raises(ConsultError) as refused:
        end(consult, "ph-1", "notes", "maybe", at(3))
    assert refused.value.code == "counselling_required"
    with pytest.raises(ConsultError) as refused:
        end(consult, "ph-1", "   ", "refused", at(3))
    assert refused.value.code == "notes_required"
    ended = end(consult, "ph-1", "Patient declined counselling.", "refused", at(3))
    assert ended.state is ConsultState.ENDED
