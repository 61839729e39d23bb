"""Issue 16's inventory in the console: a technician receives stock by scanning (a GS1
DataMatrix typed as a keyboard-wedge scanner types it, then the quantity), is refused an
expired lot in the hub's words, receives a typed NDC once the lot and expiry it lacks are
typed, and corrects a count; a pharmacist sets the reorder point (technicians may not); the
technician finds the product on the low-stock list and opens its log; the Schedule II product's
log is its perpetual inventory."""

from __future__ import annotations

import datetime as dt
import uuid

from playwright.sync_api import Browser, expect

from .a11y import assert_accessible
from .conftest import DESKTOP, DemoHub, Shots, sign_in, watch
from .test_dispensing import LISINOPRIL, OXYCODONE, add_staff, scan_as_a_scanner

#: the demo shelf (server/inventory/demo.py): lisinopril 270 on hand (reorder point 90),
#: oxycodone 100 (Schedule II), atorvastatin 20 (reorder point 30: low)
ATORVASTATIN = "99999063030"


def test_a_technician_receives_stock_by_scanning_and_reads_the_log(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    technician = add_staff(demo_hub, f"tech.{uuid.uuid4().hex[:6]}", "technician")
    problems: list[str] = []
    today = dt.datetime.now(dt.UTC).date()

    bench_ctx = chromium.new_context(viewport=DESKTOP)
    bench = bench_ctx.new_page()
    watch(bench, problems)
    sign_in(bench, demo_hub, account=technician)
    bench.get_by_role("link", name="Inventory", exact=True).click()
    stock = bench.get_by_role("table", name="Stock on hand")
    lisinopril = stock.locator(f"tr[data-ndc='{LISINOPRIL}']")
    expect(lisinopril.locator(".on-hand")).to_have_text("270")
    expect(lisinopril).to_contain_text("DEMO-LIS-1")
    expect(stock.locator(f"tr[data-ndc='{ATORVASTATIN}'] .badge.warning")).to_have_text("Low")
    shots.take(bench, "01-inventory")

    # a DataMatrix, as the scanner types it (GS keystroke and Enter included); the quantity next
    scan_as_a_scanner(bench, LISINOPRIL, "TEST-LIS-2", today + dt.timedelta(days=600), "SN42")
    quantity = bench.get_by_label("Quantity received")
    expect(quantity).to_be_focused()
    bench.keyboard.type("90")
    bench.keyboard.press("Enter")
    received = bench.locator(".notice.ok")
    expect(received).to_contain_text("Received 90")
    expect(received).to_contain_text("lot TEST-LIS-2")
    expect(received).to_contain_text("On hand now: 360.")
    expect(lisinopril.locator(".on-hand")).to_have_text("360")
    expect(lisinopril).to_contain_text("TEST-LIS-2")
    expect(bench.locator("#scan")).to_be_focused()  # ready for the next package
    shots.take(bench, "02-received")
    assert_accessible(bench, "test_inventory: 02-received")

    # an expired lot: refused in the hub's words, the code selected for the next scan
    quantity.fill("10")
    bench.locator("#scan").focus()
    scan_as_a_scanner(bench, LISINOPRIL, "OLD-1", dt.date(2020, 1, 1), "SN7")
    refusal = bench.get_by_role("alert")
    expect(refusal).to_have_text("Lot OLD-1 of NDC 99999041090 expired on 2020-01-01.")
    expect(bench.locator("#scan")).to_be_focused()
    expect(lisinopril.locator(".on-hand")).to_have_text("360")
    shots.take(bench, "03-refused")
    assert_accessible(bench, "test_inventory: 03-refused")

    # an NDC typed (or a UPC) carries no lot or expiry: the hub asks, the field gets the focus
    bench.locator("#scan").fill("99999-0630-30")
    quantity.fill("30")
    bench.locator("#scan").press("Enter")
    expect(refusal).to_have_text("Type the lot number printed on the package.")
    expect(bench.get_by_label("Lot (UPC or NDC only)")).to_be_focused()
    bench.keyboard.type("TEST-ATO-2")
    bench.keyboard.press("Enter")
    expect(refusal).to_have_text("Type the expiry date printed on the package.")
    expiry = bench.get_by_label("Expiry (UPC or NDC only)")
    expect(expiry).to_be_focused()
    expiry.fill((today + dt.timedelta(days=700)).isoformat())
    expiry.press("Enter")
    expect(received).to_contain_text("On hand now: 50.")
    expect(stock.locator(f"tr[data-ndc='{ATORVASTATIN}'] .badge.warning")).to_have_count(0)

    # the product: a count with its reason; the reorder point is not the technician's
    lisinopril.get_by_role("link", name="Open").click()
    expect(bench.get_by_role("heading", name="Stock", exact=True)).to_be_visible()
    expect(bench.locator("#reorder-now")).to_have_text("Low at or below 90.")
    expect(bench.get_by_label("Low at or below")).to_have_count(0)
    bench.get_by_label("Lot", exact=True).select_option("DEMO-LIS-1")
    bench.get_by_label("Counted on the shelf").fill("268")
    bench.get_by_label("Why it differs").fill("Two tablets found broken at the count.")
    bench.get_by_role("button", name="Record the count").click()
    expect(bench.locator(".notice.ok")).to_have_text("Count recorded: lot DEMO-LIS-1 -2, now 268.")
    expect(bench.get_by_label("Stock facts")).to_contain_text("358")
    shots.take(bench, "04-counted")
    assert_accessible(bench, "test_inventory: 04-counted")

    # a pharmacist sets the reorder point above the stock
    desk_ctx = chromium.new_context(viewport=DESKTOP)
    desk = desk_ctx.new_page()
    watch(desk, problems)
    sign_in(desk, demo_hub)
    desk.goto(f"{demo_hub.base}/#/inventory/{LISINOPRIL}")
    desk.get_by_label("Low at or below").fill("400")
    desk.get_by_role("button", name="Set the reorder point").click()
    expect(desk.locator(".notice.ok")).to_have_text("Reorder point set: low at or below 400.")
    expect(desk.locator(".page-head .badge.warning")).to_have_text("Low")
    shots.take(desk, "05-reorder-point")
    assert_accessible(desk, "test_inventory: 05-reorder-point")

    # the technician's low-stock list has it (and no longer the atorvastatin received above)
    bench.get_by_role("link", name="← Back to inventory").click()
    bench.get_by_label("Low stock only (at or below the reorder point)").check()
    low = bench.get_by_role("table", name="Low stock")
    expect(low.locator(f"tr[data-ndc='{LISINOPRIL}'] .badge.warning")).to_have_text("Low")
    expect(low.locator(f"tr[data-ndc='{LISINOPRIL}'] .reorder")).to_have_text("400")
    expect(low.locator(f"tr[data-ndc='{ATORVASTATIN}']")).to_have_count(0)
    expect(low.locator(f"tr[data-ndc='{OXYCODONE}']")).to_have_count(0)
    shots.take(bench, "06-low-stock")
    assert_accessible(bench, "test_inventory: 06-low-stock")

    # its log, on demand: the demo's receipt, the scanned one, the count, each with its balance
    low.locator(f"tr[data-ndc='{LISINOPRIL}']").get_by_role("link", name="Open").click()
    bench.get_by_role("button", name="Show the log").click()
    expect(bench.get_by_role("heading", name="Movement log")).to_be_focused()
    rows = bench.get_by_role("table", name="Movements").locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator(".balance")).to_have_text("270")
    expect(rows.nth(1)).to_contain_text("Received")
    expect(rows.nth(1)).to_contain_text("TEST-LIS-2")
    expect(rows.nth(1).locator(".quantity")).to_have_text("+90")
    expect(rows.nth(1).locator(".balance")).to_have_text("360")
    expect(rows.nth(2)).to_contain_text("Count corrected")
    expect(rows.nth(2)).to_contain_text("Two tablets found broken at the count.")
    expect(rows.nth(2).locator(".quantity")).to_have_text("-2")
    expect(rows.nth(2).locator(".balance")).to_have_text("358")
    expect(rows.nth(2)).to_contain_text("you")
    shots.take(bench, "07-log")
    assert_accessible(bench, "test_inventory: 07-log")

    # a Schedule II product's log is its perpetual inventory; its count is not a technician's
    bench.goto(f"{demo_hub.base}/#/inventory/{OXYCODONE}")
    expect(bench.locator(".page-head .badge.controlled")).to_have_text("C-II")
    expect(bench.get_by_label("Counted on the shelf")).to_have_count(0)
    desk.goto(f"{demo_hub.base}/#/inventory/{OXYCODONE}")
    desk.get_by_role("button", name="Show the log").click()
    perpetual = desk.get_by_role("table", name="Perpetual inventory")
    expect(perpetual.locator("tbody tr .balance")).to_have_text(["100"])
    shots.take(desk, "08-perpetual-inventory")
    assert_accessible(desk, "test_inventory: 08-perpetual-inventory")

    bench_ctx.close()
    desk_ctx.close()
    assert problems == []
