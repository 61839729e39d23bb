"""Adherence over HTTP on the real app and database: PDC per patient and measured class from
the fills handed over, hand-computed; the outreach list below the threshold, as JSON and CSV;
one patient's; the period's refusals; tenancy and the pharmacist-only rule; the audit.

The prescriptions are received and checked as everywhere (which links their patients'
profiles); their fills are written as rows, completed on chosen days (the fill flow's
hand-over is always today); one fill goes through the whole flow, to show its rows are read.
"""

# the fill flow's fixtures are test_fills' own, imported: a test names them as parameters
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import select

from eprescribe.adherence.pdc import percent
from server.dispensing.models import Fill
from server.prescriptions.models import Prescription
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, PHARMACY, Hub
from tests.functional.fill_helpers import hand_over
from tests.functional.test_fills import (  # noqa: F401 (fixtures)
    HAND_OVER,
    Team,
    approved,
    prescriber,
    products,
    team,
    to_ready,
)
from tests.functional.verification_helpers import bearer, receive, staff

D = dt.date
LISINOPRIL = "lisinopril 10 MG Oral Tablet"
ATORVASTATIN = "atorvastatin 20 MG Oral Tablet"
METFORMIN = "metformin hydrochloride 500 MG Oral Tablet"
LOSARTAN = "losartan potassium 50 MG Oral Tablet"
#: 1 January to 30 June 2026: 181 days
PERIOD = {"from": "2026-01-01", "to": "2026-06-30"}


async def prescription(
    hub: Hub,
    checker: Checker,
    last: str,
    drug: str,
    *,
    days: int = 30,
    to: str = PHARMACY["ncpdpid"],
) -> tuple[uuid.UUID, uuid.UUID]:
    """A prescription of ``days`` days for 30 tablets, received and checked (its patient
    linked to a profile); its ID and the profile's."""
    rx_id = await receive(
        hub,
        to=to,
        patient_last=last,
        patient_first="TEST",
        drug_description=drug,
        quantity="30",
        days_supply=str(days),
    )
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    async with hub.db.sessions() as session:
        patient_id = await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == rx_id)
        )
    assert patient_id is not None
    return rx_id, patient_id


async def fills(
    hub: Hub,
    rx_id: uuid.UUID,
    *handed: dt.date,
    days: int = 30,
    quantity: str = "30",
    state: str = "completed",
    drug: str | None = None,
) -> None:
    """Fills of ``rx_id`` handed over on the days ``handed`` (at noon UTC), as the fill store
    writes them; ``drug`` is the reference's name of the product scanned (None: the
    prescribed drug is read)."""
    async with hub.db.transaction() as session:
        pharmacy_id = await session.scalar(
            select(Prescription.pharmacy_id).where(Prescription.id == rx_id)
        )
        for number, day in enumerate(handed):
            at = dt.datetime.combine(day, dt.time(12), dt.UTC)
            session.add(
                Fill(
                    prescription_id=rx_id,
                    pharmacy_id=pharmacy_id,
                    number=number,
                    state=state,
                    state_since=at,
                    days_supply=days,
                    quantity_owed="30",
                    unit="C48542",
                    quantity=quantity,
                    drug=drug,
                    started_at=at,
                    ended_at=at,
                    fillers=[],
                )
            )


class Patients:
    def __init__(self, ann: uuid.UUID, ben: uuid.UUID, cal: uuid.UUID, dan: uuid.UUID) -> None:
        self.ann, self.ben, self.cal, self.dan = ann, ben, cal, dan


@pytest.fixture
async def patients(hub: Hub, checker: Checker) -> Patients:
    """Three patients of the pharmacy and one of another, with fills from December 2025 to
    June 2026 (the expected figures are worked out in the tests)."""
    rx, ann = await prescription(hub, checker, "ADAMS", LISINOPRIL)
    # 10 Jan covers 10 Jan - 8 Feb; 5 Feb shifted to 9 Feb - 10 Mar; 1 April a partial fill,
    # 15 of 30 tablets: 15 days; December is before the period, 1 March never handed over
    await fills(hub, rx, D(2026, 1, 10), D(2026, 2, 5), drug=LISINOPRIL)
    await fills(hub, rx, D(2026, 4, 1), quantity="15")
    await fills(hub, rx, D(2025, 12, 20))
    await fills(hub, rx, D(2026, 3, 1), state="cancelled")
    rx, _ = await prescription(hub, checker, "ADAMS", ATORVASTATIN, days=90)
    await fills(hub, rx, D(2026, 1, 10), D(2026, 4, 10), days=90)
    rx, ben = await prescription(hub, checker, "BROWN", METFORMIN)
    await fills(hub, rx, *(D(2026, m, d) for m, d in ((1, 1), (1, 31), (3, 2), (4, 1), (5, 1))))
    await fills(hub, rx, D(2026, 5, 31))
    rx, _ = await prescription(hub, checker, "BROWN", LOSARTAN)
    await fills(hub, rx, D(2026, 6, 1))
    rx, cal = await prescription(hub, checker, "CLARK", ATORVASTATIN)
    await fills(hub, rx, D(2026, 2, 1), D(2026, 6, 1))
    await hub.pharmacy(**OTHER_PHARMACY)
    rx, dan = await prescription(hub, checker, "DAVIS", ATORVASTATIN, to=OTHER_PHARMACY["ncpdpid"])
    await fills(hub, rx, D(2026, 2, 1), D(2026, 6, 1))
    assert len({ann, ben, cal, dan}) == 4
    return Patients(ann, ben, cal, dan)


