"""The ledger without a payment provider: a fill that becomes ready is charged from the
pharmacy's price list (the product's own price first), once; one not collected is reversed;
staff charge by hand only with a reason; the price list is the admins'; accounts receivable
age by the oldest debts first; paying says plainly that cards are not configured. Synthetic
data only."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from eprescribe.payments import Ageing, Entry, EntryKind, ageing
from server.audit.models import AuditEvent
from server.db.models import utcnow
from server.dispensing.store import FILLS
from server.patients.models import PatientProfile
from server.payments.models import LedgerEntry
from server.payments.reconciling import receivables
from server.prescriptions.models import Prescription
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.fill_helpers import LISINOPRIL_A
from tests.functional.patient_page_helpers import signed_in, verified_email
from tests.functional.test_fills import (  # noqa: F401 (fixtures)
    Team,
    approved,
    checker,
    prescriber,
    products,
    settings,
    team,
    to_ready,
)
from tests.functional.test_patient_contacts import call, profile
from tests.functional.verification_helpers import staff


async def set_price(hub: Hub, token: str, item: str, amount: int | None) -> tuple[int, Any]:
    return await call(hub, "PUT", f"/api/v1/payments/prices/{item}", token, {"amount": amount})


async def lines(hub: Hub, patient: uuid.UUID | str) -> list[LedgerEntry]:
    async with hub.db.sessions() as session:
        found = await session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.patient_id == uuid.UUID(str(patient)))
            .order_by(LedgerEntry.at)
        )
        return list(found)


async def test_a_ready_fill_is_charged_its_price_once_and_reversed_when_not_collected(
    hub: Hub,
    checker: Checker,  # noqa: F811 (the fill tests' fixture)
    team: Team,  # noqa: F811
) -> None:
    admin = await staff(hub, "ada", role="pharmacy_admin")
    assert (await set_price(hub, admin, "fill", 1000))[0] == 200
    status, prices = await set_price(hub, admin, f"ndc:{LISINOPRIL_A}", 450)
    assert status == 200
    assert [(p["item"], p["amount"]) for p in prices["items"]] == [
        ("fill", 1000),
        (f"ndc:{LISINOPRIL_A}", 450),
    ]
    rx_id, _ = await approved(hub, checker, team)
    fill_id = await to_ready(hub, team, rx_id)
    async with hub.db.sessions() as session:
        charges = list(await session.scalars(select(LedgerEntry)))
    assert [(c.kind, c.amount, c.cause_type, c.cause_id) for c in charges] == [
        ("charge", 450, "fill", fill_id)
    ]
    patient = charges[0].patient_id
    status, book = await call(hub, "GET", f"/api/v1/patients/{patient}/ledger", team.tom)
    assert status == 200
    assert book["balance"] == {"usd": 450}
    assert book["items"][0]["description"].startswith("Prescription ")

    # not collected: back to stock, and the charge reversed (once, however often swept)
    store = hub.client.app[FILLS]
    assert await store.sweep(utcnow() + dt.timedelta(days=15)) == 1
    assert await store.sweep(utcnow() + dt.timedelta(days=16)) == 0
    after = await lines(hub, patient)
    assert [(e.kind, e.amount) for e in after] == [("charge", 450), ("adjustment", -450)]
    status, book = await call(hub, "GET", f"/api/v1/patients/{patient}/ledger", team.tom)
    assert book["balance"] == {}
    assert book["items"][0]["signed"] == -450


async def test_no_price_no_charge(
    hub: Hub,
    checker: Checker,  # noqa: F811 (the fill tests' fixture)
    team: Team,  # noqa: F811
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    await to_ready(hub, team, rx_id)
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
        detail = await session.scalar(
            select(AuditEvent.detail)
            .where(AuditEvent.action.like("fill.%"))
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
    assert detail["charged"] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": 12.5, "description": "fee", "reason": "r"}, 400, "bad_request"),
        ({"amount": "100", "description": "fee", "reason": "r"}, 400, "bad_request"),
        ({"amount": -1, "description": "fee", "reason": "r"}, 400, "bad_request"),
        ({"amount": 100, "description": "fee"}, 400, "bad_request"),
        ({"amount": 100, "description": "", "reason": "r"}, 400, "bad_request"),
        (
            {"amount": 100, "currency": "xyz", "description": "fee", "reason": "r"},
            422,
            "currency_unknown",
        ),
        (
            {"amount": 100, "currency": "USD", "description": "fee", "reason": "r"},
            400,
            "bad_request",
        ),
    ],
)
async def test_charges_typed_wrongly_are_refused(
    hub: Hub, body: dict[str, Any], status: int, code: str
) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    got, problem = await call(hub, "POST", f"/api/v1/patients/{patient}/charges", alice, body)
    assert (got, problem["code"]) == (status, code), problem
    assert await lines(hub, patient) == []


async def test_who_charges_and_sets_prices(hub: Hub) -> None:
    await hub.pharmacy()
    await hub.pharmacy(**OTHER_PHARMACY)
    patient, alice = await profile(hub), await staff(hub, "alice")
    tech = await staff(hub, "terry", role="technician")
    other = await staff(hub, "olga", pharmacy=OTHER_PHARMACY["ncpdpid"])
    body = {"amount": 2500, "description": "Delivery", "reason": "same-day courier"}
    url = f"/api/v1/patients/{patient}/charges"
    assert (await call(hub, "POST", url, tech, body))[0] == 403
    assert (await call(hub, "POST", url, other, body))[0] == 404
    status, line = await call(hub, "POST", url, alice, body)
    assert status == 200
    assert (line["kind"], line["amount"], line["reason"]) == ("charge", 2500, "same-day courier")
    assert await hub.audit_outcomes("payment.charge") == ["not_found", "success"]
    # the other pharmacy sees no ledger of ours
    status, _ = await call(hub, "GET", f"/api/v1/patients/{patient}/ledger", other)
    assert status == 404

    assert (await set_price(hub, alice, "consult", 3000))[0] == 403
    admin = await staff(hub, "ada", role="pharmacy_admin")
    assert (await set_price(hub, admin, "haircut", 3000))[0] == 400
    assert (await set_price(hub, admin, "ndc:123", 3000))[0] == 400
    assert (await set_price(hub, admin, "consult", -1))[0] == 400
    assert (await set_price(hub, admin, "consult", 3000))[0] == 200
    status, prices = await set_price(hub, admin, "consult", None)
    assert (status, prices["items"]) == (200, [])
    status, theirs = await call(hub, "GET", "/api/v1/payments/prices", other)
    assert (status, theirs["items"]) == (200, [])


async def test_receivables_age_the_oldest_debts_first(hub: Hub) -> None:
    await hub.pharmacy()
    first, second = await profile(hub), await profile(hub)
    admin = await staff(hub, "ada", role="pharmacy_admin")
    today = utcnow()
    async with hub.db.transaction() as session:
        pharmacy_id = await session.scalar(
            select(PatientProfile.pharmacy_id).where(PatientProfile.id == first)
        )
        for patient, kind, amount, days in [
            (first, "charge", 1000, 100),
            (first, "charge", 2000, 45),
            (first, "payment", 1500, 1),
            (second, "charge", 700, 10),
            (second, "payment", 900, 2),
        ]:
            session.add(
                LedgerEntry(
                    pharmacy_id=pharmacy_id,
                    patient_id=patient,
                    kind=kind,
                    amount=amount,
                    currency="usd",
                    cause_type="manual",
                    cause_id=str(uuid.uuid4()),
                    description="synthetic",
                    actor="test",
                    at=today - dt.timedelta(days=days),
                )
            )
    status, aged = await call(hub, "GET", "/api/v1/payments/receivables", admin)
    assert status == 200, aged
    (usd,) = aged["items"]
    # the first's payment settles the 100-day charge, then 500 of the 45-day one
    assert usd["buckets"] == {"0-30": 0, "31-60": 1500, "61-90": 0, "90+": 0}
    assert usd["credit"] == 200  # the second paid ahead
    assert usd["total"] == 1300
    status, _ = await call(hub, "GET", "/api/v1/payments/receivables?as_of=yesterday", admin)
    assert status == 400
    tech = await staff(hub, "terry", role="technician")
    assert (await call(hub, "GET", "/api/v1/payments/receivables", tech))[0] == 403


async def test_without_a_provider_paying_says_why(hub: Hub) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    for method, path, body in [
        ("POST", f"/api/v1/patients/{patient}/cards", None),
        (
            "POST",
            f"/api/v1/patients/{patient}/payments",
            {"amount": 1, "card_id": str(uuid.uuid4())},
        ),
        ("GET", "/api/v1/payments/reconciliation", None),
    ]:
        status, problem = await call(hub, method, path, alice, body)
        assert (status, problem["code"]) == (503, "payments_not_configured"), path
    response = await hub.client.post("/payments/webhook", data=b"{}")
    assert response.status == 503


async def test_a_fill_shipped_is_charged_the_delivery_price_once(
    hub: Hub,
    checker: Checker,  # noqa: F811 (the fill tests' fixture)
    team: Team,  # noqa: F811
) -> None:
    admin = await staff(hub, "ada", role="pharmacy_admin")
    assert (await set_price(hub, admin, "delivery", 799))[0] == 200
    rx_id, _ = await approved(hub, checker, team)
    fill_id = await to_ready(hub, team, rx_id)
    async with hub.db.sessions() as session:
        patient = await session.scalar(
            select(Prescription.patient_id).where(Prescription.id == rx_id)
        )
    prefs = {"pickup_or_delivery": "delivery"}
    url = f"/api/v1/patients/{patient}/preferences"
    assert (await call(hub, "PUT", url, team.tom, prefs))[0] == 200
    ups = {"carrier": "ups", "tracking_number": "1Z999AA10123456784"}
    status, body = await call(hub, "POST", f"/api/v1/fills/{fill_id}/shipment", team.tom, ups)
    assert status == 201, body
    status, again = await call(hub, "POST", f"/api/v1/fills/{fill_id}/shipment", team.tom, ups)
    assert status == 409, again
    charges = [(e.cause_type, e.amount) for e in await lines(hub, patient)]
    assert charges == [("delivery", 799)]
    # the patient's own page says it is on its way
    await verified_email(hub, team.tom, patient)
    await signed_in(hub)
    response = await hub.client.get("/api/v1/me/prescriptions")
    assert response.status == 200
    (item,) = (await response.json())["items"]
    assert (item["status"], item["status_text"]) == ("out_for_delivery", "Out for delivery")


async def test_a_pharmacist_writes_off_at_most_what_is_owed(hub: Hub) -> None:
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    tech = await staff(hub, "terry", role="technician")
    body = {"amount": 1200, "description": "Consult", "reason": "not in the price list"}
    assert (await call(hub, "POST", f"/api/v1/patients/{patient}/charges", alice, body))[0] == 200
    url = f"/api/v1/patients/{patient}/write-offs"
    assert (await call(hub, "POST", url, tech, {"amount": 200, "reason": "hardship"}))[0] == 403
    status, problem = await call(hub, "POST", url, alice, {"amount": 1201, "reason": "hardship"})
    assert (status, problem["code"]) == (422, "write_off_over_balance")
    status, problem = await call(hub, "POST", url, alice, {"amount": 200})
    assert status == 400
    status, line = await call(hub, "POST", url, alice, {"amount": 200, "reason": "hardship"})
    assert status == 200, line
    assert (line["kind"], line["signed"], line["reason"]) == ("write_off", -200, "hardship")
    status, book = await call(hub, "GET", f"/api/v1/patients/{patient}/ledger", alice)
    assert book["balance"] == {"usd": 1000}
    assert await hub.audit_outcomes("payment.write_off") == ["refused", "success"]


@pytest.mark.parametrize("seed", [1, 2])
async def test_receivables_in_sql_are_the_pure_ageing_on_random_ledgers(
    hub: Hub, seed: int
) -> None:
    """The database's ageing (one statement) against eprescribe.payments.ageing per patient,
    summed: every kind and sign, two currencies, same-moment entries (ordered by ID), debits on
    each bucket's first and last day and after ``as_of``, patients paid ahead or exactly."""
    await hub.pharmacy()
    await hub.pharmacy(ncpdpid="7654321", npi="1000000012")
    rng = random.Random(seed)
    patients = [await profile(hub) for _ in range(12)]
    stranger = await profile(hub, "7654321")
    as_of = dt.date(2026, 6, 30)
    midnight = dt.datetime.combine(as_of, dt.time(), dt.UTC)
    moments = [
        midnight - dt.timedelta(days=d, seconds=s)
        for d in (-3, 0, 1, 29, 30, 31, 60, 61, 90, 91, 400)
        for s in (0, 1, -1)
    ]
    kinds = list(EntryKind)
    mine: dict[uuid.UUID, list[Entry]] = {p: [] for p in patients}
    async with hub.db.transaction() as session:
        pharmacy_id, other_id = [
            await session.scalar(select(PatientProfile.pharmacy_id).where(PatientProfile.id == p))
            for p in (patients[0], stranger)
        ]
        for n in range(400):
            patient = stranger if n % 10 == 0 else rng.choice(patients)
            kind = rng.choice(kinds)
            amount = rng.randint(1, 5000) * (rng.choice((-1, 1)) if kind == "adjustment" else 1)
            entry = Entry(
                kind,
                amount,
                rng.choice(("usd", "usd", "eur")),
                rng.choice(moments),
                uuid.uuid4(),
            )
            if patient != stranger:
                mine[patient].append(entry)
            session.add(
                LedgerEntry(
                    id=entry.id,
                    pharmacy_id=other_id if patient == stranger else pharmacy_id,
                    patient_id=patient,
                    kind=kind.value,
                    amount=amount,
                    currency=entry.currency,
                    cause_type="manual",
                    cause_id=str(entry.id),
                    description="synthetic",
                    actor="test",
                    at=entry.at,
                )
            )
        # paid exactly: nothing owed, no credit
        session.add_all(
            LedgerEntry(
                pharmacy_id=pharmacy_id,
                patient_id=patients[0],
                kind=kind,
                amount=777,
                currency="gbp",
                cause_type="manual",
                cause_id=f"exact-{kind}",
                description="synthetic",
                actor="test",
                at=moments[4],
            )
            for kind in ("charge", "payment")
        )
    mine[patients[0]] += [
        Entry(EntryKind(kind), 777, "gbp", moments[4]) for kind in ("charge", "payment")
    ]
    expected: dict[str, Ageing] = {}
    for lines in mine.values():
        for aged in ageing(lines, as_of):
            seen = expected.get(aged.currency)
            if seen is not None:
                buckets = {k: seen.buckets[k] + aged.buckets[k] for k in seen.buckets}
                aged = Ageing(aged.currency, buckets, seen.credit + aged.credit)
            expected[aged.currency] = aged
    assert pharmacy_id is not None
    found = await receivables(hub.db, pharmacy_id, as_of)
    assert found == sorted(expected.values(), key=lambda a: a.currency)
    assert [a.currency for a in found] == ["eur", "gbp", "usd"]
    assert any(a.credit for a in found)
    assert all(a.buckets["0-30"] for a in found if a.currency != "gbp")


