"""Issue 17's patient side in the console: a pharmacist opens a patient's profile, sets the
preferences (a time zone the hub refuses first, in its words), adds an email contact point,
reads the code the hub wrote to its notification outbox, is refused a wrong code with the tries
left, verifies the right one, switches one notification off; then the adherence page, empty
without fills, and its CSV, fetched behind the sign-in."""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from contextlib import closing

from playwright.sync_api import Browser, Route, expect

from .a11y import assert_accessible
from .conftest import DESKTOP, DemoHub, Shots, sign_in, watch


def sent_code(hub: DemoHub, address: str) -> str:
    """The verification code in the newest sign-in-code notification to ``address``, as the
    hub rendered it into its outbox (the hub's own SQLite database)."""
    deadline = time.monotonic() + 30
    with closing(sqlite3.connect(hub.data_dir / "hub.sqlite3")) as db:
        while time.monotonic() < deadline:
            row = db.execute(
                "select body from notifications where kind = 'sign_in_code' and recipient = ?"
                " order by created_at desc limit 1",
                (address,),
            ).fetchone()
            if row:
                found = re.search(r"\b(\d{6})\b", row[0])
                assert found, "the message carries a 6-digit code"
                return found.group(1)
            time.sleep(0.25)
    raise AssertionError("no code was written to the outbox")


def test_a_pharmacist_sets_a_patients_preferences_contact_and_consent(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    rx = demo_hub.ready_prescription(
        f"side-{time.time_ns()}", patient_last="Sidetest", patient_first="Jordan"
    )
    patient_id = rx["patient_id"]
    address = f"jordan.{uuid.uuid4().hex[:8]}@example.org"
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub)
    page.goto(f"{demo_hub.base}/#/patients/{patient_id}")
    expect(page.get_by_role("heading", name="Contact and preferences")).to_be_visible()
    expect(page.get_by_text("No contact point yet")).to_be_visible()
    expect(page.get_by_text("No counted fill of a measured class")).to_be_visible()
    shots.take(page, "01-profile")

    # the preferences: a time zone the hub does not know is refused in its words, beside the form
    zone = page.get_by_label("Time zone")
    zone.fill("Mars/Base")
    page.get_by_label("Preferred channel").select_option("email")
    page.get_by_label("Quiet hours from").fill("21:30")
    page.get_by_label("Quiet hours until").fill("07:30")
    page.get_by_label("Large-print labels").check()
    page.get_by_role("button", name="Save preferences").click()
    refusal = page.locator(".preferences").get_by_role("alert")
    expect(refusal).to_contain_text("Unknown time zone 'Mars/Base'")
    expect(zone).to_be_focused()
    shots.take(page, "02-zone-refused")
    assert_accessible(page, "test_patient_side: 02-zone-refused")
    zone.fill("America/New_York")
    page.get_by_role("button", name="Save preferences").click()
    saved = page.locator(".preferences .notice.ok")
    expect(saved).to_have_text("Preferences saved.")
    expect(page.locator(".preferences .form-message")).to_be_focused()

    # an email contact point: a code is sent; a wrong one is refused with the tries left
    page.get_by_label("Email address or mobile number").fill(address)
    page.get_by_role("button", name="Add and send a code").click()
    contact = page.locator("li.contact", has_text=address)
    expect(contact.locator(".notice.ok")).to_contain_text(f"Code sent to {address}")
    expect(contact.locator(".badge")).to_have_text("Not verified")
    code_field = page.get_by_label(f"Code sent to {address}")
    expect(code_field).to_be_focused()
    code = sent_code(demo_hub, address)
    shots.take(page, "03-code-sent")
    assert_accessible(page, "test_patient_side: 03-code-sent")
    code_field.fill("000000" if code != "000000" else "111111")
    contact.get_by_role("button", name="Verify").click()
    expect(contact.get_by_role("alert")).to_have_text("The code is wrong. 4 tries left.")
    expect(code_field).to_be_focused()
    code_field.fill(code)
    contact.get_by_role("button", name="Verify").click()
    expect(contact.locator(".badge")).to_have_text("Verified")
    expect(contact.locator(".notice.ok")).to_have_text(f"Email {address} verified.")
    expect(contact.locator(".notice.ok")).to_be_focused()
    expect(page.get_by_label(f"Code sent to {address}")).to_have_count(0)
    shots.take(page, "04-verified")
    assert_accessible(page, "test_patient_side: 04-verified")

    # consent: the refill reminders by email switched off; the focus stays on the switch
    switch = page.get_by_label("Refill due by Email")
    expect(switch).to_be_checked()
    switch.uncheck()
    expect(page.locator(".consent-part .notice.ok")).to_have_text("Refill due by email: off.")
    expect(switch).to_be_focused()
    shots.take(page, "05-consent")
    assert_accessible(page, "test_patient_side: 05-consent")

    # all of it as the hub keeps it, read anew
    page.reload()
    expect(page.get_by_label("Refill due by Email")).not_to_be_checked()
    expect(page.get_by_label("Refill due by SMS")).to_be_checked()
    expect(page.get_by_label("Time zone")).to_have_value("America/New_York")
    expect(page.get_by_label("Preferred channel")).to_have_value("email")
    expect(page.get_by_label("Quiet hours from")).to_have_value("21:30")
    expect(page.get_by_label("Large-print labels")).to_be_checked()
    expect(page.locator("li.contact", has_text=address).locator(".badge")).to_have_text("Verified")

    # the adherence page: no fill handed over, so nobody; the CSV has its header only
    page.get_by_role("link", name="Adherence", exact=True).click()
    expect(page.get_by_role("heading", name="Adherence", level=1)).to_be_visible()
    expect(page.get_by_text("No patient with a counted fill in this period.")).to_be_visible()
    this_year = time.strftime("%Y", time.gmtime())
    expect(page.get_by_label("From")).to_have_value(f"{this_year}-01-01")
    page.get_by_label("Below 80 % only").check()
    expect(page.get_by_text("No patient the measure counts is below 80 %")).to_be_visible()
    shots.take(page, "06-adherence")
    assert_accessible(page, "test_patient_side: 06-adherence")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    saved_csv = download.value
    assert saved_csv.suggested_filename.startswith(f"adherence-{this_year}-01-01-")
    text = saved_csv.path().read_text(encoding="utf-8")
    assert text.splitlines() == [
        "patient,drug_class,index_date,days_in_period,days_covered,pdc_percent,eligible"
    ]
    expect(page.get_by_role("status").filter(has_text="Downloaded")).to_be_visible()

    context.close()
    assert problems == []


