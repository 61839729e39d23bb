"""Issue 18's patient payments in a real browser, against the demo hub configured with a real
local Stripe-compatible server the test starts (`localstripe`: it serves its stand-in for
Stripe.js, and sends its signed webhooks to the hub) and a real SMTP server (aiosmtpd) for the
sign-in code. A picked-up prescription is charged through the staff API; the patient, on a
375 x 667 phone, signs in with the emailed code, reads what they owe and what for, tries a
card the bank declines (the provider's words shown), then pays with the provider's public
test card typed into the provider's card fields and saves the card; the balance shows zero
once the webhook settled it. The payment controls work with the keyboard alone at 320 px.
Then a second charge is put on a payment plan through the staff API on the saved card, its
first instalment is taken by the plan job (run here on the hub's database and provider: any
hub process may run it), and the page shows the plan with the first payment paid.
Afterwards the card number is nowhere in the hub's database or its logs. Synthetic data
only."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect

from server.db.models import utcnow
from server.schedule.runner import PLANS_JOB, Schedule
from server.settings import Settings
from tests.support.processes import free_port

from .conftest import DemoHub, Shots, watch
from .test_patient_me import Mailbox, ask_and_sign_in, put_in_state, verified_email

SMTP_PORT = free_port()
HUB_ENV = {
    "TELEPHARM_SMTP_HOST": "127.0.0.1",
    "TELEPHARM_SMTP_PORT": str(SMTP_PORT),
    "TELEPHARM_SMTP_SECURITY": "none",
    "TELEPHARM_MAIL_FROM": "Demo Pharmacy <pharmacy@example.org>",
    "TELEPHARM_SMTP_TIMEOUT": "5",
}
#: the hub takes payments at the conftest's `provider`, started before it
WITH_PROVIDER = True
PHONE = {"width": 375, "height": 667}
NARROW = {"width": 320, "height": 640}
CARD = "4242424242424242"
CARD_SPACED = "4242 4242 4242 4242"
#: the provider's test card whose charge the bank declines
DECLINED = "4000000000000341"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


def staff_call(hub: DemoHub, token: str, method: str, path: str, body: object = None) -> object:
    reply = requests.request(
        method,
        f"{hub.base}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def charge(hub: DemoHub, token: str, patient_id: str, amount: int, description: str) -> None:
    """The patient's share, charged by the pharmacist (the price list does it for fills
    made ready through the fill flow, test_dispensing's scenario)."""
    staff_call(
        hub,
        token,
        "POST",
        f"/patients/{patient_id}/charges",
        {"amount": amount, "description": description, "reason": "patient's share at pick-up"},
    )


def take_due_instalments(hub: DemoHub) -> int:
    """The plan job (what the hub's schedule runs every few minutes), on the hub's own
    database and provider."""
    schedule = Schedule.from_settings(Settings.from_env(hub.env))
    try:
        return schedule.run(utcnow(), PLANS_JOB).counts[PLANS_JOB]
    finally:
        schedule.close()


def type_test_card(page: Page, card: str = CARD) -> None:
    """The provider's card fields (its script's own inputs), typed as a patient would."""
    fields = page.locator("#card-field")
    number = fields.locator("input").first
    expect(number).to_be_visible()
    number.click()
    page.keyboard.type(card)
    fields.locator("input[placeholder=exp_month]").fill("12")
    fields.locator("input[placeholder=exp_year]").fill("30")
    fields.locator("input[placeholder=cvc]").fill("123")
    fields.locator("input[placeholder=postal_code]").fill("10001")


def no_card_number_in(folder: Path, database: Path) -> None:
    """Every table's rows of the hub's database, and every file of the hub (its database
    files, its logs), without the card number, spaced or not."""
    with closing(sqlite3.connect(database, timeout=30)) as db:
        tables = [
            row[0] for row in db.execute("select name from sqlite_master where type = 'table'")
        ]
        assert "ledger_entries" in tables
        assert "payment_cards" in tables
        for table in tables:
            for row in db.execute(f'select * from "{table}"'):  # noqa: S608 (names from the db)
                text = repr(row)
                assert CARD not in text, table
                assert CARD_SPACED not in text, table
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "hub.log" for p in files)
    for path in files:
        content = path.read_bytes()
        assert CARD.encode() not in content, path
        assert CARD_SPACED.encode() not in content, path


