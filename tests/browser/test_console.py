"""Scenario 1: a prescription arrives while the pharmacist has the queue open; it appears
without a reload; they open it, read its findings, claim it and approve it with an override
reason for its warning; the API then reports it approved."""

from __future__ import annotations

import datetime as dt
import time

from playwright.sync_api import Browser, Page, expect

from tests.support.script_samples import cancelrx_xml, clinical_newrx, response_xml

from .a11y import assert_accessible
from .conftest import DESKTOP, TABLET, DemoHub, Shots, sign_in, watch

#: access tokens of a minute: the console refreshes them 45 s before they expire
HUB_ENV = {"TELEPHARM_ACCESS_TOKEN_TTL": "60"}
#: a DEA number whose second letter is not the prescriber's initial: a warning to override
MISMATCHED_DEA = "BA1234563"


def test_a_new_prescription_is_verified_in_the_console(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    refreshes: list[str] = []
    page.on(
        "request",
        lambda r: (
            refreshes.append(r.url)
            if r.url.endswith("/oauth/token") and "grant_type=refresh_token" in (r.post_data or "")
            else None
        ),
    )
    sign_in(page, demo_hub, shots)
    expect(page.get_by_text("Live · updated")).to_be_visible()
    shots.take(page, "01-queue-empty")

    message_id = f"browser-{time.time_ns()}"
    demo_hub.send_newrx(
        message_id,
        controlled=True,
        prescriber_dea=MISMATCHED_DEA,
        drug_description="oxycodone hydrochloride 5 MG Oral Tablet",
        urgent=True,
        written_date=dt.datetime.now(dt.UTC).date().isoformat(),
    )
    row = page.locator("table.queue tbody tr", has_text="oxycodone")
    expect(row).to_be_visible(timeout=30_000)  # no reload: the page polls the queue's revision
    expect(row.locator(".badge.stat")).to_have_text("STAT")
    expect(row.locator(".badge.controlled")).to_have_text("C-II")
    shots.take(page, "02-queue")

    page.keyboard.press("j")  # keyboard navigation reaches the row, Enter opens it
    page.keyboard.press("k")
    row.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Findings")).to_be_visible()
    warning = page.locator(".finding.warning", has_text="DEA_NAME_MISMATCH")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(MISMATCHED_DEA)  # the evidence, in plain words
    # EPCS on receipt: only the indicator came, so archived by the hub but not verified
    epcs = page.locator("section[aria-labelledby=epcs-h]")
    expect(epcs.locator(".badge.hard_stop")).to_have_text("No")
    expect(epcs).to_contain_text("the signed indicator only")
    expect(epcs).to_contain_text("signed by the hub")
    shots.take(page, "03-prescription")

    page.get_by_role("button", name="Claim").click()
    expect(page.get_by_text("Claimed by you").first).to_be_visible()
    page.get_by_role("button", name="Approve…").click()
    reasons = page.locator("form textarea[data-code]")
    for index in range(reasons.count()):
        reasons.nth(index).fill("Verified the prescriber's registration by phone.")
    shots.take(page, "04-approve-form")
    page.get_by_role("button", name="Approve prescription").click()
    expect(page.locator(".page-head .badge.state")).to_have_text("Approved")
    shots.take(page, "05-approved")
    page.set_viewport_size(TABLET)
    shots.take(page, "05-approved-tablet")
    page.set_viewport_size(DESKTOP)

    found = demo_hub.api(f"/prescriptions?message_id={message_id}")
    items = found["items"]
    assert isinstance(items, list)
    assert items[0]["state"] == "approved"
    detail = demo_hub.api(f"/prescriptions/{items[0]['id']}")
    history = detail["history"]
    assert isinstance(history, list)
    assert (
        "override DEA_NAME_MISMATCH: Verified the prescriber's registration"
        in history[-1]["reason"]
    )

    page.get_by_role("link", name="Open patient profile").click()
    expect(page.get_by_role("heading", name="Active medications")).to_be_visible()
    expect(
        page.get_by_role("link", name="oxycodone hydrochloride 5 MG Oral Tablet").first
    ).to_be_visible()
    shots.take(page, "06-patient")

    page.set_viewport_size(TABLET)
    page.goto(f"{demo_hub.base}/#/queue")
    page.get_by_label("Show").select_option("approved")
    expect(page.locator("table.queue tbody tr", has_text="oxycodone")).to_be_visible()
    shots.take(page, "07-queue-tablet")

    # rejecting one and asking the prescriber about another, from the same console
    page.set_viewport_size(DESKTOP)
    _decide(page, demo_hub, shots, "reject", "Reject…", "dose", "Reject prescription", "rejected")
    _decide(
        page,
        demo_hub,
        shots,
        "clarify",
        "Ask the prescriber…",
        "directions",
        "Send the request",
        "clarification_requested",
    )
    # the question leaves as an RxChangeRequest, its delivery shown on the prescription
    outbound = page.get_by_role("region", name="Messages to the prescriber")
    expect(outbound).to_contain_text("RxChangeRequest")
    shots.take(page, "09-clarify-outbound")

    # the token was refreshed silently (no page load) and the console kept working
    deadline = time.monotonic() + 30
    while not refreshes and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert refreshes, "the console never refreshed its access token"
    page.get_by_role("link", name="Verification queue").click()
    page.get_by_label("Show").select_option("awaiting_review")
    expect(page.get_by_text("Live · updated")).to_be_visible()

    # an ID that is not this pharmacy's says so, in words
    page.evaluate("location.hash = '#/rx/00000000-0000-4000-8000-000000000000'")
    expect(page.get_by_role("alert")).to_have_text(
        "This prescription does not exist in your pharmacy."
    )

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    # the sign-in is over at the hub too: signing in again asks for the password
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("input[name=password]")).to_be_visible()
    context.close()
    assert problems == []


