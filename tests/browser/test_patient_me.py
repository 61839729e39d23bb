"""Issue 17's patient page in a real browser, against the demo hub sending email to a real SMTP
server the test starts (aiosmtpd): the pharmacist verifies a patient's email (the code read
from the mailbox); the patient, on a 375 x 667 phone, asks for a sign-in code, reads it from
the mailbox, signs in, sees "Ready for pick-up", asks for a refill of another prescription and
turns text messages off; the same page works with the keyboard alone at 320 px wide; then
the pharmacist's console shows the refill request on the fill queue and the consent changed on
the profile. Two prescriptions are put in their states in the hub's database (the whole fill
flow is test_dispensing's scenario). Synthetic data only."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from email import message_from_bytes, policy

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from playwright.sync_api import Browser, Page, expect

from tests.support.processes import free_port

from .a11y import assert_accessible
from .conftest import DESKTOP, DemoHub, Shots, sign_in, watch

SMTP_PORT = free_port()
HUB_ENV = {
    "TELEPHARM_SMTP_HOST": "127.0.0.1",
    "TELEPHARM_SMTP_PORT": str(SMTP_PORT),
    "TELEPHARM_SMTP_SECURITY": "none",
    "TELEPHARM_MAIL_FROM": "Demo Pharmacy <pharmacy@example.org>",
    "TELEPHARM_SMTP_TIMEOUT": "5",
}
PHONE = {"width": 375, "height": 667}
NARROW = {"width": 320, "height": 640}


@dataclasses.dataclass
class Mailbox:
    received: list[Envelope] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.received.append(envelope)
        return "250 2.0.0 Ok: queued as SYNTH1"

    def codes_to(self, address: str) -> list[str]:
        """The 6-digit codes of the messages to ``address``, oldest first."""
        with self.lock:
            envelopes = [e for e in self.received if address in e.rcpt_tos]
        codes = []
        for envelope in envelopes:
            message = message_from_bytes(bytes(envelope.content or b""), policy=policy.default)
            body = message.get_body(preferencelist=("plain",))
            found = re.search(r"\b(\d{6})\b", body.get_content() if body else "")
            if found:
                codes.append(found.group(1))
        return codes

    def next_code(self, address: str, after: int) -> str:
        """The code of the first message to ``address`` beyond the ``after`` seen before."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            codes = self.codes_to(address)
            if len(codes) > after:
                return codes[after]
            time.sleep(0.25)
        raise AssertionError("no email with a code arrived")


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


def put_in_state(hub: DemoHub, rx_id: str, state: str, dispensed: int) -> None:
    """The prescription set to ``state`` in the hub's own database (a shortcut past the fill
    flow, which test_dispensing drives in full)."""
    with closing(sqlite3.connect(hub.data_dir / "hub.sqlite3", timeout=30)) as db, db:
        db.execute(
            "update prescriptions set state = ?, fills_dispensed = ? where id = ?",
            (state, dispensed, uuid.UUID(rx_id).hex),
        )


def verified_email(hub: DemoHub, mailbox: Mailbox, patient_id: str, address: str) -> None:
    """The pharmacist adds the email and verifies it with the code the mailbox got."""
    headers = {"Authorization": f"Bearer {hub.user_token()}"}
    url = f"{hub.base}/api/v1/patients/{patient_id}/contacts"
    added = requests.post(
        url, json={"kind": "email", "value": address}, headers=headers, timeout=30
    )
    assert added.status_code == 200, added.text
    code = mailbox.next_code(address, 0)
    contact = added.json()["id"]
    done = requests.post(
        f"{url}/{contact}/verify", json={"code": code}, headers=headers, timeout=30
    )
    assert done.status_code == 200, done.text


def ask_and_sign_in(page: Page, mailbox: Mailbox, address: str, shots: Shots | None) -> None:
    seen = len(mailbox.codes_to(address))
    page.get_by_label("Email or mobile number").fill(address)
    page.get_by_role("button", name="Send me a code").click()
    code_field = page.get_by_label("Code", exact=True)
    expect(code_field).to_be_focused()
    expect(page.get_by_role("status")).to_contain_text("If this matches")
    if shots:
        shots.take(page, "02-code-asked")
    code_field.fill(mailbox.next_code(address, seen))
    page.get_by_role("button", name="Sign in").click()


