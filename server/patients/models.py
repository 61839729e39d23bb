"""The patients feature's tables: the pharmacy's patient profiles, their contact points and
their preferences (with their notification consent)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Time, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from eprescribe.contacts import ADDRESS_MAX
from eprescribe.patients import NAME_KEY_MAX, ZIP_LENGTH
from eprescribe.profile import ALLERGY_CODE_MAX, ALLERGY_TEXT_MAX, REACTION_MAX

from ..db.models import Base, JSONDoc, utcnow

#: a name key's type: the "C" collation on PostgreSQL (ordered and prefixed by bytes, as the
#: planner needs to use an index for LIKE 'x%'); SQLite compares bytes already
NAME_KEY = String(NAME_KEY_MAX).with_variant(String(NAME_KEY_MAX, collation="C"), "postgresql")


class PatientProfile(Base):
    """A pharmacy's profile of one patient; prescriptions link to it only on an exact match."""

    __tablename__ = "patients"
    __table_args__ = (
        Index(
            "ix_patients_match", "pharmacy_id", "last_name_key", "first_name_key", "date_of_birth"
        ),
        # the console's search by birth date
        Index("ix_patients_pharmacy_birth", "pharmacy_id", "date_of_birth"),
        # the console's search by name, in its order (name, then ID: keyset pages)
        Index("ix_patients_search", "pharmacy_id", "last_name_key", "first_name_key", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    #: normalised names (eprescribe.patients.normalise_name, bounded by the same constant),
    #: compared byte by byte on PostgreSQL: a prefix search (LIKE 'x%') reads an index range
    last_name_key: Mapped[str] = mapped_column(NAME_KEY)
    first_name_key: Mapped[str] = mapped_column(NAME_KEY)
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(1))
    postal_code: Mapped[str] = mapped_column(String(ZIP_LENGTH))
    #: name, address and contact as received
    demographics: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: the profile this one was merged into (by a pharmacist; kept, never deleted, out of
    #: matching, lists and search until unmerged: see :mod:`.merges`)
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id"))


class PatientAllergy(Base):
    """An allergy entered on the profile by the pharmacy's staff (a prescription's own are
    read from the prescription): coded or free text, the reaction and its severity, who added
    it and, once removed, who removed it (kept: the history shows on the timeline). The checks
    read the entries not removed."""

    __tablename__ = "patient_allergies"
    __table_args__ = (Index("ix_patient_allergies_patient", "patient_id", "removed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id))
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    #: the words the checks resolve with the drug reference
    text: Mapped[str] = mapped_column(String(ALLERGY_TEXT_MAX))
    #: eprescribe.profile.CodeSystem; the code in it (none: free text)
    code_system: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(ALLERGY_CODE_MAX))
    reaction: Mapped[str | None] = mapped_column(String(REACTION_MAX))
    #: eprescribe.profile.Severity, or none (not said)
    severity: Mapped[str | None] = mapped_column(String(16))
    added_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    removed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    removed_at: Mapped[dt.datetime | None]


class PatientContact(Base):
    """One way to reach a patient: an email address or a mobile number (E.164), usable once
    verified (a code sent to it, typed back) and until the patient opts out there."""

    __tablename__ = "patient_contacts"
    __table_args__ = (
        UniqueConstraint("patient_id", "kind", "value"),
        # an inbound STOP finds every profile with the number
        Index("ix_patient_contacts_value", "kind", "value"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id), index=True)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    #: ``email`` or ``mobile`` (eprescribe.contacts.ContactKind)
    kind: Mapped[str] = mapped_column(String(8))
    #: normalised (eprescribe.contacts.normalise): patient data, never logged or audited
    value: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    verified_at: Mapped[dt.datetime | None]
    #: the pending verification code's hash (eprescribe.contacts.code_hash), until when it
    #: holds, and the wrong tries so far
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[dt.datetime | None]
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: when the patient opted out on this contact point's channel (STOP, an unsubscribe link)
    opted_out_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PatientPreferences(Base):
    """A profile's preferences, one row per profile (none yet: the defaults)."""

    __tablename__ = "patient_preferences"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    #: IANA name; none: the pharmacy's
    time_zone: Mapped[str | None] = mapped_column(String(64))
    #: local wall-clock times; none: the default (21:00 to 08:00)
    quiet_start: Mapped[dt.time | None] = mapped_column(Time)
    quiet_end: Mapped[dt.time | None] = mapped_column(Time)
    #: ``email``, ``sms`` or ``none`` (eprescribe.contacts.Preferred)
    preferred_channel: Mapped[str] = mapped_column(String(8), default="none")
    #: ``generic`` or ``brand``; ``pickup`` or ``delivery``; none: not asked
    generic_or_brand: Mapped[str | None] = mapped_column(String(8))
    pickup_or_delivery: Mapped[str | None] = mapped_column(String(8))
    ninety_day_supply: Mapped[bool] = mapped_column(default=False)
    easy_open_caps: Mapped[bool] = mapped_column(default=False)
    large_print_labels: Mapped[bool] = mapped_column(default=False)
    #: the caregiver or authorised representative: name, relationship, contact (or none)
    representative: Mapped[dict[str, Any] | None]
    #: per event kind, per channel: false where the patient switched it off (else allowed)
    consent: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PatientMerge(Base):
    """One merge of a profile into another by a pharmacist, with the rows it moved (so an
    unmerge moves exactly those back). Written only by :mod:`.merges`."""

    __tablename__ = "patient_merges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id), index=True)
    merged_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PatientProfile.id), index=True)
    merged_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    #: the IDs moved per table (``prescriptions``, ``consults``, ``notifications``,
    #: ``contacts``), ``contacts_kept`` (stayed with the merged profile), ``preferences``
    #: (whether the merged profile's moved)
    moved: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    unmerged_at: Mapped[dt.datetime | None]
    unmerged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