async def get(hub: Hub, token: str, url: str, **params: str) -> tuple[int, Any]:
    response = await hub.client.get(url, params=params, headers=bearer(token))
    return response.status, await response.json()


def figures(item: dict[str, Any]) -> tuple[Any, ...]:
    return (
        item["drug_class"],
        item["index_date"],
        item["days_in_period"],
        item["days_covered"],
        item["pdc_percent"],
        item["eligible"],
        item["adherent"],
    )


async def test_pdc_per_patient_and_class_from_the_fills_handed_over(
    hub: Hub, patients: Patients
) -> None:
    alice = await staff(hub, "alice")
    status, body = await get(hub, alice, "/api/v1/adherence", **PERIOD)
    assert status == 200, body
    assert (body["period_from"], body["period_to"], body["threshold_percent"]) == (
        "2026-01-01",
        "2026-06-30",
        80,
    )
    lines = [(item["patient_id"], item["patient"]["last"], figures(item)) for item in body["items"]]
    ann, ben, cal = str(patients.ann), str(patients.ben), str(patients.cal)
    assert lines == [
        # 10 Jan to 30 June: 172 days; 30 + 30 + 15 covered = 43.60 %
        (ann, "ADAMS", ("ras_antagonists", "2026-01-10", 172, 75, 43.6, True, False)),
        # 10 Jan - 9 April, then 10 April to the period's end: every day
        (ann, "ADAMS", ("statins", "2026-01-10", 172, 172, 100.0, True, True)),
        # six 30-day fills back to back from 1 January: 180 of 181 days = 99.44 %
        (ben, "BROWN", ("diabetes", "2026-01-01", 181, 180, 99.4, True, True)),
        # one fill date: not counted by the measure
        (ben, "BROWN", ("ras_antagonists", "2026-06-01", 30, 30, 100.0, False, True)),
        # 1 Feb to 30 June: 150 days, 60 covered
        (cal, "CLARK", ("statins", "2026-02-01", 150, 60, 40.0, True, False)),
    ]
    assert body["items"][0]["drugs"] == ["lisinopril"]
    assert body["items"][0]["patient"] == {
        "last": "ADAMS",
        "first": "TEST",
        "date_of_birth": "1980-01-01",
    }
    assert await hub.audit_outcomes("adherence.list") == ["success"]


async def test_below_the_threshold_lowest_first_and_as_csv(hub: Hub, patients: Patients) -> None:
    alice = await staff(hub, "alice")
    status, body = await get(hub, alice, "/api/v1/adherence", below="true", **PERIOD)
    assert status == 200, body
    assert [(item["patient_id"], item["drug_class"]) for item in body["items"]] == [
        (str(patients.cal), "statins"),
        (str(patients.ann), "ras_antagonists"),
    ]
    response = await hub.client.get(
        "/api/v1/adherence.csv", params={**PERIOD, "below": "true"}, headers=bearer(alice)
    )
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="adherence-2026-01-01-2026-06-30.csv"'
    )
    assert (await response.text()).split("\r\n") == [
        "patient,drug_class,index_date,days_in_period,days_covered,pdc_percent,eligible",
        f"{patients.cal},statins,2026-02-01,150,60,40.0,yes",
        f"{patients.ann},ras_antagonists,2026-01-10,172,75,43.6,yes",
        "",
    ]
    assert await hub.audit_outcomes("adherence.list") == ["success", "success"]


