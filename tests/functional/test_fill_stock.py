"""The stock in the fill flow, on the real app and database: a lot that cannot cover the fill is
refused at the scan before anything is counted; a code without a lot takes the first lot to
expire that lasts the supply; the counted quantity leaves the shelf at the submit, and comes
back exactly when the fill is sent back, returned to stock or cancelled; two fills racing for
the last units; a Schedule II fill in the perpetual log."""

# the fill flow's fixtures are test_fills' own, imported: tests name them as parameters
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select

from server import audit
from server.audit.models import AuditEvent
from server.db.models import utcnow
from server.dispensing.store import FILLS
from server.inventory.service import Inventory
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.fill_helpers import (
    LISINOPRIL_A,
    LISINOPRIL_B,
    OXYCODONE,
    approved_directly,
    counted_fill,
    fill_detail,
    gs1,
    hand_over,
    ok,
    photograph,
    print_label,
    ready_fill,
    receive_as,
    receive_stock,
    start,
    step,
    submit,
    submitted_fill,
)
from tests.functional.intake_helpers import post_script
from tests.functional.test_fills import (  # noqa: F401 (fixtures)
    HAND_OVER,
    Team,
    approved,
    checker,
    prescriber,
    products,
    settings,
    team,
)
from tests.functional.verification_helpers import bearer, staff
from tests.support.script_samples import cancelrx_xml


async def product_log(hub: Hub, token: str, ndc11: str) -> dict[str, Any]:
    response = await hub.client.get(
        f"/api/v1/inventory/products/{ndc11}/log", headers=bearer(token)
    )
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def lot_on_hand(hub: Hub, token: str, ndc11: str, lot: str) -> float:
    product = (await product_log(hub, token, ndc11))["product"]
    (found,) = [entry["on_hand"] for entry in product["lots"] if entry["lot"] == lot]
    return float(found)


async def fill_moves(hub: Hub, token: str, ndc11: str, fill_id: str) -> list[tuple[str, float]]:
    log = await product_log(hub, token, ndc11)
    return [(m["kind"], m["quantity"]) for m in log["movements"] if m["fill_id"] == str(fill_id)]


async def audit_detail(hub: Hub, action: str, fill_id: str) -> dict[str, Any]:
    async with hub.db.sessions() as session:
        detail = await session.scalar(
            select(AuditEvent.detail)
            .where(
                AuditEvent.action == action,
                AuditEvent.resource_id == str(fill_id),
                AuditEvent.outcome == "success",
            )
            .order_by(AuditEvent.seq.desc())
        )
    assert detail is not None
    return dict(detail)


async def test_a_lot_that_cannot_cover_the_fill_is_refused_at_the_scan(
    hub: Hub, checker: Checker, team: Team
) -> None:
    await receive_stock(hub, team.tom, LISINOPRIL_A, lot="SMALL1", quantity=20)
    rx_id, _ = await approved(hub, checker, team)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    status, body = await step(
        hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A, lot="SMALL1")}
    )
    assert (status, body["code"]) == (422, "insufficient_stock")
    assert "20 on hand" in body["detail"]
    # a lot the pharmacy never received
    status, body = await step(
        hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A, lot="NOPE")}
    )
    assert (status, body["code"]) == (422, "lot_unknown")
    # nothing counted, nothing written of the fill, the shelf as it was
    _, fill = await fill_detail(hub, team.tom, fill_id)
    assert fill["product"] is None
    assert await lot_on_hand(hub, team.tom, LISINOPRIL_A, "SMALL1") == 20
    assert await hub.audit_outcomes("fill.scan") == ["refused", "refused"]
    # counted first as a partial fill of what the lot holds, the scan passes
    await ok(
        step(hub, team.tom, fill_id, "quantity", {"quantity": "20", "reason": "short on stock"})
    )
    await ok(step(hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A, lot="SMALL1")}))
    # and a recount above what the lot holds is refused before it is counted
    status, body = await step(
        hub, team.tom, fill_id, "quantity", {"quantity": "30", "reason": "short on stock"}
    )
    assert (status, body["code"]) == (422, "insufficient_stock")
    assert (await fill_detail(hub, team.tom, fill_id))[1]["quantity"] == "20"


