"""Linking a prescription's patient to the pharmacy's profiles, for the checks (the
prescription store's :class:`~server.prescriptions.store.Linker`): on an exact match
(:mod:`eprescribe.patients`) to that profile, or to a new one when nobody shares name and
birth date; weak or ambiguous matches stay unlinked, for a pharmacist. Profiles are never
merged automatically.

Blocking functions on the caller's :class:`~sqlalchemy.orm.Session`, inside its unit of
work: a new profile's audit entry is returned, not written, so the caller appends it with
its own entries as its last statement.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from eprescribe.checks import PatientMatch
from eprescribe.ncpdp import Patient
from eprescribe.patients import MatchKey, classify

from .. import audit
from ..prescriptions.store import PatientLink, Profile
from .models import PatientProfile

ACTOR = audit.Actor("system", "checks")


def link(
    session: Session,
    pharmacy_id: uuid.UUID,
    patient: Patient,
    linked: uuid.UUID | None,
    rx_id: uuid.UUID,
) -> PatientLink:
    """The profile for prescription ``rx_id``'s ``patient``; ``linked`` is the profile an
    earlier, interrupted run linked it to."""
    if linked is not None:
        row = session.get(PatientProfile, linked)
        return PatientLink(PatientMatch("exact", (str(linked),)), _facts(row) if row else None)
    key = MatchKey.of(patient)
    if key is None:
        return PatientLink(None, None)
    profiles = {
        str(p.id): p
        for p in session.scalars(
            select(PatientProfile).where(
                PatientProfile.pharmacy_id == pharmacy_id,
                PatientProfile.last_name_key == key.last,
                PatientProfile.first_name_key == key.first,
                PatientProfile.date_of_birth == key.date_of_birth,
            )
        )
    }
    match = classify(key, [(pid, _key(p)) for pid, p in profiles.items()])
    if match.kind == "exact":
        return PatientLink(match, _facts(profiles[match.candidates[0]]))
    if match.kind == "new":
        profile = _new_profile(session, pharmacy_id, key, patient)
        return PatientLink(match, _facts(profile), _created(profile, rx_id))
    return PatientLink(match, None)


def _facts(profile: PatientProfile) -> Profile:
    return Profile(profile.id, tuple(profile.allergies))


def _key(profile: PatientProfile) -> MatchKey:
    return MatchKey(
        profile.last_name_key,
        profile.first_name_key,
        profile.date_of_birth,
        profile.gender,
        profile.postal_code,
    )


def _new_profile(
    session: Session, pharmacy_id: uuid.UUID, key: MatchKey, patient: Patient
) -> PatientProfile:
    profile = PatientProfile(
        pharmacy_id=pharmacy_id,
        last_name_key=key.last,
        first_name_key=key.first,
        date_of_birth=key.date_of_birth,
        gender=key.gender,
        postal_code=key.postal_code,
        demographics=patient,
        allergies=[],
    )
    session.add(profile)
    session.flush()
    return profile


def _created(profile: PatientProfile, rx_id: uuid.UUID) -> dict[str, Any]:
    """The audit entry of a profile made for prescription ``rx_id``'s patient."""
    return audit.values(
        ACTOR,
        audit.Event(
            "patient.create",
            "patient",
            str(profile.id),
            pharmacy_id=profile.pharmacy_id,
            detail={"prescription_id": str(rx_id)},
        ),
    )
