"""Linking a prescription's patient to the pharmacy's profiles, for the checks (the
prescription store's :class:`~server.prescriptions.store.Linker`): on an exact match
(:mod:`eprescribe.patients`) to that profile, or to a new one when nobody shares name and
birth date; weak or ambiguous matches stay unlinked, for a pharmacist. Profiles are never
merged automatically; a profile a pharmacist merged into another still matches, as that one.

Blocking functions on the caller's :class:`~sqlalchemy.orm.Session`, inside its unit of
work: a new profile's audit entry is returned, not written, so the caller appends it with
its own entries as its last statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from eprescribe.checks import PatientMatch
from eprescribe.ncpdp import Patient
from eprescribe.patients import MatchKey, classify

from .. import audit
from ..prescriptions.store import LinkRequest, PatientLink, Profile
from .models import PatientAllergy, PatientProfile

ACTOR = audit.Actor("system", "checks")


def link(session: Session, wanted: Sequence[LinkRequest]) -> list[PatientLink]:
    """The profile of each prescription's patient, in the order asked, in two statements
    (and one more for the new profiles): the profiles earlier, interrupted runs linked, and
    the candidates sharing a name and birth date. A patient met twice in one call gets one
    new profile, the second matching the first."""
    earlier = {r.linked for r in wanted if r.linked is not None}
    linked = (
        {
            p.id: p
            for p in session.scalars(
                select(PatientProfile).where(PatientProfile.id.in_(sorted(earlier)))
            )
        }
        if earlier
        else {}
    )
    keys = {r.rx_id: MatchKey.of(r.patient) for r in wanted if r.linked is None}
    names = sorted(
        {
            (r.pharmacy_id, k.last, k.first, k.date_of_birth)
            for r in wanted
            if (k := keys.get(r.rx_id))
        },
        key=str,
    )
    candidates: dict[tuple[object, ...], list[PatientProfile]] = {}
    if names:
        for profile in session.scalars(
            select(PatientProfile)
            .where(
                or_(
                    *(
                        and_(
                            PatientProfile.pharmacy_id == pharmacy_id,
                            PatientProfile.last_name_key == last,
                            PatientProfile.first_name_key == first,
                            PatientProfile.date_of_birth == born,
                        )
                        for pharmacy_id, last, first, born in names
                    )
                ),
            )
            .order_by(PatientProfile.id)
        ):
            candidates.setdefault(_name(profile.pharmacy_id, _key(profile)), []).append(profile)
    # a merged profile still matches, as the profile it was merged into
    final = _survivors(session, [p for found in candidates.values() for p in found])
    allergies = _allergies(session, {*linked, *(p.id for p in final.values())})

    def _facts(profile: PatientProfile) -> Profile:
        return Profile(profile.id, allergies.get(profile.id, ()))

    links: list[PatientLink] = []
    created: list[PatientProfile] = []
    for r in wanted:
        if r.linked is not None:
            row = linked.get(r.linked)
            match = PatientMatch("exact", (str(r.linked),))
            links.append(PatientLink(match, _facts(row) if row else None))
            continue
        key = keys[r.rx_id]
        if key is None:
            links.append(PatientLink(None, None))
            continue
        found = candidates.setdefault(_name(r.pharmacy_id, key), [])
        profiles = {str(final[p.id].id): final[p.id] for p in found}
        match = classify(key, [(str(final[p.id].id), _key(p)) for p in found])
        if match.kind == "exact":
            links.append(PatientLink(match, _facts(profiles[match.candidates[0]])))
        elif match.kind == "new":
            profile = _new_profile(r.pharmacy_id, key, r.patient)
            found.append(profile)
            final[profile.id] = profile
            created.append(profile)
            links.append(PatientLink(match, _facts(profile), _created(profile, r.rx_id)))
        else:
            links.append(PatientLink(match, None))
    if created:
        session.add_all(created)
        session.flush()
    return links


#: the longest chain of merges followed from a merged profile to the profile it is now
MAX_MERGE_CHAIN = 16


def _survivors(
    session: Session, profiles: Sequence[PatientProfile]
) -> dict[uuid.UUID, PatientProfile]:
    """Each of ``profiles`` by ID, mapped to the profile it is now: itself, or (merged) the
    profile it was merged into, followed to one not merged (one statement a step)."""
    known = {p.id: p for p in profiles}
    for _ in range(MAX_MERGE_CHAIN):
        wanted = sorted({p.merged_into_id for p in known.values() if p.merged_into_id} - set(known))
        if not wanted:
            break
        for p in session.scalars(select(PatientProfile).where(PatientProfile.id.in_(wanted))):
            known[p.id] = p
    final: dict[uuid.UUID, PatientProfile] = {}
    for p in profiles:
        now = p
        for _ in range(MAX_MERGE_CHAIN):
            if now.merged_into_id is None or now.merged_into_id not in known:
                break
            now = known[now.merged_into_id]
        final[p.id] = now
    return final


def _name(pharmacy_id: uuid.UUID, key: MatchKey) -> tuple[object, ...]:
    return (pharmacy_id, key.last, key.first, key.date_of_birth)


def _allergies(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, ...]]:
    """The words of the allergy entries staff recorded (not removed) on profiles ``ids``, in
    the order added: what the checks compare a prescription with beside its own."""
    found: dict[uuid.UUID, list[str]] = {}
    if ids:
        for patient_id, text in session.execute(
            select(PatientAllergy.patient_id, PatientAllergy.text)
            .where(PatientAllergy.patient_id.in_(sorted(ids)), PatientAllergy.removed_at.is_(None))
            .order_by(PatientAllergy.added_at, PatientAllergy.id)
        ):
            found.setdefault(patient_id, []).append(text)
    return {k: tuple(v) for k, v in found.items()}


def _key(profile: PatientProfile) -> MatchKey:
    return MatchKey(
        profile.last_name_key,
        profile.first_name_key,
        profile.date_of_birth,
        profile.gender,
        profile.postal_code,
    )


def _new_profile(pharmacy_id: uuid.UUID, key: MatchKey, patient: Patient) -> PatientProfile:
    return PatientProfile(
        id=uuid.uuid4(),  # known before the flush: a second script may match it first
        pharmacy_id=pharmacy_id,
        last_name_key=key.last,
        first_name_key=key.first,
        date_of_birth=key.date_of_birth,
        gender=key.gender,
        postal_code=key.postal_code,
        demographics=patient,
    )


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
