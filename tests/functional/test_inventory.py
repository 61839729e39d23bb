"""Inventory: receiving (typed, UPC, GS1), the stock list and low stock, what a fill takes and
puts back, refusals that change nothing, the Schedule II perpetual log, two fills racing for
the last units, other pharmacies' stock, roles, and the audit trail it leaves."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from eprescribe.dispensing.inventory import StockRefused
from server import audit
from server.admin.models import Pharmacy
from server.audit.models import AuditEvent
from server.inventory import store
from server.inventory.demo import add_to_directory, demo_products
from server.inventory.models import StockLot, StockMovement, StockProduct
from server.inventory.service import Inventory
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.verification_helpers import bearer, staff

LISINOPRIL = "99999041090"  # 99999-410-90, a 5-3-2 code
LISINOPRIL_10 = "9999941090"
OXYCODONE = "99999052001"  # Schedule II
ACTOR = audit.Actor("user", "fill-flow-test")
TODAY = dt.datetime.now(dt.UTC).date()
EXPIRY = TODAY + dt.timedelta(days=400)
GS = "\x1d"


def check_digit(body: str) -> str:
    """GS1 check digit: weights 3, 1, 3, ... from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def gs1(ndc10: str, lot: str, expiry: dt.date, serial: str = "SN0001") -> str:
    """A DataMatrix element string as a keyboard-wedge scanner types it (symbology prefix,
    GS between a variable-length field and the next)."""
    gtin = "003" + ndc10
    gtin += check_digit(gtin)
    return f"]d201{gtin}17{expiry:%y%m%d}10{lot}{GS}21{serial}"


def upc(ndc10: str) -> str:
    code = "3" + ndc10
    return code + check_digit(code)


@pytest.fixture
async def shelf(hub: Hub) -> dict[str, str]:
    """The test pharmacy with the demo listings in the NDC Directory, and its staff."""
    await hub.pharmacy()
    await add_to_directory(hub.db, demo_products())
    return {
        "tech": await staff(hub, "tina", "technician"),
        "rph": await staff(hub, "rita", "pharmacist", controlled=True),
        "rph_plain": await staff(hub, "peter", "pharmacist"),
        "admin": await staff(hub, "adam", "pharmacy_admin"),
    }


async def pharmacy_id(hub: Hub, ncpdpid: str = "1234567") -> uuid.UUID:
    async with hub.db.sessions() as session:
        found = await session.scalar(select(Pharmacy.id).where(Pharmacy.ncpdpid == ncpdpid))
    assert found is not None
    return found


async def receive(hub: Hub, token: str, expected: int = 200, **body: Any) -> dict[str, Any]:
    body.setdefault("quantity", 100)
    if "expiry" in body and isinstance(body["expiry"], dt.date):
        body["expiry"] = body["expiry"].isoformat()
    response = await hub.client.post("/api/v1/inventory/receipts", json=body, headers=bearer(token))
    assert response.status == expected, await response.text()
    return dict(await response.json())


async def stock(hub: Hub, token: str, **params: str) -> list[dict[str, Any]]:
    response = await hub.client.get("/api/v1/inventory", params=params, headers=bearer(token))
    assert response.status == 200, await response.text()
    return list((await response.json())["items"])


async def counts(hub: Hub) -> tuple[int, list[tuple[str, Decimal]], list[tuple[str, Decimal]]]:
    """Movements, and every product's and lot's on hand: what a refusal must leave alone."""
    async with hub.db.sessions() as session:
        moved = await session.scalar(select(func.count()).select_from(StockMovement))
        products = (await session.execute(select(StockProduct.ndc11, StockProduct.on_hand))).all()
        lots = (await session.execute(select(StockLot.lot, StockLot.on_hand))).all()
    return moved or 0, sorted(tuple(p) for p in products), sorted(tuple(lot) for lot in lots)


# -- receiving -----------------------------------------------------------------------------