def test_two_scripts_for_one_patient_show_as_a_pair(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    """Issue 14: phenelzine and then sertraline for one patient, from two prescribers, both
    still in the queue: each row says it is part of a pair, and each prescription names the
    other as a pending prescription, with a link to it."""
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub, None)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    patient = {"patient_last": "Pairtest", "patient_first": "Robin", "written_date": today}
    maoi, ssri = "phenelzine 15 MG Oral Tablet", "sertraline 50 MG Oral Tablet"
    demo_hub.send_newrx(f"pair-a-{time.time_ns()}", drug_description=maoi, **patient)
    demo_hub.send_newrx(
        f"pair-b-{time.time_ns()}",
        drug_description=ssri,
        prescriber_npi="1437194781",
        **patient,
    )
    for drug in (maoi, ssri):
        row = page.locator("table.queue tbody tr", has_text=drug)
        expect(row.locator(".badge.pair")).to_have_text("Pair in the queue", timeout=30_000)
        expect(row.locator(".badge.hard_stop")).to_be_visible()
    shots.take(page, "09-queue-pair")
    page.locator("table.queue tbody tr", has_text=maoi).click()
    finding = page.locator(".finding.hard_stop", has_text="DRUG_INTERACTION")
    expect(finding).to_contain_text(f"the pending prescription {ssri}")
    expect(finding).to_contain_text("not yet verified")
    shots.take(page, "10-pair-finding")
    assert_accessible(page, "test_console: 10-pair-finding")
    finding.get_by_role("link", name="Open the pending prescription").click()
    expect(page.locator(".page-head h1")).to_have_text(ssri)
    expect(page.locator(".finding.hard_stop", has_text=maoi)).to_be_visible()
    context.close()
    assert problems == []


