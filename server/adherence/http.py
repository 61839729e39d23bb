"""Adherence in the console: PDC per patient and measured class for a measurement period, the
patients below the threshold for outreach (as JSON or CSV), and one patient's. Pharmacists
only, own pharmacy only; every read is audited, with the patients it showed."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.adherence.outreach import OutreachEntry, below_threshold, write_outreach_csv
from eprescribe.adherence.pdc import THRESHOLD, Coverage, MeasurementPeriod, percent
from eprescribe.ncpdp import Patient, from_json

from .. import audit
from ..callers import PHARMACIST, Caller, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..dispensing.store import FILLS
from ..errors import NotFound, Unprocessable
from ..http import path_uuid, respond
from ..openapi import Operation, operation, path, query
from ..patients.models import PatientProfile
from ..prescriptions.queue import SCOPE, PatientName, patient_name
from .read import coverage_by_patient

#: the longest measurement period asked for, in days (two years, one of them leap)
MAX_PERIOD_DAYS = 731

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_SCHEMA = {"type": "string", "format": "date"}
_PARAMETERS = [
    query("from", _DATE_SCHEMA, "first day of the measurement period (default: 1 January)"),
    query("to", _DATE_SCHEMA, "last day of the measurement period (default: today, UTC)"),
    query(
        "below",
        {"type": "boolean"},
        "only the class results below the 80 % threshold of patients the measure counts "
        "(fills on two dates or more), lowest first",
    ),
]
_ROLE = "Allowed to: pharmacist."
Day = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]


class ClassAdherence(msgspec.Struct, frozen=True, kw_only=True):
    """PDC of one measured class of one patient."""

    patient_id: uuid.UUID
    patient: PatientName
    drug_class: Annotated[str, msgspec.Meta(description="statins, ras_antagonists or diabetes")]
    drugs: Annotated[list[str], msgspec.Meta(description="the class's drugs (ingredients)")]
    index_date: Day
    days_in_period: Annotated[int, msgspec.Meta(description="index date to period end")]
    days_covered: int
    fill_dates: int
    pdc_percent: Annotated[float, msgspec.Meta(description="rounded down to one decimal")]
    eligible: Annotated[bool, msgspec.Meta(description="fills on two dates or more")]
    adherent: Annotated[bool, msgspec.Meta(description="PDC at or above the threshold")]


class Adherence(msgspec.Struct, frozen=True, kw_only=True):
    period_from: Day
    period_to: Day
    threshold_percent: int
    items: list[ClassAdherence]


_DESCRIPTION = (
    f"{_ROLE} Proportion of days covered (PQA method, docs/patients.md) from the fills "
    "handed over in the period. A period ends no earlier than it starts and lasts at most "
    f"{MAX_PERIOD_DAYS} days (422 otherwise)."
)


@operation(
    Operation(
        operation_id="listAdherence",
        summary="Adherence (PDC) of the pharmacy's patients per measured drug class",
        scope=SCOPE,
        parameters=_PARAMETERS,
        response=Adherence,
        errors=("401", "403", "422"),
        description=_DESCRIPTION,
    )
)
async def list_adherence(request: web.Request) -> web.Response:
    """``GET /api/v1/adherence``."""
    who, period, below = await _asked(request)
    entries, names = await _read(request, who, period, below, "json")
    return respond(_view(period, entries, names))


@operation(
    Operation(
        operation_id="listAdherenceCsv",
        summary="The same list as CSV, for outreach: patient IDs, no names",
        scope=SCOPE,
        parameters=_PARAMETERS,
        errors=("401", "403", "422"),
        description=_DESCRIPTION,
        media_type="text/csv",
    )
)
async def list_adherence_csv(request: web.Request) -> web.Response:
    """``GET /api/v1/adherence.csv``: the patient column is the profile's ID (the minimum
    necessary in a file that leaves the hub); a cell a spreadsheet would run is quoted."""
    who, period, below = await _asked(request)
    entries, _ = await _read(request, who, period, below, "csv")
    out = io.StringIO(newline="")
    write_outreach_csv(entries, out)
    name = f"adherence-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


@operation(
    Operation(
        operation_id="getPatientAdherence",
        summary="A patient's adherence (PDC) per measured drug class",
        scope=SCOPE,
        parameters=[path("id", "the patient profile"), *_PARAMETERS[:2]],
        response=Adherence,
        errors=("401", "403", "404", "422"),
        description=_DESCRIPTION,
    )
)
async def get_patient_adherence(request: web.Request) -> web.Response:
    """``GET /api/v1/patients/{id}/adherence``: every measured class the patient has a fill
    of in the period (404 unless the pharmacy's patient)."""
    who, period, _ = await _asked(request)
    patient_id = path_uuid(request, "patient")
    reference = await request.app[FILLS].reference()
    event = audit.Event("patient.adherence.read", "patient", str(patient_id), detail=_of(period))
    async with audit.refusable(request.app[DATABASE]) as session:
        names = await _names(session, who.pharmacy_id, {patient_id})
        if not names:
            await audit.refuse(
                session,
                who.actor,
                replace(event, outcome="not_found"),
                NotFound("No such patient."),
            )
        found = await coverage_by_patient(
            session, who.pharmacy_id, period, reference, patient_id=patient_id
        )
        await audit.add(session, who.actor, event)
    entries = [OutreachEntry(str(patient_id), c) for c in found.get(patient_id, ())]
    return respond(_view(period, entries, names))


async def _asked(request: web.Request) -> tuple[Caller, MeasurementPeriod, bool]:
    who = await caller(request, SCOPE)
    who.require_role(PHARMACIST)
    return who, _period(request), request.query.get("below", "false").lower() == "true"


def _period(request: web.Request) -> MeasurementPeriod:
    """The period asked for; by default the calendar year to date (UTC)."""
    today = utcnow().date()
    end = _date(request, "to") or today
    start = _date(request, "from") or dt.date(end.year, 1, 1)
    if end < start:
        raise Unprocessable("period_invalid", "The period's 'from' is after its 'to'.")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise Unprocessable(
            "period_too_long", f"A measurement period lasts at most {MAX_PERIOD_DAYS} days."
        )
    return MeasurementPeriod(start, end)


def _date(request: web.Request, name: str) -> dt.date | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise Unprocessable(
            "period_invalid", f"'{name}' must be a date written YYYY-MM-DD."
        ) from None


async def _read(
    request: web.Request, who: Caller, period: MeasurementPeriod, below: bool, form: str
) -> tuple[list[OutreachEntry], dict[uuid.UUID, PatientName]]:
    """The class results asked for, with the names of their patients; audited with the
    patients shown."""
    reference = await request.app[FILLS].reference()
    async with request.app[DATABASE].transaction() as session:
        found = await coverage_by_patient(session, who.pharmacy_id, period, reference)
        names = await _names(session, who.pharmacy_id, set(found))
        entries = _entries(found, names, below)
        shown = sorted({e.patient for e in entries})
        detail = {**_of(period), "below": below, "format": form, "count": len(shown)}
        await audit.add(
            session,
            who.actor,
            audit.Event("adherence.list", "patient", None, detail={**detail, "ids": shown}),
        )
    return entries, names


def _entries(
    found: Mapping[uuid.UUID, tuple[Coverage, ...]],
    names: Mapping[uuid.UUID, PatientName],
    below: bool,
) -> list[OutreachEntry]:
    """Below the threshold: lowest first; else every result, by patient name then class."""
    if below:
        return below_threshold({str(p): c for p, c in found.items()})

    def order(patient: uuid.UUID) -> tuple[str, str, str]:
        name = names.get(patient)
        return (name.last or "", name.first or "", str(patient)) if name else ("", "", "")

    return [
        OutreachEntry(str(patient), coverage)
        for patient in sorted(found, key=order)
        for coverage in found[patient]
    ]


async def _names(
    session: AsyncSession, pharmacy_id: uuid.UUID, ids: set[uuid.UUID]
) -> dict[uuid.UUID, PatientName]:
    if not ids:
        return {}
    rows = await session.execute(
        select(PatientProfile.id, PatientProfile.demographics).where(
            PatientProfile.id.in_(sorted(ids)), PatientProfile.pharmacy_id == pharmacy_id
        )
    )
    return {pid: patient_name(from_json(Patient, demographics)) for pid, demographics in rows}


def _view(
    period: MeasurementPeriod,
    entries: list[OutreachEntry],
    names: Mapping[uuid.UUID, PatientName],
) -> Adherence:
    return Adherence(
        period_from=period.start.isoformat(),
        period_to=period.end.isoformat(),
        threshold_percent=int(THRESHOLD * 100),
        items=[_line(uuid.UUID(e.patient), e.coverage, names) for e in entries],
    )


def _line(
    patient: uuid.UUID, coverage: Coverage, names: Mapping[uuid.UUID, PatientName]
) -> ClassAdherence:
    return ClassAdherence(
        patient_id=patient,
        patient=names.get(patient) or PatientName(last=None, first=None, date_of_birth=None),
        drug_class=coverage.drug_class,
        drugs=[d.drug for d in coverage.drugs if d.drug],
        index_date=coverage.index_date.isoformat(),
        days_in_period=coverage.days_in_period,
        days_covered=coverage.days_covered,
        fill_dates=coverage.fill_dates,
        pdc_percent=float(percent(coverage.pdc)),
        eligible=coverage.eligible,
        adherent=coverage.adherent,
    )


def _of(period: MeasurementPeriod) -> dict[str, str]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}
