"""Issue 18's payments in the console, against a real `localstripe` process (its stand-in for
Stripe.js draws the card fields; it sends signed webhooks to the hub): a pharmacist charges a
patient, takes a payment at the counter with the provider's test card typed into the
provider's fields, sees the balance go down once the webhook settles it, is refused a refund
in the hub's words, refunds part of it once an admin gave the permission, and finds the day
clean on #/payments; a refund made at the provider alone then shows as a discrepancy. After
it all, neither the hub's data directory (its database dumped row by row) nor its log holds
the card number or its security code."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

import requests
import stripe
from playwright.sync_api import Browser, Page, expect

from server.auth.clients import CONSOLE_CLIENT_ID
from tests.support.localstripe import SECRET_KEY, LocalStripe
from tests.support.signin import sign_in as sign_in_by_http

from .conftest import DESKTOP, DemoHub, Shots, sign_in, watch
from .test_dispensing import Staff, add_staff

#: the provider's public test card; a security code and expiry nobody else uses here
TEST_CARD = "4242424242424242"
TEST_CARD_SPACED = "4242 4242 4242 4242"
TEST_CVC = "738"
#: INFO, so the log checked at the end says what it can
HUB_ENV: dict[str, str] = {"TELEPHARM_LOG_LEVEL": "INFO"}
#: the hub takes payments at the conftest's `provider`, started before it
WITH_PROVIDER = True


def grant_refunds(hub: DemoHub, username: str) -> Staff:
    """A pharmacy admin (freshly signed in) gives ``username`` the refunds permission; the
    admin, for later."""
    admin = add_staff(hub, f"ada.{uuid.uuid4().hex[:6]}", "pharmacy_admin")
    token = sign_in_by_http(
        hub.base,
        CONSOLE_CLIENT_ID,
        admin.seed,
        "openid staff:manage",
        admin.username,
        admin.password,
        redirect_uri=f"{hub.base}/",
        code=admin.totp(),
    )
    auth = {"Authorization": f"Bearer {token}"}
    users = requests.get(f"{hub.base}/api/v1/users", headers=auth, timeout=30)
    assert users.status_code == 200, users.text
    (user,) = [u for u in users.json()["items"] if u["username"] == username]
    done = requests.patch(
        f"{hub.base}/api/v1/users/{user['id']}", json={"refunds": True}, headers=auth, timeout=30
    )
    assert done.status_code == 200, done.text
    return admin


def type_card(page: Page) -> None:
    """What the patient does: the card typed into the provider's own fields (localstripe's
    stand-in draws plain inputs named by their placeholders)."""
    fields = page.locator("#card-fields")
    fields.locator("input[placeholder=number]").press_sequentially(TEST_CARD)
    fields.locator("input[placeholder=exp_month]").press_sequentially("12")
    fields.locator("input[placeholder=exp_year]").press_sequentially("30")
    fields.locator("input[placeholder=cvc]").press_sequentially(TEST_CVC)
    fields.locator("input[placeholder=postal_code]").press_sequentially("02139")


def test_a_payment_at_the_counter_is_settled_refunded_and_reconciled(
    demo_hub: DemoHub, provider: LocalStripe, chromium: Browser, shots: Shots
) -> None:
    rx = demo_hub.ready_prescription(f"PAY-{uuid.uuid4().hex[:8]}")
    patient_id = rx["patient_id"]
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub)
    page.goto(f"{demo_hub.base}/#/patients/{patient_id}")
    balance = page.locator("#balance")
    expect(balance).to_have_text("Balance: $0.00")

    # a charge typed by the pharmacist: dollars typed, cents sent, the reason required
    page.get_by_role("button", name="Add a charge…").click()
    page.get_by_label("Amount ($)").fill("25.00")
    page.get_by_label("Description").fill("Consult fee")
    page.get_by_label("Reason").fill("Not in the price list")
    page.get_by_role("button", name="Charge", exact=True).click()
    done = page.locator("section.payments .notice.ok")
    expect(done).to_have_text("Charged $25.00.")
    expect(balance).to_have_text("Balance: $25.00")
    shots.take(page, "01-charged")

    # at the counter: the card typed into the provider's fields, the payment asked, settled
    # only when the provider's signed webhook says so
    page.get_by_role("button", name="Take payment").click()
    page.get_by_label("Amount ($)").fill("20.00")
    expect(page.locator("#card-fields input[placeholder=number]")).to_be_visible()
    type_card(page)
    page.get_by_label("Save the card for later payments").check()
    shots.take(page, "02-card-typed")
    page.get_by_role("button", name="Pay now").click()
    expect(done).to_have_text("Paid $20.00.", timeout=20_000)
    expect(balance).to_have_text("Balance: $5.00")
    payment = page.locator("tr[data-kind=payment]")
    expect(payment).to_contain_text("At the counter")
    expect(payment).to_contain_text("-$20.00")
    shots.take(page, "03-paid")

    # a refund: refused in the hub's words until a pharmacy admin allows it
    payment.get_by_role("button", name="Refund…").click()
    page.get_by_label("Amount to refund ($)").fill("7.50")
    page.get_by_label("Reason").fill("Copay recalculated")
    page.get_by_role("button", name="Refund", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Only staff allowed to refund may refund.")
    shots.take(page, "04-refund-refused")
    admin = grant_refunds(demo_hub, demo_hub.username)
    page.get_by_role("button", name="Refund", exact=True).click()
    expect(done).to_have_text("Refunded $7.50.", timeout=20_000)
    expect(balance).to_have_text("Balance: $12.50")
    expect(payment).to_contain_text("$7.50 refunded")
    expect(page.locator("tr[data-kind=refund]")).to_contain_text("Copay recalculated")
    shots.take(page, "05-refunded")

    # the saved card is offered for the next payment
    page.get_by_role("button", name="Take payment").click()
    expect(page.get_by_label("Card", exact=True)).to_contain_text("VISA ending 4242")
    page.get_by_role("button", name="Cancel").click()

    # the day's books: clean, the payment and the refund matched, collected at the counter
    page.get_by_role("link", name="Payments", exact=True).click()
    expect(page.locator(".notice.ok").filter(has_text="is clean")).to_be_visible(timeout=20_000)
    matched = page.get_by_label("Matched")
    expect(matched).to_contain_text("Payments matched$20.00")
    expect(matched).to_contain_text("Refunds matched$7.50")
    collections = page.get_by_role("table", name="Collections")
    expect(collections).to_contain_text("At the counter")
    expect(collections).to_contain_text("$12.50")
    expect(page.get_by_role("table", name="Receivables")).to_contain_text("$12.50")
    expect(page.get_by_role("heading", name="Price list")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.startswith("status,provider_ref,kind")
    assert sum(line.startswith("matched,") for line in csv_text.splitlines()) == 2
    shots.take(page, "06-day-clean")

    # someone refunds at the provider's dashboard, past the hub: the day shows it
    sdk = stripe.StripeClient(SECRET_KEY, base_addresses={"api": provider.url})
    (intent,) = sdk.v1.payment_intents.list().data
    sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 300})
    page.reload()
    found = page.locator("#discrepancies")
    expect(found).to_contain_text("1 discrepancy", timeout=20_000)
    expect(found.locator("li[data-code=missing_in_ledger]")).to_contain_text("provider $3.00")
    shots.take(page, "07-discrepancy")

    # the price list is the admins' to edit
    expect(page.get_by_text("Pharmacy admins set the prices.")).to_be_visible()
    expect(page.get_by_role("button", name="Set the price")).to_have_count(0)
    desk = chromium.new_context(viewport=DESKTOP)
    office = desk.new_page()
    watch(office, problems)
    sign_in(office, demo_hub, account=admin)
    office.get_by_role("link", name="Payments", exact=True).click()
    office.get_by_label("Item").fill("ndc:123")
    office.get_by_label("Price ($)").fill("8.50")
    office.get_by_role("button", name="Set the price").click()
    price_list = office.locator("section[aria-labelledby=prices-h]")
    expect(price_list.get_by_role("alert")).to_have_text(
        "item is consult, delivery, fill or ndc:<11 digits>."
    )
    office.get_by_label("Item").fill("ndc:99999041090")
    office.get_by_role("button", name="Set the price").click()
    prices = office.get_by_role("table", name="Prices")
    expect(prices.locator("tr[data-item='ndc:99999041090']")).to_contain_text("$8.50")
    office.get_by_label("Item").fill("fill")
    office.get_by_label("Price ($)").fill("12")
    office.get_by_role("button", name="Set the price").click()
    expect(prices.locator("tr[data-item=fill]")).to_contain_text("$12.00")
    expect(price_list.locator(".notice.ok")).to_have_text(
        "Fill (any product without a price of its own): $12.00."
    )
    shots.take(office, "08-prices")
    prices.locator("tr[data-item='ndc:99999041090']").get_by_role("button", name="Remove").click()
    expect(prices.locator("tbody tr")).to_have_count(1)

    # a long ledger comes in pages: the newest twenty, then the rest on demand
    token = demo_hub.user_token()
    for n in range(20):
        added = requests.post(
            f"{demo_hub.base}/api/v1/patients/{patient_id}/charges",
            json={"amount": 100, "description": f"Synthetic fee {n}", "reason": "test"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert added.status_code == 200, added.text
    page.goto(f"{demo_hub.base}/#/patients/{patient_id}")
    expect(balance).to_have_text("Balance: $32.50")
    rows = page.get_by_role("table", name="Ledger").locator("tbody tr")
    expect(rows).to_have_count(20)
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(23)
    expect(rows.last).to_contain_text("Consult fee")
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()

    desk.close()
    context.close()
    assert problems == []
    no_card_data_anywhere(demo_hub)


def no_card_data_anywhere(hub: DemoHub) -> None:
    """The card was typed into the provider's fields only: the hub's database (every table's
    rows), every other file it keeps and its log never hold the number or the security code."""
    data_dir = hub.data_dir
    dumps = []
    for database in sorted(data_dir.glob("*.sqlite3")):
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            dumps.append("\n".join(db.iterdump()))
    assert dumps, f"no database in {data_dir}"
    files = [
        p.read_bytes().decode("latin-1") for p in data_dir.rglob("*") if p.is_file()
    ]  # the WAL and anything else the hub wrote
    log = (data_dir.parent / "hub.log").read_text(errors="replace")
    for text in [*dumps, *files, log]:
        for number in (TEST_CARD, TEST_CARD_SPACED):
            assert number not in text
        # a three-digit code alone occurs by chance (timestamps, IDs): never as a card's field
        assert not re.search(rf"cvc\W{{0,6}}{TEST_CVC}", text, re.IGNORECASE)
    dump = "\n".join(dumps)
    assert "4242" in dump  # the provider's last four digits are what the hub keeps