async def test_receive_a_typed_ndc(hub: Hub, shelf: dict[str, str]) -> None:
    moved = await receive(hub, shelf["tech"], ndc="99999-410-90", lot="L1", expiry=EXPIRY)
    assert moved["movement"]["kind"] == "receive"
    assert moved["movement"]["quantity"] == 100
    product = moved["product"]
    assert (product["ndc11"], product["on_hand"], product["schedule_ii"]) == (
        LISINOPRIL,
        100,
        False,
    )
    assert product["description"].startswith("lisinopril 10 MG Oral Tablet")
    assert [(lot["lot"], lot["on_hand"], lot["expiry"]) for lot in product["lots"]] == [
        ("L1", 100, EXPIRY.isoformat())
    ]
    assert await hub.audit_outcomes("inventory.receive") == ["success"]


async def test_receive_a_gs1_datamatrix_scan(hub: Hub, shelf: dict[str, str]) -> None:
    moved = await receive(hub, shelf["tech"], scan=gs1(LISINOPRIL_10, "GL7", EXPIRY), quantity=90)
    assert (moved["movement"]["ndc11"], moved["movement"]["lot"]) == (LISINOPRIL, "GL7")
    assert moved["movement"]["expiry"] == EXPIRY.isoformat()
    async with hub.db.sessions() as session:
        detail = (
            await session.scalars(
                select(AuditEvent.detail).where(AuditEvent.action == "inventory.receive")
            )
        ).one()
    assert detail["serial"] == "SN0001"


async def test_receive_a_upc_with_lot_and_expiry_typed(hub: Hub, shelf: dict[str, str]) -> None:
    moved = await receive(hub, shelf["rph"], scan=upc(LISINOPRIL_10), lot="U1", expiry=EXPIRY)
    assert (moved["movement"]["ndc11"], moved["movement"]["lot"]) == (LISINOPRIL, "U1")
    problem = await receive(hub, shelf["rph"], 422, scan=upc(LISINOPRIL_10), expiry=EXPIRY)
    assert problem["code"] == "lot_missing"


async def test_a_scan_and_a_typed_lot_must_agree(hub: Hub, shelf: dict[str, str]) -> None:
    scan = gs1(LISINOPRIL_10, "GL7", EXPIRY)
    problem = await receive(hub, shelf["tech"], 422, scan=scan, lot="OTHER")
    assert problem["code"] == "scan_mismatch"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"ndc": "12345-678-90", "lot": "L1"}, "ndc_unknown"),
        (
            {"ndc": "99999-410-90", "lot": "OLD", "expiry": TODAY - dt.timedelta(days=1)},
            "lot_expired",
        ),
        ({"ndc": "not-an-ndc", "lot": "L1"}, "ndc_invalid"),
        ({"scan": "hello", "lot": "L1"}, "scan_unreadable"),
        ({"ndc": "99999-410-90", "lot": "L1", "quantity": 0.0001}, "quantity_invalid"),
    ],
)
async def test_receipts_refused_change_nothing_and_are_audited(
    hub: Hub, shelf: dict[str, str], body: dict[str, Any], code: str
) -> None:
    body.setdefault("expiry", EXPIRY)
    problem = await receive(hub, shelf["tech"], 422, **body)
    assert problem["code"] == code
    assert await counts(hub) == (0, [], [])
    if code not in ("ndc_invalid", "scan_unreadable"):  # refused before the stock is asked
        assert await hub.audit_outcomes("inventory.receive") == ["refused"]


async def test_a_ten_digit_code_two_listings_may_be_is_refused(
    hub: Hub, shelf: dict[str, str]
) -> None:
    """9999063130 reads as 4-4-2 (09999-0631-30) and as 5-3-2 (99990-0631-30): both listed."""
    listings = (
        ("9999-0631", "A", "Ibuprofen", "TABLET", "IBUPROFEN", "200", "mg/1", "",
         "9999-0631-30", "30 TABLET in 1 BOTTLE (9999-0631-30)"),
        ("99990-631", "B", "Ibuprofen", "TABLET", "IBUPROFEN", "400", "mg/1", "",
         "99990-631-30", "30 TABLET in 1 BOTTLE (99990-631-30)"),
    )  # fmt: skip
    await add_to_directory(hub.db, demo_products(listings))
    problem = await receive(hub, shelf["tech"], 422, scan=upc("9999063130"), lot="L", expiry=EXPIRY)
    assert problem["code"] == "ndc_ambiguous"
    assert "09999063130" in problem["detail"]
    assert "99990063130" in problem["detail"]
    typed = await receive(hub, shelf["tech"], ndc="9999-0631-30", lot="L", expiry=EXPIRY)
    assert typed["product"]["ndc11"] == "09999063130"