async def test_a_ledger_pages_newest_first_every_line_once(hub: Hub) -> None:
    """Keyset pages over lines sharing their moment (ordered by ID then): each line once, the
    balance on every page the whole ledger's."""
    await hub.pharmacy()
    patient, alice = await profile(hub), await staff(hub, "alice")
    pharmacy_id = await pharmacy_of(hub, patient)
    moment = utcnow() - dt.timedelta(days=3)
    async with hub.db.transaction() as session:
        for n in range(11):
            session.add(
                LedgerEntry(
                    pharmacy_id=pharmacy_id,
                    patient_id=patient,
                    kind="charge",
                    amount=100 + n,
                    currency="usd",
                    cause_type="manual",
                    cause_id=f"page-{n}",
                    description="synthetic",
                    actor="test",
                    at=moment + dt.timedelta(seconds=n // 3),
                )
            )
    seen: list[tuple[str, str]] = []
    url = f"/api/v1/patients/{patient}/ledger?limit=4"
    while True:
        status, page = await call(hub, "GET", url, alice)
        assert status == 200, page
        assert page["balance"] == {"usd": sum(100 + n for n in range(11))}
        seen += [(line["at"], line["id"]) for line in page["items"]]
        if not page["next"]:
            break
        url = f"/api/v1/patients/{patient}/ledger?limit=4&after={page['next']}"
    assert len(seen) == len(set(seen)) == 11
    assert seen == sorted(
        seen, key=lambda s: (dt.datetime.fromisoformat(s[0]), uuid.UUID(s[1])), reverse=True
    )


async def pharmacy_of(hub: Hub, patient: uuid.UUID) -> uuid.UUID:
    async with hub.db.sessions() as session:
        found = await session.scalar(
            select(PatientProfile.pharmacy_id).where(PatientProfile.id == patient)
        )
    assert found is not None
    return found


async def test_a_merge_is_not_undone_once_the_kept_profile_s_money_moved(hub: Hub) -> None:
    await hub.pharmacy()
    keep, gone = await profile(hub), await profile(hub)
    alice = await staff(hub, "alice")
    body = {"amount": 900, "description": "Consult", "reason": "by hand"}
    assert (await call(hub, "POST", f"/api/v1/patients/{gone}/charges", alice, body))[0] == 200
    status, merged = await call(
        hub, "POST", f"/api/v1/patients/{keep}/merge", alice, {"merged_id": str(gone)}
    )
    assert status == 200, merged
    assert merged["moved"]["ledger_entries"] == 1
    status, book = await call(hub, "GET", f"/api/v1/patients/{keep}/ledger", alice)
    assert book["balance"] == {"usd": 900}
    # charged after the merge: whose money it is cannot be told apart, so no exact unmerge
    assert (await call(hub, "POST", f"/api/v1/patients/{keep}/charges", alice, body))[0] == 200
    status, problem = await call(
        hub, "POST", f"/api/v1/patient-merges/{merged['id']}/unmerge", alice
    )
    assert (status, problem["code"]) == (409, "unmerge_not_exact")
    assert "ledger_entries_since: 1" in problem["detail"]