def _decide(
    page: Page,
    hub: DemoHub,
    shots: Shots,
    kind: str,
    opener: str,
    reason: str,
    submit: str,
    state: str,
) -> None:
    """A new prescription, claimed from the queue and rejected or asked about."""
    message_id = f"{kind}-{time.time_ns()}"
    drug = f"{kind}ol 10 MG Oral Tablet"
    hub.send_newrx(
        message_id,
        drug_description=drug,
        written_date=dt.datetime.now(dt.UTC).date().isoformat(),
    )
    page.get_by_role("link", name="Verification queue").click()
    page.get_by_label("Show").select_option("awaiting_review")
    page.locator("table.queue tbody tr", has_text=drug).click(timeout=30_000)
    page.get_by_role("button", name="Claim").click()
    page.get_by_role("button", name=opener).click()
    page.get_by_label("Reason").select_option(reason)
    page.get_by_label("Message").fill("Please confirm the intended daily dose.")
    shots.take(page, f"08-{kind}-form")
    assert_accessible(page, f"test_console: 08-{kind}-form")
    page.get_by_role("button", name=submit).click()
    expect(page.locator(".page-head .badge.state")).not_to_have_text("In review")
    items = hub.api(f"/prescriptions?message_id={message_id}")["items"]
    assert isinstance(items, list)
    assert items[0]["state"] == state


def test_a_substitution_and_a_renewal_are_asked_from_the_console(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    """Issue 15: the pharmacist proposes a generic from the drug reference (picked by typing),
    then asks for the renewal of an approved prescription written without refills; a
    prescription whose prescriber prohibited renewal requests says why there is no button."""
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub, None)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    stamp = time.time_ns()
    demo_hub.send_newrx(
        f"subst-{stamp}", drug_description="brandol 20 MG Oral Tablet", written_date=today
    )
    page.locator("table.queue tbody tr", has_text="brandol").click(timeout=30_000)
    page.get_by_role("button", name="Claim").click()
    page.get_by_role("button", name="Ask the prescriber…").click()
    page.get_by_label("What do you ask?").select_option("G")
    drug = page.get_by_label("Drug (from the drug reference)")
    drug.press_sequentially("atorvastatin 20", delay=20)
    expect(page.locator("#ask-drugs option").first).to_have_attribute(
        "value", "atorvastatin 20 MG Oral Tablet", timeout=10_000
    )
    drug.fill("atorvastatin 20 MG Oral Tablet")
    page.get_by_label("Message").fill("The plan covers the generic only.")
    shots.take(page, "11-ask-substitution")
    assert_accessible(page, "test_console: 11-ask-substitution")
    page.get_by_role("button", name="Send the request").click()
    outbound = page.get_by_role("region", name="Messages to the prescriber")
    expect(outbound).to_contain_text(
        "Generic substitution · proposing atorvastatin 20 MG Oral Tablet"
    )
    shots.take(page, "12-substitution-sent")

    demo_hub.send_newrx(
        f"renew-{stamp}",
        drug_description="renewol 10 MG Oral Tablet",
        refills="0",
        written_date=today,
    )
    page.get_by_role("link", name="Verification queue").click()
    page.locator("table.queue tbody tr", has_text="renewol").click(timeout=30_000)
    _approve(page)
    page.get_by_role("button", name="Request renewal…").click()
    page.get_by_label("Refills to ask for").fill("2")
    page.get_by_label("Note for the prescriber").fill("Patient is stable on it.")
    shots.take(page, "13-renewal-form")
    assert_accessible(page, "test_console: 13-renewal-form")
    page.get_by_role("button", name="Send the renewal request").click()
    expect(outbound).to_contain_text("RxRenewalRequest")
    expect(outbound).to_contain_text("renewal, 2 refills asked")
    shots.take(page, "14-renewal-sent")

    demo_hub.send_newrx(
        f"noren-{stamp}",
        drug_description="norenewol 10 MG Oral Tablet",
        refills="0",
        written_date=today,
        append={"Body/NewRx": "<ProhibitRenewalRequest>true</ProhibitRenewalRequest>"},
    )
    page.get_by_role("link", name="Verification queue").click()
    page.locator("table.queue tbody tr", has_text="norenewol").click(timeout=30_000)
    expect(page.locator("#renewal-why")).to_have_count(0)  # no noise while verifying
    _approve(page)
    expect(page.locator("#renewal-why")).to_contain_text("(ProhibitRenewalRequest)")
    expect(page.get_by_role("button", name="Request renewal…")).to_have_count(0)
    shots.take(page, "15-renewal-prohibited")
    assert_accessible(page, "test_console: 15-renewal-prohibited")
    context.close()
    assert problems == []