async def test_a_lot_keeps_its_expiry(hub: Hub, shelf: dict[str, str]) -> None:
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="L1", expiry=EXPIRY)
    other = EXPIRY + dt.timedelta(days=30)
    problem = await receive(hub, shelf["tech"], 422, ndc=LISINOPRIL, lot="L1", expiry=other)
    assert problem["code"] == "lot_expiry_mismatch"
    again = await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="L1", expiry=EXPIRY)
    assert again["product"]["on_hand"] == 200


async def test_an_admin_does_not_receive(hub: Hub, shelf: dict[str, str]) -> None:
    problem = await receive(hub, shelf["admin"], 403, ndc=LISINOPRIL, lot="L1", expiry=EXPIRY)
    assert problem["code"] == "forbidden"


# -- on hand and low stock ----------------------------------------------------------------------


async def test_low_stock_is_at_or_below_the_reorder_point(hub: Hub, shelf: dict[str, str]) -> None:
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="L1", expiry=EXPIRY, quantity=60)
    await receive(hub, shelf["tech"], ndc=OXYCODONE, lot="X1", expiry=EXPIRY, quantity=100)
    assert await stock(hub, shelf["tech"], low="true") == []
    for token, point, status in ((shelf["tech"], 60, 403), (shelf["rph"], 60, 200)):
        response = await hub.client.put(
            f"/api/v1/inventory/products/{LISINOPRIL}",
            json={"reorder_point": point},
            headers=bearer(token),
        )
        assert response.status == status, await response.text()
    low = await stock(hub, shelf["tech"], low="true")
    assert [(p["ndc11"], p["on_hand"], p["reorder_point"], p["low"]) for p in low] == [
        (LISINOPRIL, 60, 60, True)
    ]
    everything = await stock(hub, shelf["admin"])
    assert [p["ndc11"] for p in everything] == [LISINOPRIL, OXYCODONE]
    assert [p["ndc11"] for p in await stock(hub, shelf["tech"], ndc="99999-520-01")] == [OXYCODONE]
    response = await hub.client.put(
        f"/api/v1/inventory/products/{LISINOPRIL}",
        json={"reorder_point": None},
        headers=bearer(shelf["admin"]),
    )
    assert response.status == 200
    assert await stock(hub, shelf["tech"], low="true") == []
    assert await hub.audit_outcomes("inventory.reorder_point") == ["success", "success"]


# -- what a fill takes and puts back -------------------------------------------------------------


async def test_take_and_put_back_restore_exactly_and_once(hub: Hub, shelf: dict[str, str]) -> None:
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="A", expiry=EXPIRY, quantity=40)
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="B", expiry=EXPIRY, quantity=50)
    before = await counts(hub)
    pid, fill = await pharmacy_id(hub), uuid.uuid4()
    async with hub.db.transaction() as session:
        assert await store.check_async(session, pid, LISINOPRIL, "A", 40) is None
        first = await store.take_async(session, ACTOR, pid, LISINOPRIL, "A", 40, fill)
        second = await store.take_async(session, ACTOR, pid, LISINOPRIL, "B", Decimal("7.5"), fill)
    assert (first.kind, first.quantity, first.balance_after, first.lot_balance_after) == (
        "dispense",
        Decimal(-40),
        Decimal(50),
        Decimal(0),
    )
    assert (second.balance_after, second.fill_id) == (Decimal("42.5"), fill)
    async with hub.db.transaction() as session:
        returned = await store.put_back_async(session, ACTOR, pid, fill, "not picked up")
    assert sorted((m.lot, m.quantity, m.kind) for m in returned) == [
        ("A", Decimal(40), "return"),
        ("B", Decimal("7.5"), "return"),
    ]
    after = await counts(hub)
    assert after[1:] == before[1:]
    assert after[0] == before[0] + 4
    async with hub.db.transaction() as session:
        assert await store.put_back_async(session, ACTOR, pid, fill, "again") == []
    assert await counts(hub) == after