def test_a_patient_pays_their_balance_saves_the_card_and_sees_their_plan(
    mailbox: Mailbox,
    demo_hub: DemoHub,
    chromium: Browser,
    shots: Shots,
) -> None:
    tag = uuid.uuid4().hex[:6]
    rx = demo_hub.ready_prescription(
        f"pay-{tag}",
        patient_last=f"Paytest{tag}",
        patient_first="Jordan",
        drug_description="lisinopril 10 MG Oral Tablet",
    )
    patient_id = str(rx["patient_id"])
    address = f"jordan.{tag}@example.org"
    verified_email(demo_hub, mailbox, patient_id, address)
    put_in_state(demo_hub, str(rx["id"]), "completed", 1)  # handed over
    pharmacist = demo_hub.user_token()
    charge(demo_hub, pharmacist, patient_id, 1234, "Lisinopril 10 mg, 30 tablets: your share")

    problems: list[str] = []
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    watch(page, problems)
    page.goto(f"{demo_hub.base}/me/{demo_hub.ncpdpid}")
    ask_and_sign_in(page, mailbox, address, None)
    expect(page.get_by_role("heading", name="Hello, Jordan")).to_be_visible()
    payments = page.locator("#payments")
    expect(payments.locator("#owed")).to_have_text("You owe $12.34")
    expect(payments.locator(".me-line.charge")).to_contain_text(
        "Lisinopril 10 mg, 30 tablets: your share"
    )
    expect(payments.get_by_label("Amount (USD)")).to_have_value("12.34")
    payments.scroll_into_view_if_needed()
    shots.take(page, "01-balance")

    # a card the bank declines: the provider's words, and fresh fields for another card
    type_test_card(page, DECLINED)
    page.get_by_role("button", name="Pay now").click()
    expect(payments.get_by_role("alert")).to_have_text("Your card was declined.")
    expect(payments.locator("#owed")).to_have_text("You owe $12.34")
    shots.take(page, "02-declined", full=False)

    type_test_card(page)
    page.get_by_label("Save this card for later payments").check()
    shots.take(page, "02-card-typed", full=False)
    page.get_by_role("button", name="Pay now").click()
    expect(page.get_by_role("status").filter(has_text="Processing your payment")).to_be_visible()
    expect(payments.locator("#owed")).to_contain_text("You owe $0.00", timeout=30_000)
    expect(
        payments.get_by_role("status").filter(has_text="Your payment of $12.34 is in")
    ).to_be_visible()
    expect(payments.locator(".me-cards")).to_contain_text("Visa ending in 4242, expires 12/2030")
    expect(payments.locator(".me-line.payment")).to_contain_text("\u2212$12.34")  # a minus sign
    shots.take(page, "03-paid-card-saved")

    # a second charge, put on a plan on the saved card; the plan job takes its first payment
    charge(demo_hub, pharmacist, patient_id, 3000, "Delivery and consultation")
    cards = staff_call(demo_hub, pharmacist, "GET", f"/patients/{patient_id}/cards")
    assert isinstance(cards, dict)
    (card,) = cards["items"]

    # with the keyboard alone at 320 px: no sideways scrolling, the payment controls reached
    page.set_viewport_size(NARROW)
    page.reload()
    expect(payments.locator("#owed")).to_have_text("You owe $30.00")
    reached = []
    for _ in range(20):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
    assert "pay-amount" in reached
    assert f"pay-with-{card['id']}" in reached
    assert "pay-now" in reached
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    shots.take(page, "04-narrow-keyboard")
    page.set_viewport_size(PHONE)

    staff_call(
        demo_hub,
        pharmacist,
        "POST",
        f"/patients/{patient_id}/plans",
        {"card_id": card["id"], "count": 3},
    )
    assert take_due_instalments(demo_hub) == 1
    deadline = time.monotonic() + 30
    while True:  # the provider's webhook settles it
        plans = staff_call(demo_hub, pharmacist, "GET", f"/patients/{patient_id}/plans")
        assert isinstance(plans, dict)
        if plans["items"][0]["instalments"][0]["status"] == "paid":
            break
        assert time.monotonic() < deadline, plans
        time.sleep(0.3)
    page.reload()
    expect(payments.locator("#owed")).to_have_text("You owe $20.00")
    plan = payments.locator("#plan")
    expect(plan).to_contain_text("$30.00 in 3 payments; $10.00 paid.")
    expect(plan.locator(".me-instalment").nth(0)).to_contain_text("Payment 1 of 3")
    expect(plan.locator(".me-instalment").nth(0)).to_contain_text("Paid")
    expect(plan.locator(".me-instalment").nth(1)).to_contain_text("Due")
    expect(payments.get_by_role("button", name="Pay now")).to_have_count(0)  # the plan pays
    plan.scroll_into_view_if_needed()
    shots.take(page, "05-plan-first-paid")

    context.close()
    assert problems == []

    no_card_number_in(demo_hub.data_dir.parent, demo_hub.data_dir / "hub.sqlite3")