async def test_a_code_without_a_lot_takes_the_first_to_expire_that_lasts_the_supply(
    hub: Hub, checker: Checker, team: Team
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    # LOT42A (400 days, 1000) is on the shelf; these expire sooner
    await receive_stock(
        hub, team.tom, LISINOPRIL_A, lot="SOON", expiry=today + dt.timedelta(days=10)
    )
    await receive_stock(
        hub, team.tom, LISINOPRIL_A, lot="FEW", expiry=today + dt.timedelta(days=60), quantity=5
    )
    await receive_stock(
        hub, team.tom, LISINOPRIL_A, lot="NEXT", expiry=today + dt.timedelta(days=90)
    )
    rx_id, _ = await approved(hub, checker, team)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    # an NDC typed (as a UPC carries it): no lot, no expiry
    await ok(step(hub, team.tom, fill_id, "scan", {"text": "11111-0104-30"}))
    _, fill = await fill_detail(hub, team.tom, fill_id)
    # SOON ends before the 30-day supply, FEW holds 5 of the 60: NEXT
    assert (fill["product"]["lot"], fill["product"]["expiry"]) == (
        "NEXT",
        (today + dt.timedelta(days=90)).isoformat(),
    )


async def test_the_count_leaves_the_shelf_at_the_submit_and_is_in_the_products_log(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    fill_id = await counted_fill(hub, team.tom, rx_id)
    assert await lot_on_hand(hub, team.tom, LISINOPRIL_A, "LOT42A") == 1000  # counted, not taken
    await ok(submit(hub, team.tom, fill_id))
    assert await lot_on_hand(hub, team.tom, LISINOPRIL_A, "LOT42A") == 940
    log = await product_log(hub, team.tom, LISINOPRIL_A)
    last = log["movements"][-1]
    assert (last["kind"], last["quantity"], last["balance_after"]) == ("dispense", -60, 940)
    assert last["fill_id"] == fill_id
    detail = await audit_detail(hub, "fill.submit", fill_id)
    assert detail["stock"] == [
        {
            "movement": last["id"],
            "kind": "dispense",
            "ndc11": LISINOPRIL_A,
            "lot": "LOT42A",
            "quantity": "-60.000",
            "balance_after": "940.000",
        }
    ]
    # passed, binned, handed over: nothing more moves
    await ok(step(hub, team.bob, fill_id, "approve"))
    await hand_over(hub, team.tom, fill_id, HAND_OVER)
    assert await fill_moves(hub, team.tom, LISINOPRIL_A, fill_id) == [("dispense", -60)]


async def test_sent_back_returned_to_stock_or_cancelled_the_fill_restores_exactly(
    hub: Hub, checker: Checker, team: Team
) -> None:
    # sent back: it comes back, and is taken again at the next submit
    rx_id, message_id = await approved(hub, checker, team)
    fill_id = await submitted_fill(hub, team.tom, rx_id, ndc=LISINOPRIL_B, lot="B7")
    await ok(step(hub, team.bob, fill_id, "send-back", {"reason": "wrong vial"}))
    assert await lot_on_hand(hub, team.tom, LISINOPRIL_B, "B7") == 1000
    assert (await audit_detail(hub, "fill.send_back", fill_id))["stock"][0]["kind"] == "return"
    await ok(submit(hub, team.tom, fill_id))
    await ok(step(hub, team.bob, fill_id, "approve"))
    assert await lot_on_hand(hub, team.tom, LISINOPRIL_B, "B7") == 940
    # not collected: back to stock by the sweep
    assert await hub.client.app[FILLS].sweep(utcnow() + dt.timedelta(days=15)) == 1
    assert await lot_on_hand(hub, team.tom, LISINOPRIL_B, "B7") == 1000
    assert await fill_moves(hub, team.tom, LISINOPRIL_B, fill_id) == [
        ("dispense", -60),
        ("return", 60),
        ("dispense", -60),
        ("return", 60),
    ]
    # filled again, then cancelled by the prescriber while waiting for the product check
    again = await submitted_fill(hub, team.tom, rx_id, ndc=LISINOPRIL_B, lot="B7")
    assert await lot_on_hand(hub, team.tom, LISINOPRIL_B, "B7") == 940
    cancel = cancelrx_xml(
        message_id=f"CANCEL-{uuid.uuid4().hex[:12]}",
        order_number=f"ORD-{message_id}"[:35],
        drug_description="lisinopril 10 MG Oral Tablet",
        ndc=LISINOPRIL_A,
        written_date=dt.datetime.now(dt.UTC).date().isoformat(),
    )
    assert b"<Status>" in await (await post_script(hub, cancel, team.prescriber_token)).read()
    assert (await fill_detail(hub, team.tom, again))[1]["state"] == "cancelled"
    assert await lot_on_hand(hub, team.tom, LISINOPRIL_B, "B7") == 1000
    assert await fill_moves(hub, team.tom, LISINOPRIL_B, again) == [
        ("dispense", -60),
        ("return", 60),
    ]


async def test_two_fills_racing_for_the_last_units_one_is_refused(
    hub: Hub, checker: Checker, team: Team
) -> None:
    await receive_stock(hub, team.tom, LISINOPRIL_B, lot="LAST", quantity=60)
    fills = []
    for _ in range(2):
        rx_id, _ = await approved(hub, checker, team)
        fills.append(await counted_fill(hub, team.tom, rx_id, ndc=LISINOPRIL_B, lot="LAST"))
    for fill_id in fills:
        await photograph(hub, team.tom, fill_id)
        await print_label(hub, team.tom, fill_id)
    results = await asyncio.gather(*(step(hub, team.tom, f, "submit") for f in fills))
    assert sorted(status for status, _ in results) == [200, 422]
    ((_, refused),) = [(s, b) for s, b in results if s == 422]
    assert refused["code"] == "insufficient_stock"
    assert await lot_on_hand(hub, team.tom, LISINOPRIL_B, "LAST") == 0
    states = sorted([(await fill_detail(hub, team.tom, f))[1]["state"] for f in fills])
    assert states == ["filling", "product_check"]


async def test_a_schedule_ii_fill_is_in_the_perpetual_log_with_its_balance(
    hub: Hub, team: Team
) -> None:
    rx_id, _ = await receive_as(
        hub,
        team.prescriber_token,
        controlled=True,
        drug_description="oxycodone hydrochloride 5 MG Oral Tablet",
        ndc=OXYCODONE,
    )
    await approved_directly(hub, rx_id)
    carol = await staff(hub, "carol", controlled=True)
    fill_id = await ready_fill(hub, team.tom, carol, rx_id, ndc=OXYCODONE)
    await hand_over(hub, team.tom, fill_id, {**HAND_OVER, "id_checked": True})
    log = await product_log(hub, carol, OXYCODONE)
    assert log["product"]["schedule_ii"] is True
    assert [
        (m["kind"], m["quantity"], m["balance_after"], m["fill_id"]) for m in log["movements"]
    ] == [
        ("receive", 1000, 1000, None),
        ("dispense", -60, 940, fill_id),
    ]


async def test_a_recalled_lot_or_a_package_not_as_received_is_refused_at_the_scan(
    hub: Hub, checker: Checker, team: Team
) -> None:
    await receive_stock(hub, team.tom, LISINOPRIL_A, lot="RCL1")
    await Inventory(hub.db).recall(
        audit.Actor("operator", "cli"), LISINOPRIL_A, "RCL1", "FDA notice: mislabelled"
    )
    rx_id, _ = await approved(hub, checker, team)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    status, body = await step(
        hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A, lot="RCL1")}
    )
    assert (status, body["code"]) == (422, "lot_recalled")
    assert body["detail"] == f"Lot RCL1 of NDC {LISINOPRIL_A} is recalled: it may not be dispensed."
    later = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=700)
    status, body = await step(
        hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A, expiry=later)}
    )
    assert (status, body["code"]) == (422, "lot_expiry_mismatch")
    assert (await fill_detail(hub, team.tom, fill_id))[1]["product"] is None
