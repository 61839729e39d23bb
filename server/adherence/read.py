"""A pharmacy's fills as adherence reads them: each completed fill (handed over) of a
prescription linked to a patient profile, as a :class:`~eprescribe.adherence.pdc.FillRecord`
of every measured class its drug belongs to (:mod:`eprescribe.adherence.classes`), then PDC
per patient and class.

- the fill's date is the day it was handed over (``ended_at``, in UTC);
- its days supply is the fill's (the prescription's), prorated for a partial fill as RxFill
  reports it (:func:`eprescribe.dispensing.fills.days_supplied`); a fill without days
  supply is not counted;
- its drug is the product scanned (by NDC, then by the reference's name for it), else the
  prescribed drug as the reference identifies it; a drug the reference does not know, or of
  no measured class, is not counted.

Only fills handed over inside the measurement period are read (the pure rules ignore the
rest anyway).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.adherence.classes import measured_classes
from eprescribe.adherence.pdc import (
    Coverage,
    FillRecord,
    MeasurementPeriod,
    proportion_of_days_covered,
)
from eprescribe.dispensing.fills import FillState, days_supplied
from eprescribe.drugs import Drug, DrugReference

from ..dispensing.models import Fill
from ..prescriptions.models import Prescription

_DAY = dt.timedelta(days=1)


async def coverage_by_patient(
    session: AsyncSession,
    pharmacy_id: uuid.UUID,
    period: MeasurementPeriod,
    reference: DrugReference,
    patient_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, tuple[Coverage, ...]]:
    """PDC per measured class of each of the pharmacy's patients (only ``patient_id`` when
    given) with a counted fill in ``period``; patients without one are left out."""
    records = await fill_records(session, pharmacy_id, period, reference, patient_id)
    return {
        patient: proportion_of_days_covered(fills, period) for patient, fills in records.items()
    }


async def fill_records(
    session: AsyncSession,
    pharmacy_id: uuid.UUID,
    period: MeasurementPeriod,
    reference: DrugReference,
    patient_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, list[FillRecord]]:
    """The counted fills of ``period``, by patient profile."""
    start = dt.datetime.combine(period.start, dt.time(), dt.UTC)
    stop = dt.datetime.combine(period.end + _DAY, dt.time(), dt.UTC)
    query = (
        select(
            Prescription.patient_id,
            Prescription.medication,
            Fill.ended_at,
            Fill.days_supply,
            Fill.quantity,
            Fill.ndc11,
            Fill.drug,
        )
        .join(Prescription, Prescription.id == Fill.prescription_id)
        .where(
            Fill.pharmacy_id == pharmacy_id,
            Prescription.pharmacy_id == pharmacy_id,
            Fill.state == FillState.COMPLETED.value,
            Fill.ended_at >= start,
            Fill.ended_at < stop,
            Prescription.patient_id.is_not(None)
            if patient_id is None
            else Prescription.patient_id == patient_id,
        )
    )
    found: dict[uuid.UUID, list[FillRecord]] = {}
    for patient, medication, ended_at, days, quantity, ndc11, name in await session.execute(query):
        drug = _drug(reference, ndc11, name, medication)
        supply = _days(days, quantity, medication)
        if drug is None or not supply or ended_at is None:
            continue
        filled_on = ended_at.astimezone(dt.UTC).date()
        for drug_class, key in measured_classes(drug, reference.vocabulary).items():
            found.setdefault(patient, []).append(
                FillRecord(drug_class, key, filled_on, supply, Decimal(quantity))
            )
    return found


def _drug(
    reference: DrugReference, ndc11: str | None, name: str | None, medication: Mapping[str, Any]
) -> Drug | None:
    """The product handed over as the reference knows it, else the prescribed drug."""
    scanned = (reference.by_ndc(ndc11) if ndc11 else None) or (
        reference.by_name(name) if name else None
    )
    if scanned is not None:
        return scanned
    product = medication.get("product_code") or {}
    ndc = product.get("code") if product.get("qualifier") == "ND" else None
    coded = medication.get("drug_db_code") or {}
    return reference.identify(ndc, coded.get("code"), medication["drug_description"]).drug


def _days(days: int | None, quantity: str | None, medication: Mapping[str, Any]) -> int | None:
    """The days the quantity handed over lasts (a partial fill's, prorated)."""
    if days is None or quantity is None or not Decimal(quantity) > 0:
        return None
    prescribed = Decimal(str(medication["quantity"]["value"]))
    return days_supplied(days, prescribed, Decimal(quantity))
