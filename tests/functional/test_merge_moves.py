"""What a profile merge does with the rows other features keep per patient, and that an unmerge
restores them exactly: refill requests follow their prescriptions; the med sync moves like the
preferences (the kept profile's own stays); the provider's customer and its saved cards move
together only when the kept profile has no customer of its own (a card hangs on its customer
at the provider), else the cards stay with the merged profile. Synthetic data only; the
provider's identifiers are made up (a merge never calls the provider)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select

from server.adherence.models import MedSync
from server.auth.models import User
from server.db.models import utcnow
from server.patient_page.models import RefillRequest
from server.payments.models import PaymentCard, PaymentCustomer
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.patient_page_helpers import linked
from tests.functional.test_patient_contacts import call, profile
from tests.functional.verification_helpers import staff


async def customer_and_card(hub: Hub, patient: uuid.UUID, tag: str) -> uuid.UUID:
    _, pharmacy = await _alice(hub)
    async with hub.db.transaction() as session:
        session.add(
            PaymentCustomer(patient_id=patient, pharmacy_id=pharmacy, provider_id=f"cus_{tag}")
        )
        card = PaymentCard(
            pharmacy_id=pharmacy,
            patient_id=patient,
            setup_id=f"seti_{tag}",
            payment_method=f"pm_{tag}",
            brand="visa",
            last4="4242",
            exp_month=12,
            exp_year=2030,
            saved=True,
        )
        session.add(card)
    return card.id


async def _alice(hub: Hub) -> tuple[uuid.UUID, uuid.UUID]:
    """Alice's user and pharmacy."""
    async with hub.db.sessions() as session:
        found = (
            await session.execute(select(User.id, User.pharmacy_id).where(User.username == "alice"))
        ).one()
    return found[0], found[1]


async def med_sync(hub: Hub, patient: uuid.UUID, cycle: int) -> None:
    user, pharmacy = await _alice(hub)
    async with hub.db.transaction() as session:
        session.add(
            MedSync(
                patient_id=patient,
                pharmacy_id=pharmacy,
                anchor=dt.date(2026, 12, 1),
                cycle_days=cycle,
                short_fills=[],
                accepted_by=user,
            )
        )


async def where(hub: Hub) -> dict[str, Any]:
    """Which profile each row belongs to."""
    async with hub.db.sessions() as session:
        return {
            "customers": sorted(
                (r.provider_id, str(r.patient_id))
                for r in await session.scalars(select(PaymentCustomer))
            ),
            "cards": sorted(
                (r.setup_id, str(r.patient_id)) for r in await session.scalars(select(PaymentCard))
            ),
            "med_sync": sorted(
                (r.cycle_days, str(r.patient_id)) for r in await session.scalars(select(MedSync))
            ),
            "refills": sorted(
                str(r.patient_id) for r in await session.scalars(select(RefillRequest))
            ),
        }


async def merge(hub: Hub, token: str, keep: uuid.UUID, gone: uuid.UUID) -> dict[str, Any]:
    status, merged = await call(
        hub, "POST", f"/api/v1/patients/{keep}/merge", token, {"merged_id": str(gone)}
    )
    assert status == 200, merged
    return merged


async def unmerge(hub: Hub, token: str, merge_id: str) -> tuple[int, dict[str, Any]]:
    return await call(hub, "POST", f"/api/v1/patient-merges/{merge_id}/unmerge", token)


async def test_a_merge_moves_refills_med_sync_and_the_customer_with_its_cards_and_unmerges_exactly(
    hub: Hub, checker: Checker
) -> None:
    rx_id, gone = await linked(hub, checker)
    keep = await profile(hub)
    alice = await staff(hub, "alice")
    _, pharmacy = await _alice(hub)
    async with hub.db.transaction() as session:
        session.add(
            RefillRequest(
                pharmacy_id=pharmacy,
                patient_id=gone,
                prescription_id=rx_id,
                kind="refill",
                state="open",
            )
        )
    await customer_and_card(hub, gone, "gone")
    await med_sync(hub, gone, 30)
    before = await where(hub)

    merged = await merge(hub, alice, keep, gone)
    moved = merged["moved"]
    assert (moved["refill_requests"], moved["med_sync"], moved["med_sync_kept"]) == (1, 1, 0)
    assert (moved["payment_customers"], moved["payment_cards"], moved["payment_cards_kept"]) == (
        1,
        1,
        0,
    )
    assert await where(hub) == {
        "customers": [("cus_gone", str(keep))],
        "cards": [("seti_gone", str(keep))],
        "med_sync": [(30, str(keep))],
        "refills": [str(keep)],
    }
    status, cards = await call(hub, "GET", f"/api/v1/patients/{keep}/cards", alice)
    assert [c["last4"] for c in cards["items"]] == ["4242"]

    status, undone = await unmerge(hub, alice, merged["id"])
    assert status == 200, undone
    assert await where(hub) == before


async def test_cards_of_another_customer_stay_and_a_changed_row_stops_the_unmerge(
    hub: Hub,
) -> None:
    await hub.pharmacy()
    keep, gone = await profile(hub), await profile(hub)
    alice = await staff(hub, "alice")
    await customer_and_card(hub, keep, "keep")
    await customer_and_card(hub, gone, "gone")
    await med_sync(hub, keep, 28)
    await med_sync(hub, gone, 30)
    before = await where(hub)

    merged = await merge(hub, alice, keep, gone)
    moved = merged["moved"]
    # the kept profile's customer is another object at the provider: the cards stay
    assert (moved["payment_customers"], moved["payment_cards"], moved["payment_cards_kept"]) == (
        0,
        0,
        1,
    )
    assert (moved["med_sync"], moved["med_sync_kept"]) == (0, 1)
    assert await where(hub) == before
    status, cards = await call(hub, "GET", f"/api/v1/patients/{keep}/cards", alice)
    assert [c["last4"] for c in cards["items"]] == ["4242"]  # its own card only
    status, undone = await unmerge(hub, alice, merged["id"])
    assert status == 200, undone
    assert await where(hub) == before

    # moved, then changed on the kept profile since: the unmerge would not be exact
    third = await profile(hub)
    await customer_and_card(hub, third, "third")
    await med_sync(hub, third, 21)
    fresh = await profile(hub)
    merged = await merge(hub, alice, fresh, third)
    assert merged["moved"]["payment_cards"] == 1
    _, pharmacy = await _alice(hub)
    async with hub.db.transaction() as session:
        session.add(
            PaymentCard(pharmacy_id=pharmacy, patient_id=fresh, setup_id="seti_since", saved=False)
        )
        row = await session.get_one(MedSync, fresh)
        row.accepted_at = utcnow()  # a pharmacist accepted another plan since
    status, problem = await unmerge(hub, alice, merged["id"])
    assert (status, problem["code"]) == (409, "unmerge_not_exact")
    assert "payment_cards_since: 1" in problem["detail"]
    assert "med_sync: 1" in problem["detail"]