def test_a_patient_signs_in_by_email_code_asks_a_refill_and_turns_sms_off(
    mailbox: Mailbox, demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    tag = uuid.uuid4().hex[:6]
    ready = demo_hub.ready_prescription(
        f"me-ready-{tag}",
        patient_last=f"Metest{tag}",
        patient_first="Riley",
        refills="2",
        drug_description="lisinopril 10 MG Oral Tablet",
    )
    refill = demo_hub.ready_prescription(
        f"me-refill-{tag}",
        patient_last=f"Metest{tag}",
        patient_first="Riley",
        refills="2",
        drug_description="atorvastatin 20 MG Oral Tablet",
    )
    patient_id = str(ready["patient_id"])
    assert refill["patient_id"] == patient_id
    address = f"riley.{tag}@example.org"
    verified_email(demo_hub, mailbox, patient_id, address)
    put_in_state(demo_hub, str(ready["id"]), "ready", 0)
    put_in_state(demo_hub, str(refill["id"]), "completed", 1)

    problems: list[str] = []
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    watch(page, problems)
    page.goto(f"{demo_hub.base}/me/{demo_hub.ncpdpid}")
    expect(page.get_by_role("heading", name="Sign in to see your prescriptions")).to_be_visible()
    assert "Riley" not in page.content()  # nothing about a patient before the code
    shots.take(page, "01-sign-in")
    assert_accessible(page, "the patient page, signed out")
    ask_and_sign_in(page, mailbox, address, shots)

    expect(page.get_by_role("heading", name="Hello, Riley")).to_be_visible()
    ready_item = page.locator("li.me-rx", has_text="lisinopril")
    expect(ready_item.locator(".me-status")).to_have_text("Ready for pick-up")
    shots.take(page, "03-signed-in")
    assert_accessible(page, "the patient page, signed in")
    refill_item = page.locator("li.me-rx", has_text="atorvastatin")
    refill_item.get_by_role("button", name="Ask for a refill").click()
    expect(page.locator("li.me-rx", has_text="atorvastatin")).to_contain_text(
        "You asked for a refill"
    )
    sms = page.get_by_label("Text messages (SMS)")
    expect(sms).to_be_checked()
    sms.uncheck()
    expect(page.get_by_role("status").filter(has_text="Text messages (SMS) off")).to_be_visible()
    shots.take(page, "04-refill-and-sms-off")
    assert_accessible(page, "the patient page, a refill asked")
    page.reload()
    expect(page.get_by_label("Text messages (SMS)")).not_to_be_checked()
    expect(page.get_by_label("Email", exact=True)).to_be_checked()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to see your prescriptions")).to_be_visible()
    context.close()

    # with the keyboard alone at 320 px: no sideways scrolling, every control reached by Tab
    context = chromium.new_context(viewport=NARROW)
    page = context.new_page()
    watch(page, problems)
    page.goto(f"{demo_hub.base}/me/{demo_hub.ncpdpid}")
    expect(page.get_by_role("heading", name="Sign in to see your prescriptions")).to_be_visible()
    seen = len(mailbox.codes_to(address))
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email or mobile number")).to_be_focused()
    page.keyboard.type(address)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Code", exact=True)).to_be_focused()
    page.keyboard.type(mailbox.next_code(address, seen))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Hello, Riley")).to_be_visible()
    expect(page.locator("li.me-rx", has_text="lisinopril")).to_contain_text("Ready for pick-up")
    # every section drawn (each loads on its own) before the walk
    expect(page.get_by_label("Text messages (SMS)")).to_be_visible()
    expect(page.get_by_label("Email", exact=True)).to_be_visible()
    reached = []
    for _ in range(30):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
        if {"consent-sms", "consent-email"} <= set(reached):
            break
    assert "sign-out" in reached
    assert "consent-sms" in reached
    assert "consent-email" in reached
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    shots.take(page, "05-narrow-keyboard", full=False)
    context.close()

    # the pharmacist: the request on the fill queue, the consent on the profile
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub)
    page.goto(f"{demo_hub.base}/#/fills")
    requests_card = page.locator("#patient-requests")
    row = requests_card.locator("tr", has_text="atorvastatin")
    expect(row).to_contain_text("Refill")
    expect(row).to_contain_text(re.compile(f"Metest{tag}", re.IGNORECASE))
    expect(row.get_by_role("button", name="Start the refill")).to_be_visible()
    shots.take(page, "06-console-requests")
    page.goto(f"{demo_hub.base}/#/patients/{patient_id}")
    expect(page.get_by_label("Ready for pick-up by SMS")).not_to_be_checked()
    expect(page.get_by_label("Ready for pick-up by Email")).to_be_checked()
    shots.take(page, "07-console-consent")
    context.close()
    assert problems == []