def _approve(page: Page) -> None:
    """Claim the prescription shown and approve it, every warning overridden."""
    page.get_by_role("button", name="Claim").click()
    page.get_by_role("button", name="Approve…").click()
    reasons = page.locator("form textarea[data-code]")
    for index in range(reasons.count()):
        reasons.nth(index).fill("Checked with the prescriber.")
    page.get_by_role("button", name="Approve prescription").click()
    expect(page.locator(".page-head .badge.state")).to_have_text("Approved")


def test_a_hold_and_a_test_message_cannot_be_missed(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    """Issue 15: a prescription on hold carries a HOLD badge in the queue and a banner on its
    page, with its compound, the child's measurements and the needed-by date; a test message
    is never in the queue, only behind its filter, marked TEST."""
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub, None)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    demo_hub.send_script(
        clinical_newrx(
            message_id=f"hold-{time.time_ns()}",
            patient_last="Holdtest",
            to=demo_hub.ncpdpid,
            do_not_fill="H",
            written_date=today,
        )
    )
    demo_hub.send_script(
        clinical_newrx(
            message_id=f"test-{time.time_ns()}",
            to=demo_hub.ncpdpid,
            test_message=True,
            patient_last="Testmessage",
            written_date=today,
        )
    )
    page.get_by_label("Show").select_option("")  # all states: a hold is shown whatever its state
    row = page.locator("table.queue tbody tr", has_text="Holdtest")
    expect(row.locator(".badge.donotfill")).to_have_text("HOLD", timeout=30_000)
    expect(page.locator("table.queue tbody tr", has_text="Testmessage")).to_have_count(0)
    shots.take(page, "11-queue-hold")
    assert_accessible(page, "test_console: 11-queue-hold")
    row.click()
    expect(page.locator(".banner.donotfill")).to_contain_text("HOLD")
    expect(page.get_by_label("Compound ingredients")).to_contain_text("TESTVEHICLE ORAL SUSPENSION")
    expect(page.get_by_label("Measurements")).to_contain_text("Weight 18.4 kg")
    expect(page.locator("dd", has_text="Discharge from the care home")).to_be_visible()
    shots.take(page, "12-prescription-hold")
    assert_accessible(page, "test_console: 12-prescription-hold")
    page.get_by_role("link", name="← Back to the queue").click()
    page.get_by_label("Test messages (never filled)").check()
    test_row = page.locator("table.queue tbody tr", has_text="Testmessage")
    expect(test_row.locator(".badge.test")).to_have_text("TEST", timeout=30_000)
    assert_accessible(page, "test_console: the queue with a test message")
    test_row.click()
    expect(page.locator(".banner.test")).to_contain_text("TEST MESSAGE")
    context.close()
    assert problems == []