def test_the_adherence_list_links_each_patient_to_the_profile(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    """The list as the API documents it (docs/patients.md), given to the page in place of the
    hub's answer (a fill handed over takes the whole dispensing scenario): below 80 % marked,
    each patient a link to the profile, whose own card reads the same shape."""
    rx = demo_hub.ready_prescription(
        f"adh-{time.time_ns()}", patient_last="Adhtest", patient_first="Casey"
    )
    patient_id = str(rx["patient_id"])
    line = {
        "patient_id": patient_id,
        "patient": {"last": "Adhtest", "first": "Casey", "date_of_birth": "1980-01-01"},
        "drug_class": "statins",
        "drugs": ["atorvastatin"],
        "index_date": "2026-01-05",
        "days_in_period": 100,
        "days_covered": 62,
        "fill_dates": 2,
        "pdc_percent": 62.0,
        "eligible": True,
        "adherent": False,
    }
    rasa = {**line, "drug_class": "ras_antagonists", "drugs": ["lisinopril"],
            "days_covered": 95, "pdc_percent": 95.0, "adherent": True}  # fmt: skip
    answer = {"period_from": "2026-01-01", "period_to": "2026-04-15", "threshold_percent": 80}

    def fulfil(route: Route) -> None:
        route.fulfill(json={**answer, "items": [line, rasa]})

    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    page.route(re.compile(r".*/api/v1/adherence\?.*"), fulfil)
    page.route(re.compile(rf".*/api/v1/patients/{patient_id}/adherence$"), fulfil)
    sign_in(page, demo_hub)
    page.get_by_role("link", name="Adherence", exact=True).click()
    table = page.get_by_role("table", name="Adherence by patient and class")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Statins")
    expect(rows.nth(0).locator(".pdc")).to_have_text("62.0 %")
    expect(rows.nth(0)).to_contain_text("62 / 100")
    expect(rows.nth(0)).to_contain_text("Below 80 %")
    expect(rows.nth(1)).to_contain_text("RAS antagonists")
    shots.take(page, "07-adherence-list")
    assert_accessible(page, "test_patient_side: 07-adherence-list")
    rows.nth(0).get_by_role("link", name="Adhtest, Casey").click()
    expect(page.get_by_role("heading", name="Adhtest, Casey")).to_be_visible()
    own = page.get_by_role("table", name="Adherence by class")
    expect(own.locator("tbody tr")).to_have_count(2)
    expect(own.locator("tbody tr").nth(1).locator(".pdc")).to_have_text("95.0 %")
    shots.take(page, "08-profile-adherence")
    assert_accessible(page, "test_patient_side: 08-profile-adherence")
    context.close()
    assert problems == []


def test_a_pharmacist_finds_a_patient_records_an_allergy_and_reads_the_timeline(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    last = f"Profiletest{uuid.uuid4().hex[:6]}"
    rx = demo_hub.ready_prescription(
        f"profile-{time.time_ns()}", patient_last=last, patient_first="Robin"
    )
    patient_id = rx["patient_id"]
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub)

    # the search: by the name's beginning, in the pharmacy's own patients
    page.get_by_role("link", name="Patients", exact=True).click()
    expect(page.get_by_role("heading", name="Patients", level=1)).to_be_visible()
    page.get_by_label("Name").fill(f"{last[:-2]}, rob")
    page.get_by_role("button", name="Search").click()
    found = page.locator("#search-results").get_by_role("link")
    expect(found).to_have_count(1)
    shots.take(page, "07-search")
    found.click()
    expect(page).to_have_url(re.compile(rf"#/patients/{patient_id}$"))

    # the profile: the medication with its prescriber, the timeline from the receipt on
    expect(page.get_by_role("heading", name="Medications and prescribers")).to_be_visible()
    timeline = page.locator("#timeline")
    expect(timeline.get_by_text("Prescription: Received")).to_be_visible()

    # a coded allergy: recorded, listed with who recorded it, on the timeline
    page.get_by_label("Allergen or drug").fill("penicillin")
    page.get_by_label("Code system").select_option("rxnorm")
    page.get_by_label("Code", exact=True).fill("7980")
    page.get_by_label("Reaction").fill("hives")
    page.get_by_label("Severity").select_option("severe")
    page.get_by_role("button", name="Add allergy").click()
    allergies = page.locator("#allergies")
    expect(allergies.locator(".notice.ok")).to_contain_text("Allergy recorded.")
    entry = allergies.locator("li", has_text="penicillin")
    expect(entry).to_contain_text("(hives, severe)")
    expect(entry).to_contain_text("RxNorm 7980")
    expect(entry).to_contain_text(f"recorded by {demo_hub.username}")
    # a coded entry without its code is refused in the hub's words
    page.get_by_label("Allergen or drug").fill("sulfa")
    page.get_by_label("Code system").select_option("snomed")
    page.get_by_role("button", name="Add allergy").click()
    expect(allergies.get_by_role("alert")).to_contain_text("needs its code")
    shots.take(page, "08-allergy")
    page.reload()
    expect(page.locator("#timeline").get_by_text("Allergy recorded: penicillin")).to_be_visible()
    expect(page.locator("#timeline-more")).to_be_hidden()

    # removed (after a confirmation): gone from the list, on the timeline
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove the allergy penicillin").click()
    expect(page.locator("#allergies").get_by_text("No allergies recorded.")).to_be_visible()
    page.reload()
    expect(page.locator("#timeline").get_by_text("Allergy removed: penicillin")).to_be_visible()
    shots.take(page, "09-timeline")
    context.close()
    assert problems == []