async def test_without_a_scanned_lot_the_first_to_expire_is_picked(
    hub: Hub, shelf: dict[str, str]
) -> None:
    later = EXPIRY + dt.timedelta(days=100)
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="LATE", expiry=later, quantity=50)
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="EARLY", expiry=EXPIRY, quantity=10)
    pid = await pharmacy_id(hub)
    async with hub.db.sessions() as session:
        assert await store.pick_lot_async(session, pid, LISINOPRIL, 10) == "EARLY"
        assert await store.pick_lot_async(session, pid, LISINOPRIL, 11) == "LATE"
        with pytest.raises(StockRefused) as refused:
            await store.pick_lot_async(session, pid, LISINOPRIL, 51)
        assert refused.value.code == "insufficient_stock"
        with pytest.raises(StockRefused) as refused:
            await store.pick_lot_async(session, pid, OXYCODONE, 1)
        assert refused.value.code == "insufficient_stock"


async def test_refusals_change_nothing(hub: Hub, shelf: dict[str, str]) -> None:
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="A", expiry=EXPIRY, quantity=20)
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="R", expiry=EXPIRY, quantity=20)
    await Inventory(hub.db).recall(ACTOR, LISINOPRIL, "R", "FDA notice: tablets mislabelled")
    before = await counts(hub)
    pid = await pharmacy_id(hub)
    cases = [
        ("A", 21, TODAY, "insufficient_stock"),
        ("A", 10, EXPIRY + dt.timedelta(days=1), "lot_expired"),
        ("R", 1, TODAY, "lot_recalled"),
        ("NOPE", 1, TODAY, "lot_unknown"),
    ]
    for lot, quantity, today, code in cases:
        async with hub.db.transaction() as session:
            refusal = await session.run_sync(
                lambda s, lot=lot, q=quantity, t=today: store.check(s, pid, LISINOPRIL, lot, q, t)
            )
            assert refusal is not None
            assert refusal.code == code
            with pytest.raises(StockRefused) as refused:
                await session.run_sync(
                    lambda s, lot=lot, q=quantity, t=today: store.take(
                        s, ACTOR, pid, LISINOPRIL, lot, q, uuid.uuid4(), t
                    )
                )
        assert refused.value.code == code
        assert await counts(hub) == before
        if code == "insufficient_stock":
            assert "has 20 on hand" in refusal.words


async def test_a_recall_takes_the_lot_off_every_shelf(hub: Hub, shelf: dict[str, str]) -> None:
    await hub.pharmacy(**OTHER_PHARMACY)
    other = await staff(hub, "otto", "technician", pharmacy=OTHER_PHARMACY["ncpdpid"])
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="R", expiry=EXPIRY, quantity=20)
    await receive(hub, other, ndc=LISINOPRIL, lot="R", expiry=EXPIRY, quantity=30)
    moved = await Inventory(hub.db).recall(ACTOR, LISINOPRIL, "R", "FDA notice")
    assert sorted(m.quantity for m in moved) == [Decimal(-30), Decimal(-20)]
    for token in (shelf["tech"], other):
        (product,) = await stock(hub, token)
        assert (product["on_hand"], product["lots"][0]["recalled"]) == (0, True)
    problem = await receive(hub, other, 422, ndc=LISINOPRIL, lot="R", expiry=EXPIRY)
    assert problem["code"] == "lot_recalled"
    assert await Inventory(hub.db).recall(ACTOR, LISINOPRIL, "R", "again") == []


# -- Schedule II ----------------------------------------------------------------------------------