async def test_one_patients_adherence_and_another_pharmacys_patient_is_404(
    hub: Hub, patients: Patients
) -> None:
    alice = await staff(hub, "alice")
    status, body = await get(hub, alice, f"/api/v1/patients/{patients.ann}/adherence", **PERIOD)
    assert status == 200, body
    assert [figures(item) for item in body["items"]] == [
        ("ras_antagonists", "2026-01-10", 172, 75, 43.6, True, False),
        ("statins", "2026-01-10", 172, 172, 100.0, True, True),
    ]
    status, body = await get(hub, alice, f"/api/v1/patients/{patients.dan}/adherence", **PERIOD)
    assert (status, body["code"]) == (404, "not_found")
    status, body = await get(hub, alice, f"/api/v1/patients/{uuid.uuid4()}/adherence")
    assert status == 404
    assert await hub.audit_outcomes("patient.adherence.read") == [
        "success",
        "not_found",
        "not_found",
    ]


async def test_the_list_shows_only_the_callers_pharmacy(hub: Hub, patients: Patients) -> None:
    alice = await staff(hub, "alice")
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    status, body = await get(hub, alice, "/api/v1/adherence", **PERIOD)
    assert str(patients.dan) not in {item["patient_id"] for item in body["items"]}
    status, body = await get(hub, mallory, "/api/v1/adherence", **PERIOD)
    assert status == 200, body
    assert [(item["patient_id"], item["pdc_percent"]) for item in body["items"]] == [
        (str(patients.dan), 40.0)
    ]
    status, body = await get(hub, mallory, f"/api/v1/patients/{patients.ann}/adherence")
    assert status == 404


async def test_a_technician_is_refused(hub: Hub, patients: Patients) -> None:
    tom = await staff(hub, "tom", role="technician")
    for url in (
        "/api/v1/adherence",
        "/api/v1/adherence.csv",
        f"/api/v1/patients/{patients.ann}/adherence",
    ):
        response = await hub.client.get(url, headers=bearer(tom))
        assert response.status == 403, url
    assert await hub.audit_outcomes("adherence.list") == []


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"from": "2026-13-01"}, "period_invalid", "'from' must be a date written YYYY-MM-DD"),
        ({"to": "20260630"}, "period_invalid", "'to' must be a date"),
        ({"from": "2026-07-01", "to": "2026-06-30"}, "period_invalid", "after its 'to'"),
        ({"from": "2024-06-29", "to": "2026-06-30"}, "period_too_long", "at most 731 days"),
    ],
)
async def test_a_bad_period_is_422(hub: Hub, params: dict[str, str], code: str, words: str) -> None:
    await hub.pharmacy()
    alice = await staff(hub, "alice")
    for url in ("/api/v1/adherence", "/api/v1/adherence.csv"):
        status, body = await get(hub, alice, url, **params)
        assert (status, body["code"]) == (422, code), body
        assert words in body["detail"]


async def test_the_default_period_is_the_calendar_year_to_date(hub: Hub) -> None:
    await hub.pharmacy()
    alice = await staff(hub, "alice")
    status, body = await get(hub, alice, "/api/v1/adherence")
    today = dt.datetime.now(dt.UTC).date()
    assert status == 200, body
    assert (body["period_from"], body["period_to"], body["items"]) == (
        D(today.year, 1, 1).isoformat(),
        today.isoformat(),
        [],
    )
    # two years to the day (731 days with the leap day) is allowed
    status, body = await get(
        hub, alice, "/api/v1/adherence", **{"from": "2024-07-01", "to": "2026-06-30"}
    )
    assert status == 200, body


async def test_a_fill_handed_over_through_the_flow_is_counted(
    hub: Hub, team: Team, checker: Checker
) -> None:
    """The fill flow's own rows: the scanned product (an imported NDC), the days supply and
    the hand-over day as the fill store writes them."""
    rx_id, _ = await approved(hub, checker, team)
    fill_id = await to_ready(hub, team, rx_id)
    await hand_over(hub, team.tom, fill_id, HAND_OVER)
    async with hub.db.sessions() as session:
        patient_id = await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == rx_id)
        )
    today = dt.datetime.now(dt.UTC).date()
    end = D(today.year, 12, 31)
    carol = await staff(hub, "carol")
    url = f"/api/v1/patients/{patient_id}/adherence"
    status, body = await get(hub, carol, url, to=end.isoformat())
    assert status == 200, body
    days = (end - today).days + 1
    covered = min(days, 30)
    assert [(figures(item), item["drugs"]) for item in body["items"]] == [
        (
            (
                "ras_antagonists",
                today.isoformat(),
                days,
                covered,
                float(percent(Fraction(covered, days))),
                False,
                covered * 5 >= days * 4,
            ),
            ["lisinopril"],
        )
    ]