def test_the_prescriber_s_denial_and_approval_cannot_be_missed(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    """Issue 15: asked about a prescription, the prescriber denies the change (a banner with
    the reasons, the prescription back in the queue, the request marked answered), and,
    asked again, approves it with changes: the page links the replacement both ways."""
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub, None)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    drug = "answerol 10 MG Oral Tablet"
    rx = demo_hub.ready_prescription(f"answer-{time.time_ns()}", drug_description=drug)
    page.goto(f"{demo_hub.base}/#/rx/{rx['id']}")

    def ask() -> str:
        page.get_by_role("button", name="Claim").click()
        page.get_by_role("button", name="Ask the prescriber…").click()
        page.get_by_label("What do you ask?").select_option("S")
        page.get_by_label("Reason").select_option("strength")
        page.get_by_label("Message", exact=True).fill("Is 10 mg intended?")
        page.get_by_role("button", name="Send the request").click()
        expect(page.locator(".page-head .badge.state")).not_to_have_text("In review")
        # asked (again): an earlier denial was acted on, its banner gives way
        expect(page.locator(".banner.denial")).to_have_count(0)
        sent = demo_hub.api(f"/prescriptions/{rx['id']}")["outbound"]
        assert isinstance(sent, list)
        return str(sent[-1]["message_id"])

    fields = {"to": demo_hub.ncpdpid, "written_date": today, "sent_time": f"{today}T00:00:00Z"}
    demo_hub.send_script(
        response_xml(
            "RxChangeResponse",
            "<Denied><ReasonCode>AF</ReasonCode><DenialReason>Keep 10 mg</DenialReason></Denied>",
            relates_to=ask(),
            message_id=f"deny-{time.time_ns()}",
            with_medication=False,
            **fields,
        )
    )
    page.reload()
    banner = page.locator(".banner.denial")
    expect(banner).to_contain_text("PRESCRIBER DENIED")
    expect(banner).to_contain_text("Keep 10 mg")
    expect(banner).to_contain_text("Patient should contact the prescriber first")
    expect(page.locator(".page-head .badge.state")).to_have_text("To verify")
    expect(page.get_by_role("region", name="Messages to the prescriber")).to_contain_text(
        "answered: DENIED"
    )
    shots.take(page, "13-prescriber-denied")
    assert_accessible(page, "test_console: 13-prescriber-denied")

    demo_hub.send_script(
        response_xml(
            "RxChangeResponse",
            "<ApprovedWithChanges><Note>5 mg then</Note></ApprovedWithChanges>",
            relates_to=ask(),
            message_id=f"approve-{time.time_ns()}",
            drug_description="answerol 5 MG Oral Tablet",
            **fields,
        )
    )
    page.reload()
    expect(page.locator(".banner.link")).to_contain_text("REPLACED")
    expect(page.locator(".page-head .badge.state")).to_have_text("Cancelled")
    # a cancelled prescription is not checked again: no "checks running again" notice
    expect(page.get_by_text("The patient's picture changed since these findings")).to_have_count(0)
    shots.take(page, "14-prescription-replaced")
    page.locator(".banner.link a").click()
    expect(page.get_by_role("heading", name="answerol 5 MG Oral Tablet")).to_be_visible()
    expect(page.locator(".banner.link")).to_contain_text("CHANGED PRESCRIPTION")
    context.close()
    assert problems == []


def test_a_prescribers_cancel_reaches_the_pharmacist_reviewing_it(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    """Issue 15: the pharmacist has claimed a prescription and is about to approve it when the
    prescriber's CancelRx arrives: without a reload, the page says CANCELLED, the approval form
    closes and no action is offered."""
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub, None)
    message_id = f"cancel-live-{time.time_ns()}"
    rx = demo_hub.ready_prescription(message_id, patient_last="Cancellive")
    page.goto(f"{demo_hub.base}/#/rx/{rx['id']}")
    page.get_by_role("button", name="Claim").click()
    page.get_by_role("button", name="Approve…").click()
    expect(page.get_by_role("button", name="Approve prescription")).to_be_visible()
    demo_hub.send_script(
        cancelrx_xml(
            message_id=f"cancel-{time.time_ns()}",
            order_number=f"ORD-{message_id}"[:35],
            to=demo_hub.ncpdpid,
            patient_last="Cancellive",
            written_date=dt.datetime.now(dt.UTC).date().isoformat(),
        )
    )
    expect(page.locator("#cancelled-banner")).to_contain_text("CANCELLED", timeout=15_000)
    expect(page.get_by_role("alert").filter(has_text="must not be filled").first).to_be_visible()
    expect(page.get_by_role("button", name="Approve prescription")).to_have_count(0)
    shots.take(page, "15-prescription-cancelled-live")
    assert_accessible(page, "test_console: 15-prescription-cancelled-live")
    context.close()
    assert problems == []