async def test_the_schedule_ii_log_keeps_a_running_balance(hub: Hub, shelf: dict[str, str]) -> None:
    await receive(hub, shelf["tech"], ndc=OXYCODONE, lot="X1", expiry=EXPIRY, quantity=100)
    await receive(hub, shelf["tech"], ndc=OXYCODONE, lot="X2", expiry=EXPIRY, quantity=50)
    pid, fill = await pharmacy_id(hub), uuid.uuid4()
    async with hub.db.transaction() as session:
        await store.take_async(session, ACTOR, pid, OXYCODONE, "X1", 30, fill)
    response = await hub.client.post(
        "/api/v1/inventory/adjustments",
        json={"ndc": OXYCODONE, "lot": "X1", "counted": 69, "reason": "one tablet broken"},
        headers=bearer(shelf["rph"]),
    )
    assert response.status == 200, await response.text()
    async with hub.db.transaction() as session:
        await store.put_back_async(session, ACTOR, pid, fill, "not picked up")
    response = await hub.client.get(
        f"/api/v1/inventory/products/{OXYCODONE}/log", headers=bearer(shelf["tech"])
    )
    assert response.status == 200, await response.text()
    log = await response.json()
    assert log["product"]["schedule_ii"] is True
    assert [
        (m["kind"], m["lot"], m["quantity"], m["balance_after"], m["lot_balance_after"])
        for m in log["movements"]
    ] == [
        ("receive", "X1", 100, 100, 100),
        ("receive", "X2", 50, 150, 50),
        ("dispense", "X1", -30, 120, 70),
        ("adjust", "X1", -1, 119, 69),
        ("return", "X1", 30, 149, 99),
    ]
    assert [m["fill_id"] for m in log["movements"]] == [None, None, str(fill), None, str(fill)]
    assert log["movements"][3]["reason"] == "one tablet broken"
    assert await hub.audit_outcomes("inventory.log") == ["success"]


async def test_only_a_controlled_substance_pharmacist_corrects_a_schedule_ii_count(
    hub: Hub, shelf: dict[str, str]
) -> None:
    await receive(hub, shelf["tech"], ndc=OXYCODONE, lot="X1", expiry=EXPIRY, quantity=100)
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="L1", expiry=EXPIRY, quantity=100)
    before = await counts(hub)
    body = {"ndc": OXYCODONE, "lot": "X1", "counted": 90, "reason": "count"}
    for who in ("tech", "rph_plain"):
        response = await hub.client.post(
            "/api/v1/inventory/adjustments", json=body, headers=bearer(shelf[who])
        )
        assert response.status == 403, who
        assert (await response.json())["code"] == "schedule_ii_pharmacist"
    assert await counts(hub) == before
    assert await hub.audit_outcomes("inventory.adjust") == ["refused", "refused"]
    body = {"ndc": LISINOPRIL, "lot": "L1", "counted": 98, "reason": "two found damaged"}
    response = await hub.client.post(
        "/api/v1/inventory/adjustments", json=body, headers=bearer(shelf["tech"])
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["movement"]["quantity"] == -2


# -- two fills, the last units ---------------------------------------------------------------------


async def test_two_receipts_of_a_new_product_and_lot_at_once_both_count(
    hub: Hub, shelf: dict[str, str]
) -> None:
    """Two technicians unpacking the same delivery: the second finds the lot the first made
    (it was made twice, and the second receipt failed on the unique constraint)."""
    both = [
        receive(hub, shelf[who], ndc=LISINOPRIL, lot="NEW", expiry=EXPIRY, quantity=40)
        for who in ("tech", "rph")
    ]
    await asyncio.gather(*both)
    _, products, lots = await counts(hub)
    assert products == [(LISINOPRIL, Decimal(80))]
    assert lots == [("NEW", Decimal(80))]


async def test_two_fills_cannot_both_take_the_last_units(hub: Hub, shelf: dict[str, str]) -> None:
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="A", expiry=EXPIRY, quantity=10)
    pid = await pharmacy_id(hub)
    holding = asyncio.Event()

    async def fill(first: bool) -> str:
        if not first:
            await holding.wait()  # the first fill holds the lock now
        try:
            async with hub.db.transaction() as session:
                await store.take_async(session, ACTOR, pid, LISINOPRIL, "A", 10, uuid.uuid4())
                if first:
                    holding.set()
                    await asyncio.sleep(0.3)  # still counting, not yet committed
        except StockRefused as exc:
            return exc.code
        return "taken"

    results = await asyncio.gather(fill(True), fill(False))
    assert results == ["taken", "insufficient_stock"]
    moved, products, lots = await counts(hub)
    assert (moved, products, lots) == (2, [(LISINOPRIL, Decimal(0))], [("A", Decimal(0))])


async def test_two_put_backs_of_one_fill_restore_it_once(hub: Hub, shelf: dict[str, str]) -> None:
    await receive(hub, shelf["tech"], ndc=LISINOPRIL, lot="A", expiry=EXPIRY, quantity=10)
    pid, fill = await pharmacy_id(hub), uuid.uuid4()
    async with hub.db.transaction() as session:
        await store.take_async(session, ACTOR, pid, LISINOPRIL, "A", 10, fill)
    holding = asyncio.Event()

    async def put_back(first: bool) -> int:
        if not first:
            await holding.wait()
        async with hub.db.transaction() as session:
            moved = await store.put_back_async(session, ACTOR, pid, fill, "not picked up")
            if first:
                holding.set()
                await asyncio.sleep(0.3)
        return len(moved)

    assert await asyncio.gather(put_back(True), put_back(False)) == [1, 0]
    _, products, _ = await counts(hub)
    assert products == [(LISINOPRIL, Decimal(10))]


# -- other pharmacies, audit -------------------------------------------------------------------


async def test_another_pharmacys_stock_is_not_found(hub: Hub, shelf: dict[str, str]) -> None:
    await receive(hub, shelf["tech"], ndc=OXYCODONE, lot="X1", expiry=EXPIRY, quantity=100)
    await hub.pharmacy(**OTHER_PHARMACY)
    other = await staff(hub, "orla", "pharmacist", pharmacy=OTHER_PHARMACY["ncpdpid"])
    response = await hub.client.get(
        f"/api/v1/inventory/products/{OXYCODONE}/log", headers=bearer(other)
    )
    assert response.status == 404
    response = await hub.client.put(
        f"/api/v1/inventory/products/{OXYCODONE}",
        json={"reorder_point": 5},
        headers=bearer(other),
    )
    assert response.status == 404
    body = {"ndc": OXYCODONE, "lot": "X1", "counted": 0, "reason": "gone"}
    response = await hub.client.post(
        "/api/v1/inventory/adjustments", json=body, headers=bearer(other)
    )
    assert response.status == 404
    assert await stock(hub, other) == []
    pid = await pharmacy_id(hub, OTHER_PHARMACY["ncpdpid"])
    async with hub.db.transaction() as session:
        with pytest.raises(StockRefused) as refused:
            await store.take_async(session, ACTOR, pid, OXYCODONE, "X1", 1, uuid.uuid4())
    assert refused.value.code == "lot_unknown"
    (mine,) = await stock(hub, shelf["tech"])
    assert mine["on_hand"] == 100


ALLOWED_DETAIL = {
    "movement", "kind", "ndc11", "ndc", "lot", "expiry", "quantity", "balance_after",
    "serial", "counted", "reason", "refused", "moved", "reorder_point", "movements",
}  # fmt: skip


async def test_audit_entries_name_products_not_patients(hub: Hub, shelf: dict[str, str]) -> None:
    await receive(hub, shelf["tech"], scan=gs1(LISINOPRIL_10, "GL7", EXPIRY))
    await receive(hub, shelf["tech"], 422, ndc="12345-678-90", lot="L", expiry=EXPIRY)
    body = {"ndc": LISINOPRIL, "lot": "GL7", "counted": 99, "reason": "count"}
    await hub.client.post("/api/v1/inventory/adjustments", json=body, headers=bearer(shelf["rph"]))
    await hub.client.get(
        f"/api/v1/inventory/products/{LISINOPRIL}/log", headers=bearer(shelf["rph"])
    )
    async with hub.db.sessions() as session:
        rows = (
            await session.execute(
                select(
                    AuditEvent.action, AuditEvent.actor, AuditEvent.pharmacy_id, AuditEvent.detail
                )
                .where(AuditEvent.action.like("inventory.%"))
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [row.action for row in rows] == [
        "inventory.receive",
        "inventory.receive",
        "inventory.adjust",
        "inventory.log",
    ]
    pid = await pharmacy_id(hub)
    for row in rows:
        assert set(row.detail) <= ALLOWED_DETAIL, row.detail
        assert row.pharmacy_id == pid
        assert row.actor.startswith("user:")
    assert (await audit.verify(hub.db)).intact
